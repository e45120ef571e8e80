/*
 * pnic_send.c -- the paced send loop, generic over the device model
 * (pnic_model.h), and the line's device side: for each entry of the plan,
 * wait for its deadline, have the model receive the frame, raise the line
 * if the model's policy lets it, and keep the records (the paper's steps
 * 4-6: descriptor, buffer, interrupt).  What a frame's receive writes, and
 * when the device may interrupt, is the model's; when, and how the line
 * reaches the driver node, is this file's.
 */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pnic_cpu.h"
#include "pnic_model.h"

/* How long before a deadline the send loop takes the next send's lines back
 * from the driver's core: long enough for a cross-core transfer, short
 * enough not to fight a driver still handling the previous packet. */
#define PNIC_RETAKE_NS 400u
/* The longest a fault's raise is waited on for its answer (await_answer). */
#define PNIC_ANSWER_MAX_NS 10000000u
/* The transmitter is given the wait before a receive deadline only while the
 * deadline is further than this: taking a frame (a jumbo one, gathered and
 * checked) must not make the receive late. */
#define PNIC_TX_SLACK_NS 3000u
/* A raise for a transmit cause is recorded against no packet. */
#define PNIC_NO_PACKET UINT32_MAX

/* The record of entry i, or NULL past the end of an area that keeps them all. */
static inline struct pnic_tx_record *record_of(struct pnic_segment *seg, uint64_t i)
{
    const int64_t at = pnic_record_at(seg->hdr, i);
    return at >= 0 ? &seg->tx[at] : NULL;
}

/* Mark entry `packet` as having raised the line (a transmit cause raises for none). */
static void mark_raised(struct pnic_segment *seg, uint32_t packet)
{
    struct pnic_tx_record *rec = packet != UINT32_MAX ? record_of(seg, packet) : NULL;
    if (rec != NULL)
        rec->flags |= PNIC_TX_RAISED;
}

/* Ring the doorbell: the raise record first, then the doorbell with release,
 * so a driver that sees the new doorbell finds its record. */
void pnic_ring_doorbell(struct pnic_segment *seg, uint32_t packet, uint32_t announce, uint64_t now)
{
    uint64_t n = seg->line->doorbell;
    const int64_t at = pnic_record_at(seg->hdr, n);
    if (at >= 0) {
        seg->raises[at].raised_ns = now;
        seg->raises[at].packet = packet;
        seg->raises[at].icr = announce;
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
 * it waits (pnic_wait.c); we store the doorbell and then read line_seen
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

/* A raise the model's policy held back, retried from the wait so that it
 * fires on time whether or not another packet comes. */
struct held {
    uint32_t pending;   /* a raise is held */
    uint32_t packet;    /* the packet whose cause is held */
    uint64_t signalled; /* the doorbell at the last signal sent (signal line) */
};

/* Raise the line for `packet` now if the model says so, or hold the raise
 * back.  Returns 1 if the line was raised; *now is the raise time. */
static int raise_line(struct pnic_segment *seg, const struct pnic_line *line, struct pnic_model *m, struct held *held,
                      uint32_t packet, uint64_t *now)
{
    uint32_t announce = 0;
    uint32_t verdict = m->ops->decide(m, now, &announce);
    if (verdict != PNIC_RAISE_NOW) {
        held->pending = verdict == PNIC_RAISE_HOLD;
        held->packet = packet;
        return 0;
    }
    pnic_ring_doorbell(seg, packet, announce, *now);
    carry(seg, line, &held->signalled);
    held->pending = 0;
    return 1;
}

/* Retry a held raise, or raise a line the model says is still asserted; 0
 * normally, -1 once the line has stormed past the plan's limit. */
static int retry_raise(struct pnic_segment *seg, const struct pnic_send_plan *plan, struct pnic_model *m,
                       struct held *held, uint32_t last_packet)
{
    uint64_t held_ns;
    if (held->pending) {
        uint32_t packet = held->packet;
        if (raise_line(seg, &plan->line, m, held, packet, &held_ns))
            mark_raised(seg, packet);
    } else if (m->ops->reassert(m)) {
        raise_line(seg, &plan->line, m, held, last_packet, &held_ns);
    }
    return plan->storm_limit != 0 && m->storm >= plan->storm_limit ? -1 : 0;
}

int pnic_check_plan(const struct pnic_segment *seg, const struct pnic_send_plan *plan)
{
    const struct pnic_header *h = seg->hdr;
    const uint32_t total = plan->total != 0 ? plan->total : plan->nslots;
    /* Records kept whole need room for every entry; a ring of them, a power of two. */
    const int records_fit = h->records_mask != 0 ? h->records_mask + 1u == h->capacity && (h->capacity & h->records_mask) == 0
                                                 : total <= h->capacity;
    if ((plan->nslots == 0 && total != 0) || total < plan->nslots || !records_fit || plan->nframes == 0 ||
        plan->irq_mode > PNIC_IRQ_LEVEL || plan->late > PNIC_LATE_SHIFT)
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
        /* Every part within a buffer, and fewer parts than buffers. */
        uint32_t parts = sl->parts ? sl->parts : 1u, length = plan->frames[sl->frame].length;
        if (parts >= h->ring_size || (length + parts - 1) / parts > h->buf_size)
            return PNIC_EFRAME;
    }
    for (uint32_t i = 0; i < plan->ntx; i++)
        if (plan->tx_frames[i] >= plan->nframes)
            return PNIC_EFRAME;
    if (plan->ntx != 0 && h->model != PNIC_MODEL_E1000)
        return PNIC_EINVAL;
    return PNIC_OK;
}

/* After a fault's raise at `raised_ns`: spin until the driver has answered it
 * (a handler that saw this doorbell returned: its EOI, drv->acked), at most
 * PNIC_ANSWER_MAX_NS, or a stop (-1).  So a driver that reads before the
 * frame is written, or takes what a spurious interrupt did not bring, does
 * so every time, not only when its handler happens to run before the next
 * write. */
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

/* Give the transmitter a turn, and raise for what it announced. */
static void transmit(struct pnic_segment *seg, const struct pnic_send_plan *plan, struct pnic_model *m,
                     struct held *held, uint64_t now)
{
    uint64_t at;
    uint32_t packet = PNIC_NO_PACKET;
    const int cause = m->ops->transmit(m, now, &packet);
    if (m->ops->flush != NULL)
        m->ops->flush(m); /* a frame looped back is written back at once */
    if (cause > 0 && !held->pending && raise_line(seg, &plan->line, m, held, packet, &at))
        mark_raised(seg, packet);
}

/* Ask for the next entry's lines now, while this one's record is written
 * (after its raise: never on the clock of a paced send): when the next is
 * already due there is no wait to do it in.  Returns 1 (warm is set). */
static int warm_next(struct pnic_model *m, const struct pnic_send_plan *plan, const struct pnic_slot *next,
                     struct pnic_warm *warm)
{
    m->ops->prepare(m, plan->frames[next->frame].length, warm);
    for (uint32_t k = 0; k < warm->nwrite; k++)
        prefetch_for_write(warm->write[k]);
    for (uint32_t k = 0; k < warm->nread; k++)
        __builtin_prefetch(warm->read[k], 0, 3);
    if (warm->stream < warm->stream_end)
        prefetch_for_write(warm->stream); /* its first line: the rest streams in the wait, if any */
    return 1;
}

/* A run that ends inside a batch: what the model holds is written back; its
 * entries were never raised for, and their end is their start. */
static void settle(struct pnic_segment *seg, struct pnic_model *m, uint32_t from)
{
    if (m->ops->flush != NULL)
        m->ops->flush(m);
    const uint32_t sent = seg->dev->sent;
    for (uint32_t k = from; k < sent; k++) {
        struct pnic_tx_record *rec = record_of(seg, k);
        if (rec != NULL && rec->end_ns == 0)
            rec->end_ns = rec->start_ns;
    }
}

int pnic_send_run(struct pnic_segment *seg, const struct pnic_send_plan *plan, struct pnic_model *m)
{
    int rc = pnic_check_plan(seg, plan);
    if (rc != PNIC_OK)
        return rc;
    const struct pnic_model_ops *ops = m->ops;
    struct held held;
    memset(&held, 0, sizeof(held));
    pnic_prefault(seg->base, seg->hdr->total_size);
    __atomic_store_n(&seg->line->state, PNIC_DEV_RUNNING, __ATOMIC_RELEASE);
    uint64_t t0 = pnic_now_ns() + plan->lead_ns;
    seg->hdr->t0_ns = t0;
    uint32_t last = 0;
    uint64_t shift = 0; /* PNIC_LATE_SHIFT: how far the schedule has moved so far */
    const int tx = plan->ntx != 0 && ops->transmit != NULL;
    /* The batch of packets whose raise waits for its last (see below): its first entry. */
    uint32_t batch_first = 0;
    m->defer = plan->batch > 1 && ops->flush != NULL; /* receive holds the write-back until the batch's end */
    struct pnic_warm warm;
    int warmed = 0; /* the next entry's lines were asked for as the last one was sent */

    /* Entry i is the plan's slot s of its pass: a plan repeated (plan->total
     * entries) moves period_ns later each pass, so a run of any length needs
     * only one pass of slots. */
    const uint32_t total = plan->total != 0 ? plan->total : plan->nslots;
    uint32_t s = 0;
    uint64_t pass_ns = 0; /* how far this pass is from the first */
    for (uint32_t i = 0; i < total; i++, s + 1 < plan->nslots ? (void)s++ : (void)(s = 0, pass_ns += plan->period_ns)) {
        const struct pnic_slot *sl = &plan->slots[s];
        const struct pnic_frame *fr = &plan->frames[sl->frame];
        const uint64_t due = t0 + pass_ns + sl->due_ns + shift;

        /* Prepare while waiting, off the clock: what the next send writes was
         * last touched by the driver's core, so take those lines for writing
         * now.  Prefetching stops as soon as the packet is due. */
        if (!warmed) {
            ops->prepare(m, fr->length, &warm);
            if (m->halted)
                goto fault;
            for (uint32_t k = 0; k < warm.nwrite; k++)
                prefetch_for_write(warm.write[k]);
            for (uint32_t k = 0; k < warm.nread; k++)
                __builtin_prefetch(warm.read[k], 0, 3);
        }
        warmed = 0;
        const uint8_t *pre = warm.stream, *pre_end = warm.stream_end;
        uint64_t now = pnic_now_ns(), gap = 0;
        while (now < due) {
            if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
                goto stopped;
            if (retry_raise(seg, plan, m, &held, last) < 0)
                goto storm;
            if (tx && due - now > PNIC_TX_SLACK_NS) {
                transmit(seg, plan, m, &held, now);
                if (m->halted)
                    goto fault;
            }
            if (pre < pre_end) {
                for (int k = 0; k < 4 && pre < pre_end; k++, pre += PNIC_CACHELINE)
                    prefetch_for_write(pre);
            } else {
                /* The driver takes these lines back after our first prefetch (e1000:
                 * it clears the previous descriptor, which shares this one's line,
                 * and reads ICR; virtio-net: it re-arms used_event).  Take them again
                 * in the last stretch before the deadline. */
                if (due - now <= PNIC_RETAKE_NS) {
                    for (uint32_t k = 0; k < warm.nwrite; k++)
                        prefetch_for_write(warm.write[k]);
                    for (uint32_t k = 0; k < warm.nread; k++)
                        __builtin_prefetch(warm.read[k], 0, 3);
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
        uint32_t flags = 0;
        uint64_t end = start;
        int raise = !(sl->flags & PNIC_SLOT_NO_RAISE), raised = 0;
        int stopping = 0; /* asked to stop while a raise was awaited: record this entry, then stop */
        if (sl->flags & PNIC_SLOT_SPURIOUS) {
            ops->fault_cause(m);
            flags = PNIC_TX_SPURIOUS;
        } else {
            const struct pnic_rx_frame f = {plan->blob + fr->data_off, fr->length, fr->stamp_off, fr->csum_off, fr->sum,
                                            fr->kind, i, start, (uint8_t)(sl->flags & PNIC_SLOT_ERRORS_MASK),
                                            sl->parts ? sl->parts : 1u, fr->fcs, fr->fcs_shift};
            if (sl->early_ns != 0) {
                /* The early-interrupt fault: the line goes up before the frame is
                 * written, as if the interrupt overtook the DMA writes. */
                ops->fault_cause(m);
                if (raise)
                    raised = raise_line(seg, &plan->line, m, &held, i, &end);
                raise = 0;
                stopping = hold_until(seg, start + sl->early_ns) < 0 || (raised && await_answer(seg, end) < 0);
            }
            if (!stopping)
                slot = ops->receive(m, &f, sl->early_ns != 0, &flags);
        }
        const int wraps = s + 1 >= plan->nslots; /* the next entry begins the next pass */
        const struct pnic_slot *next = i + 1 >= total ? NULL : &plan->slots[wraps ? 0 : s + 1];
        const uint64_t next_due = next == NULL ? 0 : t0 + shift + pass_ns + (wraps ? plan->period_ns : 0) + next->due_ns;
        /* Packets due closer together than the device can raise for each: when the
         * next was due before this one began, this one's raise waits for the
         * batch's last (up to plan->batch), as a NIC writes descriptors back in
         * groups and moderates its interrupts (SDM 13.4.29 WTHRESH, 13.4.18): the
         * doorbell and ICR lines cross the cores once per batch.  A fault's
         * entry is never batched: its raise is the point. */
        if (raise && next != NULL && plan->batch > 1 && i + 1 - batch_first < plan->batch &&
            !((sl->flags | next->flags) & (PNIC_SLOT_SPURIOUS | PNIC_SLOT_NO_RAISE)) && sl->early_ns == 0 &&
            next->early_ns == 0 && next_due <= start) {
            warmed = warm_next(m, plan, next, &warm);
            struct pnic_tx_record *rec = record_of(seg, i);
            rec->start_ns = start;
            rec->end_ns = 0; /* the batch's raise, when it comes */
            rec->due_ns = due;
            rec->spin_gap_ns = gap;
            rec->slot = slot < 0 ? UINT32_MAX : (uint32_t)slot;
            rec->flags = flags;
            __atomic_store_n(&seg->dev->sent, i + 1, __ATOMIC_RELEASE);
            last = i;
            if (m->halted)
                goto fault;
            continue;
        }
        if (ops->flush != NULL)
            ops->flush(m); /* the batch's descriptors written back, then its one raise */
        if (raise) {
            raised = raise_line(seg, &plan->line, m, &held, i, &end);
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
        if (next != NULL && !m->halted)
            warmed = warm_next(m, plan, next, &warm);
        /* The entries whose raise waited for this one: raised by it, at its time. */
        for (uint32_t k = batch_first; k < i; k++) {
            struct pnic_tx_record *held_rec = record_of(seg, k);
            held_rec->end_ns = end;
            if (raised)
                held_rec->flags |= PNIC_TX_RAISED;
        }
        batch_first = i + 1;

        if (m->halted)
            goto fault;
        struct pnic_tx_record *rec = record_of(seg, i);
        rec->start_ns = start;
        rec->end_ns = end;
        rec->due_ns = due;
        rec->spin_gap_ns = gap;
        rec->slot = slot < 0 ? UINT32_MAX : (uint32_t)slot;
        rec->flags = flags;
        __atomic_store_n(&seg->dev->sent, i + 1, __ATOMIC_RELEASE);
        if (stopping)
            goto stopped;
    }
    /* A raise still held back fires when the model allows (e1000: ITR, an
     * unmask, or on the level line the handler's return); a driver that keeps
     * its causes masked gets drain_ns to do so.  The transmitter goes on while
     * the host has frames to hand the driver or the ring holds some, and
     * gets drain_ns from its last progress. */
    uint64_t progress = 0, seen = 0;
    for (uint64_t limit = pnic_now_ns() + plan->drain_ns;;) {
        const int busy = tx && ops->tx_busy(m, &progress);
        if (!(held.pending || ops->waiting(m) || busy))
            break;
        uint64_t now = pnic_now_ns();
        if (busy && progress != seen) {
            seen = progress;
            limit = now + plan->drain_ns;
        }
        if (now >= limit)
            break;
        if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
            goto stopped;
        if (retry_raise(seg, plan, m, &held, last) < 0)
            goto storm;
        if (tx) {
            transmit(seg, plan, m, &held, now);
            if (m->halted)
                goto fault;
        }
        cpu_relax();
    }
    if (tx)
        ops->tx_end(m);
    __atomic_store_n(&seg->line->state, PNIC_DEV_DONE, __ATOMIC_RELEASE);
    kick(&plan->line); /* a sleeping driver node wakes to see it */
    return PNIC_OK;

fault:
    settle(seg, m, batch_first);
    __atomic_store_n(&seg->line->state, PNIC_DEV_FAULT, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;

storm:
    settle(seg, m, batch_first);
    __atomic_store_n(&seg->line->state, PNIC_DEV_STORM, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;

stopped:
    settle(seg, m, batch_first);
    __atomic_store_n(&seg->line->state, PNIC_DEV_STOPPED, __ATOMIC_RELEASE);
    kick(&plan->line);
    return PNIC_OK;
}
