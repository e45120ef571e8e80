/*
 * pnic_sanitize.c -- the ring sanitizer: every hand-over of descriptors to
 * the device (an RDT write) checked, in the driver node, at the write itself.
 *
 * Checking at the write, not later in the device, is what makes a finding
 * certain rather than lucky: the buffers handed back are poisoned before RDT
 * moves, so a driver that reads a buffer after handing it back, or before
 * the device has written it (DD), reads poison every time -- not a stale
 * frame that happens to verify.
 *
 * Ownership is counted, not inferred from indices (which wrap): the device
 * owns handed - written descriptors (pnic_dev_regs.written is counted before
 * each DD, so a write that saw a DD sees it counted).  A write that would
 * make that N or more hands over descriptors the device already owns.
 */
#include <string.h>

#include "pnic_engine.h"

static void violation(struct pnic_segment *seg, uint32_t kind, uint32_t desc, uint32_t rdt)
{
    struct pnic_sanitizer *s = seg->san;
    if (s->count[kind]++ == 0) {
        s->first[kind].time_ns = pnic_now_ns();
        s->first[kind].descriptor = desc;
        s->first[kind].rdt = rdt;
    }
}

/* Fill `len` bytes of a buffer with the poison pattern: copied from a page
 * of it, so that memcpy's widest stores do the work (a loop of 4-byte stores
 * cost the sanitized C driver a third more per packet). */
static void poison(uint8_t *buf, uint32_t len)
{
    static uint8_t page[PNIC_PAGE];
    static int ready;
    if (!ready) {
        const uint32_t word = PNIC_POISON;
        for (uint32_t k = 0; k < sizeof(page); k += 4)
            memcpy(page + k, &word, 4);
        ready = 1;
    }
    for (uint32_t k = 0; k < len; k += sizeof(page))
        memcpy(buf + k, page, len - k < sizeof(page) ? len - k : sizeof(page));
}

/* The receive ring the sanitizer follows: the one latched at the last RCTL.EN. */
static inline struct pnic_rx_desc *rx_ring(const struct pnic_segment *seg)
{
    return (struct pnic_rx_desc *)(seg->base + seg->san->rx_base);
}

/* The device's receive head as its count of descriptors written back says
 * (not RDH, which it moves only after a whole frame). */
static inline uint32_t rx_head(const struct pnic_sanitizer *s, uint64_t written)
{
    return (uint32_t)((s->rx_head0 + (written - s->rx_written0)) % s->rx_count);
}

/* The buffers of descriptors the device has written back are free again. */
static void release_written(struct pnic_segment *seg, uint64_t written)
{
    struct pnic_sanitizer *s = seg->san;
    const uint32_t pool = seg->hdr->ring_size;
    for (; s->released < written && s->released < s->handed; s->released++) {
        uint32_t d = rx_head(s, s->released);
        uint32_t b = seg->given_buf[d];
        if (b != PNIC_SAN_NONE && seg->holder[b] == d)
            seg->holder[b] = PNIC_SAN_NONE;
        if (b != PNIC_SAN_NONE && b + 1 < pool && seg->holder[b + 1] == d)
            seg->holder[b + 1] = PNIC_SAN_NONE;
        seg->given_buf[d] = PNIC_SAN_NONE;
    }
}

/* Claim buffer index b for descriptor d; a buffer another device-owned
 * descriptor holds is shared (the device would write two frames into it). */
static void claim(struct pnic_segment *seg, uint32_t b, uint32_t d, uint32_t rdt, int *shared)
{
    uint32_t h = seg->holder[b];
    if (h != PNIC_SAN_NONE && h != d && !*shared) {
        violation(seg, PNIC_SAN_BUF_SHARED, d, rdt);
        *shared = 1;
    }
    seg->holder[b] = d;
}

/* One descriptor handed to the device: DD clear, its buffer in the pool
 * and its own, then poisoned over the length the device last wrote there. */
static void hand_over(struct pnic_segment *seg, uint32_t d, uint32_t rdt)
{
    const struct pnic_header *h = seg->hdr;
    struct pnic_rx_desc *desc = &rx_ring(seg)[d];
    /* Linux e1000 clears status before it returns a descriptor; one with DD
     * still set may be taken again for a frame already delivered. */
    if (__atomic_load_n(&desc->status, __ATOMIC_RELAXED) & PNIC_RXD_STAT_DD)
        violation(seg, PNIC_SAN_DD_SET, d, rdt);
    /* The device writes at most a buffer of RCTL.BSIZE into it: that much must be the driver's to give. */
    const uint32_t size = pnic_rx_buffer_size(__atomic_load_n(&seg->drv->rctl, __ATOMIC_RELAXED), h->buf_size);
    uint64_t addr = desc->buffer_addr;
    uint32_t len = desc->length;
    len = len != 0 && len <= size ? len : size;
    if (pnic_in_dma(seg, addr, size)) {
        /* A buffer of the driver's own DMA memory: poisoned like the pool's; who else holds it is not tracked. */
        seg->given_buf[d] = PNIC_SAN_NONE;
        poison(seg->base + addr, len);
        return;
    }
    if (!pnic_in_pool(seg, addr, size)) {
        violation(seg, PNIC_SAN_BUF_OUTSIDE, d, rdt);
        seg->given_buf[d] = PNIC_SAN_NONE;
        return;
    }
    uint32_t b = (uint32_t)((addr - h->buf_off) / h->buf_size);
    int shared = 0;
    claim(seg, b, d, rdt, &shared);
    if ((addr - h->buf_off) % h->buf_size + size > h->buf_size) /* straddles two buffers of the pool: both */
        claim(seg, b + 1, d, rdt, &shared);
    seg->given_buf[d] = b;
    poison(seg->base + addr, len);
}

static void account(struct pnic_sanitizer *s, uint64_t began)
{
    uint64_t spent = pnic_now_ns() - began;
    s->spent_ns += spent;
    if (s->writes == 1)
        s->first_ns = spent;
}

void pnic_rdt_checked(struct pnic_segment *seg, uint32_t rdt)
{
    struct pnic_sanitizer *s = seg->san;
    const uint32_t n = s->rx_count;
    const uint32_t old = seg->drv->rdt;
    const uint64_t began = pnic_now_ns();
    if (!(__atomic_load_n(&seg->drv->rctl, __ATOMIC_RELAXED) & PNIC_RCTL_EN)) {
        /* The receiver is off: nothing is handed over until it is enabled (pnic_ring_checked). */
        __atomic_store_n(&seg->drv->rdt, rdt, __ATOMIC_RELEASE);
        return;
    }
    s->writes++;
    if (rdt >= n || old >= n) {
        violation(seg, PNIC_SAN_RDT_OUTSIDE, old < n ? old : rdt, rdt);
        __atomic_store_n(&seg->drv->rdt, rdt, __ATOMIC_RELEASE);
        account(s, began);
        return;
    }
    const uint64_t written = __atomic_load_n(&seg->dev->written, __ATOMIC_ACQUIRE);
    release_written(seg, written);
    const uint32_t moved = pnic_ring_dist(old, rdt, n);
    if (moved != 0) {
        uint64_t owned_after = s->handed + moved - written;
        const uint32_t last = rdt == 0 ? n - 1 : rdt - 1;
        /* Named by the last descriptor handed over: the one the driver had just cleaned. */
        if (owned_after == n)
            violation(seg, PNIC_SAN_RDT_AT_HEAD, last, rdt);
        else if (owned_after > n)
            violation(seg, PNIC_SAN_RDT_OWNED, last, rdt);
        if (owned_after <= n) /* descriptors the driver owned: each checked and poisoned */
            for (uint32_t d = old; d != rdt; d = d + 1 == n ? 0 : d + 1)
                hand_over(seg, d, rdt);
        /* From here on, count what the device will take itself to own: [RDH, RDT). */
        s->handed = written + pnic_ring_dist(rx_head(s, written), rdt, n);
    }
    __atomic_store_n(&seg->drv->rdt, rdt, __ATOMIC_RELEASE);
    account(s, began);
}

/* A ring enabled (RCTL.EN or TCTL.EN latched it, pseudonic.h:
 * pnic_latch_ring): one the device cannot use is a finding (the device will
 * stop on it, naming why); a new one starts the counts afresh. */
void pnic_ring_checked(struct pnic_segment *seg, int tx)
{
    struct pnic_sanitizer *s = seg->san;
    struct pnic_drv_regs *drv = seg->drv;
    const uint64_t base = tx ? drv->tx_ring : drv->rx_ring;
    const uint32_t len = tx ? drv->tx_ringlen : drv->rx_ringlen, head = tx ? drv->tx_tdh : drv->rx_rdh;
    uint64_t value;
    const uint32_t fault = pnic_ring_fault(seg, base, len, head, tx, &value);
    if (fault != PNIC_FAULT_NONE) {
        violation(seg, PNIC_SAN_RING_INVALID, fault, (uint32_t)value);
        return;
    }
    const uint32_t n = len / 16u;
    if (tx) {
        if (base == s->tx_base && n == s->tx_count && head == PNIC_SAN_NONE)
            return;
        const uint32_t start = head != PNIC_SAN_NONE ? head : seg->dev->tdh;
        s->tx_base = base;
        s->tx_count = n;
        s->tx_head0 = start < n ? start : 0;
        s->tx_taken0 = __atomic_load_n(&seg->dev->tx_descs, __ATOMIC_ACQUIRE);
        s->tx_handed = s->tx_taken0 + (drv->tdt < n ? pnic_ring_dist(s->tx_head0, drv->tdt, n) : 0);
        return;
    }
    if (base == s->rx_base && n == s->rx_count && head == PNIC_SAN_NONE)
        return;
    const uint32_t start = head != PNIC_SAN_NONE ? head : seg->dev->rdh;
    const uint64_t written = __atomic_load_n(&seg->dev->written, __ATOMIC_ACQUIRE);
    s->rx_base = base;
    s->rx_count = n;
    s->rx_head0 = start < n ? start : 0;
    s->rx_written0 = s->released = written;
    s->handed = written;
    memset(seg->given_buf, 0xff, (size_t)PNIC_SAN_DESCS(seg->hdr->ring_size) * sizeof(uint32_t));
    memset(seg->holder, 0xff, (size_t)seg->hdr->ring_size * sizeof(uint32_t));
    /* What RDT already hands over (written while the receiver was off), checked now. */
    const uint32_t rdt = drv->rdt;
    if (rdt >= n) {
        violation(seg, PNIC_SAN_RDT_OUTSIDE, s->rx_head0, rdt);
        return;
    }
    for (uint32_t d = s->rx_head0; d != rdt; d = d + 1 == n ? 0 : d + 1)
        hand_over(seg, d, rdt);
    s->handed = written + pnic_ring_dist(s->rx_head0, rdt, n);
}

/* The transmit tail moved (SDM 3.4): the device owns [TDH, TDT); a write that
 * would hand it every descriptor (TDT == TDH reads as an empty ring) or ones
 * it still owns is a finding, and so is a queued buffer outside the pool
 * and DMA memory -- the device would stop on it. */
void pnic_tdt_checked(struct pnic_segment *seg, uint32_t tdt)
{
    struct pnic_sanitizer *s = seg->san;
    const uint32_t n = s->tx_count, old = seg->drv->tdt;
    const uint64_t began = pnic_now_ns();
    if (!(__atomic_load_n(&seg->drv->tctl, __ATOMIC_RELAXED) & PNIC_TCTL_EN)) {
        __atomic_store_n(&seg->drv->tdt, tdt, __ATOMIC_RELEASE);
        return;
    }
    s->tx_writes++;
    if (tdt >= n || old >= n) {
        violation(seg, PNIC_SAN_TDT_OUTSIDE, old < n ? old : tdt, tdt);
    } else {
        const uint64_t taken = __atomic_load_n(&seg->dev->tx_descs, __ATOMIC_ACQUIRE);
        const uint32_t moved = pnic_ring_dist(old, tdt, n);
        const uint32_t head = (uint32_t)((s->tx_head0 + (taken - s->tx_taken0)) % n);
        if (moved != 0) {
            const uint32_t last = tdt == 0 ? n - 1 : tdt - 1;
            if (s->tx_handed + moved - taken >= n) {
                violation(seg, PNIC_SAN_TDT_OWNED, last, tdt);
            } else {
                const struct pnic_tx_desc *ring = (const struct pnic_tx_desc *)(seg->base + s->tx_base);
                for (uint32_t d = old; d != tdt; d = d + 1 == n ? 0 : d + 1)
                    if (ring[d].length != 0 && !pnic_in_pool(seg, ring[d].buffer_addr, ring[d].length) &&
                        !pnic_in_dma(seg, ring[d].buffer_addr, ring[d].length))
                        violation(seg, PNIC_SAN_TX_BUF_OUTSIDE, d, tdt);
            }
            s->tx_handed = taken + pnic_ring_dist(head, tdt, n);
        }
    }
    __atomic_store_n(&seg->drv->tdt, tdt, __ATOMIC_RELEASE);
    s->spent_ns += pnic_now_ns() - began;
}

/* -- virtio-net: every publication of avail.idx (VIRTIO 1.1 2.6.13) -------------
 *
 * The sanitizer keeps, per descriptor head, whether the device owns the chain
 * (given_buf[head]: 1 owned, PNIC_SAN_NONE not).  handed counts available
 * entries checked (so avail.idx as checked is handed mod 2^16), released the
 * used entries seen (the used.idx it has caught up with).  A chain goes back
 * to the driver only when its used entry is published. */
static void release_used(struct pnic_segment *seg)
{
    struct pnic_sanitizer *s = seg->san;
    const uint32_t n = seg->hdr->ring_size;
    const uint16_t used = __atomic_load_n(&seg->vq_used->idx, __ATOMIC_ACQUIRE);
    for (; (uint16_t)s->released != used; s->released++) {
        uint32_t head = seg->vq_used->ring[(uint16_t)s->released & (n - 1)].id;
        if (head < n)
            seg->given_buf[head] = PNIC_SAN_NONE;
    }
}

/* One chain made available: each descriptor device-writable, inside the
 * pool, the chain no longer than the table; each buffer poisoned over its
 * length, so a driver that reads it before the device has used it reads
 * poison. */
static void offer(struct pnic_segment *seg, uint16_t head, uint16_t idx)
{
    const struct pnic_header *h = seg->hdr;
    const uint32_t n = h->ring_size;
    const uint64_t pool_end = h->buf_off + (uint64_t)n * h->buf_stride;
    if (head >= n) {
        violation(seg, PNIC_SAN_HEAD_OUTSIDE, head, idx);
        return;
    }
    if (seg->given_buf[head] != PNIC_SAN_NONE) {
        violation(seg, PNIC_SAN_AVAIL_REUSED, head, idx);
        return;
    }
    seg->given_buf[head] = 1;
    uint32_t i = head;
    for (uint32_t k = 0; k < n; k++) {
        struct pnic_vq_desc *d = &seg->vq_desc[i];
        if (!(d->flags & PNIC_VIRTQ_DESC_F_WRITE)) {
            violation(seg, PNIC_SAN_NOT_WRITABLE, i, idx);
            return;
        }
        if (d->addr < h->buf_off || d->addr > pool_end || d->len > pool_end - d->addr) {
            violation(seg, PNIC_SAN_BUF_OUTSIDE, i, idx);
            return;
        }
        poison(seg->base + d->addr, d->len);
        if (!(d->flags & PNIC_VIRTQ_DESC_F_NEXT))
            return;
        if ((i = d->next) >= n)
            break;
    }
    violation(seg, PNIC_SAN_NOT_WRITABLE, i, idx); /* loops, or leaves the table */
}

void pnic_avail_checked(struct pnic_segment *seg, uint16_t idx)
{
    struct pnic_sanitizer *s = seg->san;
    const uint32_t n = seg->hdr->ring_size;
    const uint64_t began = pnic_now_ns();
    s->writes++;
    release_used(seg);
    const uint16_t from = (uint16_t)s->handed, moved = (uint16_t)(idx - from);
    /* Entries the device has not used yet plus the new ones: never more than the queue holds. */
    if ((uint16_t)(from - (uint16_t)s->released) + (uint32_t)moved > n) {
        violation(seg, PNIC_SAN_AVAIL_OVERRUN, from, idx);
    } else {
        for (uint16_t k = from; k != idx; k++)
            offer(seg, seg->vq_avail->ring[k & (n - 1)], idx);
    }
    s->handed += moved;
    __atomic_store_n(&seg->vq_avail->idx, idx, __ATOMIC_RELEASE);
    account(s, began);
}
