/* pnic_chost.c -- hosting a driver written in C: its interrupt loop on
 * each line, and the upper layers it delivers to, all in C so that no Python
 * runs per packet.  The Python layer loads the library, checks its entry
 * points, and verifies what the store layer kept after the run. */
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "pnic_engine.h"
#include "pnic_stamp.h"

/* The store layer: each delivery copied into the arena, its length noted
 * (and, when asked, the time it came: stamps); verified after the run.
 * Deliveries past the arena are counted, not kept. */
static void store(struct pnic_nic *nic, const uint8_t *frame, uint32_t length, uint8_t checked)
{
    struct pnic_upper *up = nic->upper;
    if (up->count < up->max_deliveries && length <= up->arena_len - up->used) {
        if (up->stamps != NULL)
            up->stamps[up->count] = pnic_now_ns();
        memcpy(up->arena + up->used, frame, length);
        up->checked[up->count] = checked;
        up->lengths[up->count++] = length;
        up->used += length;
    } else {
        up->overflow++;
    }
}

static void deliver_store(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    store(nic, frame, length, 0);
}

static void deliver_store_checked(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    store(nic, frame, length, 1);
}

/* The null layer: the socket buffer is one scratch buffer, reused -- the copy
 * out of the receive buffer still happens, as it does for a real skb. */
static void deliver_null(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    struct pnic_upper *up = nic->upper;
    memcpy(up->scratch, frame, length <= sizeof(up->scratch) ? length : sizeof(up->scratch));
    __asm__ __volatile__("" : : "r"(up->scratch) : "memory"); /* the copy is the point: keep it */
    up->count++;
}

/* A long run's verify layer: each delivery checked as it comes, nothing
 * kept (pnic_verify.c); the check is on the driver's clock, as the store
 * layer's copy is. */
static void deliver_verify(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    struct pnic_upper *up = nic->upper;
    pnic_verify_frame(up->verifier, frame, length);
    up->count++;
}

void pnic_chost_verify(struct pnic_chost *cd, struct pnic_verifier *v)
{
    cd->upper.verifier = v;
    cd->nic.deliver = deliver_verify;
    cd->nic.deliver_checked = deliver_verify;
}

/* RDT writes under --sanitize (pseudonic.h: pnic_rdt_write). */
static void rdt_checked(struct pnic_nic *nic, uint32_t rdt)
{
    struct pnic_chost *cd = (struct pnic_chost *)((uint8_t *)nic - offsetof(struct pnic_chost, nic));
    pnic_rdt_checked(&cd->seg, rdt);
}

/* TDT writes and rings enabled, under --sanitize (pseudonic.h: pnic_tdt_write, pnic_latch_ring). */
static void tdt_checked(struct pnic_nic *nic, uint32_t tdt)
{
    struct pnic_chost *cd = (struct pnic_chost *)((uint8_t *)nic - offsetof(struct pnic_chost, nic));
    pnic_tdt_checked(&cd->seg, tdt);
}

static void ring_checked(struct pnic_nic *nic, int tx)
{
    struct pnic_chost *cd = (struct pnic_chost *)((uint8_t *)nic - offsetof(struct pnic_chost, nic));
    pnic_ring_checked(&cd->seg, tx);
}

/* avail.idx publications under --sanitize (pseudonic.h: pnic_vq_avail_publish). */
static void avail_checked(struct pnic_nic *nic, uint16_t idx)
{
    struct pnic_chost *cd = (struct pnic_chost *)((uint8_t *)nic - offsetof(struct pnic_chost, nic));
    pnic_avail_checked(&cd->seg, idx);
}

void pnic_chost_init(struct pnic_chost *cd, struct pnic_segment *seg, uint32_t napi_budget, int keep)
{
    struct pnic_nic *nic = &cd->nic;
    memset(nic, 0, sizeof(*nic));
    nic->abi = PNIC_DRIVER_ABI;
    nic->ring_size = seg->hdr->ring_size;
    nic->buf_size = seg->hdr->buf_size;
    nic->napi_budget = napi_budget;
    nic->base = seg->base;
    nic->ring = seg->ring;
    nic->dev = seg->dev;
    nic->drv = seg->drv;
    nic->deliver = keep ? deliver_store : deliver_null;
    nic->deliver_checked = keep ? deliver_store_checked : deliver_null;
    nic->rdt_checked = seg->hdr->sanitize ? rdt_checked : NULL;
    nic->tdt_checked = seg->hdr->sanitize ? tdt_checked : NULL;
    nic->ring_checked = seg->hdr->sanitize ? ring_checked : NULL;
    nic->upper = &cd->upper;
    nic->model = seg->hdr->model;
    nic->buf_stride = seg->hdr->buf_stride;
    nic->offered = seg->hdr->offered;
    nic->buf_off = seg->hdr->buf_off;
    if (nic->model == PNIC_MODEL_VIRTIO_NET) {
        nic->desc = seg->vq_desc;
        nic->avail = seg->vq_avail;
        nic->used = seg->vq_used;
        nic->avail_checked = seg->hdr->sanitize ? avail_checked : NULL;
    }
    cd->seg = *seg;
}

/* The signal line's handler: the driver's interrupt entry runs here, in
 * signal context.  One C driver per node, so the loop's state is global. */
static struct pnic_chost *signal_driver;
static volatile uint64_t signal_seen, signal_runs;

static void on_line_signal(int signo, siginfo_t *info, void *context)
{
    (void)signo, (void)info, (void)context;
    struct pnic_chost *cd = signal_driver;
    uint64_t db = pnic_take_irq(&cd->seg, signal_seen, (uint32_t)signal_runs);
    if (db == 0)
        return;
    signal_seen = db;
    cd->ops.interrupt(&cd->nic);
    pnic_record_exit(&cd->seg, (uint32_t)signal_runs, db, cd->upper.count + cd->upper.overflow);
    signal_runs = signal_runs + 1;
}

static uint64_t signal_loop(struct pnic_chost *cd, int signo, uint64_t busy_poll_ns)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_line_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    signal_driver = cd;
    signal_seen = 0;
    signal_runs = 0;
    sigaction(signo, &sa, NULL);
    for (;;) {
        if (cd->ops.idle != NULL) {
            uint64_t db;
            sigset_t block, prev;
            sigemptyset(&block);
            sigaddset(&block, signo);
            /* Look with the signal blocked, so that seen and the doorbell agree. */
            sigprocmask(SIG_BLOCK, &block, &prev);
            int done = __atomic_load_n(&cd->seg.ctl->stop, __ATOMIC_RELAXED) ||
                       (__atomic_load_n(&cd->seg.line->state, __ATOMIC_ACQUIRE) >= PNIC_DEV_DONE &&
                        (db = __atomic_load_n(&cd->seg.line->doorbell, __ATOMIC_ACQUIRE)) == signal_seen);
            sigprocmask(SIG_SETMASK, &prev, NULL);
            if (done)
                break;
            cd->ops.idle(&cd->nic);
        } else if (pnic_idle_wait(&cd->seg, signal_seen, signo, busy_poll_ns) == 0) {
            break;
        }
        /* A raise that came without a signal (the device sends none while one is
         * unanswered: see carry() in pnic_send.c) is taken here, with the signal
         * blocked, as the handler would. */
        if (__atomic_load_n(&cd->seg.line->doorbell, __ATOMIC_ACQUIRE) != signal_seen) {
            sigset_t block, prev;
            sigemptyset(&block);
            sigaddset(&block, signo);
            sigprocmask(SIG_BLOCK, &block, &prev);
            on_line_signal(signo, NULL, NULL);
            sigprocmask(SIG_SETMASK, &prev, NULL);
        }
    }
    /* Ignored from now on, not put back: the device's last kick may land after we
     * leave, and a real-time signal's default action would kill the node
     * (the Python host does the same). */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(signo, &sa, NULL);
    signal_driver = NULL;
    return signal_runs;
}

int pnic_tx_feed(struct pnic_segment *seg, struct pnic_nic *nic, struct pnic_tx_feed *feed, uint64_t seen)
{
    while (feed->next < feed->count) {
        /* The line was raised: the interrupt goes first, as a hard interrupt preempts a sending stack. */
        if (__atomic_load_n(&seg->line->doorbell, __ATOMIC_ACQUIRE) != seen)
            return 1;
        const uint32_t k = feed->next, t = feed->order[k];
        const struct pnic_frame *fr = &feed->frames[t];
        const uint8_t *tmpl = feed->blob + fr->data_off;
        if (feed->staged != t) {
            memcpy(feed->scratch, tmpl, fr->length);
            feed->staged = t;
        } else if (fr->stamp_off != 0) {
            /* Only the stamp and the checksum it patched differ from the template: put those back. */
            const uint32_t start = fr->csum_off && fr->csum_off < fr->stamp_off ? fr->csum_off : fr->stamp_off;
            const uint32_t end = fr->csum_off + 2u > fr->stamp_off + 12u ? fr->csum_off + 2u : fr->stamp_off + 12u;
            memcpy(feed->scratch + start, tmpl + start, end - start);
        }
        if (fr->stamp_off != 0)
            pnic_stamp_frame(feed->scratch, fr->stamp_off, fr->csum_off, k, pnic_now_ns());
        feed->descs_seen = __atomic_load_n(&seg->dev->tx_descs, __ATOMIC_ACQUIRE);
        if (feed->transmit(nic, feed->scratch, fr->length) != 0) {
            feed->refused++;
            return 1;
        }
        feed->next = k + 1;
        __atomic_store_n(&seg->drv->tx_handed, feed->next, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&seg->drv->tx_done, 1u, __ATOMIC_RELEASE);
    return 0;
}

uint64_t pnic_chost_loop(struct pnic_chost *cd, const struct pnic_line *line)
{
    if (line->mode == PNIC_LINE_SIGNAL)
        return signal_loop(cd, line->signo, line->busy_poll_ns);
    uint64_t seen = 0, runs = 0;
    if (cd->tx != NULL)
        pnic_wait_running(&cd->seg);
    int waiting_tx = cd->tx != NULL && pnic_tx_feed(&cd->seg, &cd->nic, cd->tx, seen);
    for (;;) {
        uint64_t db;
        if (waiting_tx) {
            db = pnic_wait_irq_or_tx(&cd->seg, seen, (uint32_t)runs, cd->tx->descs_seen);
            if (db == seen) { /* the transmitter moved: offer the frames again */
                waiting_tx = pnic_tx_feed(&cd->seg, &cd->nic, cd->tx, seen);
                continue;
            }
        } else {
            db = line->mode == PNIC_LINE_EVENTFD
                     ? pnic_wait_irq_eventfd(&cd->seg, seen, (uint32_t)runs, line->fd, line->busy_poll_ns)
                     : pnic_wait_irq(&cd->seg, seen, (uint32_t)runs);
        }
        if (db == 0)
            break;
        seen = db;
        cd->ops.interrupt(&cd->nic);
        pnic_record_exit(&cd->seg, (uint32_t)runs, db, cd->upper.count + cd->upper.overflow);
        runs++;
        if (cd->tx != NULL && cd->tx->next < cd->tx->count)
            waiting_tx = pnic_tx_feed(&cd->seg, &cd->nic, cd->tx, seen);
    }
    return runs;
}
