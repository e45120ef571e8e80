/*
 * pnic_stamp.h -- what every model writes into a frame besides its template:
 * the packet's sequence number and send time, with its checksums patched.
 * Inline: it is on the clock, once per frame.
 */
#ifndef PNIC_STAMP_H
#define PNIC_STAMP_H

#include <stdint.h>
#include <string.h>

#include "pnic_layout.h"

/* One's complement arithmetic (RFC 1071): fold carries back in. */
static inline uint32_t pnic_fold(uint32_t sum)
{
    sum = (sum & 0xffffu) + (sum >> 16);
    return (sum & 0xffffu) + (sum >> 16);
}

/* A folded sum as it falls from PNIC_PCSS at `off`: byte-swapped at an odd distance (RFC 1071 section 2(B)). */
static inline uint32_t pnic_sum_placed(uint32_t sum, uint32_t off)
{
    return ((off - PNIC_PCSS) & 1u) ? ((sum & 0xffu) << 8) | (sum >> 8) : sum;
}

/* Sum of big-endian 16-bit words of p[0..n) (n even), as they fall from PNIC_PCSS at `off`. */
static inline uint32_t pnic_sum_at(const uint8_t *p, uint32_t n, uint32_t off)
{
    uint32_t sum = 0;
    for (uint32_t k = 0; k < n; k += 2)
        sum += ((uint32_t)p[k] << 8) | p[k + 1];
    return pnic_sum_placed(pnic_fold(sum), off);
}

/* The 12 stamp bytes (seq, then ts, big-endian) summed as 16-bit words, from
 * the values themselves: the stamp is never read back from where it was
 * written (a load from a buffer line still on its way from the driver's core
 * waits for the line, ~100 ns; see pnic_stamp_frame_from). */
static inline uint32_t pnic_stamp_words(uint32_t seq, uint64_t ts)
{
    return pnic_fold((seq >> 16) + (seq & 0xffffu) + (uint32_t)(ts >> 48) + (uint32_t)((ts >> 32) & 0xffffu) +
                     (uint32_t)((ts >> 16) & 0xffffu) + (uint32_t)(ts & 0xffffu));
}

/* The checksum of a frame whose template holds `old` once stamp bytes
 * summing to `words` are in it (RFC 1624, eqn. 3; the template holds zeros
 * there, so there is nothing to subtract).  Zero stays zero: UDP over IPv4
 * without a checksum (RFC 768). */
static inline uint16_t pnic_stamped_csum_of(uint16_t old, uint32_t words)
{
    if (old == 0)
        return 0;
    const uint16_t c = (uint16_t)~pnic_fold((~(uint32_t)old & 0xffffu) + words);
    return c == 0 ? 0xffffu : c;
}

/* The same, from the 12 stamp bytes `s` as a frame carries them. */
static inline uint16_t pnic_stamped_csum(uint16_t old, const uint8_t s[12])
{
    return pnic_stamped_csum_of(old, pnic_sum_at(s, 12, PNIC_PCSS));
}

/* Sequence number and send timestamp into the frame, then its checksum
 * patched for them; the checksum the stamp replaces is read from `tmpl`, the
 * template the frame was copied from (the same bytes there), so that nothing
 * is read back from `buf` -- a load overlapping the copy's stores would wait
 * for the line to come over from the driver's core.  Returns what the stamp
 * adds to the frame's sum from PNIC_PCSS (e1000: the descriptor's csum). */
static inline uint32_t pnic_stamp_frame_from(uint8_t *buf, const uint8_t *tmpl, uint16_t stamp_off, uint16_t csum_off,
                                             uint32_t seq, uint64_t ts)
{
    const uint32_t be_seq = __builtin_bswap32(seq);
    const uint64_t be_ts = __builtin_bswap64(ts);
    memcpy(buf + stamp_off, &be_seq, sizeof(be_seq));
    memcpy(buf + stamp_off + 4, &be_ts, sizeof(be_ts));
    const uint32_t words = pnic_stamp_words(seq, ts);
    const uint32_t added = pnic_sum_placed(words, stamp_off);
    if (csum_off == 0)
        return added;
    const uint16_t old = (uint16_t)(((uint32_t)tmpl[csum_off] << 8) | tmpl[csum_off + 1]);
    if (old == 0)
        return added;
    const uint16_t c = pnic_stamped_csum_of(old, words);
    buf[csum_off] = (uint8_t)(c >> 8);
    buf[csum_off + 1] = (uint8_t)c;
    /* the new checksum in, the old one out */
    return pnic_fold(added + pnic_sum_placed(pnic_fold(c + (~(uint32_t)old & 0xffffu)), csum_off));
}

/* The same, for a frame stamped where it lies (its own bytes are its template). */
static inline uint32_t pnic_stamp_frame(uint8_t *buf, uint16_t stamp_off, uint16_t csum_off, uint32_t seq, uint64_t ts)
{
    return pnic_stamp_frame_from(buf, buf, stamp_off, csum_off, seq, ts);
}

/* The Ethernet FCS (IEEE 802.3 CRC-32: reflected polynomial 0xEDB88320, all
 * ones in, complemented out), for a device that keeps it (RCTL.SECRC clear).
 * Slicing by 8: eight table lookups per 8 bytes.  The tables are built on
 * first use, off the clock (pnic_crc32_init, from a model's init). */
extern uint32_t pnic_crc_table[8][256];
void pnic_crc32_init(void);
uint32_t pnic_crc_shift(uint64_t n);

/* Multiply two polynomials modulo the CRC's, both reflected (x^0 the top
 * bit), as the CRC register holds them. */
static inline uint32_t pnic_crc_multmod(uint32_t a, uint32_t b)
{
    uint32_t product = 0;
    for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
        if (a & m)
            product ^= b;
        b = b & 1u ? (b >> 1) ^ 0xedb88320u : b >> 1;
    }
    return product;
}

/* The FCS of a stamped frame from its template's: the CRC is affine, so
 * FCS(template ^ delta) = FCS(template) ^ L(delta), L the CRC with neither
 * its initial ones nor its final complement.  The delta is zero outside
 * [start, end), and L of zeros is zero: L(delta) is L of the changed bytes,
 * carried through the t zero bytes after them by multiplying with
 * x^(8t) (fcs_shift).  A few dozen table lookups for any frame length. */
static inline uint32_t pnic_fcs_of_stamped(const uint8_t *frame, const uint8_t *template_, uint32_t start,
                                           uint32_t end, uint32_t fcs, uint32_t fcs_shift)
{
    const uint32_t(*t)[256] = (const uint32_t(*)[256])pnic_crc_table;
    uint32_t l = 0;
    for (uint32_t k = start; k < end; k++)
        l = (l >> 8) ^ t[0][(l ^ frame[k] ^ template_[k]) & 0xff];
    return fcs ^ pnic_crc_multmod(l, fcs_shift);
}

static inline uint32_t pnic_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    const uint32_t(*t)[256] = (const uint32_t(*)[256])pnic_crc_table;
    crc = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian x86: the first byte is the low one */
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    while (n--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#endif /* PNIC_STAMP_H */
