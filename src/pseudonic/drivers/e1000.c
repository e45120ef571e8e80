/*
 * The reference driver in C: the same receive path as drivers/e1000.py, the
 * receive path of Linux's e1000 (drivers/net/ethernet/intel/e1000/e1000_main.c:
 * e1000_intr, e1000_clean, e1000_clean_rx_irq, e1000_clean_jumbo_rx_irq,
 * e1000_rx_checksum), built by the package build and selected as --driver c.
 *
 * Per interrupt: read ICR (read-to-clear); not ours if no receive cause.
 * Interrupt mode: take every written-back descriptor (DD set).  A frame may
 * span several descriptors, EOP on its last: the parts are gathered and the
 * frame delivered whole at EOP, as the jumbo path does; one whose parts are
 * not all written back yet is finished by the next interrupt.  At EOP: a
 * frame error (RXD_ERR_FRAME) drops the frame and counts it once; otherwise
 * the frame is delivered, marked checksum-checked only if the device says so
 * (TCPCS, IXSM clear, neither IPE nor TCPE).  NAPI mode (napi_budget > 0):
 * mask RXT0, poll up to the budget at a time until the ring is clean, then
 * unmask -- a cause that arrived meanwhile raises the line again at once.
 * Descriptors go back to the device (status cleared first) every
 * E1000_RX_BUFFER_WRITE (16) cleaned, as e1000 does, so a long batch never
 * starves the device.
 */
#include <stdint.h>
#include <string.h>

#include "pseudonic.h"

#define RX_CAUSES (PNIC_ICR_RXT0 | PNIC_ICR_RXO | PNIC_ICR_RXDMT0)
#define RX_BUFFER_WRITE 16u

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const char pnic_driver_name[] = "c";

static uint32_t next_to_clean;
/* A frame over several descriptors, gathered until its EOP. */
static uint8_t gathered[PNIC_MAX_FRAME];
static uint32_t gathered_len;

int pnic_driver_open(struct pnic_nic *nic)
{
    next_to_clean = 0;
    gathered_len = 0;
    /* All descriptors but one go to the device: RDT == RDH would mean "none". */
    pnic_rdt_write(nic, nic->ring_size - 1);
    pnic_ims_write(nic->drv, RX_CAUSES);
    return 0;
}

/* Hand a frame up (e1000_receive_skb after e1000_rx_checksum). */
static void deliver(struct pnic_nic *nic, const struct pnic_rx_desc *d, uint8_t status, const uint8_t *frame,
                    uint32_t length)
{
    int checked = !(status & PNIC_RXD_STAT_IXSM) && (status & PNIC_RXD_STAT_TCPCS) &&
                  !(d->errors & (PNIC_RXD_ERR_TCPE | PNIC_RXD_ERR_IPE));
    (checked ? nic->deliver_checked : nic->deliver)(nic, frame, length);
}

/* Take up to `budget` written-back descriptors; return how many were taken. */
static uint32_t clean_rx(struct pnic_nic *nic, uint32_t budget)
{
    const uint32_t mask = nic->ring_size - 1;
    uint32_t i = next_to_clean, taken = 0, returned = 0;
    while (taken < budget) {
        struct pnic_rx_desc *d = &nic->ring[i];
        uint8_t status = pnic_desc_status(d);
        if (!(status & PNIC_RXD_STAT_DD))
            break;
        const uint8_t *buf = nic->base + d->buffer_addr;
        if (!(status & PNIC_RXD_STAT_EOP) || gathered_len != 0) {
            /* A part of a longer frame: gather it (a frame too long for us is dropped whole at EOP). */
            if (gathered_len + d->length <= sizeof(gathered))
                memcpy(gathered + gathered_len, buf, d->length);
            gathered_len += d->length;
            if (status & PNIC_RXD_STAT_EOP) {
                if ((d->errors & PNIC_RXD_ERR_FRAME) || gathered_len > sizeof(gathered))
                    nic->rx_errors++;
                else
                    deliver(nic, d, status, gathered, gathered_len);
                gathered_len = 0;
            }
        } else if (d->errors & PNIC_RXD_ERR_FRAME) {
            nic->rx_errors++;
        } else {
            deliver(nic, d, status, buf, d->length);
        }
        d->status = 0;
        i = (i + 1) & mask;
        if (++taken - returned == RX_BUFFER_WRITE) {
            pnic_rdt_write(nic, (i - 1) & mask);
            returned = taken;
        }
    }
    if (taken != returned)
        pnic_rdt_write(nic, (i - 1) & mask);
    next_to_clean = i;
    return taken;
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    if (!(pnic_icr_read(nic) & RX_CAUSES))
        return; /* not ours */
    if (nic->napi_budget == 0) {
        clean_rx(nic, nic->ring_size);
        return;
    }
    pnic_imc_write(nic->drv, PNIC_ICR_RXT0);
    while (clean_rx(nic, nic->napi_budget) == nic->napi_budget)
        ;
    pnic_ims_write(nic->drv, PNIC_ICR_RXT0);
}

void pnic_driver_close(struct pnic_nic *nic)
{
    pnic_imc_write(nic->drv, RX_CAUSES);
}
