/*
 * pnic_device.c -- the pseudo-NIC: the e1000 receive step and the paced send
 * loop (the paper's steps 4-6: descriptor, buffer, interrupt).
 *
 * Ring ownership (8254x SDM 3.2.6): the device owns the descriptors from RDH
 * up to RDT-1.  RDH == RDT means it owns none; a packet due then is dropped
 * and counted in MPC with ICR.RXO set -- the device never waits for the
 * driver, so a slow driver shows as lost packets, as in the paper's E3.
 */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pnic_cpu.h"
#include "pnic_engine.h"

/* How long before a deadline the send loop takes the next send's lines back
 * from the driver's core: long enough for a cross-core transfer, short
 * enough not to fight a driver still handling the previous packet. */
#define PNIC_RETAKE_NS 400u
/* The longest a fault's raise is waited on for its answer (await_answer). */
#define PNIC_ANSWER_MAX_NS 10000000u

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* One's complement arithmetic (RFC 1071): fold carries back in. */
static uint32_t fold(uint32_t sum)
{
    sum = (sum & 0xffffu) + (sum >> 16);
    return (sum & 0xffffu) + (sum >> 16);
}

/* Sum of big-endian 16-bit words of p[0..n) (n even), as they fall from PNIC_PCSS: a word at an odd
 * distance from it is summed byte-swapped (RFC 1071 section 2(B)). */
static uint32_t sum_at(const uint8_t *p, uint32_t n, uint32_t off)
{
    uint32_t sum = 0;
    for (uint32_t k = 0; k < n; k += 2)
        sum += ((uint32_t)p[k] << 8) | p[k + 1];
    sum = fold(sum);
    return ((off - PNIC_PCSS) & 1u) ? ((sum & 0xffu) << 8) | (sum >> 8) : sum;
}

/* Sequence number and send timestamp into the frame, then the one's
 * complement checksum patched for the 12 new bytes (RFC 1624, eqn. 3; the
 * template holds zeros there, so there is nothing to subtract).  Returns what
 * the stamp adds to the frame's sum from PNIC_PCSS (the descriptor's csum). */
static uint32_t stamp_frame(uint8_t *buf, uint16_t stamp_off, uint16_t csum_off, uint32_t seq, uint64_t ts)
{
    uint8_t s[12];
    put_be(s, seq, 4);
    put_be(s + 4, ts, 8);
    memcpy(buf + stamp_off, s, sizeof(s));
    uint32_t added = sum_at(s, sizeof(s), stamp_off);
    if (csum_off == 0)
        return added;
    uint32_t old = ((uint32_t)buf[csum_off] << 8) | buf[csum_off + 1];
    if (old == 0) /* UDP over IPv4: zero means "no checksum" (RFC 768) */
        return added;
    uint32_t sum = ~old & 0xffffu;
    for (int k = 0; k < 12; k += 2)
        sum += ((uint32_t)s[k] << 8) | s[k + 1];
    sum = fold(sum);
    uint16_t c = (uint16_t)~sum;
    if (c == 0)
        c = 0xffffu;
    buf[csum_off] = (uint8_t)(c >> 8);
    buf[csum_off + 1] = (uint8_t)c;
    uint8_t words[4] = {(uint8_t)(c >> 8), (uint8_t)c, (uint8_t)(~old >> 8), (uint8_t)~old};
    return fold(added + sum_at(words, 4, csum_off)); /* the new checksum in, the old one out */
}

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

/* What one receive writes: the frame (its template, stamped), over `parts` descriptors. */
struct rx_frame {
    const uint8_t *data;
    uint32_t length;
    uint16_t stamp_off, csum_off, sum, kind;
    uint32_t seq;
    uint64_t stamp_ns;
    uint8_t errors;
    uint32_t parts;   /* 1 or more */
    uint32_t refused; /* set by fill: a descriptor's buffer was outside the pool */
};

/* A frame's bytes stamped outside the ring, for a frame over several descriptors
 * (the stamp may straddle two of them). */
static uint8_t split_scratch[PNIC_MAX_FRAME];

/* The receive step, part one, with an RDT the caller observed (with acquire):
 * write the frame's bytes and every descriptor field but status.  An old RDT
 * is safe: the driver only ever moves RDT forward, handing over more
 * descriptors, so a descriptor owned under an old RDT is owned under the new
 * one -- which is why real 8254x parts may fetch descriptors ahead.  A frame
 * needs all its descriptors: without them it is dropped whole (MPC, RXO).
 * Returns the first descriptor, or -1 if dropped. */
static int64_t fill(struct pnic_segment *seg, uint32_t rdt, struct rx_frame *f)
{
    struct pnic_dev_regs *dev = seg->dev;
    const struct pnic_header *h = seg->hdr;
    const uint32_t mask = h->ring_size - 1, rdh = dev->rdh;
    const uint32_t owned = rdt < h->ring_size ? (rdt - rdh) & mask : 0;
    if (owned < f->parts) {
        __atomic_store_n(&dev->mpc, dev->mpc + 1, __ATOMIC_RELAXED);
        set_cause(dev, PNIC_ICR_RXO);
        return -1;
    }
    const uint64_t pool_end = h->buf_off + (uint64_t)h->ring_size * h->buf_size;
    const uint32_t chunk = (f->length + f->parts - 1) / f->parts;
    const uint8_t *src = f->data;
    uint32_t sum = f->sum;
    if (f->parts > 1 && f->stamp_off != 0) {
        memcpy(split_scratch, f->data, f->length);
        sum = fold(sum + stamp_frame(split_scratch, f->stamp_off, f->csum_off, f->seq, f->stamp_ns));
        src = split_scratch;
    }
    uint8_t errors = f->errors;
    for (uint32_t k = 0; k < f->parts; k++) {
        struct pnic_rx_desc *d = &seg->ring[(rdh + k) & mask];
        uint32_t off = k * chunk, len = f->length - off < chunk ? f->length - off : chunk;
        /* The driver may point a descriptor at any buffer of the pool, but never
         * outside it: a real NIC would DMA anywhere, we refuse to. */
        uint64_t addr = d->buffer_addr;
        if (addr >= h->buf_off && addr + len <= pool_end) {
            uint8_t *buf = seg->base + addr;
            memcpy(buf, src + off, len);
            if (f->parts == 1 && f->stamp_off != 0)
                sum = fold(sum + stamp_frame(buf, f->stamp_off, f->csum_off, f->seq, f->stamp_ns));
        } else {
            errors |= PNIC_RXD_ERR_RXE;
            f->refused = 1;
            len = 0;
        }
        d->length = (uint16_t)len;
        d->special = 0;
        /* Checksum and errors are valid on the EOP descriptor only (SDM 3.2.3). */
        d->csum = k + 1 == f->parts ? (uint16_t)sum : 0;
        d->errors = k + 1 == f->parts ? errors : 0;
    }
    return rdh;
}

/* The receive step, part two: DD (and EOP, and the offload status, on the
 * last), then RDH, the statistics and the causes. */
static void publish(struct pnic_segment *seg, uint32_t rdt, uint32_t first, const struct rx_frame *f)
{
    struct pnic_dev_regs *dev = seg->dev;
    const uint32_t n = seg->hdr->ring_size, mask = n - 1;
    const uint8_t offload = offload_status(seg, f->kind);
    uint8_t errors = 0;
    for (uint32_t k = 0; k < f->parts; k++) {
        struct pnic_rx_desc *d = &seg->ring[(first + k) & mask];
        uint8_t status = PNIC_RXD_STAT_DD;
        if (k + 1 == f->parts) {
            status |= PNIC_RXD_STAT_EOP | offload;
            /* A checksum error only where the offload checked: IPE with IPCS, TCPE with TCPCS. */
            if (!(offload & PNIC_RXD_STAT_IPCS))
                d->errors &= (uint8_t)~PNIC_RXD_ERR_IPE;
            if (!(offload & PNIC_RXD_STAT_TCPCS))
                d->errors &= (uint8_t)~PNIC_RXD_ERR_TCPE;
            errors = d->errors;
        }
        /* Counted before DD: see pnic_dev_regs.written. */
        __atomic_store_n(&dev->written, dev->written + 1, __ATOMIC_RELAXED);
        /* DD last, with release: the driver that sees DD sees the frame. */
        __atomic_store_n(&d->status, status, __ATOMIC_RELEASE);
    }
    uint32_t next = (first + f->parts) & mask;
    __atomic_store_n(&dev->rdh, next, __ATOMIC_RELEASE);
    if (!(errors & PNIC_RXD_ERR_FRAME)) {
        __atomic_store_n(&dev->gprc, dev->gprc + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&dev->gorc, dev->gorc + f->length, __ATOMIC_RELAXED);
    }
    uint32_t cause = PNIC_ICR_RXT0;
    /* RXDMT0 when free descriptors fall to RCTL.RDMTS = 1/2 of the ring (SDM 13.4.22). */
    if (((rdt - first) & mask) > n / 2 && ((rdt - next) & mask) <= n / 2)
        cause |= PNIC_ICR_RXDMT0;
    set_cause(dev, cause);
}

/* One frame received outside a plan (tests, sans-IO): the template's sum is
 * computed here, as the frame table holds it for a plan; the frame's kind is
 * not known, so no offload status is given. */
int64_t pnic_receive(struct pnic_segment *seg, const uint8_t *frame, uint32_t length, uint16_t stamp_off,
                     uint16_t csum_off, uint32_t seq, uint64_t stamp_ns, uint8_t errors)
{
    uint32_t rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    uint32_t sum = 0;
    for (uint32_t k = PNIC_PCSS; k < length; k += 2)
        sum += ((uint32_t)frame[k] << 8) | (k + 1 < length ? frame[k + 1] : 0u);
    struct rx_frame f = {frame, length, stamp_off, csum_off, (uint16_t)fold(fold(sum)), 0, seq, stamp_ns, errors, 1, 0};
    int64_t first = fill(seg, rdt, &f);
    if (first >= 0)
        publish(seg, rdt, (uint32_t)first, &f);
    return first;
}

/* Ring the doorbell: the raise record first, then the doorbell with release,
 * so a driver that sees the new doorbell finds its record. */
static void ring_doorbell(struct pnic_segment *seg, uint32_t packet, uint32_t icr, uint64_t now)
{
    uint64_t n = seg->line->doorbell;
    if (n < seg->hdr->capacity) {
        seg->raises[n].raised_ns = now;
        seg->raises[n].packet = packet;
        seg->raises[n].icr = icr;
    }
    __atomic_store_n(&seg->line->doorbell, n + 1, __ATOMIC_RELEASE);
}

/* The eventfd and signal lines carry the doorbell's news to a driver node
 * that sleeps; the doorbell stays the one record of what was raised. */
static void kick(const struct pnic_line *line)
{
    if (line->mode == PNIC_LINE_EVENTFD) {
        uint64_t one = 1;
        ssize_t rc = write(line->fd, &one, sizeof(one));
        (void)rc; /* the counter only saturates after 2^64-2 unread raises */
    } else if (line->mode == PNIC_LINE_SIGNAL) {
        syscall(SYS_tgkill, line->pid, line->pid, line->signo);
    }
}

/* Carry a raise over the line -- on the signal line only if the driver node
 * has answered the last signal.  An interrupt line is one pending bit (the
 * APIC's IRR), not a queue: queueing a real-time signal per raise let the
 * kernel deliver signals back to back faster than a Python driver's handler
 * could run, and the node made no progress until the schedule ended.  The
 * node publishes line_seen and then looks at the doorbell once more before
 * it waits (pnic_driver.c); we store the doorbell and then read line_seen
 * (both with full fences), so one of us sees the other's store: either the
 * node sees the new doorbell, or we see it answered and signal again. */
static void carry(struct pnic_segment *seg, const struct pnic_line *line, uint64_t *signalled)
{
    if (line->mode == PNIC_LINE_SIGNAL) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&seg->drv->line_seen, __ATOMIC_ACQUIRE) < *signalled)
            return; /* a signal is on its way; the node will look at the doorbell again */
        *signalled = seg->line->doorbell;
    }
    kick(line);
}

/* Raise the line if a pending cause is unmasked.  *now is read just before
 * the doorbell store -- the moment the line is raised -- so that a driver
 * never enters its handler before the raise time on record. */
int pnic_raise(struct pnic_segment *seg, uint32_t packet, uint64_t *now)
{
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    uint32_t ims = __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE);
    *now = pnic_now_ns();
    /* A masked cause stays in ICR and raises nothing (SDM 13.4.20). */
    if ((icr & ims) == 0)
        return 0;
    ring_doorbell(seg, packet, icr, *now);
    return 1;
}

/* Interrupt moderation state of the send loop. */
struct moderation {
    uint64_t last_ns; /* when the line was last raised */
    uint32_t raised;  /* raised at least once */
    uint32_t pending; /* a raise is held back by IMS, ITR, or (level line) a handler still running */
    uint32_t packet;  /* the packet whose cause is held */
    uint64_t signalled; /* the doorbell at the last signal sent (signal line) */
    uint32_t level;     /* the plan's line is level-triggered */
    uint32_t storm;     /* level raises in a row with no new packet and no ICR read */
    uint32_t sent_at_raise;  /* schedule entries handled at the last raise */
    uint64_t reads_at_raise; /* ICR reads at the last raise */
};

/* Raise the line for `packet` now, or hold the raise back:
 * - a cause masked in IMS stays in ICR and raises nothing until the driver
 *   unmasks it, which then raises at once (SDM 13.4.20/21);
 * - ITR (SDM 13.4.18) keeps interrupts at least ITR x 256 ns apart: a cause
 *   set sooner waits and shares the next interrupt with what follows;
 * - a level line (INTx) is one wire, asserted or not: while a handler runs
 *   (before its EOI, which here is the driver node's `acked`), a new cause
 *   raises nothing more; once the handler has returned, a cause still in
 *   ICR & IMS raises the line again (level_asserted).
 * A held raise is retried from the send loop's wait, so it fires on time
 * whether or not another packet comes.  Returns 1 if the line was raised. */
static int moderated_raise(struct pnic_segment *seg, const struct pnic_line *line, struct moderation *mod,
                           uint32_t packet, uint64_t *now)
{
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    uint32_t ims = __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE);
    *now = pnic_now_ns();
    if (icr == 0) { /* the driver has read ICR since: nothing is left to announce */
        mod->pending = 0;
        return 0;
    }
    uint64_t itr_ns = (uint64_t)__atomic_load_n(&seg->drv->itr, __ATOMIC_RELAXED) * 256u;
    int in_service = mod->level && __atomic_load_n(&seg->drv->acked, __ATOMIC_ACQUIRE) != seg->line->doorbell;
    if ((icr & ims) == 0 || in_service || (itr_ns != 0 && mod->raised && *now - mod->last_ns < itr_ns)) {
        mod->pending = 1;
        mod->packet = packet;
        return 0;
    }
    if (mod->level) {
        uint32_t sent = seg->dev->sent;
        uint64_t reads = __atomic_load_n(&seg->drv->icr_reads, __ATOMIC_RELAXED);
        if (mod->raised && sent == mod->sent_at_raise && reads == mod->reads_at_raise) {
            /* Nothing new and ICR never read: the line simply stayed asserted. */
            __atomic_store_n(&seg->dev->reasserted, seg->dev->reasserted + 1, __ATOMIC_RELAXED);
            mod->storm++;
        } else {
            mod->storm = 0;
        }
        mod->sent_at_raise = sent;
        mod->reads_at_raise = reads;
    }
    ring_doorbell(seg, packet, icr, *now);
    carry(seg, line, &mod->signalled);
    mod->last_ns = *now;
    mod->raised = 1;
    mod->pending = 0;
    return 1;
}

/* A level line still asserted once the handler has returned (ICR & IMS set,
 * every raise acked) is raised again, as INTx re-interrupts after the EOI. */
static int level_asserted(struct pnic_segment *seg, const struct moderation *mod)
{
    if (!mod->level)
        return 0;
    uint32_t icr = __atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE);
    return (icr & __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE)) != 0 &&
           __atomic_load_n(&seg->drv->acked, __ATOMIC_ACQUIRE) == seg->line->doorbell;
}

/* A level line with a cause still set: a handler running now will return to it asserted. */
static int level_pending(struct pnic_segment *seg, const struct moderation *mod)
{
    return mod->level && (__atomic_load_n(&seg->dev->icr, __ATOMIC_ACQUIRE) &
                          __atomic_load_n(&seg->drv->ims, __ATOMIC_ACQUIRE)) != 0;
}

/* Retry a held raise, or raise a level line that stayed asserted; 0 normally,
 * -1 once the level line has stormed past the plan's limit. */
static int retry_raise(struct pnic_segment *seg, const struct pnic_send_plan *plan, struct moderation *mod,
                       uint32_t last_packet)
{
    uint64_t held_ns;
    if (mod->pending) {
        if (moderated_raise(seg, &plan->line, mod, mod->packet, &held_ns))
            seg->tx[mod->packet].flags |= PNIC_TX_RAISED;
    } else if (level_asserted(seg, mod)) {
        moderated_raise(seg, &plan->line, mod, last_packet, &held_ns);
    }
    return mod->level && plan->storm_limit != 0 && mod->storm >= plan->storm_limit ? -1 : 0;
}

int pnic_check_plan(const struct pnic_segment *seg, const struct pnic_send_plan *plan)
{
    const struct pnic_header *h = seg->hdr;
    if (plan->nslots > h->capacity || plan->nframes == 0 || plan->irq_mode > PNIC_IRQ_LEVEL || plan->late > PNIC_LATE_SHIFT)
        return PNIC_EINVAL;
    for (uint32_t f = 0; f < plan->nframes; f++) {
        const struct pnic_frame *fr = &plan->frames[f];
        if (fr->length == 0 || fr->length > PNIC_MAX_FRAME || fr->data_off > plan->blob_len ||
            fr->length > plan->blob_len - fr->data_off)
            return PNIC_EFRAME;
        if (fr->stamp_off != 0 && (uint32_t)fr->stamp_off + 12 > fr->length)
            return PNIC_EFRAME;
        if (fr->csum_off != 0 && (uint32_t)fr->csum_off + 2 > fr->length)
            return PNIC_EFRAME;
    }
    for (uint32_t i = 0; i < plan->nslots; i++) {
        const struct pnic_slot *sl = &plan->slots[i];
        if (sl->frame >= plan->nframes)
            return PNIC_EFRAME;
        /* Every part within a buffer, and fewer parts than descriptors. */
        uint32_t parts = sl->parts ? sl->parts : 1u, length = plan->frames[sl->frame].length;
        if (parts >= h->ring_size || (length + parts - 1) / parts > h->buf_size)
            return PNIC_EFRAME;
    }
    return PNIC_OK;
}

/* After a fault's raise at `raised_ns`: spin until the driver has answered it
 * (a handler that saw this doorbell returned: its EOI, drv->acked), at most
 * PNIC_ANSWER_MAX_NS, or a stop (-1).  So a driver that reads before DD, or
 * takes what a spurious interrupt did not bring, does so every time, not
 * only when its handler happens to run before the next write. */
static int await_answer(struct pnic_segment *seg, uint64_t raised_ns)
{
    const uint64_t db = seg->line->doorbell;
    while (__atomic_load_n(&seg->drv->acked, __ATOMIC_ACQUIRE) < db && pnic_now_ns() - raised_ns < PNIC_ANSWER_MAX_NS) {
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            return -1;
        cpu_relax();
    }
    return 0;
}

/* Spin until `until` (the early-interrupt fault's delay), or a stop. */
static int hold_until(struct pnic_segment *seg, uint64_t until)
{
    while (pnic_now_ns() < until) {
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            return -1;
        cpu_relax();
    }
    return 0;
}

int pnic_device_run(struct pnic_segment *seg, const struct pnic_send_plan *plan)
{
    int rc = pnic_check_plan(seg, plan);
    if (rc != PNIC_OK)
        return rc;
    struct pnic_dev_regs *dev = seg->dev;
    const struct pnic_header *h = seg->hdr;
    const uint8_t *pool = seg->bufs, *pool_end = seg->bufs + (uint64_t)h->ring_size * h->buf_size;
    struct moderation mod;
    memset(&mod, 0, sizeof(mod));
    mod.level = plan->irq_mode == PNIC_IRQ_LEVEL;
    pnic_prefault(seg->base, h->total_size);
    __atomic_store_n(&seg->line->state, PNIC_DEV_RUNNING, __ATOMIC_RELEASE);
    uint64_t t0 = pnic_now_ns() + plan->lead_ns;
    seg->hdr->t0_ns = t0;
    uint32_t rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    uint32_t last = 0;
    uint64_t shift = 0; /* PNIC_LATE_SHIFT: how far the schedule has moved so far */

    for (uint32_t i = 0; i < plan->nslots; i++) {
        const struct pnic_slot *sl = &plan->slots[i];
        const struct pnic_frame *fr = &plan->frames[sl->frame];
        const uint64_t due = t0 + sl->due_ns + shift;

        /* Prepare while waiting, off the clock: what the next send writes was
         * last touched by the driver's core (the descriptor it cleared, the
         * buffer it copied from, ICR it read), so take those lines for
         * writing now.  Prefetching stops as soon as the packet is due. */
        const uint32_t rdh = dev->rdh;
        if (rdh == rdt)
            rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
        const uint8_t *pre = NULL, *pre_end = NULL;
        if (rdh != rdt) {
            prefetch_for_write((const uint8_t *)&seg->ring[rdh]);
            prefetch_for_write((const uint8_t *)dev);
            __builtin_prefetch(&seg->drv->ims, 0, 3); /* read when raising */
            pre = seg->base + seg->ring[rdh].buffer_addr;
            pre_end = pre + (fr->length < h->buf_size ? fr->length : h->buf_size);
            if (pre < pool || pre_end > pool_end)
                pre = pre_end = NULL;
        }
        uint64_t now = pnic_now_ns(), gap = 0;
        while (now < due) {
            if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
                goto stopped;
            if (retry_raise(seg, plan, &mod, last) < 0)
                goto storm;
            if (pre < pre_end) {
                for (int k = 0; k < 4 && pre < pre_end; k++, pre += PNIC_CACHELINE)
                    prefetch_for_write(pre);
            } else {
                /* The driver takes these lines back after our first prefetch: it clears
                 * the previous descriptor (which shares this one's line) and reads ICR.
                 * Take them again in the last stretch before the deadline. */
                if (rdh != rdt && due - now <= PNIC_RETAKE_NS) {
                    prefetch_for_write((const uint8_t *)&seg->ring[rdh]);
                    prefetch_for_write((const uint8_t *)dev);
                }
                cpu_relax();
            }
            uint64_t later = pnic_now_ns();
            if (later - now > gap)
                gap = later - now;
            now = later;
        }
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            goto stopped;

        const uint64_t start = now;
        if (plan->late == PNIC_LATE_SHIFT && start - due > PNIC_LATE_SLACK_NS)
            shift += start - due;
        int64_t slot = -1;
        uint32_t flags;
        uint64_t end = start;
        int raise = !(sl->flags & PNIC_SLOT_NO_RAISE), raised = 0;
        int stopping = 0; /* asked to stop while a raise was awaited: record this entry, then stop */
        if (sl->flags & PNIC_SLOT_SPURIOUS) {
            set_cause(dev, PNIC_ICR_RXT0);
            flags = PNIC_TX_SPURIOUS;
        } else {
            struct rx_frame f = {plan->blob + fr->data_off, fr->length, fr->stamp_off, fr->csum_off, fr->sum, fr->kind,
                                 i, start, (uint8_t)(sl->flags & PNIC_SLOT_ERRORS_MASK), sl->parts ? sl->parts : 1u, 0};
            /* Too few descriptors when we looked: look once more, the driver may have caught up. */
            if (rdt >= h->ring_size || ((rdt - rdh) & (h->ring_size - 1)) < f.parts)
                rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
            if (sl->early_ns != 0) {
                /* The early-interrupt fault: the line goes up before the frame and its
                 * descriptor are written, as if the interrupt overtook the DMA writes. */
                set_cause(dev, PNIC_ICR_RXT0);
                if (raise)
                    raised = moderated_raise(seg, &plan->line, &mod, i, &end);
                raise = 0;
                stopping = hold_until(seg, start + sl->early_ns) < 0 || (raised && await_answer(seg, end) < 0);
                rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
            }
            flags = 0;
            if (!stopping) {
                slot = fill(seg, rdt, &f);
                flags = slot < 0 ? PNIC_TX_DROPPED : PNIC_TX_STORED | (f.refused ? PNIC_TX_REFUSED : 0u);
                if (slot >= 0)
                    publish(seg, rdt, (uint32_t)slot, &f);
            }
        }
        if (raise) {
            raised = moderated_raise(seg, &plan->line, &mod, i, &end);
            /* A spurious raise is answered before anything else is written, so that a handler that
             * takes what the interrupt did not bring finds nothing -- whatever the machine's timing. */
            stopping = raised && (sl->flags & PNIC_SLOT_SPURIOUS) && await_answer(seg, end) < 0;
        }
        if (raised) {
            flags |= PNIC_TX_RAISED;
            /* The spin line's raise is its stamp (one store follows: reading the clock
             * again would cost the RFO of the doorbell's line, ~90 ns here, on every
             * send); the others' send includes the system call that carries the line. */
            if (plan->line.mode != PNIC_LINE_SPIN)
                end = pnic_now_ns();
        }
        last = i;

        struct pnic_tx_record *rec = &seg->tx[i];
        rec->start_ns = start;
        rec->end_ns = end;
        rec->due_ns = due;
        rec->spin_gap_ns = gap;
        rec->slot = slot < 0 ? UINT32_MAX : (uint32_t)slot;
        rec->flags = flags;
        __atomic_store_n(&dev->sent, i + 1, __ATOMIC_RELEASE);
        if (stopping)
            goto stopped;
    }
    /* A raise still held back fires when ITR allows or the driver unmasks (or,
     * on the level line, returns from its handler); a driver that keeps its
     * causes masked gets drain_ns to do so. */
    for (uint64_t limit = pnic_now_ns() + plan->drain_ns; (mod.pending || level_pending(seg, &mod)) && pnic_now_ns() < limit;) {
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            goto stopped;
        if (retry_raise(seg, plan, &mod, last) < 0)
            goto storm;
        cpu_relax();
    }
    __atomic_store_n(&seg->line->state, PNIC_DEV_DONE, __ATOMIC_RELEASE);
    kick(&plan->line); /* a sleeping driver node wakes to see it */
    return PNIC_OK;

storm:
    __atomic_store_n(&seg->line->state, PNIC_DEV_STORM, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;

stopped:
    __atomic_store_n(&seg->line->state, PNIC_DEV_STOPPED, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;
}
