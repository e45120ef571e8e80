"""Captures in and out: a pcap or pcapng file as a plan, and what a run sent and delivered as pcap files.

In: :func:`read_capture` reads a pcap (µs or ns timestamps) or pcapng file
with scapy -- the raw bytes of each frame and its capture timestamp, exact
to the ns -- and :func:`capture_plan` turns it into a
:class:`~pseudonic.plan.Plan`: the capture's frames, sent as they are
(unstamped), on the capture's own inter-arrival times.

- The first frame is due at 0; frame i at ``(t[i] - t[0]) / speed``, each
  deadline computed from the timestamps themselves (never by adding gaps,
  so there is no drift) and rounded to the nearest ns (halves up). ``speed``
  2 plays the capture twice as fast, 0.5 at half speed (tcpreplay's
  ``--multiplier``).
- ``loop`` k plays the capture k times (tcpreplay's ``--loop``): each loop
  starts one *median gap* of the capture after the last frame of the loop
  before -- loop j is the capture shifted by j * (its span + its median gap),
  then divided by ``speed`` like the rest. The median gap is that of the
  capture's consecutive frames, rounded down to the ns; a one-frame capture
  has no gap to loop on and is refused.
- Frame i of the plan's frame set is the capture's frame i (no two frames
  are merged, even when their bytes are equal), and every loop sends the
  same frames again.

What is refused, with one line naming the file and the problem: a file that
is missing or cannot be read; one that is not a pcap or pcapng capture, or
whose header is damaged; one that ends inside a record (a capture still
being written, or a damaged file -- the line names the frame); a frame
captured in part (its snap length); a capture with no frames; a link type
other than Ethernet; a pcapng frame without a timestamp (a Simple Packet
Block). A capture whose timestamps go backwards (merged captures, a clock
step) reads as it is, but makes no plan: a plan's deadlines must not
decrease, so :func:`capture_plan` names the first frame stamped before the
one ahead of it (``reordercap`` sorts a capture by time). A frame shorter
than 60 B or longer than the receive buffer is refused too: the device
writes each frame into one descriptor's buffer (frames over several
descriptors are not modelled).

Out: :func:`write_pcap` writes a nanosecond-resolution pcap (magic
0xa1b23c4d, LINKTYPE_ETHERNET) that tcpdump, Wireshark and scapy read.
:func:`sent_capture` is what the device sent: per schedule entry, the frame
byte for byte as the device wrote it -- a stamped frame with its sequence
number (the schedule index) and send timestamp (the entry's ``start_ns``),
the UDP checksum patched as the engine does (RFC 1624) -- stamped with the
time the device began sending it. Frames the device dropped (no free
descriptor) are in it: they reached the wire side, and a capture of what
was sent should show what the driver never saw. Spurious-interrupt entries
carry no frame and are not in it. :func:`delivered_capture` is what the
driver handed up, stamped with the time it did. The run's timestamps are
CLOCK_MONOTONIC; pcap timestamps are wall-clock time, so both take the
run's ``clock_offset_ns`` (CLOCK_REALTIME - CLOCK_MONOTONIC, measured at the
run) and add it.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np

from . import schedule
from .errors import ConfigError
from .frame_list import FrameList
from .frames import MIN_FRAME, STAMP_LEN, FrameSet
from .layout import SLOT_SPURIOUS, TX_SPURIOUS, TXV_INTACT
from .plan import MAX_PACKETS, Plan

#: pcap link type of Ethernet (LINKTYPE_ETHERNET, tcpdump's EN10MB)
LINKTYPE_ETHERNET = 1
#: Link types a user may hold by mistake, named in the refusal.
_LINKTYPE_NAMES = {
    0: "NULL (BSD loopback)",
    101: "RAW (IP without a link layer)",
    105: "IEEE802_11 (Wi-Fi)",
    113: "LINUX_SLL (tcpdump -i any)",
    127: "IEEE802_11_RADIOTAP (Wi-Fi)",
    228: "IPV4",
    229: "IPV6",
    276: "LINUX_SLL2 (tcpdump -i any)",
}
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"
_NS = 1_000_000_000
#: Frames stamped at a time by sent_frames.
_ROWS = 1 << 14
#: A pcap record stamps whole seconds in a u32.
_MAX_PCAP_NS = (1 << 32) * _NS - 1


@dataclass(frozen=True, eq=False)
class Capture:
    """Frames and their capture timestamps (absolute ns: wall-clock time for a capture taken on a wire)."""

    frames: Sequence[bytes]
    #: per frame: the capture timestamp, ns (int64)
    stamps_ns: np.ndarray[Any, Any]
    linktype: int = LINKTYPE_ETHERNET
    #: where it came from (the file, as given), for messages and a plan's origin
    name: str = ""

    def __len__(self) -> int:
        return len(self.frames)


# -- in ------------------------------------------------------------------------------------------


def read_capture(path: str | os.PathLike[str]) -> Capture:
    """The frames and timestamps of a pcap (µs or ns) or pcapng file; :class:`ConfigError` names what is wrong."""
    name = os.fspath(path)
    kind = _kind_of(name)
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapNgReader, RawPcapReader

    try:
        reader = RawPcapReader(name)
    except Scapy_Exception:
        raise ConfigError(f"capture {name}: its {kind} file header is cut short or damaged") from None
    except OSError as exc:
        raise ConfigError(f"capture {name} cannot be read: {exc.strerror or exc}") from None
    frames: list[bytes] = []
    stamps: list[int] = []
    try:
        with reader, _scapy_quiet():
            ng = isinstance(reader, RawPcapNgReader)
            if not ng:
                _check_linktype(name, int(reader.linktype), None)
            scale = 1 if getattr(reader, "nano", False) else 1000
            good_end = reader.f.tell()
            for data, meta in cast("Iterator[tuple[bytes, Any]]", reader):
                i = len(frames)
                if ng:
                    _check_linktype(name, int(meta.linktype), i)
                    if meta.tshigh is None:
                        raise ConfigError(
                            f"capture {name}: frame {i} has no timestamp (a pcapng Simple Packet Block): "
                            "give a capture whose frames are Enhanced Packet Blocks"
                        )
                    stamps.append(((meta.tshigh << 32) | meta.tslow) * _NS // int(meta.tsresol))
                    caplen = len(data)
                else:
                    stamps.append(meta.sec * _NS + meta.usec * scale)
                    caplen = int(meta.caplen)
                    if caplen != len(data):
                        raise ConfigError(
                            f"capture {name}: frame {i} is cut short (its record holds {caplen} bytes, the file "
                            f"{len(data)}): a capture still being written, or a damaged file"
                        )
                if caplen < int(meta.wirelen):
                    raise ConfigError(
                        f"capture {name}: frame {i} was captured in part ({caplen} of {meta.wirelen} bytes, "
                        "the capture's snap length): capture whole frames (tcpdump -s 0)"
                    )
                frames.append(bytes(data))
                good_end = reader.f.tell()
            # The readers end quietly at a record they cannot finish: what follows the last whole
            # frame must be nothing (pcap) or whole blocks (pcapng: statistics and the like).
            reader.f.seek(good_end)
            rest = reader.f.read()
            if rest and not (ng and _whole_blocks(rest, reader.endian)):
                raise ConfigError(
                    f"capture {name} ends inside frame {len(frames)} ({len(rest)} bytes of a partial record): "
                    "a capture still being written, or a damaged file"
                )
    except OSError as exc:
        raise ConfigError(f"capture {name} cannot be read: {exc.strerror or exc}") from None
    if not frames:
        raise ConfigError(f"capture {name} holds no frames")
    return Capture(frames, np.array(stamps, dtype=np.int64), LINKTYPE_ETHERNET, name)


def _kind_of(name: str) -> str:
    """'pcap' or 'pcapng', from the file's first bytes (gzip-compressed captures too, as scapy reads them)."""
    try:
        with open(name, "rb") as f:
            head = f.read(4)
            if head[:2] == _GZIP_MAGIC:
                f.seek(0)
                try:
                    with gzip.GzipFile(fileobj=f) as g:
                        head = g.read(4)
                except (OSError, EOFError):
                    raise ConfigError(f"capture {name} is not a pcap or pcapng capture (a damaged gzip file)") from None
    except OSError as exc:
        raise ConfigError(f"capture {name} cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise ConfigError(f"capture {name} is empty: give a pcap or pcapng capture")
    if head in _PCAP_MAGICS:
        return "pcap"
    if head == _PCAPNG_MAGIC:
        return "pcapng"
    raise ConfigError(f"capture {name} is not a pcap or pcapng capture (it begins {head.hex(' ')})")


def _check_linktype(name: str, linktype: int, frame: int | None) -> None:
    if linktype == LINKTYPE_ETHERNET:
        return
    what = f"{linktype} ({_LINKTYPE_NAMES[linktype]})" if linktype in _LINKTYPE_NAMES else str(linktype)
    where = f"frame {frame} has" if frame is not None else "has"
    raise ConfigError(
        f"capture {name}: {where} link type {what}: pseudonic sends Ethernet frames; "
        "give a capture of link type 1 (Ethernet), taken on one Ethernet interface"
    )


def _whole_blocks(rest: bytes, endian: str) -> bool:
    """True if ``rest`` is whole pcapng blocks: type, total length, body, total length again."""
    off = 0
    while off < len(rest):
        if len(rest) - off < 12:
            return False
        (length,) = struct.unpack_from(endian + "I", rest, off + 4)
        if length < 12 or length % 4 or off + length > len(rest):
            return False
        if struct.unpack_from(endian + "I", rest, off + length - 4)[0] != length:
            return False
        off += length
    return True


@contextlib.contextmanager
def _scapy_quiet() -> Iterator[None]:
    """scapy logs what it skips; pseudonic refuses it with a ConfigError instead."""
    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def capture_plan(
    capture: Capture | str | os.PathLike[str], *, buffer_size: int, speed: float = 1.0, loop: int = 1
) -> Plan:
    """A plan that plays ``capture`` (a :class:`Capture` or a file) on its own timing: see the module docstring."""
    cap = capture if isinstance(capture, Capture) else read_capture(capture)
    name = cap.name or "(in memory)"
    rate = _speed(speed)
    loops = _loop(loop)
    n = len(cap.frames)
    stamps = np.asarray(cap.stamps_ns, dtype=np.int64)
    if n == 0:
        raise ConfigError(f"capture {name} holds no frames")
    if stamps.shape != (n,):
        raise ConfigError(f"capture {name}: {n} frames but {stamps.size} timestamps: give one timestamp per frame")
    if n * loops > MAX_PACKETS:
        raise ConfigError(
            f"capture {name}: {n} frames × loop {loops} = {n * loops} packets: give at most {MAX_PACKETS} in all"
        )
    for i, frame in enumerate(cap.frames):
        if not MIN_FRAME <= len(frame) <= buffer_size:
            raise ConfigError(
                f"capture frame {i} is {len(frame)} bytes: frames must be {MIN_FRAME}..{buffer_size} bytes "
                "(the receive buffer size; a frame over several descriptors is not modelled)"
            )
    back = np.flatnonzero(np.diff(stamps) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ConfigError(
            f"capture {name}: frame {i} is stamped {int(stamps[i - 1] - stamps[i])} ns before frame {i - 1}: "
            "a plan's deadlines must not decrease; sort the capture by time (reordercap)"
        )
    offsets = stamps - stamps[0]
    period = 0
    if loops > 1:
        if n == 1:
            raise ConfigError(
                f"capture {name} holds one frame: looping needs a gap between frames; give loop 1, "
                "or a periodic plan (an interval and a count)"
            )
        period = int(offsets[-1]) + _median_gap(offsets)
    due = _scaled(offsets, period, loops, rate)
    slots = schedule.from_offsets(due, frames=np.tile(np.arange(n, dtype=np.int64), loops))
    origin = {"kind": "pcap", "file": cap.name, "frames": n, "speed": float(speed), "loop": loops}
    return Plan.make(slots, FrameSet.of(list(cap.frames), stamped=False), origin)


def _speed(speed: Any) -> Fraction:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed <= 0:
        raise ConfigError(f"speed {speed!r} is out of range: give a number above 0 (2 plays the capture twice as fast)")
    # The decimal the user wrote (1.1 is 11/10), not the binary float nearest to it.
    return Fraction(repr(float(speed)))


def _loop(loop: Any) -> int:
    if isinstance(loop, bool) or not isinstance(loop, (int, np.integer)) or not 1 <= int(loop) <= MAX_PACKETS:
        raise ConfigError(f"loop {loop!r} is out of range: give a whole number of plays, 1..{MAX_PACKETS}")
    return int(loop)


def _median_gap(offsets: np.ndarray[Any, Any]) -> int:
    gaps = np.sort(np.diff(offsets))
    m = gaps.size // 2
    return int(gaps[m]) if gaps.size % 2 else (int(gaps[m - 1]) + int(gaps[m])) // 2


def _scaled(offsets: np.ndarray[Any, Any], period: int, loops: int, rate: Fraction) -> np.ndarray[Any, Any]:
    """round((j * period + offset) / rate) for every loop j and offset, halves up, in exact integers."""
    num, den = rate.numerator, rate.denominator
    top = (loops - 1) * period + int(offsets[-1])
    if top * 2 * den + num < 1 << 62:  # int64 cannot overflow
        t = (np.arange(loops, dtype=np.int64)[:, None] * period + offsets[None, :]).reshape(-1)
        scaled: np.ndarray[Any, Any] = (t * (2 * den) + num) // (2 * num)
        return scaled
    base = [int(o) for o in offsets]
    return np.array([((j * period + o) * 2 * den + num) // (2 * num) for j in range(loops) for o in base], np.int64)


# -- out -----------------------------------------------------------------------------------------


def write_pcap(
    path: str | os.PathLike[str], frames: Sequence[bytes | memoryview], stamps_ns: Sequence[int] | np.ndarray[Any, Any]
) -> None:
    """Write ``frames`` with their timestamps (ns since the epoch) as a nanosecond pcap of Ethernet frames."""
    name = os.fspath(path)
    stamps = [int(s) for s in stamps_ns]
    if len(stamps) != len(frames):
        raise ConfigError(f"pcap {name}: {len(frames)} frames but {len(stamps)} timestamps: give one per frame")
    for i, s in enumerate(stamps):
        if not 0 <= s <= _MAX_PCAP_NS:
            raise ConfigError(
                f"pcap {name}: frame {i} is stamped {s} ns: a pcap holds 0..{_MAX_PCAP_NS} ns since the epoch "
                "(a CLOCK_MONOTONIC time needs the run's clock offset added)"
            )
    from scapy.utils import RawPcapWriter

    try:
        # scapy writes the header and records with struct; nano=True makes the second field ns.
        writer = RawPcapWriter(name, linktype=LINKTYPE_ETHERNET, nano=True, endianness="<", bufsz=1 << 20)
        try:
            writer.write_header(None)
            for frame, s in zip(frames, stamps, strict=True):
                writer.write_packet(bytes(frame), sec=s // _NS, usec=s % _NS)
        finally:
            writer.close()
    except OSError as exc:
        raise ConfigError(f"pcap {name} cannot be written: {exc.strerror or exc}") from None


def sent_frames(plan: Plan, tx: np.ndarray[Any, Any], upto: int | None = None) -> list[bytes | None]:
    """Per schedule entry 0..upto-1 (default: every record in ``tx``), the frame as the device sent it.

    A stamped frame carries its sequence number (the entry's index) and send timestamp
    (``tx["start_ns"]``), the UDP checksum patched as the engine does; an unstamped frame is its
    template. A spurious-interrupt entry carries no frame: None. Dropped frames are frames too.
    """
    n = len(tx) if upto is None else upto
    if not 0 <= n <= min(len(tx), len(plan)):
        raise ConfigError(f"sent frames: upto {n} is out of range: give 0..{min(len(tx), len(plan))}")
    out: list[bytes | None] = [None] * n
    frame_of = plan.slots["frame"][:n].astype(np.int64)
    spurious = ((plan.slots["flags"][:n] & SLOT_SPURIOUS) != 0) | ((tx["flags"][:n] & TX_SPURIOUS) != 0)
    start = tx["start_ns"][:n].astype(np.uint64)
    table = plan.frames.table
    for f in np.unique(frame_of[~spurious]).tolist():
        every = np.flatnonzero((frame_of == f) & ~spurious)
        template = plan.frames.templates[f]
        stamp_off, csum_off = int(table["stamp_off"][f]), int(table["csum_off"][f])
        if stamp_off == 0:
            for i in every.tolist():
                out[i] = template
            continue
        for i, frame in zip(every.tolist(), stamped(template, stamp_off, csum_off, every, start[every]), strict=True):
            out[i] = frame
    return out


def stamped(
    template: bytes, stamp_off: int, csum_off: int, seqs: np.ndarray[Any, Any], stamps: np.ndarray[Any, Any]
) -> list[bytes]:
    """``template`` stamped with each sequence number and timestamp, its checksum patched, as the engine stamps
    (``_engine/pnic_stamp.h``)."""
    out: list[bytes] = []
    for chunk in range(0, seqs.size, _ROWS):  # a bounded working set, whatever the plan's length
        idx = slice(chunk, chunk + _ROWS)
        n = seqs[idx].size
        rows = np.tile(np.frombuffer(template, np.uint8), (n, 1))
        stamp = np.empty(n, dtype=[("seq", ">u4"), ("ts", ">u8")])
        stamp["seq"] = seqs[idx]
        stamp["ts"] = stamps[idx]
        words = stamp.view(np.uint8).reshape(n, STAMP_LEN)
        rows[:, stamp_off : stamp_off + STAMP_LEN] = words
        if csum_off != 0:
            _patch_checksum(rows, csum_off, words)
        out.extend(row.tobytes() for row in rows)
    return out


def _patch_checksum(rows: np.ndarray[Any, Any], csum_off: int, words: np.ndarray[Any, Any]) -> None:
    """pnic_stamp_frame in _engine/pnic_stamp.h, row by row: RFC 1624 eqn. 3 over a stamp that was zeros."""
    old = (int(rows[0, csum_off]) << 8) | int(rows[0, csum_off + 1])
    if old == 0:  # UDP over IPv4: zero means "no checksum" (RFC 768)
        return
    total = (~old & 0xFFFF) + words.view(">u2").astype(np.uint64).sum(axis=1)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    c = ~total & 0xFFFF
    c[c == 0] = 0xFFFF
    rows[:, csum_off] = (c >> 8).astype(np.uint8)
    rows[:, csum_off + 1] = (c & 0xFF).astype(np.uint8)


def sent_capture(plan: Plan, tx: np.ndarray[Any, Any], *, clock_offset_ns: int, upto: int | None = None) -> Capture:
    """What the device sent, stamped when it began each send, in wall-clock ns (spurious entries left out)."""
    frames = sent_frames(plan, tx, upto)
    keep = [i for i, f in enumerate(frames) if f is not None]
    stamps = tx["start_ns"][keep].astype(np.int64) + np.int64(clock_offset_ns)
    return Capture([f for f in frames if f is not None], stamps, LINKTYPE_ETHERNET, "sent")


def transmitted_capture(
    frames: FrameSet, order: np.ndarray[Any, Any], txv: np.ndarray[Any, Any], *, clock_offset_ns: int
) -> tuple[Capture, int]:
    """What the driver transmitted, stamped when the device took each frame, in wall-clock ns; and how many frames
    taken are not in it. A frame taken intact was byte for byte the frame handed: it is that frame, stamped as it
    was handed (``order`` names its template). A frame that was not (corrupted, or unfinished) is left out: the
    device checks bytes as it takes them and keeps none."""
    good = np.flatnonzero((txv["flags"] & TXV_INTACT) != 0)
    seqs = txv["seq"][good].astype(np.int64)
    out: list[bytes | None] = [None] * good.size
    templates = order[seqs].astype(np.int64)
    for f in np.unique(templates).tolist():
        mine = np.flatnonzero(templates == f)
        stamp_off, csum_off = int(frames.table["stamp_off"][f]), int(frames.table["csum_off"][f])
        if stamp_off == 0:
            for i in mine.tolist():
                out[i] = frames.templates[f]
            continue
        made = stamped(frames.templates[f], stamp_off, csum_off, seqs[mine], txv["handed_ns"][good][mine])
        for i, frame in zip(mine.tolist(), made, strict=True):
            out[i] = frame
    stamps = txv["taken_ns"][good].astype(np.int64) + np.int64(clock_offset_ns)
    kept = [f for f in out if f is not None]
    return Capture(kept, stamps, LINKTYPE_ETHERNET, "transmitted"), len(txv) - len(kept)


def delivered_capture(
    frames: Sequence[bytes | memoryview], delivered_ns: Sequence[int] | np.ndarray[Any, Any], *, clock_offset_ns: int
) -> Capture:
    """What the driver delivered (``Deliveries.frames``), stamped when it did, in wall-clock ns."""
    stamps = np.asarray(delivered_ns, dtype=np.int64)
    if stamps.shape != (len(frames),):
        raise ConfigError(f"deliveries: {len(frames)} frames but {stamps.size} delivery times: give one per frame")
    # A run's kept deliveries (pseudonic.frame_list) stay as they are: no copy of a million frames
    kept = frames if isinstance(frames, FrameList) else [bytes(f) for f in frames]
    return Capture(kept, stamps + np.int64(clock_offset_ns), LINKTYPE_ETHERNET, "delivered")


def write_capture(path: str | os.PathLike[str], capture: Capture) -> None:
    """:func:`write_pcap` of a :class:`Capture`."""
    write_pcap(path, capture.frames, capture.stamps_ns)


__all__ = [
    "LINKTYPE_ETHERNET",
    "Capture",
    "capture_plan",
    "delivered_capture",
    "read_capture",
    "sent_capture",
    "sent_frames",
    "stamped",
    "transmitted_capture",
    "write_capture",
    "write_pcap",
]
