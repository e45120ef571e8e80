"""e1000 drivers that place their own rings in DMA memory, as a real driver does (SDM 14.4, 14.5), and drivers
that program them wrong.

:class:`OwnRingE1000` is :class:`~drivers.window_e1000.WindowE1000` (FCS kept, drops counted by the statistics
registers) on a receive ring of its own: receive off while the ring is programmed (Linux's
``e1000_configure_rx``), 200 descriptors -- a multiple of 8, not a power of two -- of 2048-byte buffers,
RDBAL/RDBAH/RDLEN, RDH = RDT = 0, then RCTL.EN, then the descriptors handed over.
"""

from __future__ import annotations

import numpy as np

from drivers.window_e1000 import WindowE1000
from pseudonic.layout import CTRL_RST, RCTL_BAM, RCTL_EN, RCTL_LPE, REGISTERS, RX_DESC
from pseudonic.nic import Nic

R = REGISTERS
BUF = 2048  # RCTL.BSIZE 00, BSEX clear


class OwnRingE1000(WindowE1000):
    name = "own-ring"
    RING = 200

    def open(self, nic: Nic) -> None:
        nic.write_reg(R["RCTL"], 0)  # receive off while the ring is programmed
        self.ring, bus = nic.dma_array(self.RING, RX_DESC)
        _, buffers = nic.dma_alloc(self.RING * BUF, 4096)
        self.ring["buffer_addr"] = buffers + np.arange(self.RING, dtype=np.uint64) * BUF
        self.n = self.RING
        self.next_to_clean = 0
        self.parts: list[bytes] = []
        self.errors = 0
        self.program(nic, bus)
        nic.write_reg(R["RDH"], 0)
        nic.write_reg(R["RDT"], 0)
        # SECRC clear: the FCS kept; LPE: a frame longer than a buffer spans descriptors, EOP on its last.
        nic.write_reg(R["RCTL"], RCTL_EN | RCTL_BAM | RCTL_LPE)
        nic.write_reg(R["IMS"], 0x80 | 0x40 | 0x10)
        nic.write_reg(R["RDT"], self.n - 1)

    def program(self, nic: Nic, bus: int) -> None:
        nic.write_reg(R["RDBAL"], bus & 0xFFFFFFFF)
        nic.write_reg(R["RDBAH"], bus >> 32)
        nic.write_reg(R["RDLEN"], self.RING * RX_DESC.itemsize)


class ResetsFirst(OwnRingE1000):
    """Resets the device before it sets up (xv6's lab driver does: CTRL.RST)."""

    name = "resets-first"

    def open(self, nic: Nic) -> None:
        nic.write_reg(R["CTRL"], CTRL_RST)
        super().open(nic)


class RdlenNotMultiple(OwnRingE1000):
    name = "rdlen-100"

    def program(self, nic: Nic, bus: int) -> None:
        super().program(nic, bus)
        nic.write_reg(R["RDLEN"], 100)


class RingOutsideDma(OwnRingE1000):
    """Points RDBAL past the DMA memory it was handed."""

    name = "ring-outside"

    def program(self, nic: Nic, bus: int) -> None:
        super().program(nic, bus)
        nic.write_reg(R["RDBAL"], (bus + (64 << 20)) & 0xFFFFFFFF)


class NoRingProgrammed(WindowE1000):
    """Resets the device, then enables receive without programming a ring."""

    name = "no-ring"

    def open(self, nic: Nic) -> None:
        nic.write_reg(R["CTRL"], CTRL_RST)
        super().open(nic)
