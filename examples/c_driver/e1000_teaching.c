/*
 * e1000_teaching.c -- a small e1000 driver of the kind students write in a
 * teaching OS's network lab, written for this project from the 8254x
 * Software Developer's Manual (SDM):
 *
 *   - one ring each way, 16 descriptors, a 2048-byte buffer per descriptor;
 *   - set up as SDM 14.4 and 14.5 say: reset, transmit ring, receive ring;
 *   - one frame per descriptor, both ways;
 *   - registers through readl/writel at the SDM's offsets.
 *
 *     cc -shared -fPIC -O2 -Wall -Wextra -Werror -I"$(python3 -m pseudonic include-dir)" e1000_teaching.c -o libteach.so
 *     python3 -m pseudonic check-driver ./libteach.so
 *     python3 -m pseudonic run --driver ./libteach.so --transmit 1000 --sanitize
 */
#include <stdint.h>
#include <string.h>

#include "pnic_e1000_compat.h"

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const char pnic_driver_name[] = "e1000-teaching";

#define TX_RING_SIZE 16
#define RX_RING_SIZE 16
#define BUF_SIZE 2048

static uint8_t *regs; /* the register base: readl(regs + E1000_ICR) */

static struct e1000_tx_desc *tx_ring;
static struct e1000_rx_desc *rx_ring;
static uint8_t *tx_bufs; /* descriptor i's buffer is at tx_bufs + i * BUF_SIZE */
static uint8_t *rx_bufs;

static int in_long_frame; /* dropping the parts of a frame longer than one buffer */

int pnic_driver_open(struct pnic_nic *nic)
{
    uint64_t tx_ring_addr = 0, rx_ring_addr = 0, tx_bufs_addr = 0, rx_bufs_addr = 0; /* bus addresses */
    tx_ring = pnic_dma_alloc(nic, TX_RING_SIZE * sizeof(struct e1000_tx_desc), 128, &tx_ring_addr);
    rx_ring = pnic_dma_alloc(nic, RX_RING_SIZE * sizeof(struct e1000_rx_desc), 128, &rx_ring_addr);
    tx_bufs = pnic_dma_alloc(nic, TX_RING_SIZE * BUF_SIZE, 4096, &tx_bufs_addr);
    rx_bufs = pnic_dma_alloc(nic, RX_RING_SIZE * BUF_SIZE, 4096, &rx_bufs_addr);
    if (tx_ring == NULL || rx_ring == NULL || tx_bufs == NULL || rx_bufs == NULL)
        return -1;
    regs = pnic_mmio(nic);
    in_long_frame = 0;

    /* Reset the device, and keep its interrupts masked while we set it up. */
    writel(readl(regs + E1000_CTRL) | E1000_CTRL_RST, regs + E1000_CTRL);
    writel(0xffffffff, regs + E1000_IMC);

    /* Transmit (SDM 14.5).  Every descriptor starts out "done" (DD set), so
     * that transmit can tell a free descriptor by its DD. */
    memset(tx_ring, 0, TX_RING_SIZE * sizeof(struct e1000_tx_desc));
    for (int i = 0; i < TX_RING_SIZE; i++) {
        tx_ring[i].buffer_addr = tx_bufs_addr + (uint64_t)i * BUF_SIZE;
        tx_ring[i].status = E1000_TXD_STAT_DD;
    }
    writel((uint32_t)tx_ring_addr, regs + E1000_TDBAL);
    writel((uint32_t)(tx_ring_addr >> 32), regs + E1000_TDBAH);
    writel(TX_RING_SIZE * sizeof(struct e1000_tx_desc), regs + E1000_TDLEN);
    writel(0, regs + E1000_TDH);
    writel(0, regs + E1000_TDT);
    writel(E1000_TCTL_EN | E1000_TCTL_PSP, regs + E1000_TCTL);
    writel(10 | 8 << 10 | 6 << 20, regs + E1000_TIPG); /* the gap IEEE 802.3 asks for (SDM 13.4.34) */

    /* Receive (SDM 14.4): our MAC address 02:00:00:00:00:02 (AV: valid), no multicast. */
    writel(0x00000002, regs + E1000_RA);
    writel(0x0200 | E1000_RAH_AV, regs + E1000_RA + 4);
    for (int i = 0; i < 128; i++)
        writel(0, regs + E1000_MTA + 4 * i);
    memset(rx_ring, 0, RX_RING_SIZE * sizeof(struct e1000_rx_desc));
    for (int i = 0; i < RX_RING_SIZE; i++)
        rx_ring[i].buffer_addr = rx_bufs_addr + (uint64_t)i * BUF_SIZE;
    writel((uint32_t)rx_ring_addr, regs + E1000_RDBAL);
    writel((uint32_t)(rx_ring_addr >> 32), regs + E1000_RDBAH);
    writel(RX_RING_SIZE * sizeof(struct e1000_rx_desc), regs + E1000_RDLEN);
    writel(0, regs + E1000_RDH);
    writel(RX_RING_SIZE - 1, regs + E1000_RDT); /* all descriptors but one to the device */
    /* Receiver on, broadcasts accepted, 2048-byte buffers, the CRC stripped. */
    writel(E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_SZ_2048 | E1000_RCTL_SECRC, regs + E1000_RCTL);

    /* An interrupt for every frame received, at once. */
    writel(0, regs + E1000_RDTR);
    writel(E1000_IMS_RXT0, regs + E1000_IMS);
    return 0;
}

int pnic_driver_transmit(struct pnic_nic *nic, const uint8_t *frame, uint32_t length)
{
    (void)nic;
    if (length > BUF_SIZE)
        return 0; /* one descriptor per frame here: a longer frame is dropped (0: not offered again) */

    uint32_t tail = readl(regs + E1000_TDT);
    struct e1000_tx_desc *d = &tx_ring[tail];
    /* Is the descriptor at the tail free?  The device sets DD when it has sent
     * it (we ask it to: RS). */
    if (!(__atomic_load_n(&d->status, __ATOMIC_ACQUIRE) & E1000_TXD_STAT_DD))
        return -1; /* the ring is full: we will be asked again */
    /* DD alone is not enough: we must also leave one descriptor free.  The
     * device owns the descriptors from TDH up to TDT - 1, and TDT == TDH
     * means the ring is EMPTY (SDM 3.4).  Fill the last free descriptor too
     * and TDT comes round onto TDH: the device sees an empty ring and never
     * sends the frames queued, their DD never comes back, and transmit says
     * "full" for ever.  QEMU's e1000 hides this: it sends each frame at once,
     * inside the write to TDT, so its ring is empty whenever we look.  A
     * device that sends in its own time, as this one (and real hardware)
     * does, does not hide it. */
    if ((tail + 1) % TX_RING_SIZE == readl(regs + E1000_TDH))
        return -1;

    memcpy(tx_bufs + tail * BUF_SIZE, frame, length); /* frame is ours only during this call */
    d->length = (uint16_t)length;
    d->cmd = E1000_TXD_CMD_EOP | E1000_TXD_CMD_IFCS | E1000_TXD_CMD_RS; /* whole frame, add the CRC, report */
    d->status = 0;
    writel((tail + 1) % TX_RING_SIZE, regs + E1000_TDT);
    return 0;
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    readl(regs + E1000_ICR); /* reading ICR acknowledges the interrupt (it clears on read) */

    /* The device owns the descriptors from RDH up to RDT - 1.  RDT is the one
     * we kept back, so the one after it is the oldest the device may have
     * filled. */
    for (;;) {
        uint32_t i = (readl(regs + E1000_RDT) + 1) % RX_RING_SIZE;
        struct e1000_rx_desc *d = &rx_ring[i];
        if (!(__atomic_load_n(&d->status, __ATOMIC_ACQUIRE) & E1000_RXD_STAT_DD))
            break; /* not filled yet */

        if (!(d->status & E1000_RXD_STAT_EOP) || in_long_frame) {
            /* A frame longer than one buffer: drop every part of it, up to EOP. */
            in_long_frame = !(d->status & E1000_RXD_STAT_EOP);
            if (!in_long_frame)
                nic->rx_errors++;
        } else if (d->errors & E1000_RXD_ERR_FRAME_ERR_MASK) {
            nic->rx_errors++; /* a damaged frame: drop it, and count it */
        } else {
            nic->deliver(nic, rx_bufs + i * BUF_SIZE, d->length); /* deliver copies it */
        }

        d->status = 0;
        writel(i, regs + E1000_RDT); /* we keep i now; the one we kept before goes back to the device */
    }
}

void pnic_driver_close(struct pnic_nic *nic)
{
    (void)nic;
    writel(0xffffffff, regs + E1000_IMC);
}
