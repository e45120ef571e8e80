"""Timing you can trust, end to end: --late, --busy-poll, --rt, --calibrate, and what a result records.

The attribution itself is tested on synthetic timelines (test_timing.py); here the records it reads
are produced by the engine and the nodes, and checked for what they must say whatever the machine does.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

import pseudonic
from conftest import leftover_segments, needs_two_cores, plain_segment, run_device
from pseudonic import _engine, faults, realtime
from pseudonic.errors import ConfigError
from pseudonic.layout import LATE_CATCHUP, LATE_SHIFT, LATE_SLACK_NS
from pseudonic.plan import Plan

HOLD_NS = 100_000  # the early-interrupt fault holds the device this long at packet 2 (no driver answers)
INTERVAL_NS = 20_000


def held_device(late: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The device loop over 8 packets 20 us apart, held 100 us at packet 2: its records, and the deadlines."""
    plan = faults.apply(Plan.periodic(INTERVAL_NS, 8, 200), [f"early-irq:{HOLD_NS}ns@2"], 0, 16, 2048)
    view = plain_segment(ring_size=16, buf_size=2048, capacity=len(plan))
    _engine.write_rdt(view.buffer, 15)
    tx = run_device(view, plan, late=late)
    planned = int(view.header["t0_ns"][0]) + plan.slots["due_ns"].astype(np.int64)
    return tx, planned


def test_catch_up_keeps_the_absolute_schedule() -> None:
    tx, planned = held_device(LATE_CATCHUP)
    assert (tx["due_ns"].astype(np.int64) == planned).all()
    # Packet 3 came at least the hold's overrun late; the overdue ones go back to back until caught up.
    assert int(tx["start_ns"][3]) - planned[3] >= HOLD_NS - INTERVAL_NS


def test_shift_keeps_the_intervals_after_a_late_start() -> None:
    tx, planned = held_device(LATE_SHIFT)
    kept, start = tx["due_ns"].astype(np.int64), tx["start_ns"].astype(np.int64)
    # The rule, packet by packet (pnic_layout.h, PNIC_LATE_SHIFT): a start more than the slack past the
    # deadline kept moves every later deadline by that lateness. (This loop runs unpinned, in the test's
    # own process: a stall of its core may shift the schedule at other packets too; the rule still holds.)
    shift = 0
    for i in range(len(tx)):
        assert kept[i] == planned[i] + shift, i
        if start[i] - kept[i] > LATE_SLACK_NS:
            shift += int(start[i] - kept[i])
    assert start[3] - kept[3] >= HOLD_NS - INTERVAL_NS  # the fault's hold made packet 3 late ...
    assert (kept[4:] - planned[4:] >= HOLD_NS - INTERVAL_NS).all()  # ... and every deadline after it moved


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_a_busy_poll_takes_the_raise_while_polling(driver: str) -> None:
    polled = pseudonic.run(interval="20us", count=300, irq="eventfd", busy_poll="50us", driver=driver,
                           wait_for_cores=True)  # fmt: skip
    asleep = pseudonic.run(interval="20us", count=300, irq="eventfd", driver=driver, wait_for_cores=True)
    for r in (polled, asleep):
        assert r.passed, r.verdict
        assert (r.irqs["wait_ns"] > 0).all()  # when each wait began is on record
    assert polled.config["busy_poll_ns"] == 50_000
    # A run's spin gaps are measured only while the node spins: polled, it spun; asleep, it never did.
    assert (polled.irqs["spin_gap_ns"] > 0).mean() > 0.5
    assert (asleep.irqs["spin_gap_ns"] == 0).all()


@needs_two_cores
def test_a_signal_line_with_a_busy_poll_delivers_everything() -> None:
    r = pseudonic.run(interval="20us", count=300, irq="signal", busy_poll="50us", driver="c", wait_for_cores=True)
    assert r.passed and r.received == 300, r.verdict


@needs_two_cores
def test_a_result_records_the_machine_its_cores_and_its_timing_verdict() -> None:
    r = pseudonic.run(count=200, wait_for_cores=True)
    m = r.machine
    for key in ("cpu_model", "kernel", "virtualised", "governor", "isolated_cores", "rt_runtime_us"):
        assert key in m, key
    assert sorted(m["run_cores"]["cores"]) == [0, 1]
    assert m["realtime"]["asked"] == "off" and not m["realtime"]["device_fifo"]
    t = r.timing
    assert r.attribution is not None and t["intervals"] == r.attribution.paced
    off = r.interval_deviation_ns["outliers"]
    assert t["raw_off_share"] == pytest.approx(off / t["intervals"])
    assert sum(r.interval_deviation_ns["outliers_by_cause"].values()) == off  # every outlier has a cause
    assert isinstance(t["trustworthy"], bool) and t["why"]
    json.dumps(r.to_dict())  # the whole result, machine and timing included, is JSON


@needs_two_cores
def test_a_calibrated_run_is_judged_against_the_calibration() -> None:
    r = pseudonic.run(count=200, calibrate="100ms", wait_for_cores=True)
    cal = r.calibration
    assert cal is not None and cal["interval_ns"] == 38_000
    assert cal["before"]["duration_ns"] == cal["after"]["duration_ns"] == 100_000_000
    assert r.timing["expected_disturbed_share"] == cal["expected_disturbed_share"]
    assert "calibration predicts" in r.timing["why"]


@needs_two_cores
@pytest.mark.skipif(
    realtime.check_rt() is not None,
    reason="SCHED_FIFO with mlockall is not permitted here (CAP_SYS_NICE, CAP_IPC_LOCK)",
)
def test_rt_runs_both_nodes_sched_fifo() -> None:
    r = pseudonic.run(count=200, rt="on", wait_for_cores=True)
    rt = r.machine["realtime"]
    assert rt["device_fifo"] and rt["driver_fifo"] and rt["refused"] is None and r.passed
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the controller itself never changed


REFUSED = "SCHED_FIFO at priority 40 is not permitted (rtprio limit 0): run as root"


def test_rt_refused_is_a_config_error_before_the_cores_are_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realtime, "check_rt", lambda: REFUSED)
    before = leftover_segments()
    with pytest.raises(ConfigError, match="--rt=try"):
        pseudonic.run(count=10, rt="on")
    assert leftover_segments() == before


@needs_two_cores
def test_rt_try_goes_on_without_it_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realtime, "check_rt", lambda: REFUSED)
    r = pseudonic.run(count=100, rt="try", wait_for_cores=True)
    rt = r.machine["realtime"]
    assert r.passed and rt["refused"] == REFUSED and not rt["device_fifo"] and not rt["driver_fifo"]
