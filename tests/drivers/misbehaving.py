"""Drivers that misbehave on purpose, for the end-to-end and CLI tests."""

from __future__ import annotations

import os
import signal
import time

from pseudonic.drivers.e1000 import E1000
from pseudonic.nic import Nic


class SlowE1000(E1000):
    """Spends 300 us in every handler run: slower than the device sends."""

    name = "slow"

    def interrupt(self, nic: Nic) -> None:
        until = time.perf_counter() + 300e-6
        while time.perf_counter() < until:
            pass
        super().interrupt(nic)


class RaisingE1000(E1000):
    """Raises in its tenth handler run."""

    name = "raising"
    runs = 0

    def interrupt(self, nic: Nic) -> None:
        self.runs += 1
        if self.runs == 10:
            raise ZeroDivisionError("deliberate fault in handler run 10")
        super().interrupt(nic)


class KilledE1000(E1000):
    """Its node is killed by SIGKILL in the fifth handler run, as if it crashed."""

    name = "killed"
    runs = 0

    def interrupt(self, nic: Nic) -> None:
        self.runs += 1
        if self.runs == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        super().interrupt(nic)


class HangingE1000(E1000):
    """Never returns from its fifth handler run."""

    name = "hanging"
    runs = 0

    def interrupt(self, nic: Nic) -> None:
        self.runs += 1
        while self.runs >= 5:
            pass
        super().interrupt(nic)
