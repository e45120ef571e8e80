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

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Sequence number and send timestamp into the frame, then the one's
 * complement checksum patched for the 12 new bytes (RFC 1624, eqn. 3; the
 * template holds zeros there, so there is nothing to subtract). */
static void stamp_frame(uint8_t *buf, uint16_t stamp_off, uint16_t csum_off, uint32_t seq, uint64_t ts)
{
    uint8_t s[12];
    put_be(s, seq, 4);
    put_be(s + 4, ts, 8);
    memcpy(buf + stamp_off, s, sizeof(s));
    if (csum_off == 0)
        return;
    uint32_t old = ((uint32_t)buf[csum_off] << 8) | buf[csum_off + 1];
    if (old == 0) /* UDP over IPv4: zero means "no checksum" (RFC 768) */
        return;
    uint32_t sum = ~old & 0xffffu;
    for (int k = 0; k < 12; k += 2)
        sum += ((uint32_t)s[k] << 8) | s[k + 1];
    sum = (sum & 0xffffu) + (sum >> 16);
    sum = (sum & 0xffffu) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    if (c == 0)
        c = 0xffffu;
    buf[csum_off] = (uint8_t)(c >> 8);
    buf[csum_off + 1] = (uint8_t)c;
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

/* The receive step with an RDT the caller observed (with acquire).  An old
 * value is safe: the driver only ever moves RDT forward, handing over more
 * descriptors, so a descriptor owned under an old RDT is owned under the
 * new one -- which is why real 8254x parts may fetch descriptors ahead. */
static int64_t receive_at(struct pnic_segment *seg, uint32_t rdt, const uint8_t *frame, uint32_t length,
                          uint16_t stamp_off, uint16_t csum_off, uint32_t seq, uint64_t stamp_ns, uint8_t errors)
{
    struct pnic_dev_regs *dev = seg->dev;
    const struct pnic_header *h = seg->hdr;
    uint32_t rdh = dev->rdh;

    if (rdh == rdt || rdt >= h->ring_size) {
        __atomic_store_n(&dev->mpc, dev->mpc + 1, __ATOMIC_RELAXED);
        set_cause(dev, PNIC_ICR_RXO);
        return -1;
    }
    struct pnic_rx_desc *d = &seg->ring[rdh];
    /* The driver may point a descriptor at any buffer of the pool, but never
     * outside it: a real NIC would DMA anywhere, we refuse to. */
    uint64_t addr = d->buffer_addr;
    uint64_t pool_end = h->buf_off + (uint64_t)h->ring_size * h->buf_size;
    uint8_t *buf = NULL;
    if (addr >= h->buf_off && addr + length <= pool_end) {
        buf = seg->base + addr;
        memcpy(buf, frame, length);
        if (stamp_off != 0)
            stamp_frame(buf, stamp_off, csum_off, seq, stamp_ns);
    } else {
        errors |= PNIC_RXD_ERR_RXE;
        length = 0;
    }
    d->length = (uint16_t)length;
    d->csum = 0; /* RXCSUM packet checksum: not modelled */
    d->errors = errors;
    d->special = 0;
    /* DD last, with release: the driver that sees DD sees the frame. */
    __atomic_store_n(&d->status, (uint8_t)(PNIC_RXD_STAT_DD | PNIC_RXD_STAT_EOP), __ATOMIC_RELEASE);
    uint32_t next = (rdh + 1) & (h->ring_size - 1);
    __atomic_store_n(&dev->rdh, next, __ATOMIC_RELEASE);
    if (errors == 0) {
        __atomic_store_n(&dev->gprc, dev->gprc + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&dev->gorc, dev->gorc + length, __ATOMIC_RELAXED);
    }
    uint32_t cause = PNIC_ICR_RXT0;
    /* RXDMT0 when free descriptors fall to RCTL.RDMTS = 1/2 of the ring (SDM 13.4.22). */
    if (((rdt - next) & (h->ring_size - 1)) == h->ring_size / 2)
        cause |= PNIC_ICR_RXDMT0;
    set_cause(dev, cause);
    return (int64_t)rdh;
}

int64_t pnic_receive(struct pnic_segment *seg, const uint8_t *frame, uint32_t length, uint16_t stamp_off,
                     uint16_t csum_off, uint32_t seq, uint64_t stamp_ns, uint8_t errors)
{
    uint32_t rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
    return receive_at(seg, rdt, frame, length, stamp_off, csum_off, seq, stamp_ns, errors);
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
    uint32_t pending; /* a raise is held back by IMS or ITR */
    uint32_t packet;  /* the packet whose cause is held */
    uint64_t signalled; /* the doorbell at the last signal sent (signal line) */
};

/* Raise the line for `packet` now, or hold the raise back:
 * - a cause masked in IMS stays in ICR and raises nothing until the driver
 *   unmasks it, which then raises at once (SDM 13.4.20/21);
 * - ITR (SDM 13.4.18) keeps interrupts at least ITR x 256 ns apart: a cause
 *   set sooner waits and shares the next interrupt with what follows.
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
    if ((icr & ims) == 0 || (itr_ns != 0 && mod->raised && *now - mod->last_ns < itr_ns)) {
        mod->pending = 1;
        mod->packet = packet;
        return 0;
    }
    ring_doorbell(seg, packet, icr, *now);
    carry(seg, line, &mod->signalled);
    mod->last_ns = *now;
    mod->raised = 1;
    mod->pending = 0;
    return 1;
}

int pnic_check_plan(const struct pnic_segment *seg, const struct pnic_send_plan *plan)
{
    const struct pnic_header *h = seg->hdr;
    if (plan->nslots > h->capacity || plan->nframes == 0)
        return PNIC_EINVAL;
    for (uint32_t f = 0; f < plan->nframes; f++) {
        const struct pnic_frame *fr = &plan->frames[f];
        if (fr->length == 0 || fr->length > h->buf_size || fr->data_off > plan->blob_len ||
            fr->length > plan->blob_len - fr->data_off)
            return PNIC_EFRAME;
        if (fr->stamp_off != 0 && (uint32_t)fr->stamp_off + 12 > fr->length)
            return PNIC_EFRAME;
        if (fr->csum_off != 0 && (uint32_t)fr->csum_off + 2 > fr->length)
            return PNIC_EFRAME;
    }
    for (uint32_t i = 0; i < plan->nslots; i++)
        if (plan->slots[i].frame >= plan->nframes)
            return PNIC_EFRAME;
    return PNIC_OK;
}

int pnic_device_run(struct pnic_segment *seg, const struct pnic_send_plan *plan)
{
    int rc = pnic_check_plan(seg, plan);
    if (rc != PNIC_OK)
        return rc;
    struct pnic_dev_regs *dev = seg->dev;
    const struct pnic_header *h = seg->hdr;
    const uint8_t *pool = seg->bufs, *pool_end = seg->bufs + (uint64_t)h->ring_size * h->buf_size;
    struct moderation mod = {0, 0, 0, 0, 0};
    uint64_t held_ns;
    pnic_prefault(seg->base, h->total_size);
    __atomic_store_n(&seg->line->state, PNIC_DEV_RUNNING, __ATOMIC_RELEASE);
    uint64_t t0 = pnic_now_ns() + plan->lead_ns;
    seg->hdr->t0_ns = t0;
    uint32_t rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);

    for (uint32_t i = 0; i < plan->nslots; i++) {
        const struct pnic_slot *sl = &plan->slots[i];
        const struct pnic_frame *fr = &plan->frames[sl->frame];
        const uint64_t due = t0 + sl->due_ns;

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
            pre_end = pre + fr->length;
            if (pre < pool || pre_end > pool_end)
                pre = pre_end = NULL;
        }
        uint64_t now = pnic_now_ns(), gap = 0;
        while (now < due) {
            if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
                goto stopped;
            if (mod.pending && moderated_raise(seg, &plan->line, &mod, mod.packet, &held_ns))
                seg->tx[mod.packet].flags |= PNIC_TX_RAISED;
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
        int64_t slot;
        uint32_t flags;
        if (sl->flags & PNIC_SLOT_SPURIOUS) {
            set_cause(dev, PNIC_ICR_RXT0);
            slot = -1;
            flags = PNIC_TX_SPURIOUS;
        } else {
            if (rdh == rdt) /* full when we looked: look once more, the driver may have caught up */
                rdt = __atomic_load_n(&seg->drv->rdt, __ATOMIC_ACQUIRE);
            slot = receive_at(seg, rdt, plan->blob + fr->data_off, fr->length, fr->stamp_off, fr->csum_off, i, start,
                              (uint8_t)(sl->flags & PNIC_SLOT_ERRORS_MASK));
            flags = slot < 0 ? PNIC_TX_DROPPED : PNIC_TX_STORED;
        }
        uint64_t end;
        if (moderated_raise(seg, &plan->line, &mod, i, &end)) {
            flags |= PNIC_TX_RAISED;
            if (plan->line.mode != PNIC_LINE_SPIN) /* the send includes the system call that carries the line */
                end = pnic_now_ns();
        }

        struct pnic_tx_record *rec = &seg->tx[i];
        rec->start_ns = start;
        rec->end_ns = end;
        rec->spin_gap_ns = gap;
        rec->slot = slot < 0 ? UINT32_MAX : (uint32_t)slot;
        rec->flags = flags;
        __atomic_store_n(&dev->sent, i + 1, __ATOMIC_RELEASE);
    }
    /* A raise still held back fires when ITR allows or the driver unmasks;
     * a driver that keeps its causes masked gets drain_ns to do so. */
    for (uint64_t limit = pnic_now_ns() + plan->drain_ns; mod.pending && pnic_now_ns() < limit;) {
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            goto stopped;
        if (moderated_raise(seg, &plan->line, &mod, mod.packet, &held_ns))
            seg->tx[mod.packet].flags |= PNIC_TX_RAISED;
        cpu_relax();
    }
    __atomic_store_n(&seg->line->state, PNIC_DEV_DONE, __ATOMIC_RELEASE);
    kick(&plan->line); /* a sleeping driver node wakes to see it */
    return PNIC_OK;

stopped:
    __atomic_store_n(&seg->line->state, PNIC_DEV_STOPPED, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;
}
