"""Whose is each deviation: synthetic timelines with known causes, each one named, and never a wrong one.

A timeline here is what the records of a run would hold if the machine, the driver or the tool did
exactly one thing to it. Every test states the cause it planted, and checks that it is the one named,
for the interval before and the interval after the late handler entry (a late endpoint bends both).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pseudonic.timing import (
    _CODE,
    CAUSES,
    GROUPS,
    STALL_NS,
    WITHIN,
    Attribution,
    Records,
    attribute,
    device_causes,
    timing_verdict,
)

L = 38_000  # the paper's E2 interval
TOL = int(0.0625 * L)


def timeline(n: int = 12, *, interval: int = L, sleeping: bool = False) -> dict[str, Any]:
    """A clean run: the device begins each packet 20 ns after its deadline, sends in 150 ns, the
    driver (waiting since its last exit) enters 250 ns after the raise and runs 2 us."""
    due = 1_000_000 + np.arange(n, dtype=np.int64) * interval
    start = due + 20
    raised = start + 150
    entry = raised + (14_000 if sleeping else 250)
    exit_ = entry + 2_000
    wait = np.concatenate([[due[0] - 10_000], exit_[:-1] + 300])
    return {
        "planned_ns": due.copy(),
        "due_ns": due,
        "start_ns": start,
        "end_ns": raised + 30,
        "device_gap_ns": np.full(n, 60, np.int64),
        "woke": np.arange(n, dtype=np.int64),
        "raised_ns": raised,
        "wait_ns": wait,
        "entry_ns": entry,
        "exit_ns": exit_,
        "driver_gap_ns": np.full(n, 80, np.int64),
        "sleeping_line": sleeping,
    }


def delay_from(t: dict[str, Any], stage: str, j: int, by: int) -> None:
    """Push packet j's timeline from ``stage`` on by ``by`` ns (each later stage follows)."""
    order = ["start_ns", "raised_ns", "entry_ns"]
    for key in order[order.index(stage) :]:
        t[key][j] += by
    t["end_ns"][j] = t["raised_ns"][j] + 30
    t["exit_ns"][j] = t["entry_ns"][j] + 2_000
    if j + 1 < len(t["wait_ns"]):
        t["wait_ns"][j + 1] = max(t["wait_ns"][j + 1], t["exit_ns"][j] + 300)


def causes(t: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in attribute(Records(**t)).counts.items() if v}


def test_a_clean_run_has_no_outlier_and_no_cause() -> None:
    a = attribute(Records(**timeline()))
    assert a.outliers == 0 and not any(a.counts.values())
    assert (a.cause == WITHIN).all() and a.paced == 11


def test_a_stall_the_device_loop_saw_is_the_machine() -> None:
    t = timeline()
    delay_from(t, "start_ns", 5, 20_000)
    t["device_gap_ns"][5] = 20_010
    assert causes(t) == {"device_stall": 2}


def test_catching_up_after_a_device_stall_stays_the_machine() -> None:
    # A 50 us stall: packet 5 begins 50 us late and packet 6, overdue, right after it (catch-up).
    t = timeline()
    delay_from(t, "start_ns", 5, 50_000)
    t["device_gap_ns"][5] = 50_010
    delay_from(t, "start_ns", 6, 50_000 - L + 200)  # no stall in its wait: the loop came back late
    t["device_gap_ns"][6] = 0
    a = attribute(Records(**t))
    assert {k: v for k, v in a.counts.items() if v} == {"device_stall": a.outliers} and a.outliers >= 2


def overrun_send(t: dict[str, Any], p: int, by: int) -> None:
    """Packet p's send ends ``by`` ns after packet p+1's deadline: the device's loop comes back late for it."""
    t["end_ns"][p] = t["due_ns"][p + 1] + by
    delay_from(t, "start_ns", p + 1, by + 20 - (t["start_ns"][p + 1] - t["due_ns"][p + 1]))
    t["device_gap_ns"][p + 1] = 0  # the loop never waited: nothing in its wait to see


def test_a_spin_send_a_stall_long_is_the_machine() -> None:
    t = timeline()
    overrun_send(t, 4, 30_000)
    assert causes(t) == {"device_stall": 2}


def test_a_send_a_little_long_is_not_blamed_on_the_machine() -> None:
    t = timeline(interval=4_000)
    overrun_send(t, 4, 1_500)  # a 5.5 us send: past a 4 us interval's band, short of a stall
    got = causes(t)
    assert got == {"device_send": 2}
    assert all(CAUSES[k][0] == "tool" for k in got)


def test_a_long_send_on_a_line_with_a_system_call_is_the_tools() -> None:
    t = timeline(sleeping=True)
    overrun_send(t, 4, 30_000)  # the eventfd write or the signal's tgkill took it
    assert causes(t) == {"device_send": 2}


def test_a_device_late_for_an_interval_shorter_than_a_send_is_the_tools() -> None:
    t = timeline()
    delay_from(t, "start_ns", 5, 10_000)
    t["device_gap_ns"][5] = 0  # late, no stall in its wait, and the send before it was as usual
    assert causes(t) == {"device_busy": 2}


def test_a_stall_between_the_raise_stamp_and_the_driver_seeing_it_that_the_driver_loop_saw() -> None:
    t = timeline()
    delay_from(t, "entry_ns", 7, 12_000)
    t["driver_gap_ns"][7] = 12_100
    assert causes(t) == {"driver_stall": 2}


def test_a_driver_still_in_its_handler_is_the_driver() -> None:
    t = timeline()
    # run 4's handler takes 40 us: the line for packet 5 is raised while it runs
    t["exit_ns"][4] = t["entry_ns"][4] + 40_000
    t["wait_ns"][5] = t["exit_ns"][4] + 300
    t["entry_ns"][5] = t["wait_ns"][5] + 100
    t["exit_ns"][5] = t["entry_ns"][5] + 2_000
    got = causes(t)
    assert set(got) == {"handler_slow"} and sum(got.values()) == 2
    assert CAUSES["handler_slow"][0] == "driver"


def test_an_interval_shorter_than_the_handler_is_the_driver_busy() -> None:
    # 10 us apart, a 12 us handler every time: each raise finds the driver in its handler.
    t = timeline(interval=10_000)
    t["exit_ns"] = t["entry_ns"] + 12_000
    for j in range(1, len(t["entry_ns"])):
        t["wait_ns"][j] = t["exit_ns"][j - 1] + 300
        t["entry_ns"][j] = max(t["entry_ns"][j], t["wait_ns"][j] + 100)
        t["exit_ns"][j] = t["entry_ns"][j] + 12_000
    got = causes(t)
    assert got and set(got) <= {"driver_busy"}


def test_a_node_that_came_back_to_its_wait_late_with_its_handler_done_is_the_host() -> None:
    t = timeline()
    t["wait_ns"][6] = t["raised_ns"][6] + 8_000  # handler 5 returned long before; the host took its time
    t["entry_ns"][6] = t["wait_ns"][6] + 100
    t["exit_ns"][6] = t["entry_ns"][6] + 2_000
    assert causes(t) == {"host": 2}


def test_a_raise_held_after_its_send_is_what_the_driver_programmed() -> None:
    t = timeline()
    delay_from(t, "raised_ns", 3, 20_000)
    t["end_ns"][3] = t["start_ns"][3] + 180  # the send ended; the raise came later (ITR, IMS)
    assert causes(t) == {"held": 2}


def test_a_sleeping_line_that_wakes_late_or_early_is_the_line() -> None:
    t = timeline(sleeping=True)
    t["entry_ns"][4] += 9_000
    t["entry_ns"][8] -= 9_000  # woke sooner than it usually does
    for j in (4, 8):
        t["exit_ns"][j] = t["entry_ns"][j] + 2_000
    assert causes(t) == {"line_wake": 4}


def test_a_delay_no_record_explains_counts_against_the_tool() -> None:
    t = timeline()
    delay_from(t, "entry_ns", 4, 10_000)  # the driver waited, saw no stall, and the spin line was late
    assert causes(t) == {"unexplained": 2}


def test_a_stall_too_short_to_cover_the_delay_is_not_taken_for_its_cause() -> None:
    t = timeline()
    delay_from(t, "entry_ns", 4, 10_000)
    t["driver_gap_ns"][4] = 3_000  # a 3 us gap does not make a 10 us delay
    assert causes(t) == {"unexplained": 2}


def test_a_shifted_schedule_counts_one_outlier_per_stall_and_names_it() -> None:
    # --late shift: after a 20 us device stall at packet 5, every later deadline moves by 20 us.
    t = timeline()
    t["start_ns"][5:] += 20_000
    t["raised_ns"][5:] += 20_000
    t["end_ns"][5:] += 20_000
    t["entry_ns"][5:] += 20_000
    t["exit_ns"][5:] += 20_000
    t["wait_ns"][6:] += 20_000
    t["due_ns"][6:] += 20_000  # kept deadlines after the shift; packet 5's is the one it was late for
    t["device_gap_ns"][5] = 20_010
    a = attribute(Records(**t))
    assert a.outliers == 1 and a.counts["device_stall"] == 1


def test_unpaced_intervals_have_no_band() -> None:
    t = timeline()
    for key in ("planned_ns", "due_ns", "start_ns", "raised_ns", "end_ns", "entry_ns", "exit_ns"):
        t[key][3] = t[key][2] + (t[key][3] - t[key][2]) * 0 + 1  # packet 3 planned with packet 2
    t["planned_ns"][3] = t["planned_ns"][2]
    a = attribute(Records(**t))
    assert a.paced == 10


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 10),
            st.sampled_from(["device", "driver", "none"]),
            st.integers(2 * TOL + 500, 30_000),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda x: x[0],
    )
)
def test_planted_stalls_are_named_the_machine_and_nothing_else(plants: list[tuple[int, str, int]]) -> None:
    """Stalls planted where a loop saw them are named the machine's; a delay no loop saw never is."""
    plants = sorted(plants)
    # keep plants two packets apart, so that each bends only its own two intervals
    kept: list[tuple[int, str, int]] = []
    for p in plants:
        if not kept or p[0] - kept[-1][0] >= 2:
            kept.append(p)
    t = timeline(13)
    for j, where, by in kept:
        if where == "device":
            delay_from(t, "start_ns", j, by)
            t["device_gap_ns"][j] = by + 10
        elif where == "driver":
            delay_from(t, "entry_ns", j, by)
            t["driver_gap_ns"][j] = by + 10
        else:
            delay_from(t, "entry_ns", j, by)
    a = attribute(Records(**t))
    groups = a.by_group()
    unseen = sum(1 for _, where, _ in kept if where == "none")
    seen = len(kept) - unseen
    assert groups["machine"] == 2 * seen
    assert a.counts["unexplained"] == 2 * unseen
    assert groups["driver"] == 0


def verdict_of(counts: dict[str, int], paced: int = 1000, **kw: Any) -> dict[str, Any]:
    full = {name: counts.get(name, 0) for name in CAUSES}
    cause = np.full(paced, WITHIN, np.int64)
    cause[: sum(full.values())] = 0
    return timing_verdict(
        Attribution(np.zeros(paced, np.int64), cause, paced, full),
        {"device": {"over_10us": 14, "max_ns": 52_000}, "driver": {"over_10us": 0, "max_ns": 900}},
        cores=(0, 1),
        **kw,
    )


def test_a_run_the_machine_disturbed_is_not_trusted_and_says_which_core() -> None:
    v = verdict_of({"device_stall": 38, "unexplained": 2})
    assert not v["trustworthy"]
    assert v["raw_off_share"] == pytest.approx(0.040) and v["tool_attributed_share"] == pytest.approx(0.002)
    assert "core 0 (device) 14 times" in v["why"] and "38 of 40 outliers" in v["why"]


def test_a_run_whose_outliers_are_the_drivers_own_is_trusted() -> None:
    v = verdict_of({"driver_busy": 30, "device_stall": 2})
    assert v["trustworthy"] and v["driver_share"] == pytest.approx(0.030)


def test_the_tools_share_alone_can_make_a_run_untrustworthy() -> None:
    v = verdict_of({"line_wake": 5})
    assert not v["trustworthy"] and "5 line wake" in v["why"]


def test_a_calibration_puts_the_run_beside_what_the_machine_predicts() -> None:
    v = verdict_of({"device_stall": 20}, expected_disturbed_share=0.02)
    assert v["expected_disturbed_share"] == 0.02 and "×1.00" in v["why"]


def test_every_cause_has_a_group_and_a_meaning() -> None:
    for name, (group, meaning) in CAUSES.items():
        assert group in GROUPS and len(meaning) > 20, name


def test_attribution_needs_two_runs() -> None:
    t = timeline(1)
    a = attribute(Records(**t))
    assert a.outliers == 0 and a.paced == 0
    assert replace(Records(**t), sleeping_line=True).sleeping_line


def _device_causes_by_rule(t: dict[str, Any], slack: int) -> list[int]:
    """device_causes' rule, one entry at a time, as its docstring states it."""
    late = t["start_ns"] - t["due_ns"]
    send = t["end_ns"] - t["start_ns"]
    usual = int(np.median(send)) if len(send) else 0
    codes: list[int] = []
    for p in range(len(late)):
        if late[p] <= slack:
            codes.append(WITHIN)
        elif 2 * t["device_gap_ns"][p] >= late[p]:
            codes.append(_CODE["device_stall"])
        elif p > 0 and codes[p - 1] != WITHIN:
            codes.append(codes[p - 1])
        elif p > 0 and send[p - 1] - usual > slack:
            long = not t["sleeping_line"] and send[p - 1] - usual >= STALL_NS
            codes.append(_CODE["device_stall"] if long else _CODE["device_send"])
        else:
            codes.append(_CODE["device_busy"])
    return codes


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-50, 60_000), st.integers(0, 40_000), st.integers(100, 60_000)), max_size=40),
    st.booleans(),
)
def test_the_device_cause_of_each_entry_follows_the_rule_one_at_a_time(
    entries: list[tuple[int, int, int]], sleeping: bool
) -> None:
    """Late by, the stall seen in its wait, its send: whole runs of late entries, stalls inside them, long sends."""
    n = len(entries)
    t = timeline(max(n, 1), sleeping=sleeping)
    t = {k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in t.items()}
    if n:
        late, gap, send = (np.array(c, dtype=np.int64) for c in zip(*entries, strict=True))
        t["start_ns"] = t["due_ns"] + late
        t["device_gap_ns"] = gap
        t["end_ns"] = t["start_ns"] + send
    assert device_causes(Records(**t), TOL).tolist() == _device_causes_by_rule(t, TOL)


def _attribute_by_rule(r: Records, band: float = 0.0625) -> list[int]:
    """attribute's rule, one off-band interval at a time, its lateness passed on followed back entry by entry."""
    woke = np.asarray(r.woke, dtype=np.int64)
    entry = np.asarray(r.entry_ns, dtype=np.int64)
    n = entry.size
    planned, due = np.asarray(r.planned_ns)[woke], np.asarray(r.due_ns)[woke]
    start, end = np.asarray(r.start_ns)[woke], np.asarray(r.end_ns)[woke]
    raised, wait, exit_, dgap = r.raised_ns, r.wait_ns, r.exit_ns, r.driver_gap_ns
    expected, deviation, lateness = np.diff(planned), np.diff(entry - planned), entry - due
    paced = expected > 0
    off = paced & (np.abs(deviation) > band * np.where(paced, expected, 1))
    slack = max(int(band * int(np.median(expected[paced]))) // 2 if paced.any() else 0, 1)
    device_code = device_causes(r, slack)[woke]
    parts = np.stack([start - due, raised - start, entry - raised])
    handler_excess = (exit_ - entry) - int(np.median(exit_ - entry))
    held = raised - end > slack

    def late_cause(j: int, other: int) -> int | None:  # None: passed on from why j - 1 came late
        delta = parts[:, j] - parts[:, other]
        biggest = int(np.argmax(delta))
        amount = int(delta[biggest])
        if biggest == 0:
            return int(device_code[j]) if device_code[j] != WITHIN else _CODE["unexplained"]
        if biggest == 1:
            if held[j]:
                return _CODE["held"]
            return _CODE["device_stall"] if amount >= STALL_NS else _CODE["device_send"]
        if wait[j] > raised[j] and j > 0 and exit_[j - 1] >= raised[j]:
            if 2 * handler_excess[j - 1] >= amount:
                return _CODE["handler_slow"]
            if j > 1 and (lateness[j - 1] - lateness[j - 2]) > slack:
                return None
            return _CODE["driver_busy"]
        if wait[j] > raised[j]:
            return _CODE["host"]
        if 2 * dgap[j] >= amount:
            return _CODE["driver_stall"]
        return _CODE["line_wake"] if r.sleeping_line else _CODE["unexplained"]

    cause = [WITHIN] * (n - 1)
    for k in np.flatnonzero(off).tolist():
        j, other = (k + 1, k) if deviation[k] > 0 else (k, k + 1)
        code = late_cause(j, other)
        while code is None:
            j -= 1
            code = late_cause(j, j - 1)
        cause[k] = code
    return cause


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2_000, 40_000),
    st.lists(
        st.tuples(*(st.integers(0, hi) for hi in (60_000, 40_000, 30_000, 50_000, 90_000, 6_000, 30_000, 30_000))),
        min_size=2,
        max_size=40,
    ),
    st.booleans(),
    st.booleans(),
)
def test_the_cause_of_each_interval_follows_the_rule_one_at_a_time(
    interval: int, entries: list[tuple[int, ...]], sleeping: bool, slower_than_the_plan: bool
) -> None:
    """Per entry: how late the device began, its send, how long its raise was held, how late the driver entered
    after the raise, its handler, how soon after its last exit it began to wait, the stalls each loop saw. The
    driver enters no earlier than it began to wait; one slower than the plan (every handler a third longer than
    the interval) passes lateness down whole runs."""
    n = len(entries)
    columns = (np.array(c, dtype=np.int64) for c in zip(*entries, strict=True))
    late, send, hold, enter, handler, rest, dev_gap, drv_gap = columns
    if slower_than_the_plan:
        handler = interval * 4 // 3 + handler % 500
    t = timeline(n, interval=interval, sleeping=sleeping)
    t["start_ns"] = t["due_ns"] + late
    t["end_ns"] = t["start_ns"] + send
    t["raised_ns"] = t["end_ns"] + hold
    entry, exit_, wait = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for j in range(n):
        wait[j] = t["due_ns"][0] - 10_000 if j == 0 else exit_[j - 1] + rest[j]
        entry[j] = max(t["raised_ns"][j] + enter[j], wait[j] + 100)
        exit_[j] = entry[j] + handler[j]
    t.update(entry_ns=entry, exit_ns=exit_, wait_ns=wait, device_gap_ns=dev_gap, driver_gap_ns=drv_gap)
    r = Records(**t)
    assert attribute(r).cause.tolist() == _attribute_by_rule(r)
