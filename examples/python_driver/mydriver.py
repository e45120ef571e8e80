"""mydriver.py -- a minimal receive driver for pseudonic, in Python.

pseudonic plays an Intel e1000 NIC: its device node writes frames into a ring of
receive descriptors and raises an interrupt for each. A driver is a class with
three methods, built with no arguments in pseudonic's driver node:

    open(nic)       once, before the first packet: give the ring to the device
    interrupt(nic)  once per interrupt taken: take what the device wrote
    close(nic)      once, after the last packet

Run it, and check it against the conformance suite:

    python3 -m pseudonic run --driver examples/python_driver/mydriver.py:MyDriver
    python3 -m pseudonic check-driver examples/python_driver/mydriver.py:MyDriver

Ring rules (8254x SDM 3.2.6): the device owns descriptors RDH..RDT-1; it sets DD
in a descriptor's status once the frame is in its buffer. The driver takes
descriptors with DD set, in order, clears them and hands them back by moving
RDT. The reference driver, pseudonic.drivers.e1000.E1000, does the same, faster.
"""

from __future__ import annotations

from pseudonic.layout import ICR_RXDMT0, ICR_RXO, ICR_RXT0, RXD_ERR_FRAME, RXD_STAT_DD, RXD_STAT_EOP
from pseudonic.nic import Nic

#: The interrupt causes a receive driver handles (SDM 13.4.17).
RX_CAUSES = ICR_RXT0 | ICR_RXO | ICR_RXDMT0


class MyDriver:
    name = "mydriver"  # what results show as the driver

    def __init__(self) -> None:
        self.next_to_clean = 0  # the next descriptor we expect the device to complete
        self.rx_errors = 0  # frames dropped for error bits; pseudonic reports this attribute
        self.discarding = False  # inside a frame over several descriptors: drop every part until EOP

    def open(self, nic: Nic) -> None:
        # Give the device every descriptor but one: RDT == RDH would mean "you own none".
        nic.write_rdt(nic.ring_size - 1)
        # Unmask our causes (IMS): from now on they raise the interrupt line.
        nic.enable_interrupts(RX_CAUSES)

    def interrupt(self, nic: Nic) -> None:
        # ICR says why we were interrupted; reading it clears it. None of our causes: not ours.
        if not nic.read_icr() & RX_CAUSES:
            return
        ring, mask = nic.ring, nic.ring_size - 1
        i = self.next_to_clean
        taken = 0
        # Take every completed descriptor. There may be none: an interrupt is no promise of a frame.
        while ring["status"][i] & RXD_STAT_DD:
            status, errors = int(ring["status"][i]), int(ring["errors"][i])
            if self.discarding or not status & RXD_STAT_EOP:
                # A part of a frame over several descriptors: drop it whole, every part up to EOP
                # (as Linux e1000 does when not set up for jumbo frames). Never hand a part up.
                self.discarding = not status & RXD_STAT_EOP
            elif errors & RXD_ERR_FRAME:
                # A frame error (SDM table 3-3: CRC, symbol, ...): drop it, and count it. IPE/TCPE are not
                # among them: they only say the checksum offload found a bad checksum; deliver such a frame.
                self.rx_errors += 1
            else:
                # Copy the frame into a socket buffer (bytes) and hand it up.
                length = int(ring["length"][i])
                nic.upper.deliver(bytes(nic.buffer(i)[:length]))
            ring["status"][i] = 0  # cleared: we will not take it again before the device refills it
            i = (i + 1) & mask
            taken += 1
        if taken:
            self.next_to_clean = i
            # Hand the cleaned descriptors back: RDT is one past the last one the device may use.
            nic.write_rdt((i - 1) & mask)

    def close(self, nic: Nic) -> None:
        nic.disable_interrupts(RX_CAUSES)  # IMC: no more interrupts
