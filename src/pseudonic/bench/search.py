"""Finding the shortest send interval a receiver takes completely (the paper's E3a / Fig. 8).

A run at one interval gives a success rate. The search walks a coarse
geometric grid down from a long interval until success falls to zero (or
the grid reaches the shortest interval asked for), then fills the step
between the last failing and the first fully successful grid point with a
fine linear grid. The answer is conservative: the shortest measured
interval at which that run, and every run at a longer interval, took 100 %.
A noisy dip above it therefore raises the answer instead of being hidden.

The shortest interval asked for is the caller's: the sweep passes the
device's own back-to-back limit at the size (measured first), so that the
search goes as far down as the device can send, and no further.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Point:
    interval_ns: int
    success_rate: float
    gbps: float
    #: packets taken over the same span as ``gbps``, in Mpps; None where the measure gave none
    mpps: float | None = None


@dataclass
class SearchResult:
    points: list[Point] = field(default_factory=list)
    #: None when no measured interval took every packet
    min_full_success_interval_ns: int | None = None
    #: the throughput measured at that interval, as the paper computes it (size x count / time of the sends)
    throughput_gbps: float | None = None
    #: the packet rate of the same run, in Mpps (None also where the measure gave none)
    throughput_mpps: float | None = None
    #: True when even the shortest interval searched took everything: the receiver outran the search's floor
    floor_reached: bool = False

    def curve(self) -> list[dict[str, Any]]:
        return [asdict(p) for p in sorted(self.points, key=lambda p: p.interval_ns)]


def coarse_grid(lo_ns: int, hi_ns: int, factor: float = 2.0) -> list[int]:
    """``hi_ns``, ``hi_ns / factor``, ... down to ``lo_ns`` inclusive, longest first."""
    if not 0 < lo_ns <= hi_ns or factor <= 1:
        raise ValueError(f"need 0 < lo_ns <= hi_ns and factor > 1, got {lo_ns}, {hi_ns}, {factor}")
    grid, x = [], float(hi_ns)
    while x > lo_ns:
        grid.append(round(x))
        x /= factor
    grid.append(lo_ns)
    return grid


def shortest_full(points: list[Point]) -> Point | None:
    """The shortest interval at which it and every longer measured interval took 100 %."""
    best = None
    for p in sorted(points, key=lambda p: p.interval_ns, reverse=True):
        if p.success_rate < 1.0:
            break
        best = p
    return best


def search_intervals(
    measure: Callable[[int], Point],
    lo_ns: int,
    hi_ns: int,
    *,
    factor: float = 2.0,
    fine_steps: int = 6,
    intervals: list[int] | None = None,
) -> SearchResult:
    """Measure along the coarse grid, then finely between failure and full success.

    With ``intervals`` given, measure exactly those (no search).
    """
    points: list[Point] = []
    if intervals is not None:
        points = [measure(i) for i in sorted(set(intervals), reverse=True)]
    else:
        for interval in coarse_grid(lo_ns, hi_ns, factor):
            p = measure(interval)
            points.append(p)
            if p.success_rate == 0.0:
                break
        full = shortest_full(points)
        if full is not None:
            shorter = [p.interval_ns for p in points if p.interval_ns < full.interval_ns]
            if shorter:
                below = max(shorter)
                step = (full.interval_ns - below) / (fine_steps + 1)
                fine = sorted({round(below + k * step) for k in range(1, fine_steps + 1)}, reverse=True)
                for interval in fine:
                    if below < interval < full.interval_ns:
                        points.append(measure(interval))
    best = shortest_full(points)
    return SearchResult(
        points=points,
        min_full_success_interval_ns=best.interval_ns if best else None,
        throughput_gbps=best.gbps if best else None,
        throughput_mpps=best.mpps if best else None,
        floor_reached=best is not None and best.interval_ns == min(p.interval_ns for p in points),
    )
