"""What drivers deliver socket buffers to.

``verify`` (the default) keeps every socket buffer the driver delivers --
one list append on the driver's hot path, nothing more -- and checks them
after the run: sequence number, IPv4 and UDP checksums, and the payload
against the frame sent in that slot. Success, as in the paper, means the
driver stored the frame in a socket buffer and handed it up.
``null`` only counts.

A driver hands a frame up with ``deliver``, or with ``deliver_checked`` when
the device's checksum offload vouched for it (Linux's CHECKSUM_UNNECESSARY);
the verify layer notes which deliveries came marked, so that a frame whose
checksum the device found bad, marked good, is a misdelivered fault
(:mod:`pseudonic.faults`). With the ring sanitizer on, a delivery that
carries its poison is reported as such: a buffer read it did not own.

Asked to (``keep_times``), the verify layer also notes when each delivery
came, on CLOCK_MONOTONIC (the engine's clock), and its report carries the
delivered frames and those times -- what a capture of the deliveries needs
(:mod:`pseudonic.capture`). Not asked, its hot path stays the one append.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import _engine
from .frame_list import PIECE, FrameList
from .frames import STAMP_LEN, STAMP_OFF, UDP_CSUM_OFF, FrameSet, read_stamp
from .layout import FCS, POISON, TX_STORED

#: The sanitizer's poison as it lies in memory (pnic_layout.h PNIC_POISON, stored little-endian), twice:
#: eight such bytes in a delivery are a read of a buffer the driver did not own.
POISON_MARK = POISON.to_bytes(4, "little") * 2


def gather(buffers: Any, offsets: Any, lengths: Any) -> tuple[bytes, np.ndarray[Any, Any]]:
    """deliver_many's frames copied out of ``buffers`` in one call, back to back, and their lengths (uint32):
    offsets and lengths as rx_burst gives them (uint64, uint32) or any integers, one length per offset."""
    n = len(offsets)
    if len(lengths) < n:
        raise ValueError(f"deliver_many: {n} offsets but {len(lengths)} lengths: give a length for each offset")
    off = np.ascontiguousarray(offsets[:n], dtype=np.uint64)
    size = np.ascontiguousarray(lengths[:n], dtype=np.uint32)
    try:
        return _engine.gather(buffers, off, size, n), size
    except _engine.EngineError:
        pass
    # Say which frame: the first whose offset or length is negative, or whose bytes lie past the buffers.
    total = memoryview(buffers).nbytes
    for k in range(n):
        o, length = int(offsets[k]), int(lengths[k])
        if o < 0 or length < 0 or length >= 2**32 or o + length > total:
            raise ValueError(
                f"deliver_many: frame {k} at offset {o}, {length} bytes long, lies outside the {total} bytes "
                f"of the buffers: give offsets and lengths within them (rx_burst's nic.burst.addr and length)"
            ) from None
    raise ValueError(f"deliver_many: {n} frames could not be copied out of the {total} bytes of the buffers")


class UpperLayer(Protocol):
    name: str

    def deliver(self, skb: bytes) -> None: ...

    def count(self) -> int:
        """Deliveries so far."""
        ...

    def deliver_checked(self, skb: bytes) -> None:
        """Deliver a frame whose checksums the device checked and found good (CHECKSUM_UNNECESSARY)."""
        ...

    def deliver_many(
        self, buffers: Any, offsets: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any], checked: Any = None
    ) -> None:
        """Deliver ``len(offsets)`` frames at once: each copied out of ``buffers`` (the segment, or the pool) at
        its offset and length into a socket buffer; ``checked``: per frame, marked checksum-checked."""
        ...

    def report(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any], poisoned: bool = False
    ) -> Deliveries: ...


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
    frames: FrameList | None = None
    #: per delivery, only when asked: when it was delivered, CLOCK_MONOTONIC ns (int64)
    delivered_ns: np.ndarray[Any, Any] | None = None
    #: per delivery: the driver marked it checksum-checked (deliver_checked)
    checked: np.ndarray[Any, Any] | None = None
    #: per delivery that matched no frame: the packet it is a part of (a frame over several descriptors), or -1
    partial: np.ndarray[Any, Any] | None = None
    #: deliveries that matched no frame and carry the sanitizer's poison (a buffer read it did not own)
    poisoned: int = 0
    #: how the first few deliveries that matched no frame differ (e.g. "4 bytes short of packet 17")
    corruption: list[str] = field(default_factory=list)


class NullLayer:
    """Counts deliveries and checks nothing: every delivery counts as received."""

    name = "null"

    def __init__(self) -> None:
        self.delivered = 0

    def deliver(self, skb: bytes) -> None:
        self.delivered += 1

    deliver_checked = deliver

    def deliver_many(
        self, buffers: Any, offsets: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any], checked: Any = None
    ) -> None:
        # The copy out of the receive buffers still happens, as for a real socket buffer.
        gather(buffers, offsets, lengths)
        self.delivered += len(offsets)

    def count(self) -> int:
        return self.delivered

    def report(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any], poisoned: bool = False
    ) -> Deliveries:
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
        #: bursts (deliver_many) as they came: (single deliveries before it, its frames back to back, their
        #: lengths); made into views of their frames in ``skbs`` only when the run is over (:meth:`settle_bursts`)
        self._bursts: list[tuple[int, memoryview, np.ndarray[Any, Any]]] = []
        self._in_bursts = 0
        #: per delivery, CLOCK_MONOTONIC ns: kept only with keep_times (a C driver's host fills it itself)
        self.times: list[int] | None = None
        #: indices of the deliveries marked checksum-checked
        self.checked: list[int] = []
        self.deliver: Callable[[bytes | memoryview], None]
        self.deliver_checked: Callable[[bytes | memoryview], None]
        if keep_times:
            self.times = []
            keep, note, now = self.skbs.append, self.times.append, time.monotonic_ns

            def deliver(skb: bytes | memoryview) -> None:
                note(now())
                keep(skb)

            self.deliver = deliver
        else:
            self.deliver = self.skbs.append  # the whole hot-path cost
        mark, count, then = self.checked.append, self.count, self.deliver

        def deliver_checked(skb: bytes | memoryview) -> None:
            mark(count())
            then(skb)

        self.deliver_checked = deliver_checked

    def deliver_many(
        self, buffers: Any, offsets: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any], checked: Any = None
    ) -> None:
        """The frames copied in one call into one buffer, kept as it is: no object per frame is made until the
        run is over (the verify layer's cost on the driver's clock is the copy)."""
        n = len(offsets)
        first = self.count()
        blob, size = gather(buffers, offsets, lengths)
        self._bursts.append((len(self.skbs), memoryview(blob), size.astype(np.int64)))
        self._in_bursts += n
        if self.times is not None:
            self.times.extend([time.monotonic_ns()] * n)  # delivered together: one time for the burst
        if checked is not None:
            self.checked.extend((first + np.flatnonzero(checked[:n])).tolist())

    def count(self) -> int:
        return len(self.skbs) + self._in_bursts

    def settle_bursts(self) -> None:
        """Every delivery in ``skbs``, in the order delivered: each burst's frames as views of its buffer."""
        if not self._bursts:
            return
        out: list[bytes | memoryview] = []
        prev = 0
        for pos, blob, lengths in self._bursts:
            out.extend(self.skbs[prev:pos])
            ends = np.cumsum(lengths).tolist()
            out.extend(blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True))
            prev = pos
        out.extend(self.skbs[prev:])
        self.skbs[:] = out  # the same list: deliver is its append
        self._bursts.clear()
        self._in_bursts = 0

    def adopt(self, blob: memoryview, lengths: np.ndarray[Any, Any]) -> None:
        """Deliveries made elsewhere (a C driver's host keeps them back to back in its arena), taken as one
        burst: no object per frame unless the report needs one."""
        self._bursts.append((len(self.skbs), blob, np.asarray(lengths, dtype=np.int64)))
        self._in_bursts += len(lengths)

    def kept(self) -> FrameList:
        """Every delivery in the order delivered, in the buffers it was kept in: each burst's (or a C driver's
        arena) as it is, not copied; the single deliveries between bursts (each its own object already) joined
        into pieces -- no object per frame."""
        parts: list[Any] = []
        lengths: list[np.ndarray[Any, Any]] = []

        def join(singles: list[bytes | memoryview]) -> None:
            sizes = np.array([memoryview(s).nbytes for s in singles], dtype=np.int64)
            ends = np.cumsum(sizes)
            first = 0
            while first < len(singles):  # copied into pieces of about PIECE bytes, as the pipe takes them
                last = max(int(np.searchsorted(ends, ends[first] - sizes[first] + PIECE, side="right")), first + 1)
                parts.append(b"".join(singles[first:last]))
                lengths.append(sizes[first:last])
                first = last

        prev = 0
        for pos, blob, sizes in self._bursts:
            join(self.skbs[prev:pos])
            parts.append(memoryview(blob)[: int(sizes.sum())])  # an arena may be larger than what it holds
            lengths.append(sizes)
            prev = pos
        join(self.skbs[prev:])
        return FrameList(parts, np.concatenate(lengths) if lengths else np.zeros(0, np.int64))

    def report(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any], poisoned: bool = False
    ) -> Deliveries:
        """Match every delivery to the packet it carries; ``poisoned``: the sanitizer poisoned the buffers."""
        stored = (tx_flags & TX_STORED) != 0
        if frames.stamped:
            seq = self._match_stamped(frames, slots, stored)
        else:
            self.settle_bursts()
            seq = self._match_content(frames, slots, stored)
        out = _count(seq, len(slots), verified=True)
        out.checked = np.zeros(len(seq), dtype=bool)
        out.checked[np.array(self.checked, dtype=np.int64)] = True
        out.partial = np.full(len(seq), -1, np.int64)
        if out.corrupted:
            self.settle_bursts()
            self._explain(out, frames, slots, stored, poisoned)
        if self.times is not None:
            out.frames = self.kept()
            out.delivered_ns = np.array(self.times, dtype=np.int64)
        return out

    def _match_stamped(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], stored: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """Per delivery, the stored packet it carries intact (everything but the stamp and the checksum it
        changes equal to that packet's template, the checksum the stamp gives it), or -1: in C, as a long
        run checks each delivery as it comes (pnic_verify.c), so a million deliveries take a fraction of a
        second rather than the many seconds a loop here would."""
        if self.count() == 0 or len(slots) == 0:
            return np.full(self.count(), -1, np.int64)
        frame_of = np.ascontiguousarray(slots["frame"], dtype="<u4")
        verifier = _engine.verifier_new(frames.table.tobytes(), frames.blob, frame_of.tobytes(), len(slots), 64)
        parts: list[bytes] = []
        prev = 0
        # In the order delivered: the single deliveries before each burst, then the burst, as it was kept.
        for pos, blob, lengths in self._bursts:
            parts.append(_engine.verify_match_list(verifier, self.skbs[prev:pos]))
            parts.append(_engine.verify_match_blob(verifier, blob, lengths.astype("<u4"), len(lengths)))
            prev = pos
        parts.append(_engine.verify_match_list(verifier, self.skbs[prev:]))
        seq = np.frombuffer(b"".join(parts), dtype=np.int64).copy()
        found = seq >= 0
        seq[found & ~stored[np.where(found, seq, 0)]] = -1  # a packet the device never stored was not sent
        return seq

    def _explain(
        self,
        out: Deliveries,
        frames: FrameSet,
        slots: np.ndarray[Any, Any],
        stored: np.ndarray[Any, Any],
        poisoned: bool,
    ) -> None:
        """For each delivery that matched no frame: poison, a part of a frame over several descriptors, or how
        it differs from the frame it names."""
        assert out.partial is not None
        parts = slots["parts"] if "parts" in (slots.dtype.names or ()) else np.zeros(len(slots), np.uint16)
        split = np.flatnonzero(stored & (parts > 1))
        # Parts without a stamp cannot name their packet: give each to the earliest split frame not yet given one.
        pieces: dict[bytes, list[int]] = {}
        for i in split.tolist():
            t = frames.templates[int(slots["frame"][i])]
            n = int(parts[i])
            chunk = -(-len(t) // n)
            for k in range(n):
                a = k * chunk
                if a + chunk <= UDP_CSUM_OFF or a >= STAMP_OFF + STAMP_LEN or not frames.stamped:
                    pieces.setdefault(t[a : a + chunk], []).append(i)
        taken: dict[bytes, int] = {}
        for k in np.flatnonzero(out.seq < 0).tolist():
            skb = bytes(self.skbs[k])
            how = ""
            if poisoned and POISON_MARK in skb:
                out.poisoned += 1
                how = f"delivery {k} carries the sanitizer's poison from byte {skb.index(POISON_MARK)}"
            stamp = read_stamp(skb) if len(skb) >= STAMP_OFF + STAMP_LEN else None
            if stamp is not None and stamp[0] < len(slots) and stored[stamp[0]]:
                p = stamp[0]
                t = frames.templates[int(slots["frame"][p])]
                if parts[p] > 1 and len(skb) < len(t):
                    out.partial[k] = p
                    how = how or f"delivery {k} is the first {len(skb)} of {len(t)} bytes of packet {p} (a part)"
                elif not how:
                    how = _difference(k, skb, t, p)
            elif skb in pieces:
                used = taken.get(skb, 0)
                owners = pieces[skb]
                out.partial[k] = owners[min(used, len(owners) - 1)]
                taken[skb] = used + 1
                how = how or f"delivery {k} is a {len(skb)}-byte part of packet {out.partial[k]} (a part)"
            elif stamp is not None and not how:
                p = stamp[0]
                how = (f"delivery {k} names packet {p}, which the device never stored" if p < len(slots)
                       else f"delivery {k} names packet {p}, past the {len(slots)} sent")  # fmt: skip
            if how and len(out.corruption) < 3:
                out.corruption.append(how)

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


#: Sequence numbers a long run's verifier judges order over (pnic_verify.c): far more than any ring holds.
STREAM_WINDOW = 1 << 20


class StreamVerifyLayer:
    """A long run's verify layer: each delivery checked as it comes, in C, and nothing kept (pnic_verify.c).

    ``deliver`` stays one list append on the driver's hot path; the host hands the list to the verifier after
    each handler run (:meth:`settle`), and a burst (:meth:`deliver_many`) is checked as it is copied out.
    """

    name = "verify"
    #: deliveries held before the host's settle checks them
    SETTLE_AT = 256

    def __init__(self, frames: FrameSet, frame_of: np.ndarray[Any, Any], total: int) -> None:
        self.frames, self.frame_of = frames, frame_of
        self.verifier = _engine.verifier_new(
            frames.table.tobytes(), frames.blob, frame_of.astype("<u4").tobytes(), total, STREAM_WINDOW
        )
        self.skbs: list[bytes | memoryview] = []
        self.checked_count = 0
        self.deliver: Callable[[bytes | memoryview], None] = self.skbs.append
        self.deliver_checked: Callable[[bytes | memoryview], None] = self.skbs.append

    def deliver_many(
        self, buffers: Any, offsets: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any], checked: Any = None
    ) -> None:
        n = len(offsets)
        blob, size = gather(buffers, offsets, lengths)
        self.flush()  # in the order delivered
        _engine.verify_blob(self.verifier, blob, size, n)
        self.checked_count += n

    def flush(self) -> None:
        if self.skbs:
            _engine.verify_list(self.verifier, self.skbs)
            self.checked_count += len(self.skbs)
            self.skbs.clear()

    def settle(self) -> None:
        """After a handler run: check what it delivered once enough is held."""
        if len(self.skbs) >= self.SETTLE_AT:
            self.flush()

    def count(self) -> int:
        return self.checked_count + len(self.skbs)

    def report(
        self, frames: FrameSet, slots: np.ndarray[Any, Any], tx_flags: np.ndarray[Any, Any], poisoned: bool = False
    ) -> Deliveries:
        self.flush()
        return streamed(_engine.verifier_stats(self.verifier), self.frames, self.frame_of)


def streamed(stats: dict[str, Any], frames: FrameSet, frame_of: np.ndarray[Any, Any]) -> Deliveries:
    """A long run's deliveries from its verifier's counts; the first that matched nothing explained."""
    out = Deliveries(
        int(stats["delivered"]), int(stats["received"]), int(stats["duplicated"]), int(stats["reordered"]),
        int(stats["corrupted"]), True, np.zeros(0, np.int64),
    )  # fmt: skip
    # A delivery behind the window is a duplicate or a frame held back that long: a fault either way.
    out.duplicated += int(stats["stale"])
    if stats["stale"]:
        out.corruption.append(
            f"{stats['stale']} deliveries came more than {stats['window']} packets after their turn: each a "
            "duplicate, or a frame held back that long (the window cannot tell which)"
        )
    for k, skb in stats["bad"]:
        stamp = read_stamp(skb)
        if stamp is not None:
            t = frames.templates[int(frame_of[stamp[0] % len(frame_of)])]
            out.corruption.append(_difference(int(k), skb, t, stamp[0]))
        else:
            out.corruption.append(f"delivery {k} carries no stamp of a packet sent ({len(skb)} B)")
    return out


def _difference(k: int, skb: bytes, template: bytes, packet: int) -> str:
    """How delivery ``k`` differs from the frame of ``packet`` it carries the stamp of."""
    if len(skb) == len(template) + FCS and zlib.crc32(skb[:-FCS]).to_bytes(FCS, "little") == skb[-FCS:]:
        return (
            f"delivery {k} is packet {packet} with its FCS still on: RCTL.SECRC is clear, so the device counts the "
            f"{FCS}-byte CRC in the length, and the driver must take it off (Linux's e1000: length -= 4)"
        )
    if len(skb) != len(template):
        diff = len(template) - len(skb)
        return f"delivery {k} is {abs(diff)} bytes {'short of' if diff > 0 else 'longer than'} packet {packet}"
    skip = set(range(UDP_CSUM_OFF, UDP_CSUM_OFF + 2)) | set(range(STAMP_OFF, STAMP_OFF + STAMP_LEN))
    first = next((i for i in range(len(skb)) if i not in skip and skb[i] != template[i]), None)
    if first is None:
        return f"delivery {k} has packet {packet}'s bytes but a bad checksum"
    return f"delivery {k} differs from packet {packet} from byte {first}"


def _count(seq: np.ndarray[Any, Any], sent: int, verified: bool) -> Deliveries:
    """Each delivery judged in the order delivered: -1 corrupted; a packet's first delivery received (and
    reordered if a higher packet came first); a later one duplicated."""
    seq = np.asarray(seq, dtype=np.int64)
    good = np.flatnonzero(seq >= 0)
    if good.size and int(seq[good].max()) >= sent:
        raise ValueError(f"a delivery names packet {int(seq[good].max())} of {sent} sent")
    # Each packet's first delivery, in the order delivered.
    first = np.sort(good[np.unique(seq[good], return_index=True)[1]])
    firsts = seq[first]
    received = int(first.size)
    reordered = int(np.count_nonzero(firsts[1:] < np.maximum.accumulate(firsts)[:-1])) if received else 0
    corrupted = int(seq.size - good.size)
    return Deliveries(len(seq), received, int(good.size) - received, reordered, corrupted, verified, seq)


def make_upper(name: str, keep_times: bool = False) -> UpperLayer:
    """The upper layer called ``name`` (config.UPPER_LAYERS lists them); ``keep_times``: see :class:`VerifyLayer`.

    The null layer keeps nothing, so it has neither frames nor times to give.
    """
    layer: UpperLayer = VerifyLayer(keep_times) if name == "verify" else NullLayer()
    return layer
