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


class DuplicatingE1000(E1000):
    """Never clears DD: every descriptor is taken again on the next pass round the ring."""

    name = "duplicating"

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        ring, i, taken = nic.ring, self.next_to_clean, 0
        mask = nic.ring_size - 1
        while ring["status"][i] & 0x01 and taken < nic.ring_size:
            nic.upper.deliver(bytes(nic.buffer(i)[: int(ring["length"][i])]))
            i, taken = (i + 1) & mask, taken + 1
        self.next_to_clean = i
        if taken:
            nic.write_rdt((i - 1) & mask)
        return taken


class CorruptingE1000(E1000):
    """Delivers every frame with its last byte flipped (one by one, so that every frame goes through deliver)."""

    name = "corrupting"

    def take_burst(self, nic: Nic, most: int) -> int:
        return 0

    def open(self, nic: Nic) -> None:
        super().open(nic)
        deliver, checked = nic.upper.deliver, nic.upper.deliver_checked
        nic.upper.deliver = lambda skb: deliver(skb[:-1] + bytes([skb[-1] ^ 0xFF]))  # type: ignore[method-assign]
        nic.upper.deliver_checked = lambda skb: checked(skb[:-1] + bytes([skb[-1] ^ 0xFF]))  # type: ignore[method-assign]


class MaskedE1000(E1000):
    """Forgets to unmask its interrupt causes in open."""

    name = "masked"

    def open(self, nic: Nic) -> None:
        super().open(nic)
        nic.disable_interrupts(0xFFFFFFFF)


class NoTailE1000(E1000):
    """Never hands a descriptor to the device (no RDT write)."""

    name = "no-tail"

    def open(self, nic: Nic) -> None:
        nic.enable_interrupts(0xFF)


class ErrorBlindDriver:
    """Ignores the error byte (delivers every frame) and keeps no rx_errors."""

    name = "error-blind"

    def __init__(self) -> None:
        self.next_to_clean = 0

    def open(self, nic: Nic) -> None:
        nic.write_rdt(nic.ring_size - 1)
        nic.enable_interrupts(0xFF)

    def interrupt(self, nic: Nic) -> None:
        nic.read_icr()
        ring, i, mask = nic.ring, self.next_to_clean, nic.ring_size - 1
        while ring["status"][i] & 0x01:
            nic.upper.deliver(bytes(nic.buffer(i)[: int(ring["length"][i])]))
            ring["status"][i] = 0
            i = (i + 1) & mask
        self.next_to_clean = i
        nic.write_rdt((i - 1) & mask)

    def close(self, nic: Nic) -> None:
        pass


class ForkingE1000(E1000):
    """Forks a child in open that would sleep for a minute, and one that leaves its session."""

    name = "forking"

    def open(self, nic: Nic) -> None:
        super().open(nic)
        for new_session in (False, True):
            if os.fork() == 0:
                if new_session:
                    os.setsid()
                time.sleep(60)
                os._exit(0)
