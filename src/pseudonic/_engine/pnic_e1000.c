/*
 * pnic_e1000.c -- the e1000 (Intel 8254x) receive model behind pnic_model.h:
 * the receive ring (the one pseudonic prepared, or the driver's own), the
 * receive step (descriptors, RDH/RDT, checksum offload status), the
 * interrupt causes in ICR, and the raise policy (IMS, ITR, the level line).
 * The transmitter is pnic_e1000_tx.c.
 *
 * Ring ownership (8254x SDM 3.2.6): the device owns the descriptors from RDH
 * up to RDT-1.  RDH == RDT means it owns none; a packet due then is dropped
 * and counted in MPC with ICR.RXO set -- the device never waits for the
 * driver, so a slow driver shows as lost packets, as in the paper's E3.
 * A ring has any multiple of 8 descriptors (RDLEN a multiple of 128 bytes),
 * so indices wrap by comparison, not by a mask.
 */
#include <stddef.h>
#include <string.h>

#include "pnic_model.h"
#include "pnic_stamp.h"

/* Set interrupt causes with a plain load and a release store, not a locked
 * OR: a locked OR costs the send 30-50 ns here.  The race with the driver's
 * read-to-clear (an exchange) cannot lose a cause: if the driver reads ICR
 * between our load and our store, it receives the old causes and our store
 * puts them back beside the new one -- the driver sees them twice, which it
 * must tolerate anyway (a spurious interrupt) -- and the doorbell store that
 * follows makes it look at ICR again.  Skipping the store when the bits are
 * already set would not be safe: then a read racing ahead of our descriptor
 * could clear them with nothing left to announce that descriptor. */
static inline void set_cause(struct pnic_dev_regs *dev, uint32_t cause)
{
    uint32_t icr = __atomic_load_n(&dev->icr, __ATOMIC_RELAXED);
    __atomic_store_n(&dev->icr, icr | cause, __ATOMIC_RELEASE);
}

void pnic_e1000_cause(struct pnic_segment *seg, uint32_t cause)
{
    set_cause(seg->dev, cause);
}

/* Take the ring the driver enabled -- receive (tx 0) or transmit (tx 1) -- if
 * RCTL or TCTL was written since we last looked: EN latched the ring's base,
 * length and head (if written) in the driver's write (pseudonic.h:
 * pnic_latch_ring).  Returns 1 if a ring was taken, 0 if nothing changed or
 * that side is off, -1 with pnic_dev_regs.fault set if it is a ring the
 * device cannot use -- the run then stops, naming the register and its
 * value, rather than the device reading or writing where the driver never
 * meant. */
int pnic_e1000_take_ring(struct pnic_segment *seg, int tx)
{
    struct pnic_drv_regs *drv = seg->drv;
    struct pnic_dev_regs *dev = seg->dev;
    uint32_t *seen = tx ? &dev->tx_gen : &dev->rx_gen;
    const uint32_t gen = __atomic_load_n(tx ? &drv->tx_gen : &drv->rx_gen, __ATOMIC_ACQUIRE);
    if (gen == *seen)
        return 0;
    *seen = gen;
    const uint32_t on = tx ? __atomic_load_n(&drv->tctl, __ATOMIC_RELAXED) & PNIC_TCTL_EN
                           : __atomic_load_n(&drv->rctl, __ATOMIC_RELAXED) & PNIC_RCTL_EN;
    if (!on)
        return 0; /* off: nothing is read, and what is queued stays queued */
    const uint64_t base = tx ? drv->tx_ring : drv->rx_ring;
    const uint32_t len = tx ? drv->tx_ringlen : drv->rx_ringlen, head = tx ? drv->tx_tdh : drv->rx_rdh;
    uint32_t *dev_head = tx ? &dev->tdh : &dev->rdh;
    uint64_t value;
    uint32_t fault = pnic_ring_fault(seg, base, len, head, tx, &value);
    if (fault == PNIC_FAULT_NONE && head == PNIC_SAN_NONE && *dev_head >= len / 16u) {
        fault = tx ? PNIC_FAULT_TDH : PNIC_FAULT_RDH; /* a smaller ring, and the head left past it */
        value = *dev_head;
    }
    if (fault != PNIC_FAULT_NONE) {
        dev->fault = fault;
        dev->fault_value = value;
        return -1;
    }
    if (tx) {
        dev->tx_base = base;
        __atomic_store_n(&dev->tx_count, len / 16u, __ATOMIC_RELEASE);
    } else {
        dev->ring_base = base;
        __atomic_store_n(&dev->ring_count, len / 16u, __ATOMIC_RELEASE);
    }
    if (head != PNIC_SAN_NONE)
        __atomic_store_n(dev_head, head, __ATOMIC_RELEASE);
    return 1;
}

/* Checksum offload (8254x SDM 3.2.3.1 and RXCSUM): the status bits the EOP
 * descriptor carries for a frame of `kind`; the error bits IPE/TCPE come from
 * the plan, which is how a bad checksum is injected. */
static uint8_t offload_status(const struct pnic_segment *seg, uint16_t kind)
{
    uint32_t rxcsum = __atomic_load_n(&seg->drv->rxcsum, __ATOMIC_RELAXED);
    if (!(rxcsum & (PNIC_RXCSUM_IPOFL | PNIC_RXCSUM_TUOFL)))
        return PNIC_RXD_STAT_IXSM;
    uint8_t status = 0;
    if ((rxcsum & PNIC_RXCSUM_IPOFL) && (kind & PNIC_FRAME_IPV4))
        status |= PNIC_RXD_STAT_IPCS;
    if ((rxcsum & PNIC_RXCSUM_TUOFL) && (kind & PNIC_FRAME_L4))
        status |= PNIC_RXD_STAT_TCPCS;
    return status;
}

/* A frame's bytes stamped outside the ring, for a frame over several descriptors
 * (the stamp may straddle two of them), or one that takes its FCS. */
static uint8_t split_scratch[PNIC_MAX_FRAME + PNIC_FCS];

/* The FCS after the frame's bytes (RCTL.SECRC clear), least significant byte
 * first, from the template's (pnic_stamp.h: pnic_fcs_of_stamped). */
static inline void append_fcs(uint8_t *frame, const struct pnic_rx_frame *f)
{
    uint32_t crc = f->fcs; /* unstamped: the template's */
    if (f->stamp_off != 0) {
        const uint32_t start = f->csum_off && f->csum_off < f->stamp_off ? f->csum_off : f->stamp_off;
        const uint32_t end = f->csum_off + 2u > f->stamp_off + 12u ? f->csum_off + 2u : f->stamp_off + 12u;
        crc = pnic_fcs_of_stamped(frame, f->data, start, end, f->fcs, f->fcs_shift);
    }
    memcpy(frame + f->length, &crc, PNIC_FCS);
}

/* What RCTL says of a frame before any descriptor is looked at (SDM 13.4.22):
 * with EN clear the receiver is off and frames are ignored; without LPE a
 * frame longer than a standard one is discarded, counted in ROC.  The
 * PNIC_TX_* flag of what happened, or 0 to receive it. */
static uint32_t refused_by_rctl(struct pnic_segment *seg, uint32_t rctl, uint32_t length)
{
    if (!(rctl & PNIC_RCTL_EN)) {
        __atomic_store_n(&seg->dev->rx_off, seg->dev->rx_off + 1, __ATOMIC_RELAXED);
        return PNIC_TX_RX_OFF;
    }
    if (length > PNIC_MAX_STANDARD_FRAME && !(rctl & PNIC_RCTL_LPE)) {
        __atomic_store_n(&seg->dev->roc, seg->dev->roc + 1, __ATOMIC_RELAXED);
        return PNIC_TX_DISCARDED;
    }
    return 0;
}

/* The receive step, part one, with an RDT the caller observed (with acquire):
 * write the frame's bytes and every descriptor field but status.  An old RDT
 * is safe: the driver only ever moves RDT forward, handing over more
 * descriptors, so a descriptor owned under an old RDT is owned under the new
 * one -- which is why real 8254x parts may fetch descriptors ahead.  A frame
 * needs all its descriptors: without them it is dropped whole (MPC, RXO).
 * Returns the first descriptor, or -1 if the descriptors owned are too few
 * (the caller drops the frame: drop()); *refused is set if a descriptor's
 * buffer was outside the pool. */
static int64_t fill(struct pnic_segment *seg, struct pnic_rx_desc *ring, uint32_t n, uint32_t rdh, uint32_t rdt,
                    uint32_t rctl, const struct pnic_rx_frame *f, uint32_t *refused, uint32_t *parts_out)
{
    const struct pnic_header *h = seg->hdr;
    const uint32_t owned = rdt < n ? pnic_ring_dist(rdh, rdt, n) : 0;
    /* RCTL.SECRC clear: the frame keeps its 4-byte FCS, counted in its length
     * (SDM 13.4.22); it may take one more descriptor for it, as it may when
     * BSIZE says the buffers are smaller than the pool's. */
    const uint32_t fcs = rctl & PNIC_RCTL_SECRC ? 0u : PNIC_FCS, bsize = pnic_rx_buffer_size(rctl, h->buf_size);
    const uint32_t total = f->length + fcs;
    uint32_t parts = f->parts;
    /* (No division for the common frame in one buffer: it is on the clock.) */
    if (parts == 1 ? total > bsize : (total + parts - 1) / parts > bsize)
        parts = (total + bsize - 1) / bsize;
    if (owned < parts)
        return -1; /* the caller may look at RDT again before it drops the frame */
    *parts_out = parts;
    const uint32_t chunk = parts == 1 ? total : (total + parts - 1) / parts;
    const uint8_t *src = f->data;
    uint32_t sum = f->sum;
    /* A frame over several descriptors is stamped (and its FCS appended) in a
     * copy, since the stamp may straddle two of them; a frame in one is
     * stamped where it lands. */
    if (parts > 1 && (f->stamp_off != 0 || fcs)) {
        memcpy(split_scratch, f->data, f->length);
        if (f->stamp_off != 0)
            sum = pnic_fold(sum + pnic_stamp_frame(split_scratch, f->stamp_off, f->csum_off, f->seq, f->stamp_ns));
        if (fcs)
            append_fcs(split_scratch, f);
        src = split_scratch;
    }
    uint8_t errors = f->errors;
    for (uint32_t k = 0, i = rdh; k < parts; k++, i = i + 1 == n ? 0 : i + 1) {
        struct pnic_rx_desc *d = &ring[i];
        uint32_t off = k * chunk, len = total - off < chunk ? total - off : chunk;
        /* The driver may point a descriptor at any buffer of the pool or of its
         * DMA memory, but never outside them: a real NIC would DMA anywhere, we
         * refuse to. */
        uint64_t addr = d->buffer_addr;
        if (pnic_in_pool(seg, addr, len) || pnic_in_dma(seg, addr, len)) {
            uint8_t *buf = seg->base + addr;
            if (src == f->data) { /* one part: the frame, stamped in place, then its FCS */
                memcpy(buf, f->data, f->length);
                if (f->stamp_off != 0)
                    sum = pnic_fold(sum + pnic_stamp_frame_from(buf, f->data, f->stamp_off, f->csum_off, f->seq, f->stamp_ns));
                if (fcs)
                    append_fcs(buf, f);
            } else {
                memcpy(buf, src + off, len);
            }
        } else {
            errors |= PNIC_RXD_ERR_RXE;
            *refused = 1;
            len = 0;
        }
        d->length = (uint16_t)len;
        d->special = 0;
        /* Checksum and errors are valid on the EOP descriptor only (SDM 3.2.3). */
        d->csum = k + 1 == parts ? (uint16_t)sum : 0;
        d->errors = k + 1 == parts ? errors : 0;
    }
    return rdh;
}

/* No descriptor for the frame: dropped, counted in MPC, ICR.RXO set (SDM 13.6, 13.4.17). */
static void drop(struct pnic_segment *seg)
{
    __atomic_store_n(&seg->dev->mpc, seg->dev->mpc + 1, __ATOMIC_RELAXED);
    set_cause(seg->dev, PNIC_ICR_RXO);
}

/* The receive step, part two: the status each descriptor gets (DD; EOP and
 * the offload status on the last), and the frame's statistics. */
static uint8_t statuses(struct pnic_segment *seg, struct pnic_rx_desc *ring, uint32_t n, uint32_t first,
                        const struct pnic_rx_frame *f, uint32_t parts, struct pnic_e1000_pending *p)
{
    const uint8_t offload = offload_status(seg, f->kind);
    uint8_t errors = 0;
    for (uint32_t k = 0, i = first; k < parts; k++, i = i + 1 == n ? 0 : i + 1) {
        uint8_t status = PNIC_RXD_STAT_DD;
        if (k + 1 == parts) {
            struct pnic_rx_desc *d = &ring[i];
            status |= PNIC_RXD_STAT_EOP | offload;
            /* A checksum error only where the offload checked: IPE with IPCS, TCPE with TCPCS. */
            if (!(offload & PNIC_RXD_STAT_IPCS))
                d->errors &= (uint8_t)~PNIC_RXD_ERR_IPE;
            if (!(offload & PNIC_RXD_STAT_TCPCS))
                d->errors &= (uint8_t)~PNIC_RXD_ERR_TCPE;
            errors = d->errors;
        }
        p->desc[p->ndesc] = i;
        p->status[p->ndesc++] = status;
    }
    if (!(errors & PNIC_RXD_ERR_FRAME)) {
        p->gprc++;
        p->gorc += f->length;
    } else if (errors & PNIC_RXD_ERR_CE) {
        /* The statistics a driver may count errors by (SDM 13.6): CRC errors, and the other receive errors. */
        p->crcerrs++;
    } else {
        p->rxerrc++;
    }
    return errors;
}

/* The receive step, part three: the written-back descriptors handed to the
 * driver -- DD with release, then RDH, the statistics, the causes -- for one
 * frame, or for the frames of a batch at once (SDM 13.4.29: WTHRESH). */
static void write_back(struct pnic_segment *seg, uint32_t n, uint32_t rdt, uint32_t first, uint32_t next,
                       struct pnic_rx_desc *ring, struct pnic_e1000_pending *p)
{
    struct pnic_dev_regs *dev = seg->dev;
    for (uint32_t k = 0; k < p->ndesc; k++) {
        /* Counted before DD: see pnic_dev_regs.written. */
        __atomic_store_n(&dev->written, dev->written + 1, __ATOMIC_RELAXED);
        /* DD last, with release: the driver that sees DD sees the frame. */
        __atomic_store_n(&ring[p->desc[k]].status, p->status[k], __ATOMIC_RELEASE);
    }
    __atomic_store_n(&dev->rdh, next, __ATOMIC_RELEASE);
    if (p->gprc) {
        __atomic_store_n(&dev->gprc, dev->gprc + p->gprc, __ATOMIC_RELAXED);
        __atomic_store_n(&dev->gorc, dev->gorc + p->gorc, __ATOMIC_RELAXED);
    }
    if (p->crcerrs)
        __atomic_store_n(&dev->crcerrs, dev->crcerrs + p->crcerrs, __ATOMIC_RELAXED);
    if (p->rxerrc)
        __atomic_store_n(&dev->rxerrc, dev->rxerrc + p->rxerrc, __ATOMIC_RELAXED);
    uint32_t cause = PNIC_ICR_RXT0;
    /* RXDMT0 when free descriptors fall to RCTL.RDMTS = 1/2 of the ring (SDM 13.4.22). */
    if (pnic_ring_dist(first, rdt, n) > n / 2 && pnic_ring_dist(next, rdt, n) <= n / 2)
        cause |= PNIC_ICR_RXDMT0;
    set_cause(dev, cause);
    memset(p, 0, offsetof(struct pnic_e1000_pending, desc));
}

/* One frame written back at once. */
static void publish(struct pnic_segment *seg, struct pnic_rx_desc *ring, uint32_t n, uint32_t rdt, uint32_t first,
                    const struct pnic_rx_frame *f, uint32_t parts, struct pnic_e1000_pending *p)
{
    statuses(seg, ring, n, first, f, parts, p);
    const uint32_t next = first + parts >= n ? first + parts - n : first + parts;
    write_back(seg, n, rdt, first, next, ring, p);
}

/* One frame received outside a plan (tests, sans-IO): the template's sum is
 * computed here, as the frame table holds it for a plan; the frame's kind is
 * not known, so no offload status is given. */
int64_t pnic_receive(struct pnic_segment *seg, const uint8_t *frame, uint32_t length, uint16_t stamp_off,
                     uint16_t csum_off, uint32_t seq, uint64_t stamp_ns, uint8_t errors)
{
    uint32_t rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    uint32_t sum = 0, refused = 0;
    for (uint32_t k = PNIC_PCSS; k < length; k += 2)
        sum += ((uint32_t)frame[k] << 8) | (k + 1 < length ? frame[k + 1] : 0u);
    pnic_crc32_init();
    struct pnic_rx_frame f = {frame, length, stamp_off, csum_off, (uint16_t)pnic_fold(pnic_fold(sum)), 0, seq, stamp_ns,
                              errors, 1, pnic_crc32(0, frame, length), 0};
    if (stamp_off != 0) {
        const uint32_t end = (uint32_t)csum_off + 2u > stamp_off + 12u ? (uint32_t)csum_off + 2u : stamp_off + 12u;
        f.fcs_shift = pnic_crc_shift(length - end);
    }
    uint32_t parts = 1;
    if (pnic_e1000_take_ring(seg, 0) < 0)
        return -1;
    const uint32_t rctl = __atomic_load_n(&seg->drv->rctl, __ATOMIC_RELAXED);
    if (refused_by_rctl(seg, rctl, length) != 0)
        return -1;
    struct pnic_rx_desc *ring = (struct pnic_rx_desc *)(seg->base + seg->dev->ring_base);
    const uint32_t n = seg->dev->ring_count;
    int64_t first = fill(seg, ring, n, seg->dev->rdh, rdt, rctl, &f, &refused, &parts);
    static struct pnic_e1000_pending one;
    if (first >= 0)
        publish(seg, ring, n, rdt, (uint32_t)first, &f, parts, &one);
    else
        drop(seg);
    return first;
}

/* Raise the line outside a plan if a pending cause is unmasked (no ITR, no
 * level line: those are the send loop's). */
int pnic_raise(struct pnic_segment *seg, uint32_t packet, uint64_t *now)
{
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    uint32_t ims = __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE);
    *now = pnic_now_ns();
    /* A masked cause stays in ICR and raises nothing (SDM 13.4.20). */
    if ((icr & ims) == 0)
        return 0;
    pnic_ring_doorbell(seg, packet, icr, *now);
    return 1;
}

static struct pnic_e1000 *e1000_of(struct pnic_model *m)
{
    return (struct pnic_e1000 *)((uint8_t *)m - offsetof(struct pnic_e1000, model));
}

/* What the next receive writes was last touched by the driver's core: the
 * descriptor at RDH (which it cleared, and whose line holds the one before),
 * our register block (it read ICR), IMS (read when raising), and the buffer
 * it copied from.  Nothing while the ring is empty. */
/* Follow a change of receive ring (pnic_e1000_take_ring); a ring the device cannot use halts it. */
static void e1000_flush(struct pnic_model *m);

static inline int follow_ring(struct pnic_e1000 *e)
{
    struct pnic_segment *seg = e->model.seg;
    if (__atomic_load_n(&seg->drv->rx_gen, __ATOMIC_ACQUIRE) == seg->dev->rx_gen)
        return 0;
    e1000_flush(&e->model); /* what the old ring holds goes back first */
    if (pnic_e1000_take_ring(seg, 0) < 0) {
        e->model.halted = 1;
        return -1;
    }
    e->ring = (struct pnic_rx_desc *)(seg->base + seg->dev->ring_base);
    e->n = seg->dev->ring_count;
    e->head = seg->dev->rdh;
    e->rdt = e->head; /* read RDT again */
    return 0;
}

static void e1000_prepare(struct pnic_model *m, uint32_t length, struct pnic_warm *w)
{
    struct pnic_e1000 *e = e1000_of(m);
    struct pnic_segment *seg = m->seg;
    w->nwrite = w->nread = 0;
    w->stream = w->stream_end = NULL;
    if (follow_ring(e) < 0)
        return;
    const uint32_t rdh = e->head;
    if (rdh == e->rdt)
        e->rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    if (rdh == e->rdt || rdh >= e->n)
        return;
    w->write[w->nwrite++] = (const uint8_t *)&e->ring[rdh];
    w->write[w->nwrite++] = (const uint8_t *)seg->dev;
    w->read[w->nread++] = (const uint8_t *)&seg->drv->ims;
    const uint32_t buf_size = seg->hdr->buf_size, n = length < buf_size ? length : buf_size;
    const uint64_t addr = e->ring[rdh].buffer_addr;
    if (pnic_in_pool(seg, addr, n) || pnic_in_dma(seg, addr, n)) {
        w->stream = seg->base + addr;
        w->stream_end = seg->base + addr + n;
    }
}

static int64_t e1000_receive(struct pnic_model *m, const struct pnic_rx_frame *f, int look_again, uint32_t *flags)
{
    struct pnic_e1000 *e = e1000_of(m);
    struct pnic_segment *seg = m->seg;
    if (follow_ring(e) < 0) {
        *flags = 0;
        return -1;
    }
    const uint32_t n = e->n;
    /* What a batch held goes back before a frame that is not the batch's, or when the batch fills. */
    if (e->held.ndesc != 0 && (!m->defer || e->held.ndesc + f->parts + 1 > PNIC_PEND_MAX))
        e1000_flush(m);
    /* Too few descriptors when we looked: look once more, the driver may have caught up. */
    if (look_again || e->rdt >= n || pnic_ring_dist(e->head, e->rdt, n) < f->parts)
        e->rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    const uint32_t rctl = __atomic_load_n(&seg->drv->rctl, __ATOMIC_RELAXED);
    if ((*flags = refused_by_rctl(seg, rctl, f->length)) != 0)
        return -1;
    uint32_t refused = 0, parts = 1;
    int64_t first = fill(seg, e->ring, n, e->head, e->rdt, rctl, f, &refused, &parts);
    if (first < 0) {
        /* The frame takes more descriptors than the plan said (RCTL.BSIZE, the FCS): RDT as last read may
         * be stale for it.  Look once more before dropping it. */
        e->rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
        first = fill(seg, e->ring, n, e->head, e->rdt, rctl, f, &refused, &parts);
    }
    if (first < 0) {
        drop(seg);
        *flags = PNIC_TX_DROPPED;
        return -1;
    }
    *flags = PNIC_TX_STORED | (refused ? PNIC_TX_REFUSED : 0u);
    if (e->held.ndesc == 0)
        e->held_first = (uint32_t)first;
    if (e->held.ndesc + parts > PNIC_PEND_MAX) { /* a frame over more descriptors than a batch holds */
        e1000_flush(m);
        e->held_first = (uint32_t)first;
    }
    statuses(seg, e->ring, n, (uint32_t)first, f, parts, &e->held);
    e->head = (uint32_t)first + parts >= n ? (uint32_t)first + parts - n : (uint32_t)first + parts;
    if (!m->defer)
        e1000_flush(m);
    return first;
}

/* Write back what receive held (a batch's frames: SDM 13.4.29 WTHRESH). */
static void e1000_flush(struct pnic_model *m)
{
    struct pnic_e1000 *e = e1000_of(m);
    if (e->held.ndesc != 0)
        write_back(m->seg, e->n, e->rdt, e->held_first, e->head, e->ring, &e->held);
}

int64_t pnic_e1000_receive_frame(struct pnic_model *m, const struct pnic_rx_frame *f, uint32_t *flags)
{
    return e1000_receive(m, f, 1, flags);
}

/* A raise with no descriptor behind it still says "packet received". */
static void e1000_fault_cause(struct pnic_model *m)
{
    set_cause(m->seg->dev, PNIC_ICR_RXT0);
}

/* The raise policy:
 * - a cause masked in IMS stays in ICR and raises nothing until the driver
 *   unmasks it, which then raises at once (SDM 13.4.20/21);
 * - ITR (SDM 13.4.18) keeps interrupts at least ITR x PNIC_ITR_UNIT_NS apart:
 *   a cause set sooner waits and shares the next interrupt with what follows;
 * - a level line (INTx) is one wire, asserted or not: while a handler runs
 *   (before its EOI, which here is the driver node's `acked`), a new cause
 *   raises nothing more; once the handler has returned, a cause still in
 *   ICR & IMS raises the line again (e1000_reassert). */
/* Causes the driver set by writing ICS (SDM 13.4.19) go into ICR, as the
 * device's own do; they raise as theirs do. */
static inline int take_ics(struct pnic_segment *seg)
{
    if (__atomic_load_n(&seg->drv->ics, __ATOMIC_RELAXED) == 0)
        return 0;
    set_cause(seg->dev, __atomic_exchange_n(&seg->drv->ics, 0u, __ATOMIC_ACQ_REL));
    return 1;
}

static uint32_t e1000_decide(struct pnic_model *m, uint64_t *now, uint32_t *announce)
{
    struct pnic_e1000 *e = e1000_of(m);
    struct pnic_segment *seg = m->seg;
    take_ics(seg);
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    uint32_t ims = __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE);
    *now = pnic_now_ns();
    if (icr == 0) /* the driver has read ICR since: nothing is left to announce */
        return PNIC_RAISE_NONE;
    uint64_t itr_ns = (uint64_t)__atomic_load_n(&seg->drv->itr, __ATOMIC_RELAXED) * PNIC_ITR_UNIT_NS;
    int in_service = e->level && __atomic_load_n(&seg->drv->acked, __ATOMIC_ACQUIRE) != seg->line->doorbell;
    if ((icr & ims) == 0 || in_service || (itr_ns != 0 && e->raised && *now - e->last_ns < itr_ns))
        return PNIC_RAISE_HOLD;
    if (e->level) {
        uint32_t sent = seg->dev->sent;
        uint64_t reads = __atomic_load_n(&seg->drv->icr_reads, __ATOMIC_RELAXED);
        if (e->raised && sent == e->sent_at_raise && reads == e->reads_at_raise) {
            /* Nothing new and ICR never read: the line simply stayed asserted. */
            __atomic_store_n(&seg->dev->reasserted, seg->dev->reasserted + 1, __ATOMIC_RELAXED);
            m->storm++;
        } else {
            m->storm = 0;
        }
        e->sent_at_raise = sent;
        e->reads_at_raise = reads;
    }
    e->last_ns = *now;
    e->raised = 1;
    *announce = icr;
    return PNIC_RAISE_NOW;
}

/* A level line still asserted once the handler has returned (ICR & IMS set,
 * every raise acked) is raised again, as INTx re-interrupts after the EOI. */
static int e1000_reassert(struct pnic_model *m)
{
    struct pnic_e1000 *e = e1000_of(m);
    struct pnic_segment *seg = m->seg;
    if (take_ics(seg))
        return 1; /* an ICS write: try a raise (decide applies IMS and ITR to it) */
    if (!e->level)
        return 0;
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    return (icr & __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE)) != 0 &&
           __atomic_load_n(&seg->drv->acked, __ATOMIC_ACQUIRE) == seg->line->doorbell;
}

/* A level line with a cause still set: a handler running now will return to it asserted. */
static int e1000_waiting(struct pnic_model *m)
{
    struct pnic_segment *seg = m->seg;
    if (__atomic_load_n(&seg->drv->ics, __ATOMIC_RELAXED) != 0)
        return 1;
    return e1000_of(m)->level && (__atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE) &
                                  __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE)) != 0;
}

static const struct pnic_model_ops e1000_ops = {
    .prepare = e1000_prepare,
    .receive = e1000_receive,
    .fault_cause = e1000_fault_cause,
    .decide = e1000_decide,
    .reassert = e1000_reassert,
    .waiting = e1000_waiting,
    .transmit = pnic_e1000_transmit,
    .tx_busy = pnic_e1000_tx_busy,
    .tx_end = pnic_e1000_tx_end,
    .flush = e1000_flush,
};

void pnic_e1000_init(struct pnic_e1000 *e, struct pnic_segment *seg, uint32_t irq_mode, const struct pnic_send_plan *plan)
{
    memset(e, 0, sizeof(*e));
    e->model.ops = &e1000_ops;
    e->model.seg = seg;
    e->level = irq_mode == PNIC_IRQ_LEVEL;
    e->tx.plan = plan;
    pnic_crc32_init(); /* the FCS tables, off the clock */
    e->ring = (struct pnic_rx_desc *)(seg->base + seg->dev->ring_base);
    e->n = seg->dev->ring_count;
    e->head = seg->dev->rdh;
    /* RDT == RDH reads as "none owned", so the first prepare reads RDT: once
     * the loop has prefaulted the segment, as late as it can. */
    e->rdt = seg->dev->rdh;
}
