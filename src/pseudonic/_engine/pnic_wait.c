/* pnic_wait.c -- the driver node's side of the interrupt line: waiting for
 * the doorbell to move (spinning, blocked on an eventfd, or asleep until a
 * signal), and stamping the handler entry.  Register access with hardware
 * semantics is in pseudonic.h, shared with drivers written in C. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "pnic_cpu.h"
#include "pnic_engine.h"

/* The longest gap a signal line's busy poll saw, for the entry it found. */
static uint64_t polled_gap;

static void begin_wait(struct pnic_segment *seg, uint64_t now)
{
    __atomic_store_n(&seg->drv->waiting_since, now, __ATOMIC_RELAXED);
}

static void record_entry(struct pnic_segment *seg, uint32_t index, uint64_t db, uint64_t entry, uint64_t gap)
{
    const int64_t at = pnic_record_at(seg->hdr, index);
    /* Runs recorded so far, for a reader of a ring of records while the run goes. */
    __atomic_store_n(&seg->drv->handled, (uint64_t)index + 1, __ATOMIC_RELEASE);
    if (at >= 0) {
        struct pnic_irq_record *r = &seg->irqs[at];
        r->wait_ns = seg->drv->waiting_since;
        r->entry_ns = entry;
        r->exit_ns = 0;
        r->doorbell = db;
        r->spin_gap_ns = gap;
        r->delivered = 0;
    }
}

/* The handler returned having seen every raise up to `doorbell`, with
 * `delivered` deliveries made so far: stamp its exit, and ack the line (the
 * EOI a level line waits for; e1000_decide in pnic_e1000.c). */
void pnic_record_exit(struct pnic_segment *seg, uint32_t index, uint64_t doorbell, uint64_t delivered)
{
    const int64_t at = pnic_record_at(seg->hdr, index);
    if (at >= 0) {
        uint64_t now = pnic_now_ns();
        seg->irqs[at].exit_ns = now;
        seg->irqs[at].delivered = delivered;
        begin_wait(seg, now); /* a signal may take the node from here on; a wait that begins later says so */
    }
    __atomic_store_n(&seg->drv->acked, doorbell, __ATOMIC_RELEASE);
}

/* The device is finished when it says so and every raise it made is seen.
 * State is read before the doorbell: a finished device has published every
 * raise. */
static int finished(struct pnic_segment *seg, uint64_t seen, uint64_t *db)
{
    if (__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
        return 1;
    uint32_t state = __atomic_load_n(&seg->line->state, __ATOMIC_ACQUIRE);
    *db = __atomic_load_n(&seg->line->doorbell, __ATOMIC_ACQUIRE);
    return *db == seen && state >= PNIC_DEV_DONE;
}

/* Spin on the doorbell until it moves past `seen` (returns 1, the new
 * doorbell in *db), the device finishes (-1), or `limit` (CLOCK_MONOTONIC ns)
 * passes (0).  *at is the clock read that followed the look which found it,
 * and *gap the longest gap between two clock reads up to it -- so a stall
 * anywhere between the wait's start and *at shows. */
static int spin_for(struct pnic_segment *seg, uint64_t seen, uint64_t limit, uint64_t *db, uint64_t *at, uint64_t *gap)
{
    uint64_t now = pnic_now_ns();
    for (;;) {
        int done = finished(seg, seen, db);
        uint64_t later = pnic_now_ns();
        if (later - now > *gap)
            *gap = later - now;
        now = later;
        *at = now;
        if (done)
            return -1;
        if (*db != seen)
            return 1;
        if (now >= limit)
            return 0;
        cpu_relax();
    }
}

/* Spin on the doorbell (the analogue of the paper's IPI) until it moves past
 * `seen`; then record the handler entry as irq record `index` and return the
 * new doorbell.  Returns 0 when the device has finished and raised nothing
 * new, or the controller asked to stop. */
uint64_t pnic_wait_irq(struct pnic_segment *seg, uint64_t seen, uint32_t index)
{
    uint64_t gap = 0, at = 0, db = 0;
    begin_wait(seg, pnic_now_ns());
    if (spin_for(seg, seen, UINT64_MAX, &db, &at, &gap) < 0)
        return 0;
    record_entry(seg, index, db, at, gap);
    return db;
}

/* Spin until the device runs (or the controller stops the run): a host hands
 * the driver frames to transmit only then, so that the time from handed to
 * taken is the driver's and the device's, not the start-up's. */
void pnic_wait_running(struct pnic_segment *seg)
{
    while (__atomic_load_n(&seg->line->state, __ATOMIC_ACQUIRE) == PNIC_DEV_IDLE &&
           !__atomic_load_n(&seg->ctl->stop, __ATOMIC_RELAXED))
        cpu_relax();
}

/* As pnic_wait_irq, but also back -- returning `seen`, with no entry
 * recorded -- once the transmitter has taken descriptors past `tx_seen`
 * (pnic_dev_regs.tx_descs): the host has frames the driver's full ring
 * refused, and offers them again as soon as there may be room, as a stack's
 * queue is woken.  It spins, whatever the line: a host with frames waiting
 * to be sent does not sleep. */
uint64_t pnic_wait_irq_or_tx(struct pnic_segment *seg, uint64_t seen, uint32_t index, uint64_t tx_seen)
{
    uint64_t gap = 0, now = pnic_now_ns(), db = 0;
    begin_wait(seg, now);
    for (;;) {
        if (finished(seg, seen, &db))
            return 0;
        uint64_t later = pnic_now_ns();
        if (later - now > gap)
            gap = later - now;
        now = later;
        if (db != seen) {
            record_entry(seg, index, db, now, gap);
            return db;
        }
        if (__atomic_load_n(&seg->dev->tx_descs, __ATOMIC_ACQUIRE) != tx_seen)
            return seen;
        cpu_relax();
    }
}

/* As pnic_wait_irq, asleep on the eventfd between looks -- after spinning
 * for `busy_poll_ns` first, as Linux's busy_poll does, since waking a
 * sleeping core costs microseconds.  The counter is sticky, so a raise
 * between our look and our read wakes the read at once (and one taken by
 * the spin leaves a count that costs one empty wake-up later). */
uint64_t pnic_wait_irq_eventfd(struct pnic_segment *seg, uint64_t seen, uint32_t index, int fd, uint64_t busy_poll_ns)
{
    uint64_t db, count, gap = 0, at = 0, since = pnic_now_ns();
    begin_wait(seg, since);
    if (busy_poll_ns != 0) {
        int found = spin_for(seg, seen, since + busy_poll_ns, &db, &at, &gap);
        if (found < 0)
            return 0;
        if (found > 0) {
            record_entry(seg, index, db, at, gap);
            return db;
        }
    }
    for (;;) {
        if (finished(seg, seen, &db))
            return 0;
        if (db != seen) {
            record_entry(seg, index, db, pnic_now_ns(), gap);
            return db;
        }
        if (read(fd, &count, sizeof(count)) < 0 && errno != EINTR && errno != EAGAIN)
            return 0;
    }
}

/* Tell the device (signal line) that every raise up to `seen` is taken, then
 * look at the doorbell once more: a raise the device made meanwhile without
 * a signal (it saw the last one unanswered) is found here.  See carry() in
 * pnic_send.c for the other half. */
static uint64_t answer(struct pnic_segment *seg, uint64_t seen)
{
    __atomic_store_n(&seg->drv->line_seen, seen, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&seg->line->doorbell, __ATOMIC_ACQUIRE);
}

/* The signal line's handler entry: the doorbell if it moved past `seen`
 * (stamped as handler entry), else 0 -- a signal with nothing new. */
uint64_t pnic_take_irq(struct pnic_segment *seg, uint64_t seen, uint32_t index)
{
    uint64_t db = __atomic_load_n(&seg->line->doorbell, __ATOMIC_ACQUIRE);
    if (db == seen)
        db = answer(seg, seen);
    if (db == seen)
        return 0;
    record_entry(seg, index, db, pnic_now_ns(), polled_gap);
    polled_gap = 0;
    return db;
}

/* Sleep until the line's signal arrives, without the race between looking
 * and sleeping: the signal is blocked while we look and unblocked only by
 * sigsuspend.  With `busy_poll_ns`, spin on the doorbell that long first
 * (the signal blocked meanwhile: a raise the spin sees is taken by the
 * caller, from the doorbell).  Returns 0 when the device has finished and
 * every raise is taken (or on stop), 1 after a signal or a raise seen (its
 * handler has run, or -- for Python's handler -- will run at the next
 * bytecode; the caller looks at the doorbell in any case). */
int pnic_idle_wait(struct pnic_segment *seg, uint64_t seen, int signo, uint64_t busy_poll_ns)
{
    sigset_t block, old;
    uint64_t db, at, since = pnic_now_ns();
    sigemptyset(&block);
    sigaddset(&block, signo);
    sigprocmask(SIG_BLOCK, &block, &old);
    begin_wait(seg, since);
    polled_gap = 0;
    int result = 1;
    int found = busy_poll_ns != 0 ? spin_for(seg, seen, since + busy_poll_ns, &db, &at, &polled_gap) : 0;
    if (found != 0) {
        result = found > 0;
    } else if (finished(seg, seen, &db)) {
        result = 0;
    } else if (db == seen && answer(seg, seen) == seen) {
        sigset_t wait = old;
        sigdelset(&wait, signo);
        sigsuspend(&wait);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return result;
}
