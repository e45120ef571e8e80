"""pseudonic bench: the interval search on synthetic success curves, and every bench
command in --quick mode writing well-formed results.json and readable PNGs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import needs_two_cores
from pseudonic.bench.search import Point, coarse_grid, search_intervals, shortest_full

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def curve(limit_ns: int, floor: float = 0.05):  # type: ignore[no-untyped-def]
    """A receiver that takes everything at limit_ns or slower, and less the faster it is sent to."""
    calls: list[int] = []

    def measure(interval_ns: int) -> Point:
        calls.append(interval_ns)
        rate = 1.0 if interval_ns >= limit_ns else max(floor, interval_ns / limit_ns - 0.01)
        return Point(interval_ns, rate, 12_000 / interval_ns)

    return measure, calls


def test_search_finds_the_limit_within_one_fine_step() -> None:
    measure, calls = curve(1_900)
    found = search_intervals(measure, 200, 64_000, fine_steps=6)
    # The limit lies between coarse points 1000 and 2000: fine steps of ~143 ns.
    assert found.min_full_success_interval_ns is not None
    assert 1_900 <= found.min_full_success_interval_ns <= 1_900 + (2_000 - 1_000) / 7 + 1
    assert found.throughput_gbps == pytest.approx(12_000 / found.min_full_success_interval_ns)
    assert len(calls) <= len(coarse_grid(200, 64_000)) + 6, "coarse, then fine: minutes, not hours"


def test_search_reports_no_limit_when_nothing_takes_everything() -> None:
    measure, _ = curve(10**9)
    found = search_intervals(measure, 200, 64_000)
    assert found.min_full_success_interval_ns is None and found.throughput_gbps is None


def test_search_says_when_the_receiver_outran_the_floor() -> None:
    measure, _ = curve(1)
    found = search_intervals(measure, 200, 64_000)
    assert found.min_full_success_interval_ns == 200 and found.floor_reached


def test_a_dip_above_the_limit_raises_the_answer_instead_of_hiding() -> None:
    def measure(interval_ns: int) -> Point:
        ok = interval_ns >= 1_000 and interval_ns != 8_000  # one noisy failure at 8 us
        return Point(interval_ns, 1.0 if ok else 0.9, 1.0)

    found = search_intervals(measure, 200, 64_000)
    assert found.min_full_success_interval_ns is not None and found.min_full_success_interval_ns > 8_000


@given(st.integers(min_value=250, max_value=60_000))
def test_search_answer_is_never_below_the_true_limit(limit: int) -> None:
    measure, _ = curve(limit)
    found = search_intervals(measure, 200, 64_000, fine_steps=4)
    assert found.min_full_success_interval_ns is not None
    assert found.min_full_success_interval_ns >= limit
    assert shortest_full(found.points) is not None


def bench(tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pseudonic", "bench", *args, "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results: dict = json.loads((out / "results.json").read_text())  # type: ignore[type-arg]
    assert {"meta", "machine"} <= set(results)
    return results


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(path).size > 0


@needs_two_cores
def test_bench_send_time_quick(tmp_path: Path) -> None:
    (row,) = bench(tmp_path, "send-time")["send_time"]
    assert row["size"] == 1500 and row["paper_ns"] == 205
    for key in ("mean_ns", "p50_ns", "back_to_back_ns", "memcpy_ns"):
        assert row[key] > 0


@needs_two_cores
def test_bench_precision_quick(tmp_path: Path) -> None:
    p = bench(tmp_path, "precision")["precision"]
    assert p["interval_ns"] == 38_000 and p["count"] == 200
    assert 0.0 <= p["within_6_25pct"] <= 1.0 and p["over_1us"] >= 0 and p["max_abs_dev_ns"] >= 0
    assert_png(tmp_path / "out" / p["figure"])


@needs_two_cores
def test_bench_sweep_quick(tmp_path: Path) -> None:
    r = bench(tmp_path, "sweep", "--driver", "python,c")
    rows = {row["driver"]: row for row in r["sweep"]}
    assert set(rows) == {"python", "c"}
    for row in rows.values():
        assert {"size", "driver", "min_full_success_interval_ns", "throughput_gbps", "paper_gbps"} <= set(row)
    assert_png(tmp_path / "out" / r["sweep_figure"])
    for c in r["sweep_curves"]:
        assert all(0.0 <= p["success_rate"] <= 1.0 for p in c["points"])


@needs_two_cores
def test_bench_baseline_quick(tmp_path: Path) -> None:
    b = bench(tmp_path, "baseline")["baseline"]
    assert "skipped" in b or ({"gbps", "pps"} <= set(b) and b["gbps"] > 0)


@needs_two_cores
def test_bench_irq_quick(tmp_path: Path) -> None:
    r = bench(tmp_path, "irq")
    assert {(row["line"], row["driver"]) for row in r["irq_lines"]} == {
        (line, d) for line in ("spin", "eventfd", "signal") for d in ("python", "c")
    }
    assert_png(tmp_path / "out" / r["irq_figure"])
    modes = {row["mode"]: row for row in r["moderation"]}
    assert modes["ITR 8 us"]["interrupts"] < modes["none"]["interrupts"], "ITR coalesces"


@needs_two_cores
def test_bench_all_quick_writes_the_report(tmp_path: Path) -> None:
    r = bench(tmp_path, "all")
    for section in ("send_time", "precision", "sweep", "baseline", "irq_lines", "targets"):
        assert section in r
    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Machine", "## E1", "## E2", "## E3a", "## E3b", "## Targets"):
        assert heading in report
    for name in ("precision.png", "sweep.png", "irq_lines.png"):
        assert_png(tmp_path / "out" / name)


def test_bench_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (["sweep", "--sizes", "10"], ["sweep", "--intervals", "fast"], ["sweep", "--driver", "nope"],
                 ["precision", "--interval", "0"], ["send-time", "--rounds", "0"]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "pseudonic", "bench", *args], capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("pseudonic: error:"), proc.stderr


def test_targets_are_met_by_any_full_success_run_and_missed_without_a_figure() -> None:
    from pseudonic.bench.evaluations import targets

    results = {
        "send_time": [{"size": 1500, "paced_over_memcpy": 3.5, "p50_ns": 105.0, "memcpy_ns": 30.0}],
        "sweep": [
            {"driver": "c", "size": 1500, "min_full_success_interval_ns": 200, "throughput_gbps": 18.9,
             "max_full_success_gbps": 20.4},
            {"driver": "c", "size": 16384, "min_full_success_interval_ns": None, "throughput_gbps": None,
             "max_full_success_gbps": None},
            {"driver": "python", "size": 1500, "min_full_success_interval_ns": 1900, "throughput_gbps": 6.3},
        ],
        "irq_lines": [{"line": "spin", "driver": "c", "p50": 120.0}],
    }  # fmt: skip
    met = {t["name"]: t["met"] for t in targets(results, 700.0)}
    assert met == {
        "paced send time, 1500 B": False,
        "C reference driver, spin line, 1500 B": True,
        "C reference driver, spin line, 16384 B": False,
        "Python reference driver, 1.5 KB": True,
        "spin line interrupt latency": True,
        "bench all duration": False,
    }
