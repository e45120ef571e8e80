/*
 * mydriver.c -- a small receive driver for pseudonic, written to be read and changed.
 *
 * pseudonic plays an Intel e1000 NIC: a device node writes frames into a ring
 * of receive descriptors in shared memory and raises an interrupt for each.
 * This library is the driver.  It exports three entry points and an ABI stamp
 * (see pseudonic.h); pseudonic calls them from its driver node:
 *
 *     pnic_driver_open       once, before the first packet: give the ring to the device
 *     pnic_driver_interrupt  once per interrupt taken: take what the device wrote
 *     pnic_driver_close      once, after the last packet
 *
 * Build and try it (README.md next to this file):
 *
 *     cc -shared -fPIC -O2 -Wall -Wextra -I"$(python3 -m pseudonic include-dir)" mydriver.c -o libmydriver.so
 *     python3 -m pseudonic check-driver ./libmydriver.so
 *
 * The rules of the ring (8254x SDM 3.2.6), in one paragraph: the device owns
 * the descriptors from RDH (its head) up to RDT - 1 (our tail); RDH == RDT
 * means it owns none.  When it has written a frame into a descriptor's
 * buffer it sets DD ("descriptor done") in the descriptor's status and moves
 * RDH on.  We take descriptors with DD set, in ring order, from where we
 * stopped last time; when done with one we clear its status and, by writing
 * RDT, hand it back.  If we are slow the ring fills and the device drops
 * frames (counting them in MPC): it never waits for us.
 *
 * Everything here is async-signal-safe (no malloc, no stdio, no locks), since
 * with --irq signal pnic_driver_interrupt runs inside a signal handler.
 */
#include <stdint.h>

#include "pseudonic.h"

/* The ABI stamp pseudonic checks when it loads the library, and a name for results. */
const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
const char pnic_driver_name[] = "mydriver";

/* The interrupt causes we care about (SDM 13.4.17): a frame was stored (RXT0),
 * a frame was dropped (RXO), the free descriptors ran low (RXDMT0). */
#define MY_RX_CAUSES (PNIC_ICR_RXT0 | PNIC_ICR_RXO | PNIC_ICR_RXDMT0)

/* Our state: the next descriptor we expect the device to complete.  One NIC
 * per process, so a static will do; a driver for several would keep it in
 * nic->priv. */
static uint32_t next_to_clean;
/* Inside a frame that spans several descriptors: we drop every part of it
 * until its last (EOP), as Linux's e1000 does when it is not set up for
 * jumbo frames (adapter->discarding). */
static int discarding;

int pnic_driver_open(struct pnic_nic *nic)
{
    next_to_clean = 0;
    discarding = 0;

    /* Give the device every descriptor but one.  Giving all of them would
     * mean RDT == RDH, which the device reads as "I own none". */
    pnic_rdt_write(nic, nic->ring_size - 1);

    /* Unmask our causes (IMS): from now on they raise the interrupt line. */
    pnic_ims_write(nic->drv, MY_RX_CAUSES);
    return 0; /* 0: ready.  Anything else refuses the run. */
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    /* 1. Why were we interrupted?  Reading ICR also clears it.  An interrupt
     *    with none of our causes is not ours: leave. */
    uint32_t icr = pnic_icr_read(nic);
    if (!(icr & MY_RX_CAUSES))
        return;

    /* 2. Take every descriptor the device has completed.  Do not assume there
     *    is one: an interrupt says a cause was set, not that a frame is
     *    waiting (a previous run of this handler may already have taken it).
     *    The ring size is a power of two, so "& mask" wraps the index. */
    const uint32_t mask = nic->ring_size - 1;
    uint32_t i = next_to_clean;
    uint32_t taken = 0;
    for (;;) {
        struct pnic_rx_desc *desc = &nic->ring[i];

        /* Read status with acquire ordering (pnic_desc_status): once we see
         * DD, we also see the length and the frame the device wrote before it. */
        uint8_t status = pnic_desc_status(desc);
        if (!(status & PNIC_RXD_STAT_DD))
            break; /* the device has not written this one yet */

        if (discarding || !(status & PNIC_RXD_STAT_EOP)) {
            /* 3a. A part of a frame over several descriptors: drop it whole,
             *     every part up to the one with EOP.  (A driver that handed
             *     a part up would deliver a truncated frame.) */
            discarding = !(status & PNIC_RXD_STAT_EOP);
        } else if (desc->errors & PNIC_RXD_ERR_FRAME) {
            /* 3b. A frame with a frame error (SDM table 3-3: CRC, symbol, ...):
             *     drop it, but count it.  IPE and TCPE are not among them: they
             *     only say the checksum offload found a bad checksum, and such a
             *     frame is delivered (plain deliver: not marked checked). */
            nic->rx_errors++;
        } else {
            /* 4. A good frame: hand it to the upper layer.  deliver copies it
             *    into a socket buffer, so the receive buffer is free again
             *    as soon as it returns.  buffer_addr is an offset into the
             *    shared segment (there is no DMA here). */
            nic->deliver(nic, nic->base + desc->buffer_addr, desc->length);
        }

        /* 5. Clear the status, so that we do not take this descriptor again
         *    before the device has refilled it. */
        desc->status = 0;
        i = (i + 1) & mask;
        taken++;
    }

    if (taken == 0)
        return; /* a spurious interrupt: nothing to do, and that is fine */

    /* 6. Hand the cleaned descriptors back.  RDT is "one past the last
     *    descriptor the device may use", so it points at the last one we
     *    cleaned (i - 1): the device never catches up with next_to_clean.
     *    pnic_rdt_write is a release store, so the device sees the cleared
     *    statuses before it sees the new tail. */
    next_to_clean = i;
    pnic_rdt_write(nic, (i - 1) & mask);
}

void pnic_driver_close(struct pnic_nic *nic)
{
    /* Mask our causes (IMC): no more interrupts for us. */
    pnic_imc_write(nic->drv, MY_RX_CAUSES);
}
