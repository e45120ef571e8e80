"""Drivers that break one rule of the receive path each, for the conformance tests."""

from __future__ import annotations

import numpy as np

from pseudonic.drivers.e1000 import E1000
from pseudonic.layout import ICR_RXT0, RXD_STAT_DD
from pseudonic.nic import Nic


class NoSpuriousE1000(E1000):
    """Takes an interrupt as a promise of a frame: raises when ICR says RXT0 and no descriptor has DD."""

    name = "no-spurious"

    def interrupt(self, nic: Nic) -> None:
        icr = nic.read_icr()
        if icr & ICR_RXT0 and not (nic.ring["status"] & RXD_STAT_DD).any():
            raise RuntimeError(f"interrupt with ICR {icr:#x} but no descriptor done")
        self.clean_rx(nic)


class DeliversErrorsE1000(E1000):
    """Ignores the descriptor's error bits: delivers CRC-damaged frames as if they were good."""

    name = "delivers-errors"

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        done = np.flatnonzero(nic.ring["status"] & RXD_STAT_DD)
        nic.ring["errors"][done] = 0  # forget them before the reference path looks
        return super().clean_rx(nic, budget)
