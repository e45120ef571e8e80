/*
 * pnic_layout.h -- the shared segment, defined once.
 *
 * One run = one segment, mapped by the device node, the driver node and the
 * controller.  Every region starts on its own page; every register block on
 * its own pair of cache lines, so that what the device writes and what the
 * driver writes never share a line, nor a prefetched pair (DESIGN.md section
 * 2, "keep apart what each side writes").  The Python view (pseudonic.layout) is checked against the
 * offsets exported from here by tests/test_layout.py.
 *
 *   [header | device regs | irq line | driver regs | control | ring | buffers |
 *    tx records | raise records | irq records]
 *
 * Receive descriptors and registers follow the Intel 8254x (e1000) family
 * Software Developer's Manual: legacy receive descriptor section 3.2.3,
 * status bits table 3-2, error bits table 3-3, RDH/RDT section 13.4.28/29,
 * ICR section 13.4.17, IMS/IMC 13.4.20/21, ITR 13.4.18, MPC 13.6.
 */
#ifndef PNIC_LAYOUT_H
#define PNIC_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define PNIC_MAGIC 0x43494e4f44554553ULL /* "SEUDONIC" little-endian */
#define PNIC_LAYOUT_VERSION 4u
#define PNIC_CACHELINE 64u
/* Hot blocks written by different sides are a line PAIR apart, not one line:
 * the adjacent-line (spatial) prefetcher fetches 64-byte lines in 128-byte
 * pairs (Intel's optimization manual on false sharing), so a driver spinning
 * on the doorbell would also pull the line beside it.  (Timing each step of
 * a send showed the slow sends here waiting on ICR's line; with ICR a pair --
 * and a page -- away from the doorbell they still do, on this VM, some of
 * the time: the separation is a guard, not a cure we could show.) */
#define PNIC_LINE_PAIR 128u
#define PNIC_PAGE 4096u

/* Legacy receive descriptor status bits (8254x SDM table 3-2). */
#define PNIC_RXD_STAT_DD 0x01u  /* descriptor done: written back by the device */
#define PNIC_RXD_STAT_EOP 0x02u /* end of packet */

/* Legacy receive descriptor error bits (8254x SDM table 3-3). */
#define PNIC_RXD_ERR_CE 0x01u   /* CRC or alignment error */
#define PNIC_RXD_ERR_SE 0x02u   /* symbol error */
#define PNIC_RXD_ERR_SEQ 0x04u  /* sequence error */
#define PNIC_RXD_ERR_CXE 0x10u  /* carrier extension error */
#define PNIC_RXD_ERR_TCPE 0x20u /* TCP/UDP checksum error */
#define PNIC_RXD_ERR_IPE 0x40u  /* IP checksum error */
#define PNIC_RXD_ERR_RXE 0x80u  /* RX data error */

/* Interrupt cause bits, ICR/IMS/IMC (8254x SDM table 13-66). */
#define PNIC_ICR_RXDMT0 0x10u /* receive descriptor minimum threshold */
#define PNIC_ICR_RXO 0x40u    /* receiver overrun: a packet was dropped */
#define PNIC_ICR_RXT0 0x80u   /* receiver timer: a packet was stored */

/* Device node states (pnic_irq_line.state). */
#define PNIC_DEV_IDLE 0u
#define PNIC_DEV_RUNNING 1u
#define PNIC_DEV_DONE 2u    /* whole schedule sent */
#define PNIC_DEV_STOPPED 3u /* stopped early on the controller's request */

/* Per-packet schedule flags (pnic_slot.flags); the low byte is copied into
 * the descriptor's error field, for fault injection. */
#define PNIC_SLOT_ERRORS_MASK 0xffu
#define PNIC_SLOT_SPURIOUS 0x100u /* no packet: set RXT0 and raise the line with no new descriptor */

/* How the line reaches the driver node (pnic_send_plan.line). */
#define PNIC_LINE_SPIN 0u    /* the doorbell, watched by a spinning driver core */
#define PNIC_LINE_EVENTFD 1u /* plus a write to an eventfd the driver node blocks on (VFIO's MSI-X) */
#define PNIC_LINE_SIGNAL 2u  /* plus a real-time signal to the driver node's thread */

/* Per-packet record flags (pnic_tx_record.flags). */
#define PNIC_TX_STORED 0x1u  /* frame written to a descriptor */
#define PNIC_TX_DROPPED 0x2u /* no free descriptor: counted in MPC */
#define PNIC_TX_RAISED 0x4u  /* the interrupt line was raised for it */
#define PNIC_TX_SPURIOUS 0x8u /* a spurious interrupt, no packet (PNIC_SLOT_SPURIOUS) */

/* 16-byte legacy receive descriptor (8254x SDM 3.2.3).  buffer_addr is an
 * offset into the segment, not a physical address. */
struct pnic_rx_desc {
    uint64_t buffer_addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
};

/* Written once by the controller before either node starts; read-only after. */
struct pnic_header {
    uint64_t magic;
    uint32_t version;
    uint32_t ring_size;  /* descriptors, a power of two */
    uint32_t buf_size;   /* bytes per receive buffer */
    uint32_t capacity;   /* packets the record areas hold */
    uint64_t total_size; /* bytes in the segment */
    uint64_t dev_regs_off;
    uint64_t irq_line_off;
    uint64_t drv_regs_off;
    uint64_t ctl_off;
    uint64_t ring_off;
    uint64_t buf_off;
    uint64_t tx_rec_off;
    uint64_t raise_rec_off;
    uint64_t irq_rec_off;
    uint64_t t0_ns; /* CLOCK_MONOTONIC time of packet 0's deadline (device writes before start) */
};

/* Written by the device only (one cache line).  The driver's read-to-clear of
 * ICR is the single exception: an atomic exchange, as the register read is
 * on real hardware. */
struct pnic_dev_regs {
    uint32_t rdh;  /* receive descriptor head: next descriptor the device fills */
    uint32_t icr;  /* interrupt cause, read-to-clear */
    uint64_t mpc;  /* missed packets: dropped for want of a descriptor */
    uint64_t gprc; /* good packets received (stored) */
    uint64_t gorc; /* good octets received */
    uint32_t sent; /* schedule entries handled so far */
    uint32_t _pad0;
    uint64_t _pad[11];
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* The spin interrupt line, written by the device only, on a line pair of its own:
 * the driver node reads it in a tight loop, and any other register sharing
 * the line would cost the device a cross-core miss on every write. */
struct pnic_irq_line {
    uint64_t doorbell; /* count of interrupts raised */
    uint32_t state;    /* PNIC_DEV_* */
    uint32_t _pad0;
    uint64_t _pad[14];
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* Written by the driver only, on two line pairs: RDT moves on every handler run,
 * IMS/ITR rarely -- and the device reads IMS on every raise, so it must not
 * share RDT's line. */
struct pnic_drv_regs {
    uint32_t rdt; /* receive descriptor tail: one past the last descriptor given to the device */
    uint32_t ready;
    uint64_t handled; /* interrupts handled */
    /* The doorbell the driver node last looked at before it went back to
     * waiting: on the signal line the device sends no new signal while one it
     * sent is not yet answered (see carry() in pnic_device.c). */
    uint64_t line_seen;
    uint64_t _pad0[13];
    uint32_t ims; /* interrupt mask: causes that raise the line */
    uint32_t itr; /* interrupt throttle: minimum interval between interrupts, 256 ns units */
    uint64_t _pad1[15];
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* Written by the controller only. */
struct pnic_ctl {
    uint32_t stop; /* nonzero: both nodes leave their loops */
    uint32_t _pad[31];
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* One entry of the per-packet schedule, computed in Python before the run
 * (DESIGN.md section 4: any timeline, frames of any origin, fault flags). */
struct pnic_slot {
    uint64_t due_ns; /* deadline relative to t0 */
    uint32_t frame;  /* index into the frame table */
    uint32_t flags;  /* PNIC_SLOT_* */
};

/* One frame the device can send.  If stamp_off is nonzero the device writes
 * the packet's sequence number (u32, big-endian) and its send timestamp (u64,
 * big-endian) there and, if csum_off is nonzero, patches the 16-bit one's
 * complement checksum at csum_off for the 12 new bytes (RFC 1624).  The
 * template must hold zeros at the stamp. */
struct pnic_frame {
    uint64_t data_off; /* into the frame blob */
    uint32_t length;
    uint16_t stamp_off;
    uint16_t csum_off;
};

/* Device record, one per schedule entry. */
struct pnic_tx_record {
    uint64_t start_ns;  /* the device began handling the due packet */
    uint64_t end_ns;    /* the line was raised (or, if not raised, handling ended) */
    uint64_t spin_gap_ns; /* longest gap between two clock reads while waiting: a machine stall */
    uint32_t slot;      /* descriptor index, or UINT32_MAX if dropped */
    uint32_t flags;     /* PNIC_TX_* */
};

/* Raise record, one per interrupt raised (index = doorbell value - 1). */
struct pnic_raise_record {
    uint64_t raised_ns;
    uint32_t packet; /* schedule index that raised it */
    uint32_t icr;    /* cause bits pending when raised */
};

/* Driver-node record, one per handler run. */
struct pnic_irq_record {
    uint64_t entry_ns;    /* the driver node saw the line and entered the handler */
    uint64_t exit_ns;     /* the handler returned */
    uint64_t doorbell;    /* doorbell value that woke it */
    uint64_t spin_gap_ns; /* longest gap between two reads while waiting: a machine stall */
};

_Static_assert(sizeof(struct pnic_rx_desc) == 16, "e1000 legacy descriptor is 16 bytes");
_Static_assert(offsetof(struct pnic_rx_desc, length) == 8, "descriptor length offset");
_Static_assert(offsetof(struct pnic_rx_desc, csum) == 10, "descriptor csum offset");
_Static_assert(offsetof(struct pnic_rx_desc, status) == 12, "descriptor status offset");
_Static_assert(offsetof(struct pnic_rx_desc, errors) == 13, "descriptor errors offset");
_Static_assert(offsetof(struct pnic_rx_desc, special) == 14, "descriptor special offset");
_Static_assert(sizeof(struct pnic_header) == 112, "header size");
_Static_assert(sizeof(struct pnic_dev_regs) == PNIC_LINE_PAIR, "device registers fill one line pair");
_Static_assert(sizeof(struct pnic_irq_line) == PNIC_LINE_PAIR, "interrupt line fills one line pair");
_Static_assert(sizeof(struct pnic_drv_regs) == 2 * PNIC_LINE_PAIR, "driver registers fill two line pairs");
_Static_assert(offsetof(struct pnic_drv_regs, ims) == PNIC_LINE_PAIR, "IMS on the second line pair");
_Static_assert(sizeof(struct pnic_ctl) == PNIC_LINE_PAIR, "control fills one line pair");
_Static_assert(sizeof(struct pnic_slot) == 16, "schedule entry size");
_Static_assert(sizeof(struct pnic_frame) == 16, "frame table entry size");
_Static_assert(sizeof(struct pnic_tx_record) == 32, "tx record size");
_Static_assert(sizeof(struct pnic_raise_record) == 16, "raise record size");
_Static_assert(sizeof(struct pnic_irq_record) == 32, "irq record size");

#endif /* PNIC_LAYOUT_H */
