"""e1000 drivers written against the register window only, the way a datasheet-driven driver is.

:class:`WindowE1000` keeps the FCS (RCTL.SECRC clear, Linux's default) and takes it off each frame
(``length -= 4``), counts its drops by the statistics registers (CRCERRS, RXERRC), and touches the
device only through ``read_reg`` / ``write_reg`` at the SDM's offsets. :class:`KeepsFcs` forgets
to take the FCS off.
"""

from __future__ import annotations

from collections import deque

from pseudonic.layout import (
    FCS,
    ICR_RXDMT0,
    ICR_RXO,
    ICR_RXT0,
    RCTL_BAM,
    RCTL_EN,
    REGISTERS,
    RX_DESC,
    RXD_ERR_FRAME,
    RXD_STAT_DD,
    RXD_STAT_EOP,
)
from pseudonic.nic import Nic

R = REGISTERS


class WindowE1000:
    name = "window"

    def open(self, nic: Nic) -> None:
        self.ring = nic.ring
        self.n = nic.read_reg(R["RDLEN"]) // RX_DESC.itemsize
        self.next_to_clean = 0
        self.parts: list[bytes] = []
        self.errors = 0
        nic.write_reg(R["RCTL"], RCTL_EN | RCTL_BAM)  # SECRC clear: frames come with their FCS
        nic.write_reg(R["IMS"], ICR_RXT0 | ICR_RXO | ICR_RXDMT0)
        nic.write_reg(R["RDT"], self.n - 1)

    def interrupt(self, nic: Nic) -> None:
        nic.read_reg(R["ICR"])
        ring, i, taken = self.ring, self.next_to_clean, 0
        while ring["status"][i] & RXD_STAT_DD:
            status, errors, length = int(ring["status"][i]), int(ring["errors"][i]), int(ring["length"][i])
            self.parts.append(bytes(nic.at(int(ring["buffer_addr"][i]), length)))
            if status & RXD_STAT_EOP:
                frame = b"".join(self.parts)
                self.parts.clear()
                if not errors & RXD_ERR_FRAME:
                    nic.upper.deliver(self.strip(frame))
            self.refill(nic, i)
            ring["status"][i] = 0
            i = (i + 1) % self.n
            taken += 1
            if taken % 16 == 0:
                nic.write_reg(R["RDT"], (i - 1) % self.n)
        self.next_to_clean = i
        if taken % 16:
            nic.write_reg(R["RDT"], (i - 1) % self.n)
        # The drops, as the hardware counted them (e1000_update_stats)
        self.errors += nic.read_reg(R["CRCERRS"]) + nic.read_reg(R["RXERRC"])

    def strip(self, frame: bytes) -> bytes:
        return frame[:-FCS]

    def refill(self, nic: Nic, i: int) -> None:
        """Descriptor ``i`` was taken: the buffer it had may be reused at once (deliver copied it)."""

    def close(self, nic: Nic) -> None:
        nic.write_reg(R["IMC"], 0xFFFFFFFF)


class KeepsFcs(WindowE1000):
    name = "keeps-fcs"

    def strip(self, frame: bytes) -> bytes:
        return frame


class RefillsE1000(WindowE1000):
    """Gives each descriptor it takes a fresh buffer (as Linux's e1000_alloc_rx_buffers does) from a free list
    that starts with a ring's worth of DMA memory: buffers go round through the pool and the DMA memory."""

    name = "refills"

    def open(self, nic: Nic) -> None:
        self.free = deque(nic.dma_alloc(nic.buf_size, 64)[1] for _ in range(nic.ring_size))
        super().open(nic)

    def refill(self, nic: Nic, i: int) -> None:
        old = int(self.ring["buffer_addr"][i])
        self.ring["buffer_addr"][i] = self.free.popleft()
        self.free.append(old)
