/*
 * pnic_engine.h -- the C core's functions.  No policy lives here: the
 * Python layer validates every argument and chooses every default; these
 * functions return negative PNIC_E* codes on inconsistencies instead of
 * guessing.
 */
#ifndef PNIC_ENGINE_H
#define PNIC_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "pnic_layout.h"
#include "pseudonic.h"

#define PNIC_OK 0
#define PNIC_EINVAL (-1)  /* an argument out of range */
#define PNIC_ELAYOUT (-2) /* the segment header is not ours or does not fit the buffer */
#define PNIC_EFRAME (-3)  /* a frame or schedule entry that does not fit */

struct pnic_segment {
    uint8_t *base;
    struct pnic_header *hdr;
    struct pnic_dev_regs *dev;
    struct pnic_irq_line *line;
    struct pnic_drv_regs *drv;
    struct pnic_ctl *ctl;
    struct pnic_rx_desc *ring;
    /* virtio-net: the split virtqueue (vq_desc is where e1000's ring is; NULL rings for e1000) */
    struct pnic_vq_desc *vq_desc;
    struct pnic_vq_avail *vq_avail;
    struct pnic_vq_used *vq_used;
    uint8_t *bufs;
    struct pnic_tx_record *tx;
    struct pnic_raise_record *raises;
    struct pnic_irq_record *irqs;
    struct pnic_sanitizer *san;
    uint32_t *given_buf; /* per descriptor: the buffer index it was handed to the device with */
    uint32_t *holder;    /* per buffer index: the device-owned descriptor holding it */
    struct pnic_txv_record *txv; /* e1000 with a transmit plan: one record per frame taken */
};

/* Whether [addr, addr + len) lies in DMA memory the driver was handed
 * (e1000: pnic_dma_alloc's) -- not merely in the region: an address run past
 * the pool must still read as outside it. */
static inline int pnic_in_dma(const struct pnic_segment *seg, uint64_t addr, uint64_t len)
{
    const uint64_t start = seg->hdr->dma_off, end = start + __atomic_load_n(&seg->drv->dma_used, __ATOMIC_RELAXED);
    return addr >= start && addr <= end && len <= end - addr;
}

/* Whether [addr, addr + len) lies in the receive buffer pool. */
static inline int pnic_in_pool(const struct pnic_segment *seg, uint64_t addr, uint64_t len)
{
    const struct pnic_header *h = seg->hdr;
    const uint64_t end = h->buf_off + (uint64_t)h->ring_size * h->buf_stride;
    return addr >= h->buf_off && addr <= end && len <= end - addr;
}

/* RCTL.BSIZE/BSEX (SDM 13.4.22): the receive buffer size the driver
 * programmed: what the device writes at most into one descriptor's buffer.
 * Larger than the pool's buffers (the device would write past them), or the
 * reserved encoding: the pool's. */
static inline uint32_t pnic_rx_buffer_size(uint32_t rctl, uint32_t pool)
{
    const uint32_t k = (rctl & PNIC_RCTL_BSIZE_MASK) >> PNIC_RCTL_BSIZE_SHIFT;
    const uint32_t size = rctl & PNIC_RCTL_BSEX ? (k ? 32768u >> k : 0u) : 2048u >> k;
    return size != 0 && size <= pool ? size : pool;
}

/* A descriptor ring the driver programmed (SDM 13.4.25-29 receive, 13.4.36-40
 * transmit): PNIC_FAULT_NONE if the device can use it, else the fault and, in
 * *value, the value at fault.  Its base 16-byte aligned, its length a
 * non-zero multiple of 128 bytes of at most PNIC_MAX_RING descriptors, all
 * of it in DMA memory the driver was handed -- or, for receive, the ring
 * pseudonic prepared -- and its head inside it (PNIC_SAN_NONE: any).
 * `tx` picks the transmit faults. */
static inline uint32_t pnic_ring_fault(const struct pnic_segment *seg, uint64_t base, uint32_t len, uint32_t head,
                                       int tx, uint64_t *value)
{
    const struct pnic_header *h = seg->hdr;
    const uint32_t off = tx ? PNIC_FAULT_NO_TX_RING - PNIC_FAULT_NO_RX_RING : 0u;
    *value = len;
    if (len == 0)
        return PNIC_FAULT_NO_RX_RING + off;
    if (len % 128u != 0)
        return PNIC_FAULT_RDLEN + off;
    if (len / 16u > PNIC_MAX_RING && !(!tx && base == h->ring_off && len == h->ring_size * 16u))
        return PNIC_FAULT_RDLEN_LARGE + off;
    *value = base;
    const int prepared = !tx && base == h->ring_off && len == h->ring_size * 16u;
    if (base % 16u != 0 || (!prepared && !pnic_in_dma(seg, base, len)))
        return PNIC_FAULT_RDBA + off;
    *value = head;
    if (head != PNIC_SAN_NONE && head >= len / 16u)
        return PNIC_FAULT_RDH + off;
    return PNIC_FAULT_NONE;
}

/* The distance from index a forward to index b on a ring of n (any n, not only powers of two). */
static inline uint32_t pnic_ring_dist(uint32_t a, uint32_t b, uint32_t n)
{
    return b >= a ? b - a : b + n - a;
}

/* pnic_segment.c */
uint64_t pnic_layout_size(uint32_t ring_size, uint32_t buf_size, uint32_t capacity, uint32_t model,
                          uint32_t tx_capacity, struct pnic_header *out);
int pnic_segment_init(uint8_t *base, size_t len, uint32_t ring_size, uint32_t buf_size, uint32_t capacity,
                      uint32_t model, uint32_t tx_capacity);
int pnic_segment_attach(uint8_t *base, size_t len, struct pnic_segment *seg);
void pnic_prefault(uint8_t *base, size_t len);
uint64_t pnic_now_ns(void);

/* pnic_e1000.c: one frame received, one raise, outside a plan (sans-IO) */
int64_t pnic_receive(struct pnic_segment *seg, const uint8_t *frame, uint32_t length,
                     uint16_t stamp_off, uint16_t csum_off, uint32_t seq, uint64_t stamp_ns,
                     uint8_t errors);
int pnic_raise(struct pnic_segment *seg, uint32_t packet, uint64_t *now);

/* pnic_send.c: the send loop, over a device model (pnic_model.h) */
struct pnic_line {
    uint32_t mode; /* PNIC_LINE_* */
    int fd;        /* eventfd, for PNIC_LINE_EVENTFD */
    int pid;       /* driver node's thread, for PNIC_LINE_SIGNAL */
    int signo;     /* the real-time signal, for PNIC_LINE_SIGNAL */
    uint64_t busy_poll_ns; /* eventfd and signal lines: the driver node spins this long before it sleeps */
};
struct pnic_send_plan {
    const struct pnic_slot *slots;
    uint32_t nslots;
    uint32_t total;     /* entries to send (0: nslots): entry i is slot i % nslots, */
    uint64_t period_ns; /* and each pass of the slots is period_ns later than the one before */
    const struct pnic_frame *frames;
    uint32_t nframes;
    const uint8_t *blob;
    size_t blob_len;
    uint64_t lead_ns;  /* t0 = now + lead_ns */
    uint64_t drain_ns; /* after the schedule: how long a raise the model holds back (e1000: IMS) may wait */
    struct pnic_line line;
    uint32_t irq_mode;     /* PNIC_IRQ_*, for the model */
    uint32_t storm_limit;  /* raises in a row that announce nothing new before the run stops (pnic_model.storm) */
    uint32_t late;         /* PNIC_LATE_* */
    uint32_t batch;        /* packets whose raise may wait for the last of them when they come back to back (0, 1: none) */
    /* e1000's transmitter: the frames the host hands the driver's transmit
     * entry, in order (indices into frames), to verify what the device takes
     * against; the pace (0: as fast as the device takes them); loopback: each
     * frame taken is received into the receive ring. */
    const uint32_t *tx_frames;
    uint32_t ntx;
    uint32_t loopback;
    uint64_t tx_bits_per_s;
};
struct pnic_model;
int pnic_check_plan(const struct pnic_segment *seg, const struct pnic_send_plan *plan);
int pnic_send_run(struct pnic_segment *seg, const struct pnic_send_plan *plan, struct pnic_model *model);

/* pnic_wait.c: the driver node's side of the lines */
uint64_t pnic_wait_irq(struct pnic_segment *seg, uint64_t seen, uint32_t index);
uint64_t pnic_wait_irq_eventfd(struct pnic_segment *seg, uint64_t seen, uint32_t index, int fd, uint64_t busy_poll_ns);
uint64_t pnic_take_irq(struct pnic_segment *seg, uint64_t seen, uint32_t index);
uint64_t pnic_wait_irq_or_tx(struct pnic_segment *seg, uint64_t seen, uint32_t index, uint64_t tx_seen);
void pnic_wait_running(struct pnic_segment *seg);
int pnic_idle_wait(struct pnic_segment *seg, uint64_t seen, int signo, uint64_t busy_poll_ns);
void pnic_record_exit(struct pnic_segment *seg, uint32_t index, uint64_t doorbell, uint64_t delivered);

/* pnic_sanitize.c */
void pnic_rdt_checked(struct pnic_segment *seg, uint32_t rdt);
void pnic_ring_checked(struct pnic_segment *seg, int tx);
void pnic_tdt_checked(struct pnic_segment *seg, uint32_t tdt);
void pnic_avail_checked(struct pnic_segment *seg, uint16_t idx);

/* pnic_chost.c: the C host */
struct pnic_upper {
    uint8_t *arena; /* store layer: deliveries back to back */
    uint64_t arena_len, used;
    uint32_t *lengths; /* store layer: one per delivery kept */
    uint64_t *stamps;  /* store layer, optional (NULL: off): CLOCK_MONOTONIC ns of each delivery kept */
    uint8_t *checked;  /* store layer: per delivery kept, 1 if delivered as checksum-checked */
    uint64_t max_deliveries, count, overflow;
    uint8_t scratch[16384]; /* null layer: the one socket buffer, reused */
    struct pnic_verifier *verifier; /* a long run's verify layer: each delivery checked as it comes */
};
struct pnic_driver_ops {
    int (*open)(struct pnic_nic *);
    void (*interrupt)(struct pnic_nic *);
    void (*close)(struct pnic_nic *);
    void (*idle)(struct pnic_nic *); /* optional */
};
/* The frames the host hands the driver's transmit entry (e1000), in order:
 * each the template `order[k]` names, stamped with k and the time it is
 * handed (pnic_stamp.h), so the device can say which it took. */
struct pnic_tx_feed {
    int (*transmit)(struct pnic_nic *nic, const uint8_t *frame, uint32_t length);
    const struct pnic_frame *frames;
    const uint8_t *blob;
    const uint32_t *order;
    uint32_t count, next;
    uint64_t refused; /* calls the driver refused (its ring full): the frame is offered again */
    uint64_t descs_seen; /* pnic_dev_regs.tx_descs just before the last call: progress since means room */
    uint32_t staged;  /* the template in scratch (UINT32_MAX: none) */
    uint8_t scratch[PNIC_MAX_FRAME];
};
struct pnic_chost {
    struct pnic_segment seg;
    struct pnic_nic nic;
    struct pnic_driver_ops ops;
    struct pnic_upper upper;
    struct pnic_tx_feed *tx; /* NULL: nothing to transmit */
};
void pnic_chost_init(struct pnic_chost *cd, struct pnic_segment *seg, uint32_t napi_budget, int store);
uint64_t pnic_chost_loop(struct pnic_chost *cd, const struct pnic_line *line);
/* Deliveries go to the verifier as they come, instead of the store layer. */
void pnic_chost_verify(struct pnic_chost *cd, struct pnic_verifier *v);
/* Hand the driver what it will take; 1 if frames remain (its ring is full, or the line was raised past `seen`). */
int pnic_tx_feed(struct pnic_segment *seg, struct pnic_nic *nic, struct pnic_tx_feed *feed, uint64_t seen);

/* pnic_verify.c: a long run's verify layer, checking each delivery as it
 * comes (the caller fills the plan's part, then pnic_verifier_init). */
#define PNIC_VERIFY_KEEP 3 /* deliveries that matched nothing, kept to be explained */
struct pnic_verifier {
    const struct pnic_frame *frames; /* the plan's templates, stamped */
    uint32_t nframes;
    const uint8_t *blob;
    uint64_t blob_len;
    const uint32_t *frame_of; /* per slot of one pass: its frame */
    uint32_t nslots;
    uint32_t total;           /* entries the run sends: sequence numbers 0 .. total - 1 */
    uint64_t *seen;           /* a bit per sequence number in the window */
    uint32_t window;          /* sequence numbers the order is judged over, a power of two */
    uint32_t kept;
    uint64_t low;             /* the window's start: every number below it is final */
    int64_t highest;          /* the highest sequence number delivered */
    uint64_t delivered, received, duplicated, reordered, corrupted, stale;
    uint64_t bad_index[PNIC_VERIFY_KEEP];
    uint32_t bad_len[PNIC_VERIFY_KEEP];
    uint8_t bad[PNIC_VERIFY_KEEP][PNIC_MAX_FRAME];
};
int pnic_verifier_init(struct pnic_verifier *v, uint32_t window);
void pnic_verifier_free(struct pnic_verifier *v);
/* 1 if the frame is an entry's frame intact (counted as received, duplicated, reordered or stale), 0 if not. */
int pnic_verify_frame(struct pnic_verifier *v, const uint8_t *frame, uint32_t length);
/* The entry `frame` carries if it is that entry's frame intact, -1 if not; judges no order, counts nothing
 * (a short run's verify layer matches its kept deliveries with it, then judges them all at once). */
int64_t pnic_verify_match(const struct pnic_verifier *v, const uint8_t *frame, uint32_t length);

/* pnic_twocore.c: the bare two-core ring a small-packet rate is compared with;
 * ns from the first frame taken to the last (0: could not run) */
uint64_t pnic_twocore_ring(size_t size, uint64_t count, int producer_core, int consumer_core);

/* pnic_memcpy.c */
void pnic_memcpy_bench(size_t size, uint32_t repeat, uint64_t *out_ns);

/* pnic_calibrate.c */
#define PNIC_GAP_BUCKETS 64 /* bucket k: gaps of [2^k, 2^(k+1)) ns; bucket 0 takes 0 too */
struct pnic_gaps {
    uint64_t *hist;    /* PNIC_GAP_BUCKETS counts */
    uint64_t *starts;  /* per gap over the threshold: the read before it (CLOCK_MONOTONIC ns) */
    uint64_t *lengths; /* and its length in ns */
    uint64_t capacity; /* entries of starts and lengths */
    uint64_t loops, recorded, overflowed, worst_ns; /* out: overflowed = over the threshold, not kept */
};
void pnic_spin_gaps(uint64_t start_ns, uint64_t duration_ns, uint64_t threshold_ns, struct pnic_gaps *g);

#endif /* PNIC_ENGINE_H */
