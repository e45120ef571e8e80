"""Planted virtio-net drivers: the reference receive path with one ownership rule of the split virtqueue broken each.

:class:`SteppedVirtioNet` is :class:`~pseudonic.drivers.virtio_net.VirtioNet`'s ``take`` and ``rearm``
written as a loop over small steps -- which used entry, read its frame, give its chains back, move
last_used on, ask for the next interrupt, have I caught up -- so that each planted driver below overrides
the step its bug lives in and keeps the rest. Unchanged, it passes every virtio check-driver case
(``tests/test_virtio_conformance.py`` checks that too), so whatever a planted driver fails is its bug's doing.

:data:`BUGS` states, per bug, the check-driver cases that must catch it and the finding each must name;
the tests and ``benchmarks/planted_bugs.py --device virtio-net`` use them. Sections are VIRTIO 1.1's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pseudonic.conformance import CaseResult
from pseudonic.drivers.virtio_net import AVAIL_BATCH, VirtioNet
from pseudonic.layout import (
    VIRTIO_NET_HDR,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTQ_AVAIL_F_NO_INTERRUPT,
)
from pseudonic.nic import VirtioNic

#: where num_buffers lies in struct virtio_net_hdr (5.1.6: flags, gso_type, hdr_len, gso_size, csum_start,
#: csum_offset, num_buffers -- two bytes before it, five u16 after)
NUM_BUFFERS = 10


class SteppedVirtioNet(VirtioNet):
    """The reference receive path, step by step (behaves as :class:`VirtioNet`, only a little slower)."""

    name = "stepped-virtio"

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        # Where each chain's buffer lies in the pool: wherever the reference put it (read, not restated).
        self._at = (nic.desc["addr"] - nic.buf_off).astype(int).tolist()

    # -- the steps ----------------------------------------------------------------------------

    def entry(self, nic: VirtioNic, i: int) -> tuple[int, int]:
        """Used entry ``i`` (a free-running index): its chain's head and the bytes the device wrote there."""
        head, length = (int(x) for x in nic.used_ring[i & (nic.ring_size - 1)].tolist())
        return head, length

    def read(self, nic: VirtioNic, head: int, start: int, length: int) -> bytes:
        """Bytes ``start``..``length`` of the buffer of chain ``head``, copied out."""
        at = self._at[head]
        return bytes(self._pool[at + start : at + length])

    def recycle(self, nic: VirtioNic, heads: list[int], pending: list[int]) -> None:
        """The chains of a frame just copied out go back (only now: 2.6), published AVAIL_BATCH at a time."""
        pending += heads
        if len(pending) >= AVAIL_BATCH:
            self.give_back(nic, pending)

    def advance(self, nic: VirtioNic, i: int, n: int) -> int:
        """last_used moved past ``n`` used entries: a free-running 16-bit index (2.6.8)."""
        return (i + n) & 0xFFFF

    def event_index(self, nic: VirtioNic) -> int:
        """What used_event asks for when re-arming: the next used entry the driver will take (2.6.7.2)."""
        return self.last_used

    def caught_up(self, nic: VirtioNic) -> bool:
        """Whether the driver has taken every used entry: used.idx is where last_used is."""
        return int(nic.used_idx[0]) == self.last_used

    # -- the loop (VirtioNet.take and rearm) -------------------------------------------------------

    def rearm(self, nic: VirtioNic) -> bool:
        if self.event_idx:
            nic.used_event[0] = self.event_index(nic)
        nic.mb()  # used_event stored before used.idx is loaded (2.6.7.2)
        return self.caught_up(nic)

    def take(self, nic: VirtioNic, budget: int | None = None) -> int:
        deliver = nic.upper.deliver
        # The entries used since last time, counted in 16 bits (both indices run free, 2.6.8).
        new = (int(nic.used_idx[0]) - self.last_used) & 0xFFFF
        limit = 1 << 16 if budget is None else budget
        i, taken, frames = self.last_used, 0, 0
        pending: list[int] = []
        while taken < new and frames < limit:
            head, length = self.entry(nic, i)
            if length < VIRTIO_NET_HDR:  # a chain the device gave back unwritten: counted, given back
                self.rx_errors += 1
                self.recycle(nic, [head], pending)
                i = self.advance(nic, i, 1)
                taken += 1
                continue
            count = 1
            if self.mergeable:  # MRG_RXBUF (5.1.6.4): the frame goes on in the next num_buffers - 1 entries
                count = int.from_bytes(self.read(nic, head, NUM_BUFFERS, NUM_BUFFERS + 2), "little")
                there = new - taken
                if not 0 < count <= there:
                    # A frame's entries are used together: a num_buffers of none, or of more than are there, is
                    # the device's error (the C reference's check, receive_mergeable's): those entries go back.
                    self.rx_errors += 1
                    n = min(max(count, 1), there)
                    self.recycle(nic, [self.entry(nic, (i + k) & 0xFFFF)[0] for k in range(n)], pending)
                    i = self.advance(nic, i, n)
                    taken += n
                    continue
            heads, parts = [head], [self.read(nic, head, VIRTIO_NET_HDR, length)]
            for k in range(1, count):
                h, n = self.entry(nic, (i + k) & 0xFFFF)
                heads.append(h)
                parts.append(self.read(nic, h, 0, n))
            deliver(parts[0] if count == 1 else b"".join(parts))
            self.recycle(nic, heads, pending)
            i = self.advance(nic, i, count)
            taken += count
            frames += 1
        self.last_used = i
        self.give_back(nic, pending)
        return frames


# -- the planted bugs, one ownership rule each --------------------------------------------------------------


class ReusesBeforeTaken(SteppedVirtioNet):
    """Bug (a), a buffer reused before it was taken: having read a used entry and its header, makes the chain
    available again and only then copies the frame out of it ("it is mine, it was used") -- but a chain in the
    available ring is the device's (2.6), which may write the next frame into it meanwhile. Under the sanitizer
    its buffer is poisoned the moment it is made available, so every frame it copies is poison."""

    name = "planted-reuses-before-taken"

    def read(self, nic: VirtioNic, head: int, start: int, length: int) -> bytes:
        if start != NUM_BUFFERS:  # the frame's bytes (the header's num_buffers is looked at first)
            self.give_back(nic, [head])  # the bug: available again before its frame is copied out
        return super().read(nic, head, start, length)

    def recycle(self, nic: VirtioNic, heads: list[int], pending: list[int]) -> None:
        pass  # already made available (the bug), before its frame was read


class LastUsedWrapsAtQueueSize(SteppedVirtioNet):
    """Bug (b), a used entry consumed twice: keeps last_used as a ring slot, wrapping it at the queue size
    (``(i + 1) % size``, a packed ring's habit, 2.7) where a split ring's runs free over 16 bits (2.6.8), and
    so asks whether it caught up by comparing slots. Its count of new entries is the split ring's, (used.idx
    - last_used) mod 2^16: once used.idx has passed the queue's size that is a whole queue too many, and every
    take reads the ring round again -- entries it already took, whose chains it made available (the sanitizer
    poisoned them), or that hold a newer frame -- and makes their chains available again while the device owns
    them: more than the queue holds, which the sanitizer names avail-overrun (2.6.13). Without EVENT_IDX (a
    minimal driver) it is interrupted for every used buffer; with it, used_event would be a slot too, and the
    device would go quiet after the first wrap instead (bug (c)'s finding, not this one's)."""

    name = "planted-last-used-wraps-at-queue-size"

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        nic.accept_features(nic.features & ~(1 << VIRTIO_RING_F_EVENT_IDX))
        self.event_idx = False

    def advance(self, nic: VirtioNic, i: int, n: int) -> int:
        return (i + n) % nic.ring_size  # the bug: the queue's size, not 2^16

    def caught_up(self, nic: VirtioNic) -> bool:
        return int(nic.used_idx[0]) % nic.ring_size == self.last_used  # slots, as last_used is one


class EventIndexOffByOne(SteppedVirtioNet):
    """Bug (c), the event index off by one: re-arms with used_event = last_used + 1, "interrupt me after the
    next one" -- but need_event fires when used.idx passes used_event, so the entry at last_used itself goes
    unannounced (2.6.7.2): a frame that comes alone after a pause is left in the used ring for good."""

    name = "planted-event-index-off-by-one"

    def event_index(self, nic: VirtioNic) -> int:
        return (self.last_used + 1) & 0xFFFF  # the bug: one past the next entry to take


class SuppressedAndWaited(SteppedVirtioNet):
    """Bug (d), a suppressed notification waited for: negotiates without EVENT_IDX and, NAPI style, sets
    VIRTQ_AVAIL_F_NO_INTERRUPT in its handler while it polls (2.6.7.1) -- and forgets to clear it before it
    re-arms and waits: the device then interrupts for nothing more, and a suppressed interrupt is not owed."""

    name = "planted-suppressed-and-waited"

    def open(self, nic: VirtioNic) -> None:
        super().open(nic)
        nic.accept_features(nic.features & ~(1 << VIRTIO_RING_F_EVENT_IDX))
        self.event_idx = False

    def interrupt(self, nic: VirtioNic) -> None:
        nic.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT  # no interrupts while polling ...
        while self.take(nic) and not self.rearm(nic):
            pass  # ... the bug: never cleared before waiting


# -- the bugs, and what must catch them ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    letter: str
    name: str
    driver: type[SteppedVirtioNet]
    #: check-driver cases (virtio-net) that must fail, each with a text its detail must contain
    cases: dict[str, str]


POISON = "poisoned: the driver read a buffer after it had made its chain available again"
TWICE = "frames delivered more than once: a used entry taken twice"

BUGS: tuple[Bug, ...] = (
    Bug("a", "buffer reused before it was taken", ReusesBeforeTaken,
        cases={"delivery": POISON, "wrap-around": POISON}),
    Bug("b", "used entry consumed twice", LastUsedWrapsAtQueueSize,
        cases={"delivery": TWICE, "wrap-around": TWICE}),
    Bug("c", "event index off by one", EventIndexOffByOne,
        cases={"interrupt suppression": "used_event must be the index of the next used entry"}),
    Bug("d", "a suppressed notification waited for", SuppressedAndWaited,
        cases={"delivery": "the driver suppressed interrupts and then waited for one",
               "interrupt suppression": "the driver suppressed interrupts and then waited for one"}),
)  # fmt: skip


def not_caught(bug: Bug, results: list[CaseResult]) -> list[str]:
    """The bug's cases that check-driver did not fail naming its problem (none: caught as expected)."""
    by_name = {r.name: r for r in results}
    return [name for name, text in bug.cases.items() if by_name[name].passed or text not in by_name[name].detail]
