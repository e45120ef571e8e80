/*
 * e1000_window.c -- an e1000 (8254x) driver in the style of a production one,
 * written from the 8254x Software Developer's Manual (SDM) for this project,
 * using nothing of pseudonic but pnic_e1000_compat.h: the SDM's register
 * names, Intel's E1000_READ_REG/E1000_WRITE_REG over a hw struct of its own,
 * and pnic_dma_alloc for the memory a driver gets from its DMA API.
 *
 *   open       resets the device (CTRL.RST), places its own rings in DMA
 *              memory -- 240 receive descriptors (a multiple of 8 that is not
 *              a power of two: the SDM asks no more) and 256 transmit ones,
 *              a 2048-byte buffer each -- and enables them (SDM 14.3-14.5),
 *              with interrupt moderation (ITR) as the SDM suggests
 *   receive    FCS kept by the device (RCTL.SECRC clear) and taken off here;
 *              a frame longer than a buffer gathered over its descriptors to
 *              EOP; checksum offload trusted only as the SDM says; drops
 *              counted by the statistics registers; descriptors handed back
 *              16 at a time
 *   transmit   pnic_driver_transmit copies a frame into as many buffers as it
 *              needs, asks for status on its last descriptor only, and
 *              reclaims each frame's descriptors when the device has written
 *              DD back on its last -- when the ring looks full and on TXDW
 *
 *     cc -shared -fPIC -O2 -Wall -Wextra -Werror -I"$(python3 -m pseudonic include-dir)" e1000_window.c -o libe1000w.so
 *     python3 -m pseudonic check-driver ./libe1000w.so
 *     python3 -m pseudonic run --driver ./libe1000w.so --transmit 1000 --sanitize
 *
 * Async-signal-safe: no malloc, no stdio, no locks (on the signal line the
 * interrupt entry runs inside a signal handler).  The transmit entry is
 * called only on the spin and eventfd lines, from the same thread as the
 * interrupt entry, never at the same time: nothing here needs a lock.
 */
#include <stdint.h>
#include <string.h>

/* Intel's shared-code style: registers are reached through a hw struct. */
struct pnic_nic;
struct hw {
    struct pnic_nic *nic;
};
#define PNIC_HW_NIC(hw) ((hw)->nic)

#include "pnic_e1000_compat.h"

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const char pnic_driver_name[] = "e1000-window";

#define RX_DESCS 240u       /* RDLEN = 240 * 16 = 3840, a multiple of 128 (SDM 13.4.27) */
#define TX_DESCS 256u       /* TDLEN = 4096 (SDM 13.4.38) */
#define BUFFER 2048u        /* RCTL.BSIZE 00, BSEX clear; the same size for transmit */
#define RX_RETURN_EVERY 16u /* descriptors handed back per RDT write */
/* The longest frame we gather: what RCTL.LPE lets in here, and its FCS. */
#define RX_MAX_FRAME (16384u + ETHERNET_FCS_SIZE)
/* The longest frame the transmitter takes over one frame's descriptors (SDM 3.3.3). */
#define TX_MAX_FRAME 16288u

#define RX_CAUSES (E1000_ICR_RXT0 | E1000_ICR_RXO | E1000_ICR_RXDMT0)
#define ITR_INTERVAL 651u /* 651 x 256 ns = 167 us between interrupts at least */

/* TIPG for IEEE 802.3's minimum gap on copper (SDM 13.4.34, table 13-77):
 * IPGT 10, IPGR1 8, IPGR2 6, in MAC clocks. */
#define TIPG_IPGT 10u
#define TIPG_IPGR1 (8u << 10)
#define TIPG_IPGR2 (6u << 20)

/* The station address.  A real 8254x loads RAL0/RAH0 from its EEPROM at
 * reset; this one has no EEPROM, so the driver programs the address the
 * traffic is sent to (02:00:00:00:00:02, locally administered). */
static const uint8_t station[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

static struct hw hw;

static struct {
    struct e1000_rx_desc *ring; /* where the driver reads and writes the descriptors */
    uint8_t *buf;               /* buffer i at buf + i * BUFFER; its bus address in ring[i] */
    uint32_t next;              /* the next descriptor to look at for DD */
    uint32_t gathered;          /* bytes of the frame being gathered so far */
    uint64_t crcerrs, rxerrc, missed; /* the drops, from the statistics registers */
    uint64_t length_errors;           /* frames too long to gather, or no longer than their FCS */
    uint8_t frame[RX_MAX_FRAME];
} rx;

static struct {
    struct e1000_tx_desc *ring;
    uint8_t *buf;
    uint32_t fill;    /* the next descriptor to fill: TDT, as last written */
    uint32_t reclaim; /* the first descriptor of the oldest frame not yet reclaimed */
    /* For the first descriptor of each frame queued: the index of its last, the
     * one that carries RS and gets DD back. */
    uint16_t last_of[TX_DESCS];
    uint64_t sent, dropped;
} tx;

/* -- set-up (SDM 14) ------------------------------------------------------------------------- */

/* Software reset (SDM 14.3, CTRL.RST in 13.4.1): mask the interrupts and stop
 * both DMA engines first, so that nothing is in flight when the registers go
 * back to their initial values; RST clears itself when the reset is done.
 * Then mask again and clear what ICR holds: the reset does not vouch for it. */
static void reset(void)
{
    E1000_WRITE_REG(&hw, E1000_IMC, 0xffffffffu);
    E1000_WRITE_REG(&hw, E1000_RCTL, 0);
    E1000_WRITE_REG(&hw, E1000_TCTL, E1000_TCTL_PSP);
    E1000_WRITE_REG(&hw, E1000_CTRL, E1000_READ_REG(&hw, E1000_CTRL) | E1000_CTRL_RST);
    for (int i = 0; i < 1000 && (E1000_READ_REG(&hw, E1000_CTRL) & E1000_CTRL_RST); i++)
        ;
    E1000_WRITE_REG(&hw, E1000_IMC, 0xffffffffu);
    (void)E1000_READ_REG(&hw, E1000_ICR);
}

/* Transmit initialisation (SDM 14.5). */
static int setup_tx(struct pnic_nic *nic)
{
    uint64_t ring_bus = 0, buf_bus = 0; /* set by pnic_dma_alloc when it succeeds */
    tx.ring = pnic_dma_alloc(nic, TX_DESCS * sizeof(struct e1000_tx_desc), 128, &ring_bus);
    tx.buf = pnic_dma_alloc(nic, (uint64_t)TX_DESCS * BUFFER, 4096, &buf_bus);
    if (tx.ring == NULL || tx.buf == NULL)
        return -1;
    /* Each descriptor keeps its buffer for good: a frame is copied in, never mapped. */
    memset(tx.ring, 0, TX_DESCS * sizeof(struct e1000_tx_desc));
    for (uint32_t i = 0; i < TX_DESCS; i++)
        tx.ring[i].buffer_addr = buf_bus + (uint64_t)i * BUFFER;
    tx.fill = tx.reclaim = 0;
    E1000_WRITE_REG(&hw, E1000_TDBAL, (uint32_t)ring_bus);
    E1000_WRITE_REG(&hw, E1000_TDBAH, (uint32_t)(ring_bus >> 32));
    E1000_WRITE_REG(&hw, E1000_TDLEN, TX_DESCS * (uint32_t)sizeof(struct e1000_tx_desc));
    E1000_WRITE_REG(&hw, E1000_TDH, 0);
    E1000_WRITE_REG(&hw, E1000_TDT, 0); /* TDH == TDT: an empty ring */
    E1000_WRITE_REG(&hw, E1000_TIPG, TIPG_IPGT | TIPG_IPGR1 | TIPG_IPGR2);
    /* No transmit interrupt delay: the descriptors never set IDE, and TXDW
     * should come as soon as a frame's DD is written back. */
    E1000_WRITE_REG(&hw, E1000_TIDV, 0);
    E1000_WRITE_REG(&hw, E1000_TADV, 0);
    /* EN, and PSP: short frames padded to 64 bytes (SDM 13.4.33).  CT and COLD,
     * the collision threshold and distance, matter on a half-duplex wire; the
     * link here is full duplex and has no collisions, so they stay 0 (on real
     * hardware: CT 0x0F, COLD 0x40). */
    E1000_WRITE_REG(&hw, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP);
    return 0;
}

/* Receive initialisation (SDM 14.4). */
static int setup_rx(struct pnic_nic *nic)
{
    uint64_t ring_bus = 0, buf_bus = 0; /* set by pnic_dma_alloc when it succeeds */
    rx.ring = pnic_dma_alloc(nic, RX_DESCS * sizeof(struct e1000_rx_desc), 128, &ring_bus);
    rx.buf = pnic_dma_alloc(nic, (uint64_t)RX_DESCS * BUFFER, 4096, &buf_bus);
    if (rx.ring == NULL || rx.buf == NULL)
        return -1;
    memset(rx.ring, 0, RX_DESCS * sizeof(struct e1000_rx_desc));
    for (uint32_t i = 0; i < RX_DESCS; i++)
        rx.ring[i].buffer_addr = buf_bus + (uint64_t)i * BUFFER;
    rx.next = rx.gathered = 0;

    /* The station address (RAH.AV: valid), and an empty multicast table. */
    E1000_WRITE_REG(&hw, E1000_RA, (uint32_t)station[0] | (uint32_t)station[1] << 8 | (uint32_t)station[2] << 16 |
                                       (uint32_t)station[3] << 24);
    E1000_WRITE_REG(&hw, E1000_RA + 4, (uint32_t)station[4] | (uint32_t)station[5] << 8 | E1000_RAH_AV);
    for (uint32_t k = 0; k < 128; k++)
        E1000_WRITE_REG(&hw, E1000_MTA + 4 * k, 0);

    /* An interrupt for each frame stored: no receive delay (RDTR, RADV 0). */
    E1000_WRITE_REG(&hw, E1000_RDTR, 0);
    E1000_WRITE_REG(&hw, E1000_RADV, 0);
    /* IPv4 and TCP/UDP checksum offload on: the device reports, we decide. */
    E1000_WRITE_REG(&hw, E1000_RXCSUM, E1000_RXCSUM_IPOFL | E1000_RXCSUM_TUOFL);

    /* The ring, with the receiver off; RDH = RDT = 0 gives the device nothing yet. */
    E1000_WRITE_REG(&hw, E1000_RDBAL, (uint32_t)ring_bus);
    E1000_WRITE_REG(&hw, E1000_RDBAH, (uint32_t)(ring_bus >> 32));
    E1000_WRITE_REG(&hw, E1000_RDLEN, RX_DESCS * (uint32_t)sizeof(struct e1000_rx_desc));
    E1000_WRITE_REG(&hw, E1000_RDH, 0);
    E1000_WRITE_REG(&hw, E1000_RDT, 0);
    /* EN; BAM: broadcasts accepted; LPE: frames over 1518 bytes accepted, over
     * as many 2048-byte buffers as they need (BSIZE 00), EOP on the last;
     * SECRC clear: the FCS stays on the frame (SDM 13.4.22).  Unicast and
     * multicast promiscuity off, no loopback, RDMTS at half the ring. */
    E1000_WRITE_REG(&hw, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_LPE | E1000_RCTL_SZ_2048);
    /* Every descriptor but one to the device: RDT == RDH would read as none
     * (SDM 3.2.6). */
    E1000_WRITE_REG(&hw, E1000_RDT, RX_DESCS - 1);
    return 0;
}

int pnic_driver_open(struct pnic_nic *nic)
{
    memset(&rx, 0, sizeof(rx));
    memset(&tx, 0, sizeof(tx));
    hw.nic = nic;
    reset();
    /* General configuration (SDM 14.3): speed and duplex from the PHY, and the link up. */
    E1000_WRITE_REG(&hw, E1000_CTRL, E1000_READ_REG(&hw, E1000_CTRL) | E1000_CTRL_ASDE | E1000_CTRL_SLU);
    if (!(E1000_READ_REG(&hw, E1000_STATUS) & E1000_STATUS_LU))
        return -1; /* no link */
    if (setup_tx(nic) != 0 || setup_rx(nic) != 0)
        return -1; /* not enough DMA memory */
    /* Interrupt moderation (SDM 13.4.18): at most one interrupt every ITR x
     * 256 ns.  The reset cleared it (no moderation: an interrupt per frame);
     * 651, about 6000 interrupts a second, is the low end of the range the
     * SDM suggests starting from.  The ring (240 at 2048 bytes) holds far
     * more than arrives in 167 us. */
    E1000_WRITE_REG(&hw, E1000_ITR, ITR_INTERVAL);
    E1000_WRITE_REG(&hw, E1000_IMS, E1000_IMS_RXT0 | E1000_IMS_RXO | E1000_IMS_RXDMT0 | E1000_IMS_TXDW);
    return 0;
}

void pnic_driver_close(struct pnic_nic *nic)
{
    (void)nic;
    E1000_WRITE_REG(&hw, E1000_IMC, 0xffffffffu); /* no interrupt from here on */
}

/* -- transmit (SDM 3.3, 3.4) ----------------------------------------------------------------- */

static inline uint32_t tx_next(uint32_t i)
{
    return i + 1 == TX_DESCS ? 0 : i + 1;
}

/* Descriptors we may fill.  The device owns [TDH, TDT) and TDT == TDH reads as
 * an EMPTY ring (SDM 3.4), so one descriptor always stays unfilled: with all
 * of them queued, TDT would come round onto TDH and the device would send
 * none of them. */
static uint32_t tx_room(void)
{
    return (tx.reclaim + TX_DESCS - tx.fill - 1) % TX_DESCS;
}

/* Take back the descriptors of every frame the device has sent.  Only a
 * frame's last descriptor asks for status (RS), so the DD to wait for is
 * that one's: the device writes it back after it took every descriptor
 * before it (SDM 3.3.3.2).  DD is read with acquire, so what it vouches for
 * is seen. */
static void tx_clean(void)
{
    uint32_t i = tx.reclaim;
    while (i != tx.fill) {
        struct e1000_tx_desc *last = &tx.ring[tx.last_of[i]];
        if (!(__atomic_load_n(&last->status, __ATOMIC_ACQUIRE) & E1000_TXD_STAT_DD))
            break;
        last->status = 0;
        tx.sent++;
        i = tx_next(tx.last_of[i]);
    }
    tx.reclaim = i;
}

int pnic_driver_transmit(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    (void)nic;
    if (length == 0 || length > TX_MAX_FRAME) {
        tx.dropped++; /* cannot be sent: dropped and counted, not offered again forever */
        return 0;
    }
    const uint32_t need = (length + BUFFER - 1) / BUFFER;
    if (tx_room() < need) {
        tx_clean();
        if (tx_room() < need)
            return 1; /* full: the host offers the frame again */
    }
    /* Copy the frame (it is ours only during this call) into its buffers:
     * IFCS on each descriptor (the device appends the FCS), EOP and RS on the
     * last only (SDM 3.3.3.1). */
    const uint32_t first = tx.fill;
    uint32_t i = first, last = first;
    for (uint32_t off = 0; off < length;) {
        const uint32_t part = length - off < BUFFER ? length - off : BUFFER;
        struct e1000_tx_desc *d = &tx.ring[i];
        memcpy(tx.buf + (uint64_t)i * BUFFER, frame + off, part);
        off += part;
        d->length = (uint16_t)part;
        d->cso = d->css = 0;
        d->special = 0;
        d->status = 0;
        d->cmd = E1000_TXD_CMD_IFCS | (off == length ? E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS : 0);
        last = i;
        i = tx_next(i);
    }
    tx.last_of[first] = (uint16_t)last;
    tx.fill = i;
    /* The descriptors are written before TDT moves: the register write
     * orders them (a release, as writel's barrier on real hardware). */
    E1000_WRITE_REG(&hw, E1000_TDT, i);
    return 0;
}

/* -- receive (SDM 3.2) ----------------------------------------------------------------------- */

/* A whole frame, `total` bytes with its FCS: hand it up without the FCS.  The
 * errors and the checksum bits are valid on the EOP descriptor only (SDM
 * 3.2.3), which is where they come from. */
static void rx_frame(struct pnic_nic *nic, const uint8_t *data, uint32_t total, uint8_t status, uint8_t errors)
{
    if (errors & E1000_RXD_ERR_FRAME_ERR_MASK)
        return; /* CE, SE, SEQ, CXE or RXE: a bad frame; CRCERRS and RXERRC count it */
    if (total > RX_MAX_FRAME || total <= ETHERNET_FCS_SIZE) {
        rx.length_errors++;
        return;
    }
    const uint32_t length = total - ETHERNET_FCS_SIZE; /* RCTL.SECRC clear: the FCS is the last 4 bytes */
    /* Checksum offload (SDM 3.2.3.1, tables 3-2 and 3-3): IXSM set means no
     * indication at all; TCPCS says the TCP/UDP checksum was computed and TCPE
     * whether it was wrong, IPCS and IPE the same for the IPv4 header.  The
     * stack is spared its own check only for a frame the device computed and
     * found good; one it found bad still goes up, for the stack to judge. */
    const int good = !(status & E1000_RXD_STAT_IXSM) && (status & E1000_RXD_STAT_TCPCS) &&
                     !(errors & (E1000_RXD_ERR_TCPE | E1000_RXD_ERR_IPE));
    (good ? nic->deliver_checked : nic->deliver)(nic, data, length);
}

/* Hand the descriptors before `next` back: RDT is one past the last the
 * device may fill, and stays one behind our next, so that it never reaches
 * RDH (SDM 3.2.6). */
static void rx_return(uint32_t next)
{
    E1000_WRITE_REG(&hw, E1000_RDT, next == 0 ? RX_DESCS - 1 : next - 1);
}

static void rx_clean(struct pnic_nic *nic)
{
    uint32_t i = rx.next, cleaned = 0;
    for (;;) {
        struct e1000_rx_desc *d = &rx.ring[i];
        /* DD with acquire: the device wrote the buffer and the other fields first. */
        const uint8_t status = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
        if (!(status & E1000_RXD_STAT_DD))
            break;
        const uint8_t *buf = rx.buf + (uint64_t)i * BUFFER;
        const uint32_t length = d->length;
        if ((status & E1000_RXD_STAT_EOP) && rx.gathered == 0) {
            rx_frame(nic, buf, length, status, d->errors); /* the whole frame in one buffer */
        } else {
            /* A part of a longer frame: gathered, since its descriptor goes back
             * to the device before the frame is complete. */
            if (rx.gathered + length <= RX_MAX_FRAME)
                memcpy(rx.frame + rx.gathered, buf, length);
            rx.gathered += length;
            if (status & E1000_RXD_STAT_EOP) {
                rx_frame(nic, rx.frame, rx.gathered, status, d->errors);
                rx.gathered = 0;
            }
        }
        /* deliver copied the frame: the buffer can go back to the device as it is. */
        d->status = 0;
        i = i + 1 == RX_DESCS ? 0 : i + 1;
        if (++cleaned % RX_RETURN_EVERY == 0)
            rx_return(i); /* a long batch never starves the device */
    }
    rx.next = i;
    if (cleaned % RX_RETURN_EVERY != 0)
        rx_return(i);
}

/* The statistics registers clear on read (SDM 13.6): add what came since. */
static void update_stats(void)
{
    rx.crcerrs += E1000_READ_REG(&hw, E1000_CRCERRS);
    rx.rxerrc += E1000_READ_REG(&hw, E1000_RXERRC);
    rx.missed += E1000_READ_REG(&hw, E1000_MPC);
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    /* ICR clears on read (SDM 13.4.17): one read takes every pending cause. */
    const uint32_t icr = E1000_READ_REG(&hw, E1000_ICR);
    if (icr == 0)
        return; /* not ours */
    if (icr & (E1000_ICR_TXDW | E1000_ICR_TXQE))
        tx_clean();
    if (icr & RX_CAUSES)
        rx_clean(nic);
    update_stats();
}
