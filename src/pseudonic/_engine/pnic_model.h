/*
 * pnic_model.h -- a device model, as the send loop (pnic_send.c) sees it.
 *
 * The loop owns time: it waits for each deadline, stamps the records, rings
 * the line and carries it to a sleeping driver node, stops, drains the raises
 * held back, and ends a storm.  A model owns what the device is: where a
 * frame goes (descriptors, ring indices, buffers), which registers say so,
 * and when its interrupt may be raised.  e1000 (pnic_e1000.c) is one,
 * virtio-net's split virtqueue (pnic_virtio.c: descriptor table, avail and
 * used rings, EVENT_IDX, MRG_RXBUF) the other, behind the same calls.
 *
 * A model is called from the device node only, one call at a time.
 * receive, fault_cause and decide run on the clock (between a deadline and
 * its record), one indirect call each; prepare, reassert and waiting run
 * while the loop waits.
 */
#ifndef PNIC_MODEL_H
#define PNIC_MODEL_H

#include <stdint.h>

#include "pnic_engine.h"

/* One frame to receive now: a template from the plan's frame table, and what
 * the stamp (pnic_stamp.h) puts into it. */
struct pnic_rx_frame {
    const uint8_t *data;
    uint32_t length;
    uint16_t stamp_off, csum_off; /* 0: none (struct pnic_frame) */
    uint16_t sum;                 /* the template's one's complement sum from PNIC_PCSS */
    uint16_t kind;                /* PNIC_FRAME_* */
    uint32_t seq;
    uint64_t stamp_ns;
    uint8_t errors; /* the plan's injected error bits (PNIC_SLOT_ERRORS_MASK), the model's to place */
    uint32_t parts; /* buffers the frame is written over, 1 or more */
    uint32_t fcs, fcs_shift; /* the template's FCS, and its shift past the stamp (struct pnic_frame) */
};

/* Lines to take into the device's cache while it waits for a deadline: what
 * the next receive and raise will touch, last touched by the driver's core.
 * The loop decides when (pnic_send.c); the model says which. */
#define PNIC_WARM_MAX 3
struct pnic_warm {
    const uint8_t *write[PNIC_WARM_MAX]; /* taken for writing, and again just before the deadline */
    const uint8_t *read[PNIC_WARM_MAX];  /* read by the receive or the raise, and again just before the deadline */
    uint32_t nwrite, nread;
    const uint8_t *stream, *stream_end; /* the buffer the frame will be written to (empty: none) */
};

/* What the raise policy says (decide). */
#define PNIC_RAISE_NONE 0u /* nothing is left to announce: forget a held raise */
#define PNIC_RAISE_HOLD 1u /* a cause waits (masked, throttled, or its line in service): retry later */
#define PNIC_RAISE_NOW 2u  /* raise the line now; the model has counted the raise */

struct pnic_model;
struct pnic_model_ops {
    /* Before the wait for the next frame of `length` bytes: which lines to warm. */
    void (*prepare)(struct pnic_model *m, uint32_t length, struct pnic_warm *warm);
    /* Receive one frame: write it and hand it to the driver, with its cause.
     * look_again: a fault held the frame back, so the driver's side of the
     * ring may have moved since prepare.  Returns where it went (the first
     * descriptor or ring entry), or -1 if it was dropped; *flags gets the
     * PNIC_TX_* bits of what happened to it. */
    int64_t (*receive)(struct pnic_model *m, const struct pnic_rx_frame *f, int look_again, uint32_t *flags);
    /* The cause a raise with no frame behind it announces: the spurious and
     * early-interrupt faults (PNIC_SLOT_SPURIOUS, pnic_slot.early_ns). */
    void (*fault_cause)(struct pnic_model *m);
    /* May the line be raised now?  *now is read inside, after the model's
     * registers and just before the loop's doorbell store: a driver never
     * enters its handler before the raise time on record.  On
     * PNIC_RAISE_NOW, *announce is what the raise record keeps (e1000: ICR). */
    uint32_t (*decide)(struct pnic_model *m, uint64_t *now, uint32_t *announce);
    /* Should the line be raised again with no new cause?  (A level line
     * still asserted once the handler is done with every raise.) */
    int (*reassert)(struct pnic_model *m);
    /* Is a cause still waiting to be announced?  After the schedule, the loop
     * keeps retrying while one is (the drain). */
    int (*waiting)(struct pnic_model *m);
    /* The transmitter (NULL: the model has none): take what the driver queued
     * as far as the pace allows at `now`.  Returns 1 if it set a cause the
     * driver unmasked (the loop tries a raise), else 0; *packet is the plan
     * entry a frame looped back was received as (--loopback), if any. */
    int (*transmit)(struct pnic_model *m, uint64_t now, uint32_t *packet);
    /* Has the transmitter work to wait for: frames the host has yet to hand
     * the driver, or descriptors queued?  *progress moves whenever either side
     * does, so the loop waits on a stalled transmitter only drain_ns. */
    int (*tx_busy)(struct pnic_model *m, uint64_t *progress);
    /* The run is over: account for what the transmitter holds unfinished. */
    void (*tx_end)(struct pnic_model *m);
    /* Write back what receive held while m->defer was set (NULL: the model holds nothing). */
    void (*flush)(struct pnic_model *m);
};

/* The part of every model the loop reads.  `storm` is the storm limit's
 * hook: raises in a row that announced nothing new (a level line that stays
 * asserted); the loop ends the run once it reaches pnic_send_plan.storm_limit. */
struct pnic_model {
    const struct pnic_model_ops *ops;
    struct pnic_segment *seg;
    uint32_t storm;
    uint32_t halted; /* the driver programmed something the device cannot use: pnic_dev_regs.fault says what */
    uint32_t defer;  /* the loop batches: receive may hold the write-back until flush */
};

/* pnic_send.c: the line's device side, for a model's raise outside a plan. */
void pnic_ring_doorbell(struct pnic_segment *seg, uint32_t packet, uint32_t announce, uint64_t now);

/* pnic_e1000_tx.c: the 8254x transmitter.  Its state: the ring it takes
 * from, TDT as last read, a frame being gathered over several descriptors,
 * and the pace. */
struct pnic_e1000_tx {
    const struct pnic_send_plan *plan; /* the frames the host hands the driver, to verify against */
    struct pnic_tx_desc *ring;         /* dev->tx_base, once TCTL.EN latched one */
    uint32_t n;
    uint32_t tdt;
    uint64_t free_ns;  /* the pace: the transmitter is busy with the last frame until then */
    uint32_t gathered; /* bytes of the frame being gathered (in its scratch) */
    uint32_t descs;    /* its descriptors so far */
    uint32_t first;    /* its first descriptor */
    uint32_t expect;   /* the plan's next frame: the one an in-order driver sends next */
    uint8_t rs;        /* a descriptor of it asked for its status (RS) */
    uint8_t cmd;       /* its first descriptor's command (IFCS) */
    uint32_t looped;   /* --loopback: the plan entry the last frame taken came back as (UINT32_MAX: none) */
};

/* Descriptors written but not yet written back (DD), and the statistics of
 * their frames: a batch's write-back, done at once (pnic_e1000.c). */
#define PNIC_PEND_MAX 256u
struct pnic_e1000_pending {
    uint32_t ndesc;
    uint32_t gprc, crcerrs, rxerrc;
    uint64_t gorc;
    uint32_t desc[PNIC_PEND_MAX];
    uint8_t status[PNIC_PEND_MAX];
};

/* pnic_e1000.c: the 8254x receive model.  Its state: the ring it reads (the
 * prepared ring, or the driver's: pnic_dev_regs.ring_base), RDT as last
 * read, and what its raise policy (IMS, ITR, the level line) remembers. */
struct pnic_e1000 {
    struct pnic_model model;
    struct pnic_rx_desc *ring;
    uint32_t n;    /* its descriptors: a multiple of 8, not always a power of two */
    uint32_t head; /* the next descriptor the device fills: RDH, or past it by what is held for write-back */
    uint32_t held_first; /* the first descriptor held */
    struct pnic_e1000_pending held;
    uint32_t rdt;
    uint32_t level;   /* the plan's line is level-triggered (PNIC_IRQ_LEVEL) */
    uint32_t raised;  /* raised at least once */
    uint64_t last_ns; /* when the line was last raised: ITR counts from it */
    uint32_t sent_at_raise;  /* schedule entries handled at the last raise */
    uint64_t reads_at_raise; /* ICR reads at the last raise */
    struct pnic_e1000_tx tx;
};
void pnic_e1000_init(struct pnic_e1000 *e, struct pnic_segment *seg, uint32_t irq_mode, const struct pnic_send_plan *plan);
/* pnic_e1000.c: take the ring RCTL.EN (tx 0) or TCTL.EN (tx 1) latched, if it changed: 1 taken, 0 none, -1 fault. */
int pnic_e1000_take_ring(struct pnic_segment *seg, int tx);
/* pnic_e1000.c, for the transmitter: receive one frame (the loop back), set a cause. */
int64_t pnic_e1000_receive_frame(struct pnic_model *m, const struct pnic_rx_frame *f, uint32_t *flags);
void pnic_e1000_cause(struct pnic_segment *seg, uint32_t cause);
/* pnic_e1000_tx.c */
int pnic_e1000_transmit(struct pnic_model *m, uint64_t now, uint32_t *packet);
int pnic_e1000_tx_busy(struct pnic_model *m, uint64_t *progress);
void pnic_e1000_tx_end(struct pnic_model *m);

/* pnic_virtio.c: virtio-net's receive queue (split virtqueue).  Its state:
 * the two free-running indices the device keeps, and what it last told the
 * driver.  Its line is MSI-X: edge, one message per raise. */
struct pnic_virtio {
    struct pnic_model model;
    uint64_t pool_end;   /* where the buffer pool ends (an offset, as addr is) */
    uint16_t last_avail; /* the next available entry the device takes */
    uint16_t avail;      /* avail.idx as last read: the entries below it are the device's until used */
    uint16_t used;       /* used.idx as the device last published it */
    uint16_t signalled;  /* used.idx at the last interrupt decision (QEMU's signalled_used) */
    uint8_t fault;       /* a fault's raise (spurious, early) is due whatever the driver asked */
    uint8_t fresh;       /* buffers were used since the last decision: it is made on the clock, without the fence */
    uint8_t event_idx;   /* EVENT_IDX was negotiated, as the last look at the driver's wish found */
    uint16_t wish;       /* the driver's wish as last read: used_event (EVENT_IDX), else avail.flags */
    uint32_t asked;      /* the device asked to be notified: it went without a buffer */
};
void pnic_virtio_init(struct pnic_virtio *v, struct pnic_segment *seg);

#endif /* PNIC_MODEL_H */
