"""Issue 9's timing targets, measured: a capture's own timing, and a recorded timing brought back.

- :func:`capture_timing` -- a capture with irregular gaps (exponential, as
  Poisson arrivals, seeded) sent at its own timing, beside a fixed interval
  of the same mean, interleaved round by round: how far each gap between
  the device's sends, and between the driver's handler entries, is from the
  planned gap (|achieved - planned|, p50 and p99).
  Sending a capture must keep its gaps as precisely as a fixed interval.
- :func:`measured_replay` -- a run recorded, then replayed with
  ``timing="measured"`` (and, interleaved, ``timing="plan"``): how far each
  replay's sends land from the recording's (p99 over the packets), so that
  a timing seen once can be trusted to come back.

Every figure is a median over rounds of a percentile over every packet;
nothing is dropped. Both hold the session's two cores for their whole length.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import analysis, capture, recording
from ..controller import Session
from ..frames import generated_frame
from ..plan import Plan
from ..result import RunResult
from . import evaluations as ev

#: The mean gap of both timelines: a pace the C reference driver keeps with room to spare.
MEAN_GAP_NS = 20_000


def _run(s: Session, plan: Plan) -> RunResult:
    """One run of the session; a failed verdict is noted, and makes the bench command exit 1."""
    r = s.run(plan=plan, upper="null")
    if not r.passed and r.verdict is not None:
        ev.failed_verdicts.append(f"{r.config['driver']} {plan.describe()}: {r.verdict.line()}")
    return r


def _gap_error(actual: np.ndarray[Any, Any], due: np.ndarray[Any, Any]) -> tuple[float, float]:
    """p50 and p99 of |achieved gap - planned gap| between successive events (ns)."""
    err = np.abs(np.diff(actual.astype(np.int64)) - np.diff(due.astype(np.int64)))
    return float(np.percentile(err, 50)), float(np.percentile(err, 99))


def _late(r: RunResult) -> dict[str, float | None]:
    """How well the run kept its plan's gaps: between the device's sends, and between handler entries."""
    due = r.t0_ns + r.due_ns.astype(np.int64)
    dev50, dev99 = _gap_error(r.tx["start_ns"], due)
    known, raise_of = analysis.woken_by(r.irqs, r.raises)
    woke = r.raises["packet"][raise_of].astype(np.int64)
    drv50, drv99 = _gap_error(r.irqs["entry_ns"][known], due[woke])
    return {"device_p50": dev50, "device_p99": dev99, "driver_p50": drv50, "driver_p99": drv99}


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _irregular_capture(path: Path, count: int, seed: int) -> capture.Capture:
    """A capture of generated 1500 B frames with exponential gaps of mean MEAN_GAP_NS (at least 1 us)."""
    rng = np.random.default_rng(seed)
    gaps = np.maximum(rng.exponential(MEAN_GAP_NS, count - 1).round().astype(np.int64), 1_000)
    stamps = 1_700_000_000_000_000_000 + np.concatenate([[0], np.cumsum(gaps)])
    frame = generated_frame(1500)
    capture.write_pcap(path, [frame] * count, stamps)
    return capture.read_capture(path)


def capture_timing(
    *, driver: str = "c", count: int = 2000, rounds: int = 5, seed: int = 1, progress: ev.Progress | None = None
) -> dict[str, Any]:
    """A capture at its own timing against a fixed interval of the same mean: deadline deviations side by side."""
    with tempfile.TemporaryDirectory() as tmp:
        cap = _irregular_capture(Path(tmp) / "irregular.pcap", count, seed)
        pcap_plan = capture.capture_plan(cap, buffer_size=16384)
    mean_gap = round(pcap_plan.span_ns / (count - 1))
    fixed_plan = Plan.periodic(mean_gap, count, 1500)
    rows: dict[str, list[dict[str, Any]]] = {"fixed interval": [], "capture timing": []}
    with Session(driver) as s:
        for k in range(rounds):
            for label, plan in (("fixed interval", fixed_plan), ("capture timing", pcap_plan)):
                r = _run(s, plan)
                rows[label].append({**_late(r), "received": r.received, "sent": r.sent})
                if progress is not None:
                    progress(f"round {k + 1}/{rounds}: {label}")
    return {
        "driver": driver,
        "count": count,
        "rounds": rounds,
        "mean_gap_ns": mean_gap,
        "capture_gap_p99_ns": float(np.percentile(np.diff(pcap_plan.due_ns.astype(np.int64)), 99)),
        "medians": {
            label: {key: _median(rs, key) for key in ("device_p50", "device_p99", "driver_p50", "driver_p99")}
            for label, rs in rows.items()
        },
        "every_round": rows,
    }


def measured_replay(
    *, driver: str = "c", count: int = 2000, replays: int = 5, seed: int = 2, progress: ev.Progress | None = None
) -> dict[str, Any]:
    """One recorded run (Poisson, mean MEAN_GAP_NS), replayed with measured and with plan timing, interleaved."""
    from ..traffic import build_plan

    plan = build_plan(poisson=True, rate=f"{1e9 / MEAN_GAP_NS:g}pps", count=count, seed=seed)
    rows: dict[str, list[dict[str, Any]]] = {"measured": [], "plan": []}
    with tempfile.TemporaryDirectory() as tmp, Session(driver) as s:
        recorded = _run(s, plan)
        rec = recording.load(recording.save(Path(tmp) / "run.pnic", recorded))
        for k in range(replays):
            for timing in ("measured", "plan"):
                r = _run(s, rec.timed_plan(timing))
                dev = recording.send_deviation(rec, r)
                rows[timing].append({"p50": dev["p50"], "p99": dev["p99"], "max": dev["max"], "n": dev["n"]})
                if progress is not None:
                    progress(f"replay {k + 1}/{replays}: {timing} timing, p99 {dev['p99']} ns")
    recorded_late = recorded.device_interval_deviation_ns
    return {
        "driver": driver,
        "count": count,
        "replays": replays,
        "recorded_send_late_p99_ns": recorded_late["p99"],
        "recorded_send_late_max_ns": recorded_late["max"],
        "medians": {timing: {key: _median(rs, key) for key in ("p50", "p99", "max")} for timing, rs in rows.items()},
        "every_replay": rows,
    }


__all__ = ["capture_timing", "measured_replay"]
