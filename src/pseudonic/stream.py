"""Figures of a run of any length, folded as its records come: bounded memory, the same figures.

A long run (``--records summary``) keeps its records in rings in the segment
(``pnic_header.records_mask``) and a reader in the controller folds each
stretch of them into streaming histograms while the run goes, so a run of
10^9 packets needs what a run of 10^6 does. The histograms are log-linear, as
HdrHistogram's: every power of two split into :data:`SUB_BUCKETS` buckets,
so a percentile read from one is within 1/:data:`SUB_BUCKETS` of the value
(0.8 %), and below :data:`SUB_BUCKETS` ns exact; min, max, mean and count are
exact. :func:`summary` gives the keys :func:`pseudonic.analysis.summarize`
does, so a long run's result reads as a short one's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _engine
from .analysis import PRECISION_BAND, STALL_NS

#: Buckets per power of two: a value read back is within 1/SUB_BUCKETS of the one recorded.
SUB_BUCKETS = 128
_SHIFT = 7  # log2(SUB_BUCKETS)
#: Enough buckets for any int64 of ns: bucket e * SUB_BUCKETS + (v >> e), e the shift that leaves v's top 8 bits.
_BUCKETS = (64 - _SHIFT) * SUB_BUCKETS


def bucket_of(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The bucket of each value (>= 0): exact below 2 * SUB_BUCKETS, then SUB_BUCKETS per power of two."""
    v = np.asarray(values, dtype=np.int64)
    _, exp = np.frexp(v.astype(np.float64))  # v = m * 2**exp, m in [0.5, 1): exp is v's bit length
    e = np.maximum(exp.astype(np.int64) - (_SHIFT + 1), 0)
    # the float may round a value just below a power of two up to it: settle the shift on v itself
    e = np.where(v >> e >= 2 * SUB_BUCKETS, e + 1, e)
    e = np.where((e > 0) & (v >> e < SUB_BUCKETS), e - 1, e)
    out: np.ndarray[Any, Any] = (e * SUB_BUCKETS + (v >> e)).astype(np.int64)
    return out


def _shift(index: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.maximum(np.asarray(index, dtype=np.int64) // SUB_BUCKETS - 1, 0)


def bucket_low(index: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The smallest value of each bucket."""
    i = np.asarray(index, dtype=np.int64)
    e = _shift(i)
    low: np.ndarray[Any, Any] = ((i - e * SUB_BUCKETS) << e).astype(np.int64)
    return low


def bucket_width(index: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """How many values each bucket holds."""
    return (np.int64(1) << _shift(index)).astype(np.int64)


@dataclass
class Histogram:
    """Signed ns values, counted in log-linear buckets; exact count, sum, min and max."""

    pos: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(_BUCKETS, np.int64))
    neg: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(_BUCKETS, np.int64))
    n: int = 0
    total: float = 0.0
    lo: int | None = None
    hi: int | None = None

    def add(self, values: np.ndarray[Any, Any]) -> None:
        """Count ``values`` (one pass in C: _engine.hist_add buckets as :func:`bucket_of` does)."""
        v = np.ascontiguousarray(values, dtype=np.int64)
        if v.size == 0:
            return
        n, total, lo, hi = _engine.hist_add(self.pos, self.neg, v)
        self.n += n
        self.total += total
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)

    def percentile(self, q: float) -> float:
        """The value below which ``q`` % of the counted values lie, as numpy's default (linear) reads it, to
        within its bucket: the bucket's middle, kept inside the exact min and max."""
        assert self.n and self.lo is not None and self.hi is not None
        idx = np.arange(_BUCKETS, dtype=np.int64)
        # values in ascending order: the negative buckets from the largest magnitude down, then the positive
        counts = np.concatenate([self.neg[::-1], self.pos])
        mids = np.concatenate(
            [-(bucket_low(idx) + (bucket_width(idx) - 1) / 2)[::-1], bucket_low(idx) + (bucket_width(idx) - 1) / 2]
        )
        rank = q / 100 * (self.n - 1)
        at = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
        return float(min(max(mids[min(at, len(mids) - 1)], self.lo), self.hi))

    def summary(self) -> dict[str, float | int | None]:
        """The keys of :func:`pseudonic.analysis.summarize`."""
        if not self.n:
            return {"min": None, "mean": None, "p50": None, "p99": None, "max": None, "n": 0}
        return {
            "min": self.lo,
            "mean": self.total / self.n,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "max": self.hi,
            "n": self.n,
        }


@dataclass
class Deviation:
    """Interval deviations against the plan, as :func:`pseudonic.analysis.interval_deviation` gives them."""

    hist: Histogram = field(default_factory=Histogram)
    paced: int = 0
    inside: int = 0
    over_1us: int = 0
    #: the last actual and planned time of the stretch before: the first interval of the next stretch
    last: tuple[int, int] | None = None

    def add(self, actual_ns: np.ndarray[Any, Any], planned_ns: np.ndarray[Any, Any]) -> None:
        a = np.asarray(actual_ns, dtype=np.int64)
        p = np.asarray(planned_ns, dtype=np.int64)
        if a.size == 0:
            return
        if self.last is not None:
            a = np.concatenate([[self.last[0]], a])
            p = np.concatenate([[self.last[1]], p])
        self.last = (int(a[-1]), int(p[-1]))
        actual, expected = np.diff(a), np.diff(p)
        dev = actual - expected
        self.hist.add(dev)
        paced = expected > 0
        self.paced += int(paced.sum())
        self.inside += int((np.abs(dev[paced]) <= PRECISION_BAND * expected[paced]).sum())
        self.over_1us += int((np.abs(dev) > 1000).sum())

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = self.hist.summary()
        if not self.hist.n or not self.paced:
            out.update(within_6_25pct=None, outliers=None, over_1us=None)
            return out
        out["within_6_25pct"] = self.inside / self.paced
        out["outliers"] = self.paced - self.inside
        out["over_1us"] = self.over_1us
        return out


@dataclass
class Stalls:
    over_10us: int = 0
    max_ns: int = 0

    def add(self, gaps_ns: np.ndarray[Any, Any]) -> None:
        g = np.asarray(gaps_ns, dtype=np.int64)
        if g.size:
            self.over_10us += int((g > STALL_NS).sum())
            self.max_ns = max(self.max_ns, int(g.max()))

    def result(self) -> dict[str, int]:
        return {"over_10us": self.over_10us, "max_ns": self.max_ns}


#: The precision band in parts per million, for the one pass in C (_engine.fold_packets).
BAND_PPM = round(PRECISION_BAND * 1_000_000)


@dataclass
class Fold:
    """Everything a long run's result says of its records, folded stretch by stretch.

    ``plan``: the run's; a long plan is one pass repeated, so an entry's deadline is computed
    (``Plan.planned_ns``), not kept. Packet records are folded in one pass in C, straight from their
    ring (:meth:`packets`); handler runs, fewer, here.
    """

    plan: Any
    send_time: Histogram = field(default_factory=Histogram)
    irq_latency: Histogram = field(default_factory=Histogram)
    device: Deviation = field(default_factory=Deviation)
    driver: Deviation = field(default_factory=Deviation)
    device_stalls: Stalls = field(default_factory=Stalls)
    driver_stalls: Stalls = field(default_factory=Stalls)
    stored: int = 0
    #: records overwritten in their ring before they were read (their packets are counted, not their times)
    lost_records: dict[str, int] = field(default_factory=lambda: {"packets": 0, "raises": 0, "handler_runs": 0})
    #: the first send start and the last raise, for the throughput's span
    first_start_ns: int | None = None
    last_end_ns: int = 0
    #: _engine.fold_packets' accumulators (its comment names each)
    acc: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(16, np.int64))

    def __post_init__(self) -> None:
        self._due = np.ascontiguousarray(self.plan.slots["due_ns"], dtype=np.int64)

    def planned(self, entry: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        planned: np.ndarray[Any, Any] = self.plan.planned_ns(entry)
        return planned

    def gap(self) -> None:
        """Records were lost before the next: the next interval is not measured across them."""
        self.acc[14] = self.acc[15] = 0

    def packets(self, ring: np.ndarray[Any, Any], first: int, n: int, t0: int) -> None:
        """Packet records ``first`` .. ``first + n - 1`` of ``ring`` (layout.TX_RECORD, a power of two of them)."""
        if n <= 0:
            return
        mask = len(ring) - 1
        a, s, d = self.acc, self.send_time, self.device.hist
        _engine.fold_packets(ring, first, n, mask, self._due, self.plan.period_ns, t0, BAND_PPM, a, s.pos, s.neg,
                             d.pos, d.neg)  # fmt: skip
        self.stored = int(a[0])
        for h, k in ((s, 1), (d, 5)):
            h.n, h.total = int(a[k]), float(a[k + 1])
            h.lo, h.hi = (int(a[k + 2]), int(a[k + 3])) if h.n else (None, None)
        self.device.paced, self.device.inside, self.device.over_1us = int(a[9]), int(a[10]), int(a[11])
        self.device_stalls.over_10us, self.device_stalls.max_ns = int(a[12]), int(a[13])
        if self.first_start_ns is None:
            self.first_start_ns = int(ring["start_ns"][first & mask])
        self.last_end_ns = max(self.last_end_ns, int(ring["end_ns"][(first + n - 1) & mask]))

    def handler_runs(
        self, irqs: np.ndarray[Any, Any], raise_of: Callable[[np.ndarray[Any, Any]], Any], t0: int
    ) -> None:
        """Handler runs in order (layout.IRQ_RECORD); ``raise_of(doorbells)``: for each, whether the raise that
        rang it is still on record, and its time and packet."""
        if not len(irqs):
            return
        self.driver_stalls.add(irqs["spin_gap_ns"])
        known, raised_ns, packet = raise_of(irqs["doorbell"].astype(np.int64))
        entry = irqs["entry_ns"].astype(np.int64)[known]
        self.irq_latency.add(entry - raised_ns)
        self.driver.add(entry, t0 + self.planned(packet))


#: A long run's record rings: at least this many records each, and at most this many (104 B a packet in all).
RING_MIN, RING_MAX = 1 << 12, 1 << 20
#: The records written in this long go into a ring: the reader reads every EVERY_S, with room to spare.
RING_SPAN_S = 0.5


def ring_capacity(plan: Any, records: str) -> int:
    """Records each ring of a long run holds: what the plan's pace writes in RING_SPAN_S (``none``: the least),
    a power of two."""
    if records == "none":
        return RING_MIN
    span = max(plan.last_due_ns, 1)
    per_s = plan.entries / span * 1e9
    want = int(min(max(per_s * RING_SPAN_S, RING_MIN), RING_MAX))
    return 1 << (want - 1).bit_length()


class Reader:
    """Reads a long run's record rings while it goes and folds them (a thread of the controller).

    Each ring holds ``capacity`` records; a writer more than that ahead of the reader has overwritten
    records not yet read: they are counted as lost, never read torn (the reader keeps ``capacity / 8``
    behind the writer's lap).
    """

    #: how often the rings are read, s
    EVERY_S = 0.05

    def __init__(self, view: Any, fold: Fold, t0_ns: Callable[[], int], busy: tuple[int, ...] = ()) -> None:
        self.view, self.fold, self.t0_ns = view, fold, t0_ns
        #: the nodes' cores: the reader runs on any other the process may use, if there is one
        self.busy = busy
        self.cap = int(view.capacity)
        self.mask = self.cap - 1
        self.done = {"packets": 0, "raises": 0, "handler_runs": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pseudonic-records", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> Fold:
        """Stop reading and take what is left (the nodes have stopped writing)."""
        self.stop()
        self.read(final=True)
        return self.fold

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        others = os.sched_getaffinity(0) - set(self.busy)
        if others:
            os.sched_setaffinity(0, others)  # this thread only (Linux): off the nodes' cores
        while not self._stop.wait(self.EVERY_S):
            if int(self.view.header["t0_ns"][0]):
                self.read(final=False)

    def _take(self, name: str, upto: int) -> tuple[int, int]:
        """Records [first, upto) of ring ``name`` still to read: those already overwritten skipped and counted."""
        first = self.done[name]
        oldest = upto - self.cap + self.cap // 8  # a record this far behind the writer may be written over now
        if first < oldest:
            self.fold.lost_records[name] += oldest - first
            first = oldest
            if name == "packets":
                self.fold.gap()
        self.done[name] = max(upto, first)
        return first, max(upto - first, 0)

    def read(self, final: bool) -> None:
        view, t0 = self.view, self.t0_ns()
        sent = int(view.dev["sent"][0])
        runs = int(view.drv["handled"][0])
        # While the run goes, the last entries may be a batch still waiting for its raise (end_ns not yet
        # written), and the last handler run may not have returned.
        first, n = self._take("packets", sent if final else max(sent - 64, 0))
        self.fold.packets(view.tx, first, n, t0)
        first, n = self._take("handler_runs", runs if final else max(runs - 1, 0))
        irqs = view.irqs[np.arange(first, first + n, dtype=np.int64) & self.mask]
        self.fold.handler_runs(irqs, self._raise_of, t0)

    def _raise_of(self, doorbells: np.ndarray[Any, Any]) -> tuple[Any, Any, Any]:
        """For handler runs that saw these doorbells: whether the raise each answered is still in its ring, and
        its time and packet. A raise written over before it was read is counted as lost."""
        index = doorbells - 1
        raised = int(self.view.line["doorbell"][0])
        kept = (index >= 0) & (index < raised)
        known = kept & (index >= raised - self.cap + self.cap // 8)
        self.fold.lost_records["raises"] += int((kept & ~known).sum())
        rec = self.view.raises[index[known] & self.mask]
        return known, rec["raised_ns"].astype(np.int64), rec["packet"].astype(np.int64)


__all__ = [
    "RING_MAX",
    "RING_MIN",
    "SUB_BUCKETS",
    "Deviation",
    "Fold",
    "Histogram",
    "Reader",
    "Stalls",
    "bucket_low",
    "bucket_of",
    "ring_capacity",
]
