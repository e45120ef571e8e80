"""The machine's noise floor: how often, and for how long, the two cores of a run are taken away.

A run's figures mix what the driver did with what the machine did: on a shared VM a core
spinning alone loses about a thousand slices a second (DESIGN.md section 2, "Timing"). This
measures that floor the way hwlatdetect does (rt-tests; the kernel's hwlat tracer: spin reading
the clock, a gap between two reads over a threshold is a sample), on both cores at once and
with interrupts on, as a node runs. It reports what cyclictest and hwlatdetect report -- a
histogram of the gaps (cyclictest -h), how many go over a threshold, the worst -- and the share
of time lost. From the two cores' traces, taken together so that stalls that hit both vCPUs at
once count as they happened, :func:`expected_disturbed_share_of` tells what share of a run's
intervals such a machine disturbs beyond a band, whatever the driver does: the floor a run's
classifier is compared with.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from . import _engine
from .analysis import PRECISION_BAND
from .config import DEFAULT_DEVICE_CORE, DEFAULT_DRIVER_CORE, DEFAULT_LATE, LATE_MODES, _check_core, _int
from .cores import claim
from .errors import ConfigError, PseudonicError
from .node import STOP_SIGNALS, available_cores, become_node, run_delay_ns
from .units import format_ns, parse_interval

DEFAULT_DURATION = "5s"
DEFAULT_CORES = (DEFAULT_DEVICE_CORE, DEFAULT_DRIVER_CORE)
#: Shorter, and the stalls over 100 µs (five to fifteen a second on the VM of DESIGN.md) are seen
#: once or not at all.
MIN_DURATION_NS = 100_000_000
#: Longer, and the most room a record gets (MAX_GAP_ROOM) keeps fewer than 7000 gaps a second.
MAX_DURATION_NS = 600_000_000_000
#: Gaps longer than this are kept one by one (the histogram has them all): hwlatdetect's default
#: threshold is 10 µs; ours is lower because a 38 µs interval's ±6.25 % band is 2.4 µs.
DEFAULT_RECORD_THRESHOLD_NS = 1_000
#: The thresholds the figures count gaps over: hwlatdetect's default, and a decade either side.
FIGURE_THRESHOLDS_NS = (1_000, 10_000, 100_000)
#: log2 buckets of the histogram (pnic_engine.h, PNIC_GAP_BUCKETS): bucket k holds [2^k, 2^(k+1)) ns.
BUCKETS = 64
#: Room for recorded gaps per second of calibration: twenty times what the shared VM of DESIGN.md
#: shows (about a thousand a second over 1 µs), between a floor for short calibrations and a
#: ceiling that keeps two cores' records within 128 MB; gaps that do not fit are counted.
GAPS_PER_S_ROOM = 20_000
MIN_GAP_ROOM = 1 << 16
MAX_GAP_ROOM = 1 << 22
#: How far ahead of "both spinners are ready" the common start is: waking two processes on two
#: cores takes microseconds; this leaves room for a core the machine is holding just then.
START_LEAD_NS = 20_000_000

#: The band of the model, as the run's precision figures use it (the paper's E2 band): an
#: interval off by more than ±6.25 % of its length is disturbed.
DEFAULT_BAND = PRECISION_BAND
#: From the device beginning a packet to the driver's handler entering, on a quiet machine: the
#: spin line's raise-to-entry latency (README: p50 266 ns with the Python driver, 395 ns with C).
DEFAULT_LATENCY_NS = 300
#: Grid phases the model averages over: where a run's deadlines fall against the gaps is chance.
PHASES = 16
#: Below this the device's own send time (hundreds of ns) is no longer small against the
#: interval, and the model, which takes it as zero, would flatter the machine.
MIN_MODEL_INTERVAL_NS = 1_000

Int64s = NDArray[np.int64]
#: One core's gaps: (starts, lengths) in CLOCK_MONOTONIC ns, sorted by start and disjoint.
GapTrace = tuple[Int64s, Int64s]


def bucket_of(gap_ns: int) -> int:
    """The histogram bucket a gap falls in: k for [2^k, 2^(k+1)) ns, 0 for 0 too (as pnic_calibrate.c)."""
    return max(gap_ns, 1).bit_length() - 1


def bucket_bounds(k: int) -> tuple[int, int]:
    """The gaps bucket ``k`` counts: [low, high) ns (bucket 0 also takes 0)."""
    return 1 << k, 1 << (k + 1)


@dataclass(frozen=True)
class CoreNoise:
    """What one core's spinner saw: every gap between two clock reads, in a histogram; the long ones in full."""

    core: int
    duration_ns: int
    record_threshold_ns: int
    histogram: Int64s  # BUCKETS counts, one per log2 bucket
    starts: Int64s  # of each gap over the record threshold, CLOCK_MONOTONIC ns
    lengths: Int64s
    loops: int  # clock reads after the start: the histogram's total
    overflowed: int  # gaps over the threshold that did not fit the record (counted, not kept)
    worst_ns: int  # the longest gap, whether recorded or not
    #: What the guest's scheduler gave other tasks while the spinner waited for the start and spun
    #: (schedstat run delay); the rest of the time lost went to interrupts and to the host.
    run_delay_ns: int = 0

    @property
    def gaps(self) -> GapTrace:
        return self.starts, self.lengths

    @property
    def complete(self) -> bool:
        """Whether every gap over the threshold was kept (the figures and the model below count only those)."""
        return self.overflowed == 0

    def gaps_over(self, over_ns: int) -> int:
        """Recorded gaps longer than ``over_ns`` (at least the record threshold)."""
        if over_ns < self.record_threshold_ns:
            raise ValueError(f"gaps of {over_ns} ns or less were not recorded (threshold {self.record_threshold_ns})")
        return int(np.count_nonzero(self.lengths > over_ns))

    def gaps_per_s(self, over_ns: int) -> float:
        return self.gaps_over(over_ns) * 1e9 / self.duration_ns

    @property
    def lost_share(self) -> float:
        """Share of the calibration the core was away, in gaps over the record threshold (hwlatdetect's
        figure is the count; this is the time)."""
        return float(self.lengths.sum()) / self.duration_ns

    @property
    def read_ns(self) -> float:
        """Mean time between clock reads: the smallest gap the spinner can see."""
        return self.duration_ns / self.loops if self.loops else float("nan")

    def histogram_rows(self) -> list[tuple[int, int, int]]:
        """(low ns, high ns, count) of each non-empty bucket, shortest first."""
        return [(*bucket_bounds(k), int(c)) for k, c in enumerate(self.histogram) if c]

    def to_dict(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "loops": self.loops,
            "read_ns": self.read_ns,
            "gaps_per_s": {str(t): self.gaps_per_s(t) for t in FIGURE_THRESHOLDS_NS if t >= self.record_threshold_ns},
            "lost_share": self.lost_share,
            "worst_ns": self.worst_ns,
            "recorded": len(self.lengths),
            "overflowed": self.overflowed,
            "run_delay_ns": self.run_delay_ns,
            "histogram": [{"from_ns": lo, "to_ns": hi, "count": c} for lo, hi, c in self.histogram_rows()],
        }


@dataclass(frozen=True)
class Calibration:
    """The noise floor of two cores measured together: the first is a run's device core, the second its driver's."""

    duration_ns: int
    cores: tuple[int, int]
    started: int  # CLOCK_MONOTONIC ns of the common start
    noise: tuple[CoreNoise, CoreNoise] = field(repr=False)
    record_threshold_ns: int = DEFAULT_RECORD_THRESHOLD_NS

    @property
    def window(self) -> tuple[int, int]:
        return self.started, self.started + self.duration_ns

    @property
    def complete(self) -> bool:
        return all(n.complete for n in self.noise)

    def expected_disturbed_share(
        self,
        interval_ns: int,
        band: float = DEFAULT_BAND,
        late: str = DEFAULT_LATE,
        latency_ns: int = DEFAULT_LATENCY_NS,
    ) -> float:
        """Share of a run's intervals of ``interval_ns`` this machine would disturb beyond ±``band``
        (see :func:`expected_disturbed_share_of`); a lower bound if some gaps overflowed the record."""
        interval_ns = check_interval(interval_ns, self.duration_ns)
        return expected_disturbed_share_of(
            self.noise[0].gaps, self.noise[1].gaps, self.window, interval_ns, band=band, late=late,
            latency_ns=latency_ns,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The figures and histograms, for JSON (not the recorded gaps themselves)."""
        return {
            "duration_ns": self.duration_ns,
            "cores": list(self.cores),
            "started_ns": self.started,
            "record_threshold_ns": self.record_threshold_ns,
            "complete": self.complete,
            "per_core": [
                {"role": role, **n.to_dict()} for role, n in zip(("device", "driver"), self.noise, strict=True)
            ],
        }


# -- validation --------------------------------------------------------------------------------


def _bounds_text() -> str:
    return f"{MIN_DURATION_NS // 1_000_000} ms .. {MAX_DURATION_NS // 1_000_000_000} s"


def check_duration(duration: str | int) -> int:
    """A calibration's length in ns; ConfigError naming the range if it is out of it."""
    ns = parse_interval(duration, "calibration duration", signed=True)
    if not MIN_DURATION_NS <= ns <= MAX_DURATION_NS:
        raise ConfigError(f"calibration duration {duration!r} is out of range: give {_bounds_text()} (e.g. 5s)")
    return ns


def check_cores(pair: Any) -> tuple[int, int]:
    """Two distinct cores this process may run on (the device's, then the driver's)."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        shown = ",".join(map(str, pair)) if isinstance(pair, (tuple, list)) else repr(pair)
        raise ConfigError(f"cores {shown}: give two cores, the device's and the driver's (e.g. 0,1)")
    allowed = available_cores()
    device, driver = (_int(c, "core") for c in pair)
    for core in (device, driver):
        _check_core("core", core, allowed)
    if device == driver:
        raise ConfigError(
            f"cores {device} and {driver} are the same: give two different cores, the device's and the driver's "
            "(e.g. 0,1), as a run uses them"
        )
    return device, driver


def check_interval(interval: str | int, duration_ns: int) -> int:
    """An interval the model can lay over a calibration of ``duration_ns``: at least two deadlines in it."""
    ns = parse_interval(interval, "interval", signed=True)
    longest = duration_ns // 2
    if not MIN_MODEL_INTERVAL_NS <= ns <= longest:
        raise ConfigError(
            f"interval {interval!r} is out of range for a {format_ns(duration_ns)} calibration: give "
            f"{format_ns(MIN_MODEL_INTERVAL_NS)} .. {format_ns(longest)} (half the calibration)"
        )
    return ns


def _check_model(band: float, late: str, latency_ns: int) -> None:
    if not 0 <= band < 1:
        raise ConfigError(f"band {band!r} is out of range: give 0 .. 1 (exclusive), e.g. {DEFAULT_BAND}")
    if late not in LATE_MODES:
        raise ConfigError(f"late mode {late!r} is unknown: give one of {', '.join(LATE_MODES)}")
    if _int(latency_ns, "latency") < 0:
        raise ConfigError(f"latency {latency_ns!r} is out of range: give 0 ns or more")


# -- measuring ---------------------------------------------------------------------------------


def calibrate(
    duration: str | int = DEFAULT_DURATION,
    cores: tuple[int, int] = DEFAULT_CORES,
    *,
    wait_for_cores: bool = False,
    record_threshold_ns: int = DEFAULT_RECORD_THRESHOLD_NS,
) -> Calibration:
    """Spin on both ``cores`` at once for ``duration``, reading the clock; return every gap seen.

    The cores are claimed as a run claims them (a calibration beside a run would measure the
    run); ConfigError if an argument is out of range, CoresBusyError if a run holds a core and
    not ``wait_for_cores``.
    """
    duration_ns = check_duration(duration)
    pair = check_cores(cores)
    threshold = _int(record_threshold_ns, "record threshold")
    if not 0 <= threshold <= FIGURE_THRESHOLDS_NS[0]:
        raise ConfigError(
            f"record threshold {threshold} ns is out of range: give 0 .. {FIGURE_THRESHOLDS_NS[0]} ns "
            "(the figures count gaps over it)"
        )
    room = min(max(duration_ns * GAPS_PER_S_ROOM // 1_000_000_000, MIN_GAP_ROOM), MAX_GAP_ROOM)
    with claim(pair, wait=wait_for_cores):
        started, noise = _measure(pair, duration_ns, threshold, room)
    return Calibration(duration_ns, pair, started, (noise[0], noise[1]), threshold)


_HEADER = 5  # loops, recorded, overflowed, worst_ns, run_delay_ns


def _spinner(core: int, parent: int, duration_ns: int, threshold: int, room: int, out: int, go: int) -> NoReturn:
    """A child's life: pin, get ready, spin from the start it is given, send the gaps back, exit."""
    status = 1
    try:
        become_node(core, parent)
        hist = np.zeros(BUCKETS, np.uint64)
        starts, lengths = np.empty(room, np.uint64), np.empty(room, np.uint64)
        # Touch every page now: one first written during the spin would be a gap of our own making.
        starts.fill(0)
        lengths.fill(0)
        _write_all(out, b"r")
        start = _read_all(go, 8)
        if len(start) != 8:
            os._exit(status)  # the parent gave up
        before = run_delay_ns()
        loops, recorded, overflowed, worst = _engine.spin_gaps(
            int.from_bytes(start, "little"), duration_ns, threshold, hist, starts, lengths
        )
        head = np.array([loops, recorded, overflowed, worst, run_delay_ns() - before], np.uint64)
        _write_all(out, head.tobytes() + hist.tobytes() + starts[:recorded].tobytes() + lengths[:recorded].tobytes())
        status = 0
    finally:
        os._exit(status)  # never back into the parent's stack (a test runner's, a CLI's)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int, limit: int | None = None) -> bytes:
    """Up to ``limit`` bytes, or everything until the writer closes."""
    chunks: list[bytes] = []
    got = 0
    while limit is None or got < limit:
        chunk = os.read(fd, 1 << 20 if limit is None else limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@dataclass
class _Child:
    core: int
    pid: int
    out: int  # the child's ready byte, then its figures
    go: int  # the common start, to the child
    reaped: bool = False


def _measure(pair: tuple[int, int], duration_ns: int, threshold: int, room: int) -> tuple[int, list[CoreNoise]]:
    parent = os.getpid()
    children: list[_Child] = []
    try:
        for core in pair:
            out_r, out_w = os.pipe()
            go_r, go_w = os.pipe()
            # A stop signal between the fork and the bookkeeping would leave a child no finally knows of.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                pid = os.fork()
                if pid == 0:
                    for fd in (out_r, go_w, *(fd for c in children for fd in (c.out, c.go))):
                        os.close(fd)
                    _spinner(core, parent, duration_ns, threshold, room, out_w, go_r)  # unblocks in become_node
                children.append(_Child(core, pid, out_r, go_w))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(out_w)
                os.close(go_r)
        for c in children:
            if _read_all(c.out, 1) != b"r":
                raise PseudonicError(f"the spinner on core {c.core} ended before it was ready: {_status(c)}")
        # Both spin from the same moment, so that a stall of the whole VM shows on both traces at once.
        started = _engine.now_ns() + START_LEAD_NS
        for c in children:
            _write_all(c.go, started.to_bytes(8, "little"))
        noise = [_receive(c, duration_ns, threshold) for c in children]
        return started, noise
    finally:
        for c in children:
            if not c.reaped:  # until reaped, the pid is still our child's: no other process has it
                os.kill(c.pid, signal.SIGKILL)
        for c in children:
            if not c.reaped:
                os.waitpid(c.pid, 0)
            os.close(c.out)
            os.close(c.go)


def _status(c: _Child) -> str:
    _, status = os.waitpid(c.pid, 0)
    c.reaped = True
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _receive(c: _Child, duration_ns: int, threshold: int) -> CoreNoise:
    raw = _read_all(c.out)
    fixed = (_HEADER + BUCKETS) * 8
    if len(raw) < fixed:
        raise PseudonicError(f"the spinner on core {c.core} ended without its figures: {_status(c)}")
    head = np.frombuffer(raw, np.uint64, _HEADER).astype(np.int64)
    loops, recorded, overflowed, worst, delay = (int(v) for v in head)
    if len(raw) != fixed + 16 * recorded:
        raise PseudonicError(f"the spinner on core {c.core} sent {len(raw)} bytes, not {fixed + 16 * recorded}")
    hist = np.frombuffer(raw, np.uint64, BUCKETS, _HEADER * 8).astype(np.int64)
    starts = np.frombuffer(raw, np.uint64, recorded, fixed).astype(np.int64)
    lengths = np.frombuffer(raw, np.uint64, recorded, fixed + 8 * recorded).astype(np.int64)
    return CoreNoise(c.core, duration_ns, threshold, hist, starts, lengths, loops, overflowed, worst, delay)


# -- the model: what such gaps do to a run's intervals (sans-IO) ------------------------------


def _check_trace(gaps: GapTrace, what: str) -> tuple[Int64s, Int64s]:
    starts, lengths = (np.asarray(a, dtype=np.int64) for a in gaps)
    ends = starts + lengths
    if starts.shape != lengths.shape or np.any(lengths < 0) or np.any(starts[1:] < ends[:-1]):
        raise ValueError(f"{what} gaps must be sorted by start and disjoint")
    return starts, ends


def _push(moments: Int64s, starts: Int64s, ends: Int64s) -> Int64s:
    """Each moment inside a gap moved to the gap's end. Inside means after the read that began it and
    before the read that ended it: at both reads the core was there."""
    if len(starts) == 0:
        return moments.copy()
    j = np.searchsorted(starts, moments, side="left") - 1
    end = ends[np.maximum(j, 0)]
    return np.where((j >= 0) & (moments < end), end, moments)


def _unique(*arrays: Int64s) -> Int64s:
    """The sorted union (np.union1d hashes, many times slower on the few 100 k indices here)."""
    a = np.sort(np.concatenate(arrays))
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _ranges(lo: Int64s, hi: Int64s) -> Int64s:
    """The integers of every [lo, hi), concatenated."""
    n = np.maximum(hi - lo, 0)
    total = int(n.sum())
    return np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total, dtype=np.int64)


class _Device:
    """When the device begins packet i of ``count`` due at first + i * interval, the device core's gaps
    and the late policy given: :meth:`at` for any indices, and :attr:`moved`, the indices whose begin
    is not simply their deadline (catch-up) or the previous begin plus the interval (shift)."""

    def __init__(self, gaps: GapTrace, first: int, count: int, interval: int, late: str) -> None:
        self.first, self.count, self.interval, self.late = first, count, interval, late
        self.starts, self.ends = _check_trace(gaps, "device")
        if late == "catch-up":
            # s_i = max(t_i, s_{i-1}) pushed out of a gap is push(t_i): an earlier begin later than
            # t_i is the end of a gap that holds t_i too.
            lo = np.maximum((self.starts - first) // interval + 1, 0)
            hi = np.minimum(-((first - self.ends) // interval), count)
            self.moved = _ranges(lo, hi)
        else:
            # Shift: s_i = push(s_{i-1} + interval). The deadlines move only where a gap holds one,
            # so walk the gaps (one push each at most, the next deadline being an interval later).
            at: list[int] = []
            offsets: list[int] = []
            offset = 0
            for gs, ge in zip(self.starts.tolist(), self.ends.tolist(), strict=True):
                i = max((gs - offset - first) // interval + 1, 0)
                if i >= count:
                    break
                due = first + i * interval + offset
                if due < ge:
                    offset = ge - first - i * interval
                    at.append(i)
                    offsets.append(offset)
            self.moved = np.array(at, dtype=np.int64)
            self.offsets = np.array(offsets, dtype=np.int64)

    def at(self, i: Int64s) -> Int64s:
        t = self.first + i * self.interval
        if self.late == "catch-up":
            return _push(t, self.starts, self.ends)
        if len(self.moved) == 0:
            return t
        k = np.searchsorted(self.moved, i, side="right") - 1
        return t + np.where(k >= 0, self.offsets[np.maximum(k, 0)], 0)


def _first_above(f: Callable[[Int64s], Int64s], count: int, values: Int64s) -> Int64s:
    """For each value v, the first i in [0, count) with f(i) > v (count if none), f non-decreasing."""
    lo = np.zeros(len(values), dtype=np.int64)
    hi = np.full(len(values), count, dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        above = f(np.minimum(mid, count - 1)) > values
        open_ = lo < hi
        hi = np.where(open_ & above, mid, hi)
        lo = np.where(open_ & ~above, mid + 1, lo)
    return lo


def driver_entries(
    device: GapTrace,
    driver: GapTrace,
    first_ns: int,
    count: int,
    interval_ns: int,
    *,
    late: str = DEFAULT_LATE,
    latency_ns: int = DEFAULT_LATENCY_NS,
) -> Int64s:
    """When the driver enters for each of ``count`` packets due at first_ns + i * interval_ns: the
    device begins packet i at s_i (as :class:`_Device`), the driver enters at s_i + latency_ns,
    pushed to the end of a driver-core gap that holds it. Every packet; small cases and tests."""
    dev = _Device(device, first_ns, count, interval_ns, late)
    d_starts, d_ends = _check_trace(driver, "driver")
    return _push(dev.at(np.arange(count, dtype=np.int64)) + latency_ns, d_starts, d_ends)


def disturbed_intervals(
    device: GapTrace,
    driver: GapTrace,
    first_ns: int,
    count: int,
    interval_ns: int,
    *,
    band: float = DEFAULT_BAND,
    late: str = DEFAULT_LATE,
    latency_ns: int = DEFAULT_LATENCY_NS,
) -> Int64s:
    """The intervals i-1 → i (by i) of ``count`` deadlines first_ns + i * interval_ns whose entries are
    more than band * interval_ns off the interval: |(e_i - e_{i-1}) - L| > band * L.

    Only packets a gap moved are looked at -- two untouched neighbours are exactly an interval
    apart -- so the cost follows the gaps, not the deadlines (600 s at 1 µs is 600 M of them).
    """
    _check_model(band, late, latency_ns)
    if count < 2:
        return np.zeros(0, dtype=np.int64)
    dev = _Device(device, first_ns, count, interval_ns, late)
    d_starts, d_ends = _check_trace(driver, "driver")
    # Entries a driver-core gap holds: s_i + latency in (start, end), s being non-decreasing in i.
    lo = _first_above(dev.at, count, d_starts - latency_ns)
    hi = _first_above(dev.at, count, d_ends - latency_ns - 1)
    moved = _unique(dev.moved, _ranges(lo, hi))
    needed = _unique(moved - 1, moved, moved + 1)
    needed = needed[(needed >= 0) & (needed < count)]
    entries = _push(dev.at(needed) + latency_ns, d_starts, d_ends)
    ends = _unique(moved, moved + 1)
    ends = ends[(ends >= 1) & (ends < count)]
    after = entries[np.searchsorted(needed, ends)]
    before = entries[np.searchsorted(needed, ends - 1)]
    off = np.abs((after - before) - interval_ns)
    disturbed: Int64s = ends[off > band * interval_ns]
    return disturbed


def expected_disturbed_share_of(
    device: GapTrace,
    driver: GapTrace,
    window: tuple[int, int],
    interval_ns: int,
    *,
    band: float = DEFAULT_BAND,
    late: str = DEFAULT_LATE,
    latency_ns: int = DEFAULT_LATENCY_NS,
    phases: int = PHASES,
) -> float:
    """Share of the intervals of a periodic run over ``window`` the two cores' gaps disturb beyond ±band.

    The device core's gaps are ``device``, the driver core's ``driver``, measured at the same time.
    Deadlines t_i = window start + phase + i * interval_ns, for ``phases`` phases evenly spread over
    one interval (where a run's grid falls against the gaps is chance). The device begins packet i
    at s_i = max(due_i, s_{i-1}) pushed to the end of a device-core gap that holds it; due_i is t_i
    under catch-up, t_i plus the lateness so far under shift. The driver enters at s_i + latency_ns,
    pushed to the end of a driver-core gap that holds it. An interval is disturbed when its entries
    are more than band * interval_ns off the interval. Disturbed over all intervals, all phases.
    """
    start, end = window
    if interval_ns <= 0 or phases < 1:
        raise ValueError("the interval and the number of phases must be positive")
    disturbed = intervals = 0
    for k in range(phases):
        first = start + k * interval_ns // phases
        count = max(-((first - end) // interval_ns), 0)  # deadlines before the window's end
        intervals += max(count - 1, 0)
        disturbed += len(
            disturbed_intervals(device, driver, first, count, interval_ns, band=band, late=late,
                                latency_ns=latency_ns)
        )  # fmt: skip
    if intervals == 0:
        raise ValueError(f"no interval of {interval_ns} ns fits a window of {end - start} ns twice")
    return disturbed / intervals


__all__ = [
    "Calibration",
    "CoreNoise",
    "GapTrace",
    "bucket_bounds",
    "bucket_of",
    "calibrate",
    "check_cores",
    "check_duration",
    "check_interval",
    "disturbed_intervals",
    "driver_entries",
    "expected_disturbed_share_of",
]
