"""Figures from records: precision, and the cause named for every interval outside the band."""

from __future__ import annotations

import numpy as np

from pseudonic.analysis import attribute_outliers, interval_deviation, summarize, woken_packet
from pseudonic.layout import IRQ_RECORD, RAISE_RECORD

INTERVAL = 38_000


def records(n: int = 10) -> dict[str, np.ndarray]:
    due = np.arange(n, dtype=np.int64) * INTERVAL
    start = due + 10
    raised = start + 100
    entry = raised + 100
    return {
        "entry_ns": entry,
        "exit_ns": entry + 5_000,
        "driver_gap_ns": np.zeros(n, np.int64),
        "due_ns": due,
        "start_ns": start,
        "device_gap_ns": np.zeros(n, np.int64),
        "raised_ns": raised,
    }


def test_a_perfect_run_is_all_within_the_band() -> None:
    r = records()
    d = interval_deviation(r["entry_ns"], r["due_ns"])
    assert d["within_6_25pct"] == 1.0 and d["outliers"] == 0 and d["max"] == 0
    assert attribute_outliers(**r) == {"device_late": 0, "driver_busy": 0, "driver_stall": 0, "unexplained": 0}


def test_each_late_endpoint_is_named() -> None:
    r = records(12)
    # packet 3: the device began 20 us late, and everything after it follows
    r["start_ns"][3] += 20_000
    r["raised_ns"][3] += 20_000
    r["entry_ns"][3] += 20_000
    # run 6: the driver was still in run 5 when the line was raised
    r["exit_ns"][5] = r["raised_ns"][6] + 15_000
    r["entry_ns"][6] = r["exit_ns"][5] + 200
    # run 9: the driver waited, its wait saw a 30 us stall
    r["entry_ns"][9] += 30_000
    r["driver_gap_ns"][9] = 30_000
    causes = attribute_outliers(**r)
    d = interval_deviation(r["entry_ns"], r["due_ns"])
    assert d["outliers"] == 6  # each late endpoint bends the interval before and after it
    assert causes == {"device_late": 2, "driver_busy": 2, "driver_stall": 2, "unexplained": 0}


def test_an_unexplained_delay_counts_against_the_tool() -> None:
    r = records()
    r["entry_ns"][4] += 10_000
    assert attribute_outliers(**r)["unexplained"] == 2


def test_summaries_keep_every_sample() -> None:
    s = summarize(np.array([1, 2, 3, 1_000_000]))
    assert s["max"] == 1_000_000 and s["n"] == 4 and s["min"] == 1


def test_each_delivery_is_put_down_to_the_raise_that_woke_the_run_that_made_it() -> None:
    raises = np.zeros(3, RAISE_RECORD)
    raises["packet"] = [0, 4, 9]
    irqs = np.zeros(3, IRQ_RECORD)
    irqs["doorbell"] = [1, 3, 0]  # the second run saw the doorbell at 3 (raise 2); the third has no raise on record
    irqs["delivered"] = [2, 2, 5]  # the first run made deliveries 0-1, the second none, the third 2-4
    assert woken_packet(irqs, raises, 6).tolist() == [0, 0, -1, -1, -1, -1]
    irqs["doorbell"][2] = 2
    assert woken_packet(irqs, raises, 5).tolist() == [0, 0, 4, 4, 4]
