"""What drivers deliver socket buffers to.

``verify`` (the default) keeps every socket buffer the driver delivers --
one list append on the driver's hot path, nothing more -- and checks them
after the run: sequence number, IPv4 and UDP checksums, and the payload
against the frame sent in that slot. Success, as in the paper, means the
driver stored the frame in a socket buffer and handed it up.
``null`` only counts.

Asked to (``keep_times``), the verify layer also notes when each delivery
came, on CLOCK_MONOTONIC (the engine's clock), and its report carries the
delivered frames and those times -- what a capture of the deliveries needs
(:mod:`pseudonic.capture`). Not asked, its hot path stays the one append.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .frames import STAMP_LEN, STAMP_OFF, UDP_CSUM_OFF, FrameSet, ipv4_udp_ok, read_stamp
from .layout import TX_STORED


class UpperLayer(Protocol):
    name: str

    def deliver(self, skb: bytes) -> None: ...

    def report(self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any]) -> Deliveries: ...


@dataclass
class Deliveries:
    delivered: int
    received: int
    duplicated: int
    reordered: int
    corrupted: int
    verified: bool
    seq: np.ndarray[Any, Any]  # per delivery: the packet it was matched to, -1 if none
    #: per delivery, only when asked (keep_frames): the frame as delivered
    frames: list[bytes] | None = None
    #: per delivery, only when asked: when it was delivered, CLOCK_MONOTONIC ns (int64)
    delivered_ns: np.ndarray[Any, Any] | None = None


class NullLayer:
    """Counts deliveries and checks nothing: every delivery counts as received."""

    name = "null"

    def __init__(self) -> None:
        self.delivered = 0

    def deliver(self, skb: bytes) -> None:
        self.delivered += 1

    def report(self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any]) -> Deliveries:
        return Deliveries(self.delivered, self.delivered, 0, 0, 0, False, np.full(self.delivered, -1, np.int64))


#: glibc's mallopt parameter: freed memory at the top of the heap is kept below this size.
_M_TRIM_THRESHOLD = -1
#: The most memory warm_heap prepares, whatever the run.
WARM_HEAP_MAX = 512 << 20


def warm_heap(count: int, size: int) -> int:
    """Fault in the heap the socket buffers of a run will take, before the run; returns bytes prepared.

    Every socket buffer a Python driver delivers is a new ``bytes`` of the frame's size, and the
    verify layer keeps them all, so without this the heap grows during the run and every new page
    costs the driver's handler a page fault (measured: 2.8 us mean per 1500 B packet against 1.9 us
    with the heap warm). A kernel's slab caches are warm the same way. glibc only: elsewhere, or if
    mallopt is missing, nothing is done.
    """
    nbytes = min(count * size, WARM_HEAP_MAX)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(WARM_HEAP_MAX + (64 << 20))) != 1:
            return 0
    except (OSError, AttributeError):
        return 0
    blocks = [bytes(size) for _ in range(nbytes // max(size, 1))]
    del blocks  # freed into the heap, which now keeps it: the run's buffers reuse these pages
    return nbytes


class VerifyLayer:
    """Stores every delivered socket buffer; verifies them all after the run.

    With ``keep_times``, each delivery is also stamped with ``time.monotonic_ns()`` (CLOCK_MONOTONIC, the
    engine's clock) and the report carries the frames and the stamps (``Deliveries.frames``,
    ``Deliveries.delivered_ns``).
    """

    name = "verify"

    def __init__(self, keep_times: bool = False) -> None:
        self.skbs: list[bytes | memoryview] = []
        #: per delivery, CLOCK_MONOTONIC ns: kept only with keep_times (a C driver's host fills it itself)
        self.times: list[int] | None = None
        self.deliver: Callable[[bytes | memoryview], None]
        if keep_times:
            self.times = []
            keep, note, now = self.skbs.append, self.times.append, time.monotonic_ns

            def deliver(skb: bytes | memoryview) -> None:
                note(now())
                keep(skb)

            self.deliver = deliver
        else:
            self.deliver = self.skbs.append  # the whole hot-path cost

    def report(self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any]) -> Deliveries:
        stored = (tx_flags & TX_STORED) != 0
        seq = (
            self._match_stamped(frames, slots, stored) if frames.stamped else self._match_content(frames, slots, stored)
        )
        out = _count(seq, len(slots), verified=True)
        if self.times is not None:
            out.frames = [bytes(s) for s in self.skbs]
            out.delivered_ns = np.array(self.times, dtype=np.int64)
        return out

    def _match_stamped(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], stored: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        seq = np.full(len(self.skbs), -1, np.int64)
        frame_of = slots["frame"]
        end = STAMP_OFF + STAMP_LEN
        for k, kept in enumerate(self.skbs):
            skb = bytes(kept)  # one frame at a time: a C driver's deliveries are views into its arena
            stamp = read_stamp(skb)
            if stamp is None or stamp[0] >= len(slots) or not stored[stamp[0]]:
                continue
            t = frames.templates[int(frame_of[stamp[0]])]
            # Everything but the stamp and the checksum it changes must equal the template.
            if (
                len(skb) == len(t)
                and skb[:UDP_CSUM_OFF] == t[:UDP_CSUM_OFF]
                and skb[UDP_CSUM_OFF + 2 : STAMP_OFF] == t[UDP_CSUM_OFF + 2 : STAMP_OFF]
                and skb[end:] == t[end:]
                and ipv4_udp_ok(skb)
            ):
                seq[k] = stamp[0]
        return seq

    def _match_content(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], stored: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        # Without a sequence number, a delivery is matched to the earliest stored
        # packet with the same bytes; reordering among identical frames cannot show.
        pending: dict[bytes, deque[int]] = {t: deque() for t in frames.templates}
        for i in np.flatnonzero(stored):
            pending[frames.templates[int(slots["frame"][i])]].append(int(i))
        last: dict[bytes, int] = {}
        seq = np.full(len(self.skbs), -1, np.int64)
        for k, kept in enumerate(self.skbs):
            skb = bytes(kept)
            q = pending.get(skb)
            if q is None:
                continue
            if q:
                last[skb] = q.popleft()
            if skb in last:
                seq[k] = last[skb]  # a repeat of the last match counts as a duplicate
        return seq


def _count(seq: np.ndarray[Any, Any], sent: int, verified: bool) -> Deliveries:
    seen = np.zeros(sent, dtype=bool)
    received = duplicated = reordered = corrupted = 0
    highest = -1
    for s in seq.tolist():
        if s < 0:
            corrupted += 1
        elif seen[s]:
            duplicated += 1
        else:
            seen[s] = True
            received += 1
            if s < highest:
                reordered += 1
            highest = max(highest, s)
    return Deliveries(len(seq), received, duplicated, reordered, corrupted, verified, seq)


def make_upper(name: str, keep_times: bool = False) -> UpperLayer:
    """The upper layer called ``name`` (config.UPPER_LAYERS lists them); ``keep_times``: see :class:`VerifyLayer`.

    The null layer keeps nothing, so it has neither frames nor times to give.
    """
    layer: UpperLayer = VerifyLayer(keep_times) if name == "verify" else NullLayer()
    return layer
