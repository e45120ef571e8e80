"""pseudonic calibrate: the noise floor of a run's two cores, and what it does to a run's intervals.

The model (sans-IO) first, with answers worked out by hand and checked against a literal
reading of its definition; then the spinners on the real cores; then the command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import needs_two_cores
from pseudonic import _engine
from pseudonic.calibrate import (
    BUCKETS,
    DEFAULT_BAND,
    MIN_DURATION_NS,
    PHASES,
    Calibration,
    CoreNoise,
    GapTrace,
    bucket_bounds,
    bucket_of,
    calibrate,
    disturbed_intervals,
    driver_entries,
    expected_disturbed_share_of,
)
from pseudonic.config import LATE_MODES
from pseudonic.errors import ConfigError
from pseudonic.node import children, descendants, pid_alive

L = 38_000  # the paper's E2 interval
BAND_NS = DEFAULT_BAND * L  # 2375 ns
LATENCY = 300
NONE: GapTrace = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def gaps(*pairs: tuple[int, int]) -> GapTrace:
    """Gaps from (start, end) pairs."""
    return np.array([s for s, _ in pairs], np.int64), np.array([e - s for s, e in pairs], np.int64)


def disturbed(device: GapTrace, driver: GapTrace, late: str, count: int = 10, first: int = 0) -> list[int]:
    """Which intervals i-1 -> i of ``count`` deadlines i * L from ``first`` are disturbed."""
    found = disturbed_intervals(device, driver, first, count, L, late=late, latency_ns=LATENCY)
    return [int(i) for i in found]


def literal(device: GapTrace, driver: GapTrace, first: int, count: int, interval: int, band: float, late: str,
            latency: int) -> list[int]:  # fmt: skip
    """The model as its definition reads, one packet at a time: the reference for the fast one."""

    def push(x: int, trace: GapTrace) -> int:
        for s, g in zip(trace[0].tolist(), trace[1].tolist(), strict=True):
            if s < x < s + g:  # the core was away after the read at s and before the one at s + g
                return s + g
        return x

    entries: list[int] = []
    began: int | None = None
    offset = 0
    for i in range(count):
        t = first + i * interval
        due = t + offset if late == "shift" else t
        s = push(due if began is None else max(due, began), device)
        if late == "shift":
            offset += s - due  # keep the intervals: every later deadline moves by the lateness
        entries.append(push(s + latency, driver))
        began = s
    return [i for i in range(1, count) if abs((entries[i] - entries[i - 1]) - interval) > band * interval]


# -- the model, by hand ------------------------------------------------------------------------


@pytest.mark.parametrize("late", LATE_MODES)
def test_no_gaps_disturb_nothing(late: str) -> None:
    assert disturbed(NONE, NONE, late) == []
    assert expected_disturbed_share_of(NONE, NONE, (0, 100 * L), L, late=late) == 0.0


def test_a_device_stall_over_a_deadline_disturbs_two_intervals_caught_up_one_shifted() -> None:
    # Deadline 3 is at 114 µs; the device core is away from 110 to 120 µs, so packet 3 begins
    # 6 µs late, more than the band (2.375 µs). Caught up, interval 2->3 is 6 µs long and 3->4
    # 6 µs short; shifted, 3->4 keeps its length (every later deadline moved by the 6 µs).
    stall = gaps((110_000, 120_000))
    assert disturbed(stall, NONE, "catch-up") == [3, 4]
    assert disturbed(stall, NONE, "shift") == [3]


@pytest.mark.parametrize("late", LATE_MODES)
def test_a_device_stall_between_deadlines_disturbs_nothing(late: str) -> None:
    assert disturbed(gaps((80_000, 90_000)), NONE, late) == []  # deadlines 2 and 3 are at 76 and 114 µs


@pytest.mark.parametrize("late", LATE_MODES)
def test_a_deadline_at_a_read_is_not_inside_the_gap(late: str) -> None:
    # The core read the clock at 114 µs, just when packet 3 was due: it began it on time.
    assert disturbed(gaps((114_000, 124_000)), NONE, late) == []


@pytest.mark.parametrize("late", LATE_MODES)
def test_a_stall_that_ends_within_the_band_of_the_deadline_disturbs_nothing(late: str) -> None:
    assert disturbed(gaps((105_000, 115_000)), NONE, late) == []  # packet 3 begins 1 µs late


@pytest.mark.parametrize("late", LATE_MODES)
@pytest.mark.parametrize("start", [110_000, 112_500, 113_000, 114_000, 150_000])
def test_a_gap_shorter_than_the_band_disturbs_nothing_wherever_it_falls(late: str, start: int) -> None:
    short = gaps((start, start + 2_000))
    assert disturbed(short, NONE, late) == []
    assert disturbed(NONE, short, late) == []


@pytest.mark.parametrize("late", LATE_MODES)
def test_a_driver_stall_over_an_entry_disturbs_the_intervals_either_side_whatever_the_device_does(
    late: str,
) -> None:
    # The driver would enter for packet 3 at 114.3 µs; its core is away until 120 µs.
    assert disturbed(NONE, gaps((110_000, 120_000)), late) == [3, 4]


def test_a_stall_of_both_cores_at_once_counts_once() -> None:
    # The whole VM stopped: the device begins packet 3 at 120 µs and the driver, whose core came
    # back at the same moment, enters 300 ns later, as if only the device had stalled.
    both = gaps((110_000, 120_000))
    assert disturbed(both, both, "catch-up") == disturbed(both, NONE, "catch-up") == [3, 4]
    assert disturbed(both, both, "shift") == disturbed(both, NONE, "shift") == [3]


def test_a_driver_core_back_later_than_the_device_core_disturbs_a_shifted_run_twice() -> None:
    # Shifted, the device begins packet 3 at 120 µs and 4 at 158 µs; the driver's core is back
    # only at 125 µs, so 3->4 is 33.3 µs: the driver's longer stall is not the device's to absorb.
    device, driver = gaps((110_000, 120_000)), gaps((110_000, 125_000))
    assert disturbed(device, driver, "shift") == [3, 4]
    assert disturbed(device, driver, "catch-up") == [3, 4]


def test_a_stall_longer_than_the_interval_sends_the_overdue_packets_back_to_back() -> None:
    # Away from 70 to 160 µs: deadlines 2 (76), 3 (114) and 4 (152 µs) are all begun at 160 µs.
    stall = gaps((70_000, 160_000))
    assert disturbed(stall, NONE, "catch-up") == [2, 3, 4, 5]
    assert disturbed(stall, NONE, "shift") == [2]  # 160 µs, then 198, 236, ... as planned after it
    entries = driver_entries(stall, NONE, 0, 7, L, late="catch-up", latency_ns=LATENCY)
    assert entries.tolist() == [300, 38_300, 160_300, 160_300, 160_300, 190_300, 228_300]


def test_the_share_over_phases_counts_the_phases_whose_deadline_the_stall_holds() -> None:
    # A 10 µs device stall from 191 to 201 µs over a window of 20 intervals. Phase k puts the
    # deadlines at k * 2375 ns + i * L; deadline 5 of phases 1..4 (192.375, 194.75, 197.125 and
    # 199.5 µs) falls in the stall, begun 8.625, 6.25, 3.875 and 1.5 µs late: the first three
    # are beyond the band. Every phase has 20 deadlines, 19 intervals.
    stall, window = gaps((191_000, 201_000)), (0, 20 * L)
    intervals = PHASES * 19
    share = expected_disturbed_share_of(stall, NONE, window, L, latency_ns=LATENCY)
    assert share == 3 * 2 / intervals
    assert expected_disturbed_share_of(stall, NONE, window, L, late="shift", latency_ns=LATENCY) == 3 / intervals


def test_more_gaps_can_disturb_fewer_intervals() -> None:
    # Not a property the model has: packets 1 and 3 late by 10 µs disturb four intervals; making
    # packet 2 as late as well leaves only the edges of the late stretch disturbed.
    apart = gaps((30_000, 48_000), (106_000, 124_000))
    joined = gaps((30_000, 48_000), (68_000, 86_000), (106_000, 124_000))
    assert disturbed(apart, NONE, "catch-up") == [1, 2, 3, 4]
    assert disturbed(joined, NONE, "catch-up") == [1, 4]


# -- the model, by property ---------------------------------------------------------------------

WINDOW = 30 * L


@st.composite
def traces(draw: st.DrawFn, most: int = 6, longest: int = 3 * L) -> GapTrace:
    """Gaps as a spinner records them: sorted, disjoint, some back to back, some longer than L."""
    starts, lengths, t = [], [], draw(st.integers(-L, 2 * L))
    for _ in range(draw(st.integers(0, most))):
        t += draw(st.integers(0, 4 * L))
        g = draw(st.integers(1, longest))
        starts.append(t)
        lengths.append(g)
        t += g
    return np.array(starts, np.int64), np.array(lengths, np.int64)


model = {
    "first": st.integers(0, L),
    "count": st.integers(0, 30),
    "band": st.sampled_from([0.0, DEFAULT_BAND, 0.25]),
    "late": st.sampled_from(LATE_MODES),
    "latency": st.sampled_from([0, LATENCY, 5_000]),
}


@settings(max_examples=400, deadline=None)
@given(device=traces(), driver=traces(), **model)
def test_the_model_is_its_definition(
    device: GapTrace, driver: GapTrace, first: int, count: int, band: float, late: str, latency: int
) -> None:
    fast = disturbed_intervals(device, driver, first, count, L, band=band, late=late, latency_ns=latency)
    assert fast.tolist() == literal(device, driver, first, count, L, band, late, latency)


@settings(max_examples=200, deadline=None)
@given(device=traces(), driver=traces(), late=st.sampled_from(LATE_MODES))
def test_the_share_is_a_share(device: GapTrace, driver: GapTrace, late: str) -> None:
    assert 0.0 <= expected_disturbed_share_of(device, driver, (0, WINDOW), L, late=late) <= 1.0


@settings(max_examples=200, deadline=None)
@given(gap=traces(most=1), on_driver=st.booleans(), first=model["first"], latency=model["latency"])
def test_with_a_single_gap_shifting_never_disturbs_more_than_catching_up(
    gap: GapTrace, on_driver: bool, first: int, latency: int
) -> None:
    device, driver = (NONE, gap) if on_driver else (gap, NONE)
    counts = {
        late: len(disturbed_intervals(device, driver, first, 30, L, late=late, latency_ns=latency))
        for late in LATE_MODES
    }
    assert counts["shift"] <= counts["catch-up"]


@settings(max_examples=200, deadline=None)
@given(device=traces(most=8), first=model["first"], latency=model["latency"])
def test_shifted_each_device_gap_longer_than_the_band_disturbs_one_interval_at_most(
    device: GapTrace, first: int, latency: int
) -> None:
    found = disturbed_intervals(device, NONE, first, 30, L, late="shift", latency_ns=latency)
    assert len(found) <= int(np.count_nonzero(device[1] > BAND_NS))


@settings(max_examples=200, deadline=None)
@given(trace=traces(most=8, longest=int(BAND_NS)), on_driver=st.booleans(), late=model["late"], first=model["first"])
def test_gaps_on_one_core_no_longer_than_the_band_disturb_nothing(
    trace: GapTrace, on_driver: bool, late: str, first: int
) -> None:
    device, driver = (NONE, trace) if on_driver else (trace, NONE)
    assert len(disturbed_intervals(device, driver, first, 30, L, late=late, latency_ns=LATENCY)) == 0


@settings(max_examples=200, deadline=None)
@given(
    device=traces(most=8), driver=traces(most=8), keep=st.lists(st.booleans(), min_size=16, max_size=16),
    late=model["late"], first=model["first"],
)  # fmt: skip
def test_more_gaps_never_make_an_entry_earlier(
    device: GapTrace, driver: GapTrace, keep: list[bool], late: str, first: int
) -> None:
    def some(trace: GapTrace, mask: list[bool]) -> GapTrace:
        m = np.array(mask[: len(trace[0])], bool)
        return trace[0][m], trace[1][m]

    fewer_device, fewer_driver = some(device, keep[:8]), some(driver, keep[8:])
    fewer = driver_entries(fewer_device, fewer_driver, first, 30, L, late=late)
    more = driver_entries(device, driver, first, 30, L, late=late)
    assert np.all(more >= fewer)


def test_overlapping_gaps_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted by start and disjoint"):
        disturbed_intervals(gaps((0, 10_000), (5_000, 20_000)), NONE, 0, 10, L)


def test_a_long_calibration_at_a_short_interval_costs_what_its_gaps_cost() -> None:
    # 60 s at 1 µs is 60 M deadlines a phase, too many to lay out 16 times; the model walks the
    # thousand gaps a second instead (up to 10 µs each, about 0.6 % of the time).
    rng = np.random.default_rng(0)
    seconds, spacing = 60, 20_000
    starts = np.sort(rng.choice(seconds * 10**9 // spacing, seconds * 1000, replace=False)).astype(np.int64) * spacing
    trace = starts, rng.integers(1_000, 10_000, len(starts)).astype(np.int64)
    share = expected_disturbed_share_of(trace, NONE, (0, seconds * 10**9), 1_000)
    assert 0 < share < 0.1


# -- the histogram -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "bucket"), [(0, 0), (1, 0), (2, 1), (3, 1), (1023, 9), (1024, 10), (38_000, 15), (2**63 - 1, 62)]
)
def test_bucket_k_counts_gaps_from_2_to_the_k_up_to_twice_that(gap: int, bucket: int) -> None:
    assert bucket_of(gap) == bucket
    low, high = bucket_bounds(bucket)
    assert low <= max(gap, 1) < high


def test_the_engine_buckets_and_records_as_the_python_side_reads_them() -> None:
    # A millisecond with every gap over 1 ns to be recorded into room for 4: the rest are counted.
    hist = np.zeros(BUCKETS, np.uint64)
    starts, lengths = np.zeros(4, np.uint64), np.zeros(4, np.uint64)
    loops, recorded, overflowed, worst = _engine.spin_gaps(_engine.now_ns(), 1_000_000, 1, hist, starts, lengths)
    assert int(hist.sum()) == loops > 4
    assert recorded == 4 and recorded + overflowed == loops - int(hist[0])  # bucket 0: gaps of 0 and 1 ns
    assert all(hist[bucket_of(int(g))] > 0 for g in lengths) and hist[bucket_of(worst)] > 0
    assert np.all(starts[1:] >= starts[:-1] + lengths[:-1])


def test_the_engine_refuses_a_histogram_of_the_wrong_size() -> None:
    with pytest.raises(_engine.EngineError):
        _engine.spin_gaps(0, 1, 0, np.zeros(BUCKETS - 1, np.uint64), np.zeros(1, np.uint64), np.zeros(1, np.uint64))


# -- the spinners on the real cores ---------------------------------------------------------------


@needs_two_cores
def test_a_calibration_of_both_cores_accounts_for_every_clock_read() -> None:
    cal = calibrate("150ms", (0, 1), wait_for_cores=True)
    assert isinstance(cal, Calibration) and cal.cores == (0, 1) and cal.duration_ns == 150_000_000
    start, end = cal.window
    for noise in cal.noise:
        assert int(noise.histogram.sum()) == noise.loops > 0
        assert np.all(noise.lengths > cal.record_threshold_ns)
        assert np.all(noise.starts[1:] >= noise.starts[:-1] + noise.lengths[:-1])  # sorted and disjoint
        assert len(noise.starts) == 0 or (noise.starts[0] >= start and noise.starts[-1] < end)
        assert noise.worst_ns >= int(noise.lengths.max(initial=0))
        assert noise.complete and 0 <= noise.lost_share <= 1
    share = cal.expected_disturbed_share(L)
    assert 0 <= share <= 1
    figures = json.loads(json.dumps(cal.to_dict()))
    assert [c["core"] for c in figures["per_core"]] == [0, 1]
    assert sum(row["count"] for row in figures["per_core"][0]["histogram"]) == cal.noise[0].loops
    assert descendants(os.getpid()) == []


BAD_API = [
    ({"duration": "50ms"}, "100 ms .. 600 s"),
    ({"duration": "601s"}, "100 ms .. 600 s"),
    ({"duration": "soon"}, "not a duration"),
    ({"cores": (0, 99)}, "core 99 does not exist here"),
    ({"cores": (1, 1)}, "two different cores"),
    ({"cores": (0,)}, "give two cores"),
    ({"record_threshold_ns": 5_000}, "0 .. 1000 ns"),
]


@pytest.mark.parametrize(("kwargs", "says"), BAD_API)
def test_bad_input_is_refused_before_anything_starts(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
        calibrate(**kwargs)  # type: ignore[arg-type]
    assert descendants(os.getpid()) == []


def test_an_interval_the_window_cannot_hold_twice_is_refused() -> None:
    cal = Calibration(MIN_DURATION_NS, (0, 1), 0, (_quiet(0), _quiet(1)))
    with pytest.raises(ConfigError, match="half the calibration"):
        cal.expected_disturbed_share(MIN_DURATION_NS)
    assert cal.expected_disturbed_share(L) == 0.0


def _quiet(core: int) -> CoreNoise:
    hist = np.zeros(BUCKETS, np.int64)
    hist[4] = 1000
    return CoreNoise(core, MIN_DURATION_NS, 1000, hist, NONE[0], NONE[1], 1000, 0, 20)


# -- the command ---------------------------------------------------------------------------------

BAD_CLI = [
    (["--duration", "50ms"], "100 ms"),
    (["--cores", "0,99"], "core 99 does not exist here"),
    (["--cores", "0,0"], "two different cores"),
    (["--cores", "zero,one"], "not a list of core numbers"),
    (["--cores", "1"], "cores 1: give two cores"),
    (["--interval", "10s"], "half the calibration"),
    (["--json", "/nonexistent/dir/c.json"], "does not exist"),
]


@pytest.mark.parametrize(("args", "says"), BAD_CLI)
def test_bad_input_is_one_line_exit_2_nothing_left(
    args: list[str], says: str, pseudonic_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    p = pseudonic_cli("calibrate", *args)
    out, err = p.communicate()
    assert p.returncode == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("pseudonic: error: ") and says in err, err
    assert "Traceback" not in err
    assert descendants(os.getpid()) == []


@needs_two_cores
def test_the_command_prints_the_floor_and_the_expected_shares(
    tmp_path: Path, pseudonic_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    out_json = tmp_path / "floor.json"
    p = pseudonic_cli("calibrate", "--duration", "150ms", "--wait", "--interval", "38us", "--interval", "100us",
                      "--json", str(out_json))  # fmt: skip
    out, err = p.communicate()
    assert p.returncode == 0, err
    for says in ("gaps/s over 1.000 µs", "time lost", "worst gap", "core 0 (device)", "core 1 (driver)",
                 "log2 buckets", "±6.25 %", "late catch-up", "late shift", "38.000 µs", "100.000 µs"):  # fmt: skip
        assert says in out, out
    figures = json.loads(out_json.read_text())
    assert [e["interval_ns"] for e in figures["expected"]] == [38_000, 100_000]
    assert all(0 <= e[late] <= 1 for e in figures["expected"] for late in LATE_MODES)
    assert figures["cores"] == [0, 1] and len(figures["per_core"]) == 2


@needs_two_cores
def test_ctrl_c_ends_both_spinners(pseudonic_cli: Callable[..., subprocess.Popen[str]]) -> None:
    p = pseudonic_cli("calibrate", "--duration", "600s", "--wait")
    while len(children(p.pid)) < 2:  # under way once both spinners are forked (after the cores are claimed)
        assert p.poll() is None, p.communicate()
        time.sleep(0.01)
    spinners = children(p.pid)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate()
    assert p.returncode == 128 + signal.SIGINT and "interrupted by SIGINT" in err
    assert [pid for pid in spinners if pid_alive(pid)] == []
