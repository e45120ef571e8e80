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
        # The run of written-back descriptors from next-to-clean, as it stands now: only these are taken, so
        # a frame the device writes back meanwhile never reaches the reference path with its error bits.
        order = (self.next_to_clean + np.arange(nic.ring_size)) & (nic.ring_size - 1)
        not_done = np.flatnonzero((nic.ring["status"][order] & RXD_STAT_DD) == 0)
        done = order[: not_done[0] if len(not_done) else nic.ring_size]
        nic.ring["errors"][done] = 0  # forget them before the reference path looks
        return super().clean_rx(nic, len(done) if budget is None else min(budget, len(done)))
