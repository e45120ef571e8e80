"""A run's one input: when each packet is due, which frame it carries, and its per-packet flags.

DESIGN §4: the device engine runs a per-packet table (deadline, frame,
flags). A :class:`Plan` is that table, the frames it names, and a note of
what generated it (a periodic pace, a rate, a capture, a recorded run, a
hunt), so that a run can say, and a record can keep, where its timeline came
from. Every generator (:mod:`pseudonic.traffic`, :mod:`pseudonic.capture`,
a recording) ends in :meth:`Plan.make`, and every bound a plan must keep is
checked once, in :meth:`Plan.check`, against the buffer size of the run.

Deadlines are absolute -- packet i is due at t0 + due_ns[i] -- so a late
packet never delays the ones after it, whatever the plan's length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import schedule
from .config import DEFAULT_BUFFER_SIZE
from .errors import ConfigError
from .frames import MIN_FRAME, FrameSet
from .layout import MAX_FRAME, SLOT, SLOT_ERRORS_MASK, SLOT_NO_RAISE, SLOT_SPURIOUS
from .units import format_ns, parse_interval, parse_size

#: Schedule entries in one plan; the per-packet records take 80 B each in the segment.
MAX_PACKETS = 1_000_000
#: The longest plan, first deadline to last: an hour.
MAX_SPAN_NS = 3600 * 1_000_000_000
#: The longest gap of a periodic plan.
MAX_INTERVAL_NS = 10_000_000_000
#: The verify layer keeps every delivered frame until the run ends.
VERIFY_MAX_BYTES = 2 << 30
#: How a run keeps its per-packet records: ``full`` every one (the run's result carries them, MAX_PACKETS at
#: most); ``summary`` in rings read while the run goes, folded into streaming histograms, with deliveries
#: checked as they come (a run of any length in bounded memory); ``none`` counts only; ``auto``: full up to
#: MAX_PACKETS, summary past it.
RECORD_MODES = ("auto", "full", "summary", "none")
#: The most entries a run without full records sends: the device stamps 32-bit sequence numbers.
MAX_LONG_PACKETS = 2**32 - 1
#: The longest run without full records: a day.
MAX_LONG_SPAN_NS = 24 * 3600 * 1_000_000_000
#: Entries in the one pass a long periodic plan repeats: a multiple of its cycle of sizes at least this long.
PASS_ENTRIES = 4096
#: What keeping every record costs a packet, bytes: its plan entry (the controller's and the device's copies),
#: its packet, raise and handler-run records (in the segment and in the result), the deliveries' match, and
#: the verify layer's copy of the frame with its object's overhead.
FULL_RECORD_BYTES = 2 * 24 + 2 * (40 + 16 + 48) + 8 + 64
_KNOWN_FLAGS = SLOT_ERRORS_MASK | SLOT_SPURIOUS | SLOT_NO_RAISE


@dataclass(frozen=True)
class Plan:
    """Per schedule entry: deadline after t0 (ns), frame index, flags (``layout.SLOT``); the frames; the origin."""

    slots: np.ndarray[Any, Any]
    frames: FrameSet
    #: what generated the plan (JSON-able: kind and parameters, seed included), for the result and a record
    origin: dict[str, Any] = field(default_factory=dict)
    #: a long plan: ``total`` entries, the slots being one pass of them, each pass ``period_ns`` after the one
    #: before (0: the slots are the whole plan)
    total: int = 0
    period_ns: int = 0

    # -- making one -------------------------------------------------------------------------
    @classmethod
    def make(cls, slots: np.ndarray[Any, Any], frames: FrameSet, origin: dict[str, Any]) -> Plan:
        """A plan from a schedule table and its frames; its shape is checked here, its bounds by :meth:`check`."""
        if not isinstance(slots, np.ndarray) or slots.dtype != SLOT or slots.ndim != 1:
            raise ConfigError("plan: give a schedule made by pseudonic.schedule (a 1-d array of layout.SLOT)")
        return cls(slots, frames, dict(origin))

    @classmethod
    def periodic(
        cls,
        interval: str | int,
        count: int,
        size: str | int,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        allow_back_to_back: bool = False,
    ) -> Plan:
        """``count`` generated frames of ``size`` bytes, ``interval`` apart (the CLI's --interval/--count/--size)."""
        interval_ns = parse_interval(interval, signed=True)
        low = 0 if allow_back_to_back else 1
        if not low <= interval_ns <= MAX_INTERVAL_NS:
            raise ConfigError(
                f"interval {interval!r} is out of range: give {'0' if low == 0 else '1ns'}..10s, "
                "with a unit of ns, us or ms (e.g. 38us)"
            )
        count = _count(count, MAX_LONG_PACKETS)
        nbytes = _frame_size(size, buffer_size)
        origin = {"kind": "periodic", "interval_ns": interval_ns, "count": count, "size": nbytes}
        if count > MAX_PACKETS:  # one pass, repeated: a run without full records (Plan.check says so otherwise)
            one = cls.make(schedule.periodic(PASS_ENTRIES, interval_ns), FrameSet.generated(nbytes), origin)
            return one.repeated(count, PASS_ENTRIES * interval_ns)
        return cls.make(schedule.periodic(count, interval_ns), FrameSet.generated(nbytes), origin)

    def repeated(self, total: int, period_ns: int) -> Plan:
        """This plan as one pass of a plan of ``total`` entries, each pass ``period_ns`` after the one before."""
        if total < len(self) or period_ns < 0:
            raise ConfigError(f"a plan repeated: give at least its {len(self)} entries and a period of 0 ns or more")
        return Plan(self.slots, self.frames, dict(self.origin), total=total, period_ns=period_ns)

    @classmethod
    def custom(
        cls, slots: np.ndarray[Any, Any] | None, frames: Any, size: str | int, *, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> Plan:
        """A plan from :func:`pseudonic.run`'s ``slots`` and ``frames`` (either may be None)."""
        if slots is not None and (not isinstance(slots, np.ndarray) or slots.dtype != SLOT or slots.size == 0):
            raise ConfigError("slots: give a non-empty schedule made by pseudonic.schedule")
        if frames is not None:
            frameset = FrameSet.from_user(list(frames))
        else:
            nbytes = parse_size(size, signed=True)
            if nbytes < MIN_FRAME:
                raise ConfigError(
                    f"size {nbytes} B is out of range: give {MIN_FRAME}.. bytes (at most the buffer size)"
                )
            frameset = FrameSet.generated(nbytes)
        if slots is None:
            raise ConfigError("frames: give slots with them, or use interval and count")
        return cls.make(slots, frameset, {"kind": "schedule"})

    # -- what it is -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.slots.size)

    @property
    def entries(self) -> int:
        """Entries the run sends: the slots, or a long plan's total."""
        return self.total or int(self.slots.size)

    def planned_ns(self, entry: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The deadline (ns after t0) of each entry, a long plan's passes included."""
        e = np.asarray(entry, dtype=np.int64)
        n = int(self.slots.size)
        return self.slots["due_ns"].astype(np.int64)[e % n] + (e // n) * self.period_ns

    @property
    def last_due_ns(self) -> int:
        """The last entry's deadline, ns after t0."""
        return int(self.planned_ns(np.array([self.entries - 1]))[0]) if self.slots.size else 0

    @property
    def due_ns(self) -> np.ndarray[Any, Any]:
        return self.slots["due_ns"]

    @property
    def span_ns(self) -> int:
        return int(self.slots["due_ns"][-1] - self.slots["due_ns"][0]) if self.slots.size else 0

    @property
    def interval_ns(self) -> int | None:
        """The interval if the plan is periodic, else None."""
        return schedule.interval_of(self.slots)

    def median_interval_ns(self) -> int:
        """The median of the planned intervals that are not zero (0 for a plan of one packet or one burst)."""
        gaps = np.diff(self.due_ns.astype(np.int64))
        gaps = gaps[gaps > 0]
        return int(np.median(gaps)) if gaps.size else 0

    @property
    def sizes(self) -> np.ndarray[Any, Any]:
        """Per schedule entry: the frame's length in bytes."""
        sizes: np.ndarray[Any, Any] = np.asarray(self.frames.table["length"], dtype=np.int64)[self.slots["frame"]]
        return sizes

    @property
    def packets(self) -> int:
        """Entries that carry a packet (a spurious interrupt carries none)."""
        return int(np.count_nonzero((self.slots["flags"] & SLOT_SPURIOUS) == 0))

    def describe(self) -> str:
        """One line for a summary's title, e.g. '1000 x 1500 B every 38.000 µs'."""
        sizes = sorted(set(self.frames.sizes))
        size = f"{sizes[0]} B" if len(sizes) == 1 else f"{sizes[0]}..{sizes[-1]} B"
        iv = self.interval_ns
        kind = str(self.origin.get("kind", "schedule"))
        when = f"every {format_ns(iv)}" if iv is not None else f"over {format_ns(self.span_ns)} ({kind})"
        return f"{self.entries} × {size} {when}"

    def summary(self) -> dict[str, Any]:
        """The plan in a result's configuration (JSON)."""
        sizes = self.frames.sizes
        return {
            "count": self.entries,
            "size": max(sizes),
            "sizes": sorted(set(sizes)),
            "interval_ns": self.interval_ns if len(self) > 1 else self.origin.get("interval_ns"),
            "span_ns": self.span_ns,
            "plan": self.origin,
        }

    def transmit_order(self, count: int) -> np.ndarray[Any, Any]:
        """The frames a run hands the driver's transmit entry, ``count`` of them: the plan's frames in turn."""
        return (np.arange(count, dtype=np.uint32) % np.uint32(len(self.frames.templates))).astype(np.uint32)

    # -- its bounds, once -------------------------------------------------------------------
    def check(self, buffer_size: int, upper: str = "verify", records: str = "full") -> None:
        """Every bound a plan keeps, against the run's receive buffer size; :class:`ConfigError` names the range."""
        _count(len(self))
        long = records in ("summary", "none")
        if self.total and not long:
            raise ConfigError(full_refusal(self.entries, float(np.mean(self.frames.sizes))))
        last = self.last_due_ns
        if long and last > MAX_LONG_SPAN_NS:
            raise ConfigError(f"plan spans {format_ns(last)}: give at most {format_ns(MAX_LONG_SPAN_NS)}")
        due = self.slots["due_ns"].astype(np.int64)
        if (due < 0).any():
            raise ConfigError("plan: deadlines must be 0 ns or later")
        back = np.flatnonzero(np.diff(due) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise ConfigError(
                f"plan: deadline {i} ({int(due[i])} ns) is before deadline {i - 1}: deadlines must not decrease"
            )
        if not long and self.span_ns > MAX_SPAN_NS:
            raise ConfigError(f"plan spans {format_ns(self.span_ns)}: give at most {format_ns(MAX_SPAN_NS)}")
        nframes = len(self.frames.templates)
        if nframes == 0:
            raise ConfigError("plan: give at least one frame")
        top = int(self.slots["frame"].max())
        if top >= nframes:
            raise ConfigError(f"plan names frame {top}: there are {nframes} frames (0..{nframes - 1})")
        bad_flags = self.slots["flags"] & ~np.uint32(_KNOWN_FLAGS)
        if bad_flags.any():
            raise ConfigError(
                f"plan: per-packet flags must be error bits 0..{SLOT_ERRORS_MASK}, SLOT_SPURIOUS or SLOT_NO_RAISE"
            )
        for i, length in enumerate(self.frames.sizes):
            if not MIN_FRAME <= length <= MAX_FRAME:
                if self.frames.stamped:
                    _frame_size(length, buffer_size)
                raise ConfigError(
                    f"frame {i} is {length} bytes: frames must be {MIN_FRAME}..{MAX_FRAME} bytes (one longer than "
                    f"the {buffer_size} B buffer spans several descriptors)"
                )
        if upper == "verify" and not long:
            total = int(self.sizes.sum())
            if total > VERIFY_MAX_BYTES:
                raise ConfigError(
                    f"the plan's frames add up to {total} B, more than the {VERIFY_MAX_BYTES} B the verify layer "
                    "keeps to check after a run with full records: send fewer packets, use --records summary "
                    "(generated frames checked as they come, nothing kept) or --upper null"
                )


def _frame_size(size: str | int, buffer_size: int) -> int:
    """A generated frame's size, in range; ``size`` as the user typed it (1500, 1.5KB, 16KiB)."""
    nbytes = parse_size(size, signed=True)
    if not MIN_FRAME <= nbytes <= MAX_FRAME:
        raise ConfigError(
            f"size {nbytes} B is out of range: give {MIN_FRAME}..{MAX_FRAME} bytes (a frame longer than the "
            f"{buffer_size} B buffer spans several descriptors)"
        )
    return nbytes


def full_refusal(entries: int, mean_size: float) -> str:
    """Why a run of ``entries`` packets cannot keep every record: what they would take, against what it may."""
    need = int(entries * (FULL_RECORD_BYTES + mean_size))
    return (
        f"--records full for {entries:,} packets would keep {need / 2**30:.1f} GiB of records "
        f"({need // entries} B a packet: its plan entry, records and delivered frame); it keeps at most "
        f"{MAX_PACKETS:,} packets: use --records summary (streaming figures, bounded memory; --tail FILE writes "
        "its newest records) or fewer packets"
    )


def _count(count: Any, most: int = MAX_PACKETS) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise ConfigError(f"count must be an integer, not {count!r}")
    if not 1 <= int(count) <= most:
        hint = f" (more than {MAX_PACKETS} with --records summary)" if most == MAX_PACKETS else ""
        raise ConfigError(f"count {count} is out of range: give 1..{most}{hint}")
    return int(count)


__all__ = ["MAX_LONG_PACKETS", "MAX_PACKETS", "MAX_SPAN_NS", "RECORD_MODES", "Plan", "full_refusal"]
