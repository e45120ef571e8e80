/*
 * pnic_e1000_tx.c -- the e1000 (Intel 8254x) transmitter: legacy transmit
 * descriptors (SDM 3.3.3) on a ring the driver places (TDBAL/TDBAH/TDLEN,
 * latched at TCTL.EN), taken from TDH up to TDT, DD written back where RS
 * asks, TXDW and TXQE raised, GPTC/GOTC counted.  Each frame taken is
 * checked against the frame the host handed the driver, and recorded
 * (struct pnic_txv_record): pseudonic.verdict judges the order, the losses
 * and the duplicates from the records.
 *
 * Ring ownership (SDM 3.4): the device owns the descriptors from TDH up to
 * TDT-1; TDH == TDT means the ring is empty.  A frame is the descriptors up
 * to one with EOP; one whose EOP the driver has not queued yet waits.
 *
 * The device is one engine: the send loop gives the transmitter the time
 * between receive deadlines (pnic_send.c), and a frame's wire time when a
 * pace is set (pnic_send_plan.tx_bits_per_s).
 */
#include <stddef.h>
#include <string.h>

#include "pnic_model.h"
#include "pnic_stamp.h"

/* Bytes on the wire besides the frame: preamble and start delimiter (8) and
 * the inter-packet gap (12), and the FCS (4) when the device inserts it. */
#define PNIC_WIRE_EXTRA 20u

/* A frame over several descriptors is gathered here before it is checked. */
static uint8_t gather[PNIC_MAX_TX_FRAME];
/* The template's head, stamped as the frame says, to compare with it. */
static uint8_t expected[PNIC_MAX_FRAME];

static struct pnic_e1000 *e1000_of(struct pnic_model *m)
{
    return (struct pnic_e1000 *)((uint8_t *)m - offsetof(struct pnic_e1000, model));
}

static int halt(struct pnic_model *m, uint32_t fault, uint64_t value)
{
    m->seg->dev->fault = fault;
    m->seg->dev->fault_value = value;
    m->halted = 1;
    return 0;
}

/* Follow a change of transmit ring (pnic_e1000_take_ring); a ring the device cannot use halts it. */
static int take_tx_ring(struct pnic_model *m, struct pnic_e1000_tx *t)
{
    const int taken = pnic_e1000_take_ring(m->seg, 1);
    if (taken < 0) {
        m->halted = 1;
        return -1;
    }
    if (taken > 0) {
        t->ring = (struct pnic_tx_desc *)(m->seg->base + m->seg->dev->tx_base);
        t->n = m->seg->dev->tx_count;
        t->gathered = t->descs = 0;
    }
    return 0;
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Which frame of the plan this is, and whether it is that frame intact: the
 * stamp's sequence number names it (pnic_stamp.h), the bytes around the
 * stamp must be the template's and the stamp's checksum patch the one the
 * stamp implies.  An unstamped plan frame is matched whole against the
 * frame an in-order driver sends next. */
static uint32_t identify(struct pnic_e1000_tx *t, const uint8_t *frame, uint32_t len, uint32_t *seq, uint64_t *handed)
{
    const struct pnic_send_plan *p = t->plan;
    *seq = UINT32_MAX;
    *handed = 0;
    if (p == NULL || p->ntx == 0)
        return 0;
    const struct pnic_frame *next = &p->frames[p->tx_frames[t->expect < p->ntx ? t->expect : p->ntx - 1]];
    if (next->stamp_off == 0 || len < (uint32_t)next->stamp_off + 12u) {
        if (len == next->length && t->expect < p->ntx && memcmp(frame, p->blob + next->data_off, len) == 0) {
            *seq = t->expect;
            return PNIC_TXV_INTACT;
        }
        return 0;
    }
    const uint32_t s = get_be32(frame + next->stamp_off);
    if (s >= p->ntx)
        return 0;
    const struct pnic_frame *fr = &p->frames[p->tx_frames[s]];
    if (fr->stamp_off != next->stamp_off)
        return 0;
    *seq = s;
    *handed = get_be64(frame + fr->stamp_off + 4);
    if (len != fr->length)
        return PNIC_TXV_STAMPED;
    const uint8_t *tmpl = p->blob + fr->data_off;
    const uint32_t start = fr->csum_off && fr->csum_off < fr->stamp_off ? fr->csum_off : fr->stamp_off;
    const uint32_t end = fr->csum_off + 2u > fr->stamp_off + 12u ? fr->csum_off + 2u : fr->stamp_off + 12u;
    memcpy(expected, tmpl, end);
    pnic_stamp_frame(expected, fr->stamp_off, fr->csum_off, s, *handed);
    const int same = memcmp(frame, tmpl, start) == 0 && memcmp(frame + start, expected + start, end - start) == 0 &&
                     memcmp(frame + end, tmpl + end, len - end) == 0;
    return PNIC_TXV_STAMPED | (same ? PNIC_TXV_INTACT : 0u);
}

/* Loop a frame taken back into the receive ring (--loopback): the receive
 * model takes it as it takes a frame of the plan, with its checksum sum and
 * FCS computed here, since it is not a template's.  The plan's frames are
 * what the host hands the driver, so the frame's number is its entry in the
 * plan: the receive record of that entry says what became of it. */
static uint32_t loop_back(struct pnic_model *m, const uint8_t *frame, uint32_t len, uint32_t seq, uint64_t now)
{
    struct pnic_segment *seg = m->seg;
    uint32_t sum = 0;
    for (uint32_t k = PNIC_PCSS; k < len; k += 2)
        sum += ((uint32_t)frame[k] << 8) | (k + 1 < len ? frame[k + 1] : 0u);
    const uint16_t kind = len >= 34 && frame[12] == 0x08 && frame[13] == 0x00
                              ? (uint16_t)(PNIC_FRAME_IPV4 | (frame[23] == 6 || frame[23] == 17 ? PNIC_FRAME_L4 : 0))
                              : 0;
    const struct pnic_rx_frame f = {frame, len, 0, 0, (uint16_t)pnic_fold(pnic_fold(sum)), kind, seq, now, 0, 1,
                                    pnic_crc32(0, frame, len), 0};
    uint32_t flags = 0;
    /* Written back at once, not held for a batch: its raise is decided from ICR as soon as it is taken. */
    const uint32_t defer = m->defer;
    m->defer = 0;
    const int64_t slot = pnic_e1000_receive_frame(m, &f, &flags);
    m->defer = defer;
    const int64_t at = pnic_record_at(seg->hdr, seq);
    if (at >= 0) {
        struct pnic_tx_record *rec = &seg->tx[at];
        rec->start_ns = rec->end_ns = rec->due_ns = now;
        rec->spin_gap_ns = 0;
        rec->slot = slot < 0 ? UINT32_MAX : (uint32_t)slot;
        rec->flags = flags;
        if (seq >= seg->dev->sent)
            __atomic_store_n(&seg->dev->sent, seq + 1, __ATOMIC_RELEASE);
        e1000_of(m)->tx.looped = seq;
    }
    return flags & PNIC_TX_STORED ? PNIC_TXV_LOOPED : 0u;
}

/* One frame finished (EOP taken): check it, record it, count it. */
static void finish(struct pnic_model *m, struct pnic_e1000_tx *t, const uint8_t *frame, uint32_t len, uint64_t now)
{
    struct pnic_segment *seg = m->seg;
    struct pnic_dev_regs *dev = seg->dev;
    uint32_t seq;
    uint64_t handed;
    uint32_t flags = identify(t, frame, len, &seq, &handed);
    if ((flags & PNIC_TXV_INTACT) && seq >= t->expect)
        t->expect = seq + 1;
    if (len < PNIC_MIN_FRAME && (__atomic_load_n(&seg->drv->tctl, __ATOMIC_RELAXED) & PNIC_TCTL_PSP))
        flags |= PNIC_TXV_PADDED;
    if (!(t->cmd & PNIC_TXD_CMD_IFCS))
        flags |= PNIC_TXV_NO_FCS;
    if (t->plan != NULL && t->plan->loopback)
        flags |= loop_back(m, frame, len, seq, now);
    const uint64_t k = dev->tx_taken;
    if (seg->txv != NULL && k < seg->hdr->tx_capacity) {
        struct pnic_txv_record *r = &seg->txv[k];
        r->taken_ns = now;
        r->handed_ns = handed;
        r->seq = seq;
        r->length = len;
        r->flags = (uint16_t)flags;
        r->descs = (uint16_t)(t->descs > 0xffffu ? 0xffffu : t->descs);
        r->first = t->first;
    }
    __atomic_store_n(&dev->tx_taken, k + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&dev->gptc, dev->gptc + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&dev->gotc, dev->gotc + len, __ATOMIC_RELAXED);
    if (t->plan != NULL && t->plan->tx_bits_per_s != 0) {
        const uint64_t bits = (uint64_t)((len < PNIC_MIN_FRAME ? PNIC_MIN_FRAME : len) + PNIC_FCS + PNIC_WIRE_EXTRA) * 8u;
        t->free_ns = now + bits * 1000000000ull / t->plan->tx_bits_per_s;
    }
}

int pnic_e1000_transmit(struct pnic_model *m, uint64_t now, uint32_t *packet)
{
    struct pnic_e1000_tx *t = &e1000_of(m)->tx;
    struct pnic_segment *seg = m->seg;
    struct pnic_dev_regs *dev = seg->dev;
    t->looped = UINT32_MAX;
    if (take_tx_ring(m, t) < 0 || t->n == 0 || now < t->free_ns)
        return 0;
    if (!(__atomic_load_n(&seg->drv->tctl, __ATOMIC_RELAXED) & PNIC_TCTL_EN))
        return 0;
    uint32_t tdh = dev->tdh;
    if (tdh == t->tdt) {
        t->tdt = __atomic_load_n(&seg->drv->tdt, __ATOMIC_ACQUIRE);
        if (tdh == t->tdt)
            return 0;
    }
    if (t->tdt >= t->n)
        return halt(m, PNIC_FAULT_TDT, t->tdt);
    /* One frame: its descriptors up to EOP, or up to TDT if EOP is not queued yet. */
    uint32_t cause = 0;
    while (tdh != t->tdt) {
        struct pnic_tx_desc *d = &t->ring[tdh];
        const uint64_t addr = d->buffer_addr;
        const uint32_t len = d->length;
        const uint8_t cmd = d->cmd;
        if (cmd & PNIC_TXD_CMD_DEXT) /* a context or extended data descriptor: no checksum offload or TSO here */
            return halt(m, PNIC_FAULT_TX_DEXT, tdh);
        if (t->descs++ == 0) {
            t->first = tdh;
            t->cmd = cmd;
            t->rs = 0;
        }
        if (len != 0 && !(pnic_in_pool(seg, addr, len) || pnic_in_dma(seg, addr, len)))
            return halt(m, PNIC_FAULT_TX_BUFFER, addr);
        if (t->gathered + len > PNIC_MAX_TX_FRAME)
            return halt(m, PNIC_FAULT_TX_LENGTH, (uint64_t)t->gathered + len);
        const uint8_t *data = seg->base + addr;
        const int whole = t->gathered == 0 && (cmd & PNIC_TXD_CMD_EOP);
        if (!whole) {
            memcpy(gather + t->gathered, data, len);
            data = gather;
        }
        t->gathered += len;
        t->rs |= (cmd & PNIC_TXD_CMD_RS) != 0;
        tdh = tdh + 1 == t->n ? 0 : tdh + 1;
        __atomic_store_n(&dev->tx_descs, dev->tx_descs + 1, __ATOMIC_RELAXED);
        if (cmd & PNIC_TXD_CMD_EOP) {
            finish(m, t, data, t->gathered, now);
            t->gathered = t->descs = 0;
        }
        /* Done with the descriptor: its status where RS asks (SDM 3.3.3.2), then TDH. */
        if (cmd & PNIC_TXD_CMD_RS) {
            __atomic_store_n(&d->status, (uint8_t)(d->status | PNIC_TXD_STAT_DD), __ATOMIC_RELEASE);
            cause |= PNIC_ICR_TXDW;
        }
        __atomic_store_n(&dev->tdh, tdh, __ATOMIC_RELEASE);
        if (cmd & PNIC_TXD_CMD_EOP)
            break;
    }
    if (tdh == t->tdt && tdh == __atomic_load_n(&seg->drv->tdt, __ATOMIC_ACQUIRE))
        cause |= PNIC_ICR_TXQE;
    if (cause != 0)
        pnic_e1000_cause(seg, cause);
    if (t->looped != UINT32_MAX) {
        *packet = t->looped; /* the receive its loop back made: its causes are in ICR already */
        cause |= __atomic_load_n(&dev->icr, __ATOMIC_ACQUIRE) & (PNIC_ICR_RXT0 | PNIC_ICR_RXO | PNIC_ICR_RXDMT0);
    }
    /* A raise only for a cause the driver unmasked: the loop's raise policy does the rest (ITR, the level line). */
    return (cause & __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE)) != 0;
}

int pnic_e1000_tx_busy(struct pnic_model *m, uint64_t *progress)
{
    struct pnic_segment *seg = m->seg;
    const struct pnic_send_plan *p = e1000_of(m)->tx.plan;
    if (p == NULL || p->ntx == 0)
        return 0;
    const uint64_t handed = __atomic_load_n(&seg->drv->tx_handed, __ATOMIC_ACQUIRE);
    *progress = handed + seg->dev->tx_descs;
    if (!__atomic_load_n(&seg->drv->tx_done, __ATOMIC_ACQUIRE))
        return 1;
    const struct pnic_e1000_tx *t = &e1000_of(m)->tx;
    return t->n != 0 && (__atomic_load_n(&seg->drv->tctl, __ATOMIC_RELAXED) & PNIC_TCTL_EN) &&
           __atomic_load_n(&seg->drv->tdt, __ATOMIC_ACQUIRE) != seg->dev->tdh;
}

/* The run is over: a frame still being gathered never got its EOP. */
void pnic_e1000_tx_end(struct pnic_model *m)
{
    struct pnic_e1000_tx *t = &e1000_of(m)->tx;
    struct pnic_segment *seg = m->seg;
    if (t->descs == 0 || seg->txv == NULL)
        return;
    const uint64_t k = seg->dev->tx_taken;
    if (k < seg->hdr->tx_capacity) {
        struct pnic_txv_record *r = &seg->txv[k];
        memset(r, 0, sizeof(*r));
        r->taken_ns = pnic_now_ns();
        r->seq = UINT32_MAX;
        r->length = t->gathered;
        r->flags = PNIC_TXV_NO_EOP;
        r->descs = (uint16_t)t->descs;
        r->first = t->first;
    }
    __atomic_store_n(&seg->dev->tx_taken, k + 1, __ATOMIC_RELEASE);
}
