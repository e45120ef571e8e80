/*
 * e1000_window.c -- an e1000 receive driver in the style of a production one,
 * using nothing of pseudonic but pnic_e1000_compat.h's names and macros:
 * registers by their SDM offsets through readl/writel over a register base,
 * the FCS kept by the device (RCTL.SECRC clear, Linux's default) and taken
 * off each frame in software, frames over several descriptors gathered to
 * EOP, drops counted by the statistics registers, checksum offload trusted
 * only as the SDM says.  Written from the datasheet for this project.
 *
 *     cc -shared -fPIC -O2 -Wall -Wextra -I"$(python3 -m pseudonic include-dir)" e1000_window.c -o libe1000w.so
 *     python3 -m pseudonic check-driver ./libe1000w.so
 *
 * Async-signal-safe: no malloc, no stdio (the signal line runs the handler in a signal handler).
 */
#include <stdint.h>
#include <string.h>

#include "pnic_e1000_compat.h"

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const char pnic_driver_name[] = "e1000-window";

#define RX_CAUSES (E1000_IMS_RXT0 | E1000_IMS_RXO | E1000_IMS_RXDMT0)
#define RX_BUFFER_WRITE 16 /* descriptors handed back in groups, as Linux's e1000 does */

static struct {
    uint8_t *hw_addr; /* the register base */
    volatile struct e1000_rx_desc *ring; /* the legacy receive descriptor (SDM 3.2.3) */
    uint32_t count, next_to_clean;
    uint8_t frame[16384 + 2 * ETHERNET_FCS_SIZE]; /* a frame over several descriptors, gathered */
    uint32_t gathered;
    uint64_t drops; /* from CRCERRS and RXERRC (clear on read) */
} rx;

int pnic_driver_open(struct pnic_nic *nic)
{
    memset(&rx, 0, sizeof(rx));
    rx.hw_addr = pnic_mmio(nic);
    if (!(readl(rx.hw_addr + E1000_STATUS) & E1000_STATUS_LU))
        return -1; /* no link */
    /* The ring the device was given: RDBAH:RDBAL is its bus address, RDLEN its bytes. */
    uint64_t bus = (uint64_t)readl(rx.hw_addr + E1000_RDBAH) << 32 | readl(rx.hw_addr + E1000_RDBAL);
    rx.ring = (volatile struct e1000_rx_desc *)(nic->base + bus);
    rx.count = readl(rx.hw_addr + E1000_RDLEN) / sizeof(struct e1000_rx_desc);
    writel(E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_LPE, rx.hw_addr + E1000_RCTL); /* SECRC clear */
    writel(RX_CAUSES, rx.hw_addr + E1000_IMS);
    writel(rx.count - 1, rx.hw_addr + E1000_RDT); /* all but one: RDT == RDH would mean none */
    return 0;
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    if (!(readl(rx.hw_addr + E1000_ICR) & RX_CAUSES))
        return;
    uint32_t i = rx.next_to_clean, taken = 0;
    while (__atomic_load_n(&rx.ring[i].status, __ATOMIC_ACQUIRE) & E1000_RXD_STAT_DD) {
        volatile struct e1000_rx_desc *d = &rx.ring[i];
        const uint8_t status = d->status, errors = d->errors;
        const uint32_t length = d->length;
        if (rx.gathered + length <= sizeof(rx.frame))
            memcpy(rx.frame + rx.gathered, nic->base + d->buffer_addr, length);
        rx.gathered += length;
        if (status & E1000_RXD_STAT_EOP) {
            /* The FCS is the frame's last 4 bytes: off it comes (e1000_clean_rx_irq's length -= 4). */
            const uint32_t n = rx.gathered > ETHERNET_FCS_SIZE ? rx.gathered - ETHERNET_FCS_SIZE : 0;
            if (!(errors & E1000_RXD_ERR_FRAME_ERR_MASK) && rx.gathered <= sizeof(rx.frame) && n > 0) {
                const int checked = (status & E1000_RXD_STAT_TCPCS) && !(status & E1000_RXD_STAT_IXSM) &&
                                    !(errors & (E1000_RXD_ERR_TCPE | E1000_RXD_ERR_IPE));
                (checked ? nic->deliver_checked : nic->deliver)(nic, rx.frame, n);
            }
            rx.gathered = 0;
        }
        d->status = 0;
        i = (i + 1) % rx.count;
        if (++taken % RX_BUFFER_WRITE == 0)
            writel((i + rx.count - 1) % rx.count, rx.hw_addr + E1000_RDT);
    }
    rx.next_to_clean = i;
    if (taken % RX_BUFFER_WRITE)
        writel((i + rx.count - 1) % rx.count, rx.hw_addr + E1000_RDT);
    rx.drops += readl(rx.hw_addr + E1000_CRCERRS) + readl(rx.hw_addr + E1000_RXERRC);
}

void pnic_driver_close(struct pnic_nic *nic)
{
    (void)nic;
    writel(0xffffffffu, rx.hw_addr + E1000_IMC);
}
