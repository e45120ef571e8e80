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
 *   [header | device regs | irq line | driver regs | control | ring |
 *    (virtio-net: avail ring | used ring) | buffers | (e1000: DMA memory) |
 *    tx records | raise records | irq records | sanitizer |
 *    (e1000: transmit records)]
 *
 * The segment holds one device model's receive queue (pnic_header.model).
 * e1000: receive descriptors and registers follow the Intel 8254x (e1000)
 * family Software Developer's Manual: legacy receive descriptor section
 * 3.2.3, status bits table 3-2, error bits table 3-3, RDH/RDT section
 * 13.4.28/29, ICR section 13.4.17, IMS/IMC 13.4.20/21, ITR 13.4.18, MPC 13.6.
 * virtio-net: a split virtqueue (VIRTIO 1.1 section 2.6) -- the descriptor
 * table where e1000's ring is, then the available ring (the driver area)
 * and the used ring (the device area), each on a page of its own -- and
 * the network device's receive queue (section 5.1.6).
 */
#ifndef PNIC_LAYOUT_H
#define PNIC_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define PNIC_MAGIC 0x43494e4f44554553ULL /* "SEUDONIC" little-endian */
#define PNIC_LAYOUT_VERSION 10u
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
#define PNIC_RXD_STAT_EOP 0x02u /* end of packet: the last descriptor of a frame */
#define PNIC_RXD_STAT_IXSM 0x04u  /* ignore the checksum indications (no offload) */
#define PNIC_RXD_STAT_TCPCS 0x20u /* TCP/UDP checksum calculated (TCPE says if it was bad) */
#define PNIC_RXD_STAT_IPCS 0x40u  /* IPv4 header checksum calculated (IPE says if it was bad) */

/* Legacy receive descriptor error bits (8254x SDM table 3-3). */
#define PNIC_RXD_ERR_CE 0x01u   /* CRC or alignment error */
#define PNIC_RXD_ERR_SE 0x02u   /* symbol error */
#define PNIC_RXD_ERR_SEQ 0x04u  /* sequence error */
#define PNIC_RXD_ERR_CXE 0x10u  /* carrier extension error */
#define PNIC_RXD_ERR_TCPE 0x20u /* TCP/UDP checksum error */
#define PNIC_RXD_ERR_IPE 0x40u  /* IP checksum error */
#define PNIC_RXD_ERR_RXE 0x80u  /* RX data error */
/* The errors that make a frame bad: drop it and count it.  IPE and TCPE only
 * say the checksum offload found a bad checksum; such a frame is delivered,
 * not marked as checked (Linux e1000: E1000_RXD_ERR_FRAME_ERR_MASK, and
 * e1000_rx_checksum). */
#define PNIC_RXD_ERR_FRAME (PNIC_RXD_ERR_CE | PNIC_RXD_ERR_SE | PNIC_RXD_ERR_SEQ | PNIC_RXD_ERR_CXE | PNIC_RXD_ERR_RXE)

/* RXCSUM (8254x SDM, Receive Checksum Control): offload on until the driver turns it off. */
#define PNIC_RXCSUM_IPOFL 0x100u /* IPv4 header checksum offload */
#define PNIC_RXCSUM_TUOFL 0x200u /* TCP/UDP checksum offload */
/* The descriptor's csum field: the 16-bit one's complement sum of the frame
 * from this byte (RXCSUM.PCSS) to its end.  Fixed here at the IPv4 header
 * (after a 14-byte Ethernet header); the register window is issue 13's. */
#define PNIC_PCSS 14u

/* RCTL.BSIZE with BSEX (8254x SDM 13.4.22): the receive buffer sizes an 8254x
 * can be programmed with, and so the only ones a segment is laid out with. */
#define PNIC_BUFFER_SIZES {256u, 512u, 1024u, 2048u, 4096u, 8192u, 16384u}

/* ITR counts in 256 ns units (8254x SDM 13.4.18), 16 bits of them. */
#define PNIC_ITR_UNIT_NS 256u

/* The device models (pnic_header.model). */
#define PNIC_MODEL_E1000 0u
#define PNIC_MODEL_VIRTIO_NET 1u

/* virtio-net (VIRTIO 1.1): feature bits (sections 6 and 5.1.3), descriptor
 * flags (2.6.5), ring flags (2.6.6, 2.6.8). */
#define PNIC_VIRTIO_NET_F_MRG_RXBUF 15u
#define PNIC_VIRTIO_RING_F_EVENT_IDX 29u
#define PNIC_VIRTIO_F_VERSION_1 32u
/* What the model offers.  VERSION_1 is required: the header is 12 bytes,
 * num_buffers included (5.1.6), and the rings little-endian. */
#define PNIC_VIRTIO_OFFERED ((1ull << PNIC_VIRTIO_F_VERSION_1) | (1ull << PNIC_VIRTIO_NET_F_MRG_RXBUF) | \
                             (1ull << PNIC_VIRTIO_RING_F_EVENT_IDX))
#define PNIC_VIRTQ_DESC_F_NEXT 1u
#define PNIC_VIRTQ_DESC_F_WRITE 2u
#define PNIC_VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define PNIC_VIRTQ_USED_F_NO_NOTIFY 1u
/* Queue sizes are powers of two up to this (2.6). */
#define PNIC_VIRTIO_MAX_QUEUE 32768u
/* struct virtio_net_hdr with VERSION_1 (5.1.6): it precedes every frame. */
#define PNIC_VIRTIO_NET_HDR 12u
/* The most descriptors a ring the driver places itself may have: the largest
 * Linux gives e1000 (E1000_MAX_RXD, E1000_MAX_TXD). */
#define PNIC_MAX_RING 4096u
/* e1000's DMA memory beyond the pool: another pool's worth of buffers, room
 * for a receive and a transmit ring of PNIC_MAX_RING descriptors, and a
 * transmit buffer of PNIC_TX_BUFFER bytes for each of PNIC_MAX_RING/4
 * descriptors (xv6's lab and Linux's default ring are far smaller). */
#define PNIC_TX_BUFFER 2048u
#define PNIC_DMA_EXTRA (2u * PNIC_MAX_RING * 16u + PNIC_MAX_RING / 4u * PNIC_TX_BUFFER)

/* The room each receive buffer has beyond the frame's, for the header before
 * it, so that a driver can put the header at the end of the room and have
 * the frame start on a cache line -- and, for buffers of a page or more, on
 * a page, where e1000's frames start: the device's copy then meets the same
 * alignment (and the same 4K aliasing with its template) on both models.
 * Measured at bench send-time's setting (C driver, 5 us, 8 rounds
 * interleaved), virtio-net's p50 over e1000's at 16 KiB: 1.50 with a line
 * of room, 1.16 with a page; at 1500 B 1.05 and 1.06. */
#define PNIC_VIRTIO_HDR_ROOM 64u
#define PNIC_VIRTIO_ROOM(buf_size) ((buf_size) >= PNIC_PAGE ? PNIC_PAGE : PNIC_VIRTIO_HDR_ROOM)
/* The ISR bit a raise announces (4.1.4.5: a used buffer notification). */
#define PNIC_VIRTIO_ISR_QUEUE 1u

/* The register window: offsets as the 8254x SDM (section 13.4, table 13-2)
 * spells them; what each does is pnic_reg_read/pnic_reg_write's
 * (pseudonic.h).  A register not listed here reads 0, and a write to it is
 * counted (pnic_drv_regs.unmodelled). */
#define PNIC_REG_CTRL 0x0000u
#define PNIC_REG_STATUS 0x0008u
#define PNIC_REG_ICR 0x00c0u
#define PNIC_REG_ITR 0x00c4u
#define PNIC_REG_ICS 0x00c8u
#define PNIC_REG_IMS 0x00d0u
#define PNIC_REG_IMC 0x00d8u
#define PNIC_REG_RCTL 0x0100u
#define PNIC_REG_RDBAL 0x2800u
#define PNIC_REG_RDBAH 0x2804u
#define PNIC_REG_RDLEN 0x2808u
#define PNIC_REG_RDH 0x2810u
#define PNIC_REG_RDT 0x2818u
#define PNIC_REG_RDTR 0x2820u
#define PNIC_REG_CRCERRS 0x4000u
#define PNIC_REG_RXERRC 0x400cu
#define PNIC_REG_MPC 0x4010u
#define PNIC_REG_GPRC 0x4074u
#define PNIC_REG_GORCL 0x4088u
#define PNIC_REG_GORCH 0x408cu
#define PNIC_REG_ROC 0x40acu
#define PNIC_REG_RXCSUM 0x5000u
#define PNIC_REG_TCTL 0x0400u
#define PNIC_REG_TIPG 0x0410u
#define PNIC_REG_TDBAL 0x3800u
#define PNIC_REG_TDBAH 0x3804u
#define PNIC_REG_TDLEN 0x3808u
#define PNIC_REG_TDH 0x3810u
#define PNIC_REG_TDT 0x3818u
#define PNIC_REG_TIDV 0x3820u
#define PNIC_REG_GPTC 0x4080u
#define PNIC_REG_GOTCL 0x4090u
#define PNIC_REG_GOTCH 0x4094u
#define PNIC_REG_RAL0 0x5400u
#define PNIC_REG_RAH0 0x5404u
/* Registers a driver sets up that change nothing a pseudo-NIC does (no PHY,
 * no flow control, no address filter, no delay timers): their writes are
 * taken and not counted as unmodelled, and they read 0.  The multicast
 * table (MTA, 128 registers), RADV, TADV, the flow-control registers (FCAL,
 * FCAH, FCT, FCTTV) and VET (SDM table 13-2). */
#define PNIC_REG_MTA 0x5200u
#define PNIC_REG_MTA_END 0x5400u
#define PNIC_REG_RADV 0x282cu
#define PNIC_REG_TADV 0x382cu
#define PNIC_REG_FCAL 0x0028u
#define PNIC_REG_FCAH 0x002cu
#define PNIC_REG_FCT 0x0030u
#define PNIC_REG_FCTTV 0x0170u
#define PNIC_REG_VET 0x0038u
/* CTRL.RST (SDM 13.4.1): a software reset -- the registers back to their
 * initial values, receive and transmit off, no ring. */
#define PNIC_CTRL_RST 0x04000000u/* STATUS (SDM 13.4.2): the link is up, full duplex, 1000 Mb/s. */
#define PNIC_STATUS_FD 0x1u
#define PNIC_STATUS_LU 0x2u
#define PNIC_STATUS_SPEED_1000 0x80u
/* RCTL (SDM 13.4.22). */
#define PNIC_RCTL_EN 0x2u
#define PNIC_RCTL_LPE 0x20u
#define PNIC_RCTL_BAM 0x8000u
#define PNIC_RCTL_SECRC 0x04000000u /* strip the Ethernet CRC: clear, the device appends the 4-byte FCS */
#define PNIC_RCTL_BSIZE_SHIFT 16u    /* BSIZE, bits 17:16: with BSEX clear 2048, 1024, 512, 256 */
#define PNIC_RCTL_BSIZE_MASK 0x30000u
#define PNIC_RCTL_BSEX 0x02000000u   /* BSIZE x16: 16384, 8192, 4096 (00 reserved) */
/* RCTL as the platform leaves it before the driver opens: receiving, broadcast
 * accepted, the FCS stripped, long packets on and BSIZE/BSEX the pool's buffer
 * size -- what pseudonic's drivers have always been given (pnic_segment_init). */
#define PNIC_RCTL_DEFAULT (PNIC_RCTL_EN | PNIC_RCTL_BAM | PNIC_RCTL_SECRC | PNIC_RCTL_LPE)
/* Without RCTL.LPE a frame longer than this (FCS excluded; 1522 with it and a
 * VLAN tag) is discarded and counted in ROC (SDM 13.4.22, 13.6). */
#define PNIC_MAX_STANDARD_FRAME 1518u
/* The FCS the device appends with RCTL.SECRC clear (IEEE 802.3 CRC-32). */
#define PNIC_FCS 4u

/* TCTL (SDM 13.4.33): EN turns the transmitter on; PSP pads short frames. */
#define PNIC_TCTL_EN 0x2u
#define PNIC_TCTL_PSP 0x8u
/* Legacy transmit descriptor (SDM 3.3.3): command and status bits. */
#define PNIC_TXD_CMD_EOP 0x01u  /* end of packet: the frame's last descriptor */
#define PNIC_TXD_CMD_IFCS 0x02u /* insert the FCS */
#define PNIC_TXD_CMD_RS 0x08u   /* report status: write DD back when done */
#define PNIC_TXD_CMD_DEXT 0x20u /* extension: not a legacy descriptor (not modelled: refused) */
#define PNIC_TXD_STAT_DD 0x01u  /* descriptor done */
/* The longest frame the transmitter takes (SDM 3.3.3: 16288 bytes over the
 * descriptors of one frame; a jumbo frame of 9018 is the usual largest). */
#define PNIC_MAX_TX_FRAME 16288u
/* Without TCTL.PSP a frame shorter than this (FCS excluded) goes out short: a runt. */
#define PNIC_MIN_FRAME 60u

/* pnic_drv_regs.heads_set */
#define PNIC_HEAD_RDH 1u
#define PNIC_HEAD_TDH 2u

/* What stopped the device (pnic_dev_regs.fault): a ring or a descriptor the
 * driver programmed wrong.  fault_value says the value. */
#define PNIC_FAULT_NONE 0u
#define PNIC_FAULT_NO_RX_RING 1u   /* RCTL.EN with RDLEN 0: no ring programmed */
#define PNIC_FAULT_RDLEN 2u        /* RDLEN not a multiple of 128 (SDM 13.4.27) */
#define PNIC_FAULT_RDLEN_LARGE 3u  /* RDLEN over PNIC_MAX_RING descriptors */
#define PNIC_FAULT_RDBA 4u         /* RDBAL/RDBAH: the ring not 16-byte aligned, or not in DMA memory */
#define PNIC_FAULT_RDH 5u          /* RDH past the ring */
#define PNIC_FAULT_NO_TX_RING 6u   /* TCTL.EN with TDLEN 0 */
#define PNIC_FAULT_TDLEN 7u        /* TDLEN not a multiple of 128 (SDM 13.4.38) */
#define PNIC_FAULT_TDLEN_LARGE 8u  /* TDLEN over PNIC_MAX_RING descriptors */
#define PNIC_FAULT_TDBA 9u         /* TDBAL/TDBAH: not 16-byte aligned, or not in DMA memory */
#define PNIC_FAULT_TDH 10u         /* TDH past the ring */
#define PNIC_FAULT_TX_BUFFER 11u   /* a transmit descriptor's buffer outside the pool and DMA memory */
#define PNIC_FAULT_TX_LENGTH 12u   /* a frame over PNIC_MAX_TX_FRAME bytes */
#define PNIC_FAULT_TDT 13u         /* TDT past the ring */
#define PNIC_FAULT_TX_DEXT 14u     /* a context or extended data descriptor (CMD.DEXT): not modelled */
#define PNIC_FAULTS 15u

/* Interrupt cause bits, ICR/IMS/IMC (8254x SDM table 13-66). */
#define PNIC_ICR_TXDW 0x01u   /* transmit descriptor written back (RS) */
#define PNIC_ICR_TXQE 0x02u   /* transmit queue empty */
#define PNIC_ICR_RXDMT0 0x10u /* receive descriptor minimum threshold */
#define PNIC_ICR_RXO 0x40u    /* receiver overrun: a packet was dropped */
#define PNIC_ICR_RXT0 0x80u   /* receiver timer: a packet was stored */

/* Device node states (pnic_irq_line.state). */
#define PNIC_DEV_IDLE 0u
#define PNIC_DEV_RUNNING 1u
#define PNIC_DEV_DONE 2u    /* whole schedule sent */
#define PNIC_DEV_STOPPED 3u /* stopped early on the controller's request */
#define PNIC_DEV_STORM 4u   /* stopped: the level line stayed asserted past the storm limit */
#define PNIC_DEV_FAULT 5u   /* stopped: the driver programmed a ring or a descriptor wrong (pnic_dev_regs.fault) */

/* How the device raises (pnic_send_plan.irq_mode). */
#define PNIC_IRQ_EDGE 0u  /* MSI: one message per raise, whatever the driver does with ICR */
#define PNIC_IRQ_LEVEL 1u /* INTx (the 8254x's INTA#): asserted while ICR & IMS != 0, so the
                           * line is raised again when a handler returns without clearing it */

/* What the device does after it began a packet late (pnic_send_plan.late). */
#define PNIC_LATE_CATCHUP 0u /* keep the absolute schedule: overdue packets go back to back (pktgen) */
#define PNIC_LATE_SHIFT 1u   /* keep the intervals: every later deadline moves by the lateness */
/* Lateness below this is the loop's own wake-up, not a late start: shifting by it would drift. */
#define PNIC_LATE_SLACK_NS 1000u

/* Per-packet schedule flags (pnic_slot.flags); the low byte is copied into
 * the descriptor's error field, for fault injection. */
#define PNIC_SLOT_ERRORS_MASK 0xffu
#define PNIC_SLOT_SPURIOUS 0x100u /* no packet: set RXT0 and raise the line with no new descriptor */
#define PNIC_SLOT_NO_RAISE 0x200u /* a lost interrupt: the descriptor is written, the line is not raised */

/* Frame kinds (pnic_frame.kind): what the checksum offload can check. */
#define PNIC_FRAME_IPV4 0x1u /* an IPv4 header at byte 14 */
#define PNIC_FRAME_L4 0x2u   /* a TCP or UDP header after it */
#define PNIC_MAX_FRAME 16384u /* the longest frame, over as many descriptors as it takes */

/* How the line reaches the driver node (pnic_send_plan.line). */
#define PNIC_LINE_SPIN 0u    /* the doorbell, watched by a spinning driver core */
#define PNIC_LINE_EVENTFD 1u /* plus a write to an eventfd the driver node blocks on (VFIO's MSI-X) */
#define PNIC_LINE_SIGNAL 2u  /* plus a real-time signal to the driver node's thread */

/* Per-packet record flags (pnic_tx_record.flags). */
#define PNIC_TX_STORED 0x1u  /* frame written to a descriptor */
#define PNIC_TX_DROPPED 0x2u /* no free descriptor: counted in MPC */
#define PNIC_TX_RAISED 0x4u  /* the interrupt line was raised for it */
#define PNIC_TX_SPURIOUS 0x8u /* a spurious interrupt, no packet (PNIC_SLOT_SPURIOUS) */
#define PNIC_TX_REFUSED 0x10u /* a buffer_addr outside the pool: written back with RXE and no data */
#define PNIC_TX_DISCARDED 0x20u /* longer than a standard frame with RCTL.LPE clear: counted in ROC */
#define PNIC_TX_RX_OFF 0x40u    /* arrived with the receiver off (RCTL.EN clear): ignored */

/* Ring sanitizer violations (pnic_sanitizer.count[...]), each checked at the
 * hand-over of descriptors to the device, i.e. at an RDT write (DESIGN.md
 * section 4, "Sanitizer"). */
#define PNIC_SAN_RDT_OUTSIDE 0u  /* RDT written past the ring */
#define PNIC_SAN_RDT_AT_HEAD 1u  /* RDT = RDH: every descriptor handed back, which reads as none */
#define PNIC_SAN_RDT_OWNED 2u    /* RDT moved back, or past RDH: over descriptors the device owns */
#define PNIC_SAN_DD_SET 3u       /* a descriptor handed back with DD still set */
#define PNIC_SAN_BUF_OUTSIDE 4u  /* a buffer_addr outside the buffer pool */
#define PNIC_SAN_BUF_SHARED 5u   /* a buffer given to the device by two descriptors at once */
/* virtio-net's, checked at each publication of avail.idx (VIRTIO 1.1 2.6.13). */
#define PNIC_SAN_AVAIL_OVERRUN 6u /* avail.idx more than the queue's size past the used entries, or back */
#define PNIC_SAN_AVAIL_REUSED 7u  /* a chain made available again before the device used it */
#define PNIC_SAN_HEAD_OUTSIDE 8u  /* an available entry naming a descriptor past the table */
#define PNIC_SAN_NOT_WRITABLE 9u  /* a receive descriptor without VIRTQ_DESC_F_WRITE, or a chain that loops */
/* e1000's rings the driver places, checked at the RCTL/TCTL write that enables them. */
#define PNIC_SAN_RING_INVALID 10u /* a ring the device cannot use (pnic_dev_regs.fault names why) */
/* e1000's transmit ring, checked at each TDT write. */
#define PNIC_SAN_TDT_OUTSIDE 11u  /* TDT written past the ring */
#define PNIC_SAN_TDT_OWNED 12u    /* TDT moved back, or past TDH: over descriptors the device still owns */
#define PNIC_SAN_TX_BUF_OUTSIDE 13u /* a transmit descriptor's buffer outside the pool and DMA memory */
#define PNIC_SAN_KINDS 14u
#define PNIC_SAN_NONE 0xffffffffu
/* What the sanitizer fills every buffer it hands to the device with (the
 * bytes DE AD BE EF repeated), so a driver that reads a buffer it does not
 * own delivers this and not a stale frame that might pass. */
#define PNIC_POISON 0xefbeaddeu

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

/* 16-byte legacy transmit descriptor (8254x SDM 3.3.3).  buffer_addr is an
 * offset into the segment. */
struct pnic_tx_desc {
    uint64_t buffer_addr;
    uint16_t length;
    uint8_t cso;    /* checksum offset (not modelled) */
    uint8_t cmd;    /* PNIC_TXD_CMD_* */
    uint8_t status; /* PNIC_TXD_STAT_DD, written back where RS asks */
    uint8_t css;    /* checksum start (not modelled) */
    uint16_t special;
};

/* virtio-net's split virtqueue (VIRTIO 1.1 2.6.5, 2.6.6, 2.6.8).  addr is an
 * offset into the segment, as buffer_addr is.  The avail ring's used_event
 * follows its ring[size]; the used ring's avail_event follows its. */
struct pnic_vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags; /* PNIC_VIRTQ_DESC_F_* */
    uint16_t next;
};
struct pnic_vq_avail {
    uint16_t flags; /* PNIC_VIRTQ_AVAIL_F_NO_INTERRUPT */
    uint16_t idx;   /* free-running: where the driver puts the next entry */
    uint16_t ring[];
};
struct pnic_vq_used_elem {
    uint32_t id;  /* the head of the chain used */
    uint32_t len; /* bytes the device wrote into it */
};
struct pnic_vq_used {
    uint16_t flags; /* PNIC_VIRTQ_USED_F_NO_NOTIFY */
    uint16_t idx;   /* free-running: where the device puts the next entry */
    struct pnic_vq_used_elem ring[];
};
struct pnic_virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers; /* the used entries this frame took (MRG_RXBUF), 1 without it */
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
    uint64_t san_off;
    uint32_t sanitize; /* nonzero: every RDT write goes through the sanitizer (pnic_sanitize.c) */
    uint32_t model;    /* PNIC_MODEL_* */
    uint32_t buf_stride; /* bytes from one receive buffer to the next (virtio-net: buf_size + PNIC_VIRTIO_ROOM) */
    /* Zero: the record areas hold every record of the run (record i at i,
     * i < capacity).  Nonzero: they are rings of records_mask + 1 (capacity,
     * a power of two), record i at i & records_mask, read while the run goes
     * -- a run of any length in bounded memory (--records summary|none). */
    uint32_t records_mask;
    uint64_t offered;   /* virtio-net: the feature bits the device offers (PNIC_VIRTIO_OFFERED) */
    uint64_t avail_off; /* virtio-net: the available ring */
    uint64_t used_off;  /* virtio-net: the used ring */
    /* e1000: memory a driver allocates for itself (pnic_dma_alloc), addressed
     * as the buffers are, by offset: fresh buffers to refill descriptors with. */
    uint64_t dma_off;
    uint64_t dma_size;
    /* e1000: one record per frame the transmitter took (struct pnic_txv_record). */
    uint64_t txv_off;
    uint32_t tx_capacity;
    uint32_t _pad1;
};

/* Where record i of a record area lies (pnic_header.records_mask), or -1
 * past the end of an area that keeps every record. */
static inline int64_t pnic_record_at(const struct pnic_header *h, uint64_t i)
{
    if (h->records_mask != 0)
        return (int64_t)(i & h->records_mask);
    return i < h->capacity ? (int64_t)i : -1;
}

/* Written by the device only, on two line pairs: the first what moves per
 * frame, the second the rings it uses and the transmitter.  The driver's read-to-clear of
 * ICR is the single exception: an atomic exchange, as the register read is
 * on real hardware. */
struct pnic_dev_regs {
    uint32_t rdh;  /* receive descriptor head: next descriptor the device fills */
    uint32_t icr;  /* interrupt cause, read-to-clear */
    uint64_t mpc;  /* missed packets: dropped for want of a descriptor */
    uint64_t gprc; /* good packets received (stored) */
    uint64_t gorc; /* good octets received */
    uint32_t sent; /* schedule entries handled so far */
    uint32_t rx_gen; /* drv->rx_gen when the device last took the receive ring */
    /* Descriptors written back so far, counted before each DD is set: an
     * RDT write that sees a descriptor's DD sees it counted (the sanitizer's
     * count of what the device owns). */
    uint64_t written;
    uint64_t reasserted; /* level line: raises with no new cause since the last one */
    /* How long the device node waited for its core while runnable over its send
     * loop (the kernel's schedstat run_delay), written by the node after it. */
    uint64_t run_delay_ns;
    /* Minor page faults and involuntary context switches of the node over its
     * loop (getrusage RUSAGE_THREAD), written by the node after it. */
    uint64_t minflt;
    uint64_t nivcsw;
    uint64_t rt; /* 1: the node ran SCHED_FIFO with its memory locked (--rt) */
    /* virtio-net: used entries the driver asked not to hear about (used_event,
     * VIRTQ_AVAIL_F_NO_INTERRUPT): no interrupt announced them (VIRTIO 1.1 2.6.7). */
    uint64_t quiet;
    uint64_t crcerrs; /* frames written back with CE: CRCERRS counts them (SDM 13.6) */
    uint64_t rxerrc;  /* frames written back with RXE: RXERRC */
    uint64_t roc;     /* frames discarded as too long, RCTL.LPE clear: ROC */
    uint64_t rx_off;  /* frames that arrived with the receiver off (RCTL.EN clear), ignored */
    /* -- the second line pair: the rings the device uses, and the transmitter */
    uint64_t ring_base;  /* the receive ring: its bus address (the prepared ring's, or RDBAL/RDBAH at RCTL.EN) */
    uint32_t ring_count; /* and its descriptors */
    uint32_t fault;      /* PNIC_FAULT_*: why the device stopped (PNIC_DEV_FAULT) */
    uint64_t fault_value;
    uint64_t tx_base;  /* the transmit ring (TDBAL/TDBAH at TCTL.EN); 0: none */
    uint32_t tx_count; /* and its descriptors */
    uint32_t tdh;      /* transmit descriptor head: the next descriptor the device takes */
    uint64_t gptc;     /* good packets transmitted (SDM 13.6) */
    uint64_t gotc;     /* good octets transmitted */
    uint64_t tx_taken; /* frames taken (a record each, up to tx_capacity) */
    uint64_t tx_descs; /* transmit descriptors taken */
    uint64_t tx_off;   /* frames queued with the transmitter off (TCTL.EN clear): not sent */
    uint32_t tx_gen;   /* drv->tx_gen when the device last took the transmit ring */
    uint32_t _pad1;
    uint64_t maxrss_kib; /* the device node's peak resident memory when it ended (KiB) */
    uint64_t _pad2[4];
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
     * sent is not yet answered (see carry() in pnic_send.c). */
    uint64_t line_seen;
    /* The doorbell the last finished handler run had seen: the level line is
     * raised again only once the driver is done with every raise (its EOI). */
    uint64_t acked;
    uint64_t icr_reads; /* ICR reads (pnic_icr_read), for ICR reads per handler run */
    uint64_t run_delay_ns; /* as pnic_dev_regs.run_delay_ns, for the driver node over its run */
    uint64_t minflt;       /* as pnic_dev_regs.minflt */
    uint64_t nivcsw;       /* as pnic_dev_regs.nivcsw */
    uint64_t rt;           /* as pnic_dev_regs.rt */
    /* When the node last went back to waiting for the line (a wait began, or
     * -- signal line -- a handler returned): a raise before it found the node
     * still busy, in its handler or in the host around it.  On the line pair
     * the exit's `acked` dirties anyway. */
    uint64_t waiting_since;
    uint64_t notifies; /* virtio-net: the driver's available buffer notifications (2.6.10) */
    uint64_t dma_used; /* e1000: bytes of DMA memory handed out so far (pnic_dma_alloc) */
    uint32_t tdt;      /* transmit descriptor tail: one past the last descriptor given to the device */
    uint32_t _pad0;
    uint64_t tx_handed; /* frames the host handed the driver's transmit entry and it took */
    uint64_t tx_done;   /* 1: the host has handed every frame it had (or gave up): the device may finish */
    uint64_t _pad0b;
    uint32_t ims;    /* interrupt mask: causes that raise the line */
    uint32_t itr;    /* interrupt throttle: minimum interval between interrupts, PNIC_ITR_UNIT_NS units */
    uint32_t rxcsum; /* PNIC_RXCSUM_*: checksum offload on or off */
    /* Bumped at each RCTL write (and a reset): the device then takes the
     * receive ring latched below, beside RCTL, which it reads per frame. */
    uint32_t rx_gen;
    uint64_t features; /* virtio-net: the features the driver accepted at open (a subset of offered) */
    uint32_t ctrl;     /* CTRL, as written */
    uint32_t rctl;     /* RCTL (PNIC_RCTL_*): SECRC is the device's to honour */
    uint32_t rdtr;     /* RDTR, as written (the receive delay timer is not modelled) */
    uint32_t ics;      /* causes ICS set, for the device to take into ICR and raise */
    uint64_t unmodelled;      /* writes to registers the model does not have */
    uint32_t unmodelled_first; /* the offset of the first */
    uint32_t _pad3;
    /* Statistics registers clear on read (SDM 13.6): the device's counts when
     * the driver last read each; a read returns what came since. */
    uint64_t read_mpc, read_gprc, read_gorc, read_crcerrs, read_rxerrc, read_roc;
    uint64_t gorc_latched; /* GORCL's read, for GORCH */
    uint64_t _pad2[2];
    /* -- the third line pair: the rings as programmed (SDM 14.4, 14.5), rarely written.
     * A ring is latched when the driver enables it (RCTL.EN, TCTL.EN): the
     * SDM has it programmed before, and a device reading registers the
     * driver is still writing would see half a ring. */
    uint64_t rdba;         /* RDBAH:RDBAL as written */
    uint32_t rdlen;        /* RDLEN as written */
    uint32_t rdh_set;      /* RDH as last written */
    uint64_t rx_ring;      /* latched at RCTL.EN: the ring's bus address */
    uint32_t rx_ringlen;   /* its RDLEN */
    uint32_t rx_rdh;       /* the RDH to start at; PNIC_SAN_NONE: keep the head */
    uint64_t tdba;         /* TDBAH:TDBAL as written */
    uint32_t tdlen;        /* TDLEN as written */
    uint32_t tdh_set;      /* TDH as last written */
    uint32_t tctl;         /* TCTL (PNIC_TCTL_*) */
    uint32_t tipg;         /* TIPG, as written (no inter-packet gap is modelled) */
    uint64_t tx_ring;      /* latched at TCTL.EN */
    uint32_t tx_ringlen;
    uint32_t tx_tdh;       /* the TDH to start at */
    uint32_t tx_gen;       /* bumped at each TCTL write (and a reset) */
    uint32_t ral, rah;     /* RAL0/RAH0, the receive address, as written (no address filter) */
    uint32_t heads_set;    /* PNIC_HEAD_*: RDH/TDH written since their ring was last latched */
    uint64_t read_gptc, read_gotc, gotc_latched; /* as read_gprc, read_gorc, gorc_latched */
    uint64_t _pad5;
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* Written by the controller only. */
struct pnic_ctl {
    uint32_t stop; /* nonzero: both nodes leave their loops */
    uint32_t _pad[31];
} __attribute__((aligned(PNIC_LINE_PAIR)));

/* One entry of the per-packet schedule, computed in Python before the run
 * (DESIGN.md section 4: any timeline, frames of any origin, fault flags). */
struct pnic_slot {
    uint64_t due_ns;   /* deadline relative to t0 */
    uint32_t frame;    /* index into the frame table */
    uint32_t flags;    /* PNIC_SLOT_* */
    uint16_t parts;    /* descriptors the frame is written over (0 or 1: one), EOP on the last only */
    uint16_t faults;   /* the planned faults this entry carries, for the verdict's accounts (ignored here) */
    uint32_t early_ns; /* nonzero: the line is raised this long before DD is written */
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
    uint16_t sum;  /* one's complement sum of the template from PNIC_PCSS (the stamp's bytes zero) */
    uint16_t kind; /* PNIC_FRAME_* */
    /* The FCS of the template (IEEE 802.3 CRC-32), and x^(8t) mod the CRC's
     * polynomial (reflected, as the CRC is) for the t bytes after the last the
     * stamp changes: the stamped frame's FCS follows from these and the few
     * bytes the stamp wrote (pnic_stamp.h: pnic_fcs_of_stamped), whatever the
     * frame's length.  Computed with the plan (frames.py). */
    uint32_t fcs;
    uint32_t fcs_shift;
    uint32_t _pad;
};

/* Device record, one per schedule entry. */
struct pnic_tx_record {
    uint64_t start_ns;  /* the device began handling the due packet */
    uint64_t end_ns;    /* the line was raised (eventfd, signal: after its system call; if not raised: the try) */
    uint64_t due_ns;    /* the deadline it kept: t0 + the plan's, plus the shift so far under PNIC_LATE_SHIFT */
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
    uint64_t wait_ns;     /* the driver node was back waiting for the line (0: not known) */
    uint64_t entry_ns;    /* the driver node saw the line and entered the handler */
    uint64_t exit_ns;     /* the handler returned */
    uint64_t doorbell;    /* doorbell value that woke it */
    uint64_t spin_gap_ns; /* longest gap between two reads while waiting: a machine stall */
    uint64_t delivered;   /* deliveries the upper layer had when the handler returned: what each run delivered */
};

/* One record per frame the transmitter took, in the order it took them (e1000). */
#define PNIC_TXV_STAMPED 0x1u  /* the frame carried a pseudonic stamp: seq and handed_ns are its */
#define PNIC_TXV_INTACT 0x2u   /* stamped, and byte for byte the frame its seq names */
#define PNIC_TXV_NO_EOP 0x4u   /* the descriptors ran to TDT without EOP: the frame was never finished */
#define PNIC_TXV_PADDED 0x8u   /* shorter than 60 B, padded (TCTL.PSP) */
#define PNIC_TXV_NO_FCS 0x10u  /* IFCS clear: sent without an FCS */
#define PNIC_TXV_LOOPED 0x20u  /* looped back into the receive ring (--loopback) */
struct pnic_txv_record {
    uint64_t taken_ns;  /* the device took the frame's last descriptor */
    uint64_t handed_ns; /* the stamp's time: when the host handed the frame to the driver */
    uint32_t seq;       /* the stamp's sequence number (the transmit plan's index), or UINT32_MAX */
    uint32_t length;    /* bytes, over every descriptor of the frame */
    uint16_t flags;     /* PNIC_TXV_* */
    uint16_t descs;     /* descriptors it took */
    uint32_t first;     /* the first descriptor's index */
};

/* The sanitizer's state and findings, written by the driver node only (at
 * its RDT writes), followed by two arrays of u32: the buffer each
 * device-owned descriptor was given (PNIC_SAN_DESCS entries: a ring the
 * driver places may be larger than the pool), and the descriptor holding
 * each buffer of the pool (ring_size entries). */
struct pnic_violation {
    uint64_t time_ns;
    uint32_t descriptor;
    uint32_t rdt; /* the RDT value written */
};
#define PNIC_SAN_DESCS(ring_size) ((ring_size) > PNIC_MAX_RING ? (ring_size) : PNIC_MAX_RING)
struct pnic_sanitizer {
    uint64_t handed;   /* descriptors handed to the device so far */
    uint64_t released; /* of those, written back and seen released by the sanitizer */
    uint64_t writes;   /* RDT writes checked */
    uint64_t spent_ns; /* time spent checking them (and poisoning): the sanitizer's cost to the driver */
    uint64_t first_ns; /* of which the first write's (open's: it poisons the whole pool) */
    /* The receive ring the counts are of (as latched at RCTL.EN), and where
     * the device stood on it when it was latched: its head then, and how
     * many descriptors it had written back before. */
    uint64_t rx_base;
    uint32_t rx_count, rx_head0;
    uint64_t rx_written0;
    /* The transmit ring's (none latched yet: tx_count 0), likewise. */
    uint64_t tx_base;
    uint32_t tx_count, tx_head0;
    uint64_t tx_taken0;
    uint64_t tx_handed; /* transmit descriptors handed to the device so far (TDT writes) */
    uint64_t tx_writes; /* TDT writes checked */
    uint64_t count[PNIC_SAN_KINDS];
    struct pnic_violation first[PNIC_SAN_KINDS];
};

_Static_assert(sizeof(struct pnic_rx_desc) == 16, "e1000 legacy descriptor is 16 bytes");
_Static_assert(offsetof(struct pnic_rx_desc, length) == 8, "descriptor length offset");
_Static_assert(offsetof(struct pnic_rx_desc, csum) == 10, "descriptor csum offset");
_Static_assert(offsetof(struct pnic_rx_desc, status) == 12, "descriptor status offset");
_Static_assert(offsetof(struct pnic_rx_desc, errors) == 13, "descriptor errors offset");
_Static_assert(offsetof(struct pnic_rx_desc, special) == 14, "descriptor special offset");
_Static_assert(sizeof(struct pnic_tx_desc) == 16, "e1000 legacy transmit descriptor is 16 bytes");
_Static_assert(offsetof(struct pnic_tx_desc, cmd) == 11, "transmit descriptor cmd offset");
_Static_assert(offsetof(struct pnic_tx_desc, status) == 12, "transmit descriptor status offset");
_Static_assert(sizeof(struct pnic_txv_record) == 32, "transmit record size");
_Static_assert(sizeof(struct pnic_header) == 192, "header size");
_Static_assert(sizeof(struct pnic_vq_desc) == 16, "virtq descriptor is 16 bytes");
_Static_assert(sizeof(struct pnic_vq_used_elem) == 8, "used element is 8 bytes");
_Static_assert(sizeof(struct pnic_virtio_net_hdr) == PNIC_VIRTIO_NET_HDR, "virtio_net_hdr is 12 bytes");
_Static_assert(sizeof(struct pnic_dev_regs) == 2 * PNIC_LINE_PAIR, "device registers fill two line pairs");
_Static_assert(sizeof(struct pnic_irq_line) == PNIC_LINE_PAIR, "interrupt line fills one line pair");
_Static_assert(sizeof(struct pnic_drv_regs) == 3 * PNIC_LINE_PAIR, "driver registers fill three line pairs");
_Static_assert(offsetof(struct pnic_drv_regs, ims) == PNIC_LINE_PAIR, "IMS on the second line pair");
_Static_assert(offsetof(struct pnic_drv_regs, rdba) == 2 * PNIC_LINE_PAIR, "the rings on the third line pair");
_Static_assert(offsetof(struct pnic_dev_regs, ring_base) == PNIC_LINE_PAIR, "the device's rings on its second line pair");
_Static_assert(sizeof(struct pnic_ctl) == PNIC_LINE_PAIR, "control fills one line pair");
_Static_assert(sizeof(struct pnic_slot) == 24, "schedule entry size");
_Static_assert(sizeof(struct pnic_frame) == 32, "frame table entry size");
_Static_assert(sizeof(struct pnic_tx_record) == 40, "tx record size");
_Static_assert(sizeof(struct pnic_raise_record) == 16, "raise record size");
_Static_assert(sizeof(struct pnic_irq_record) == 48, "irq record size");

#endif /* PNIC_LAYOUT_H */
