/*
 * pnic_verify.c -- checking deliveries as they come, in bounded memory: a
 * long run's verify layer (--records summary|none), where keeping every
 * frame to check after the run would need the frames' bytes in memory.
 *
 * A delivery is matched by the stamp it carries (pnic_stamp.h) to the entry
 * the device sent, and must equal that entry's template everywhere but the
 * stamp, with the checksum the stamp gives it.  A short run's verify layer
 * (upper.py) matches its kept deliveries with the same check after the run
 * (pnic_verify_match), then judges their order whole.  Order is judged over a
 * window of the last `window` sequence numbers: a first delivery behind the
 * highest so far is reordered; one that comes again inside the window is a
 * duplicate; one that comes after the window has passed it cannot be told
 * apart (a duplicate, or a frame held back that long) and is counted stale.
 */
#include <stdlib.h>
#include <string.h>

#include "pnic_engine.h"
#include "pnic_stamp.h"

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int pnic_verifier_init(struct pnic_verifier *v, uint32_t window)
{
    if (v->nslots == 0 || v->nframes == 0 || window < 64 || (window & (window - 1)) != 0)
        return PNIC_EINVAL;
    for (uint32_t f = 0; f < v->nframes; f++) {
        const struct pnic_frame *fr = &v->frames[f];
        /* Every frame stamped where the first is: the stamp is read before its frame is known. */
        if (fr->stamp_off == 0 || fr->stamp_off != v->frames[0].stamp_off || (uint32_t)fr->stamp_off + 12u > fr->length ||
            fr->data_off > v->blob_len || fr->length > v->blob_len - fr->data_off ||
            (fr->csum_off != 0 && (uint32_t)fr->csum_off + 2u > fr->length))
            return PNIC_EFRAME;
    }
    for (uint32_t k = 0; k < v->nslots; k++)
        if (v->frame_of[k] >= v->nframes)
            return PNIC_EFRAME;
    v->seen = calloc(window / 64, sizeof(uint64_t));
    if (v->seen == NULL)
        return PNIC_EINVAL;
    v->window = window;
    v->low = 0;
    v->highest = -1;
    return PNIC_OK;
}

void pnic_verifier_free(struct pnic_verifier *v)
{
    free(v->seen);
    v->seen = NULL;
}

int64_t pnic_verify_match(const struct pnic_verifier *v, const uint8_t *frame, uint32_t length)
{
    const uint32_t so = v->frames[0].stamp_off;
    if (length < so + 12u)
        return -1;
    const uint32_t seq = get_be32(frame + so);
    if (seq >= v->total)
        return -1;
    const struct pnic_frame *fr = &v->frames[v->frame_of[seq % v->nslots]];
    if (length != fr->length)
        return -1;
    const uint8_t *t = v->blob + fr->data_off;
    const uint32_t co = fr->csum_off;
    /* Everything but the stamp and the checksum it changes, as sent; then that checksum. */
    if (co != 0) {
        if (memcmp(frame, t, co) != 0 || memcmp(frame + co + 2, t + co + 2, so - co - 2) != 0)
            return -1;
        const uint16_t old = (uint16_t)(((uint32_t)t[co] << 8) | t[co + 1]);
        const uint16_t want = pnic_stamped_csum(old, frame + so);
        if (frame[co] != (uint8_t)(want >> 8) || frame[co + 1] != (uint8_t)want)
            return -1;
    } else if (memcmp(frame, t, so) != 0) {
        return -1;
    }
    if (memcmp(frame + so + 12, t + so + 12, length - so - 12) != 0)
        return -1;
    return seq;
}

/* Move the window's start to `low`: what leaves it is final. */
static void slide(struct pnic_verifier *v, uint64_t low)
{
    if (low - v->low >= v->window) {
        memset(v->seen, 0, v->window / 8);
    } else {
        for (uint64_t q = v->low; q < low; q++) {
            const uint64_t bit = q & (v->window - 1);
            v->seen[bit / 64] &= ~(1ull << (bit % 64));
        }
    }
    v->low = low;
}

int pnic_verify_frame(struct pnic_verifier *v, const uint8_t *frame, uint32_t length)
{
    const uint64_t k = v->delivered++;
    const int64_t seq = pnic_verify_match(v, frame, length);
    if (seq < 0) {
        if (v->kept < PNIC_VERIFY_KEEP) {
            /* The first few, kept to be explained after the run (how they differ). */
            const uint32_t n = length < PNIC_MAX_FRAME ? length : PNIC_MAX_FRAME;
            memcpy(v->bad[v->kept], frame, n);
            v->bad_len[v->kept] = n;
            v->bad_index[v->kept++] = k;
        }
        v->corrupted++;
        return 0;
    }
    const uint64_t s = (uint64_t)seq;
    if (s < v->low) {
        v->stale++;
        return 1;
    }
    if (s >= v->low + v->window)
        slide(v, s - v->window + 1);
    const uint64_t bit = s & (v->window - 1);
    uint64_t *word = &v->seen[bit / 64];
    const uint64_t mask = 1ull << (bit % 64);
    if (*word & mask) {
        v->duplicated++;
        return 1;
    }
    *word |= mask;
    v->received++;
    if (seq < v->highest)
        v->reordered++;
    else
        v->highest = seq;
    return 1;
}
