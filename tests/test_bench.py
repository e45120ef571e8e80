"""pseudonic bench: the interval search on synthetic success curves, and every bench
command in --quick mode writing well-formed results.json and readable PNGs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import needs_two_cores
from pseudonic import _engine
from pseudonic.bench.search import Point, coarse_grid, search_intervals, shortest_full
from pseudonic.errors import ConfigError

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
        [sys.executable, "-m", "pseudonic", "bench", "--wait", *args, "--quick", "--out", str(out)],
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
    r = bench(tmp_path, "send-time")
    e1000, virtio = r["send_time"]  # both models by default, side by side
    assert r["devices"] == ["e1000", "virtio-net"]
    assert (e1000["device"], virtio["device"]) == ("e1000", "virtio-net")
    for row in (e1000, virtio):
        assert row["size"] == 1500 and row["paper_ns"] == 205
        for key in ("mean_ns", "p50_ns", "back_to_back_ns", "memcpy_ns"):
            assert row[key] > 0
    assert virtio["over_e1000"] == pytest.approx(virtio["p50_ns"] / e1000["p50_ns"])
    assert len(virtio["round_ratios"]) == virtio["rounds"]


@needs_two_cores
def test_bench_precision_quick(tmp_path: Path) -> None:
    p = bench(tmp_path, "precision")["precision"]
    (virtio,) = p["others"]
    assert (p["model"], virtio["model"]) == ("e1000", "virtio-net")
    for section in (p, virtio):
        assert section["interval_ns"] == 38_000 and section["count"] == 200 and section["long"]["count"] == 2000
        assert 0.0 <= section["within_6_25pct"] <= 1.0 and section["over_1us"] >= 0 and section["max_abs_dev_ns"] >= 0
        assert section["figure"] == "precision.png"  # one figure, the models side by side
    assert_png(tmp_path / "out" / p["figure"])


@needs_two_cores
def test_bench_sweep_quick(tmp_path: Path) -> None:
    r = bench(tmp_path, "sweep", "--driver", "python,c", "--device", "virtio-net")
    rows = {(row["driver"], row["device"]): row for row in r["sweep"]}
    assert set(rows) == {("python", "virtio-net"), ("c", "virtio-net")} and r["devices"] == ["virtio-net"]
    for row in rows.values():
        assert {"size", "driver", "min_full_success_interval_ns", "throughput_gbps", "throughput_mpps", "paper_gbps",
                "max_full_success_gbps", "max_full_success_mpps", "device_floor_ns"} <= set(row)  # fmt: skip
        assert row["size"] == 1500  # --quick: one size, the paper's
        if row["throughput_gbps"] is not None:  # one size: the packet rate is the bit rate over 8 x the size
            assert row["throughput_mpps"] == pytest.approx(row["throughput_gbps"] * 1e3 / (8 * 1500))
    assert_png(tmp_path / "out" / r["sweep_figure"])
    for c in r["sweep_curves"]:
        assert all(0.0 <= p["success_rate"] <= 1.0 for p in c["points"])
        # the search went down to the device's back-to-back limit at the size, and not below it
        floor = rows[(c["driver"], c["device"])]["device_floor_ns"]
        assert floor is not None and floor > 0 and c["device_floor_ns"] == floor
        assert min(p["interval_ns"] for p in c["points"]) >= floor


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
def test_bench_transmit_quick_sets_both_sides_against_memcpy_and_checks_every_frame(tmp_path: Path) -> None:
    r = bench(tmp_path, "transmit")
    rows = {row["driver"]: row for row in r["transmit"]}
    assert set(rows) == {"python", "c"}
    for row in rows.values():
        assert row["size"] == 1500 and row["all_intact"] and row["transmit_gbps"] > 0 and row["receive_gbps"] > 0
        assert row["transmit_mpps"] > 0 and row["receive_mpps"] > 0
        # the receive burst's frames are all one size: its packet rate is its bit rate over 8 x the size
        assert row["receive_mpps"] == pytest.approx(row["receive_gbps"] * 1e3 / (8 * 1500))
        assert len(row["transmit_mpps_rounds"]) == len(row["receive_mpps_rounds"]) == row["rounds"]
        assert row["transmit_over_memcpy"] == pytest.approx(row["transmit_ns_per_frame"] / row["memcpy_ns"])
        assert len(row["transmit_rounds"]) == row["rounds"] == 2
    (target,) = r["targets"]
    assert target["name"] == "transmit, C reference driver, 1500 B"
    assert target["met"] == (rows["c"]["transmit_gbps"] >= 20.0)


@needs_two_cores
def test_bench_mpps_quick_sets_each_driver_beside_the_two_core_ring_of_the_same_rounds(tmp_path: Path) -> None:
    r = bench(tmp_path, "mpps")["small_packets"]
    assert r["size_on_wire"] == 64 and r["rounds"] == 2
    ref, *subjects = r["rows"]
    assert ref["subject"] == "bare two-core ring (reference)" and len(ref["rounds"]) == 2 and ref["mpps"] > 0
    assert [s["driver"] for s in subjects] == ["c", "c", "python"]
    for s in subjects:
        assert s["over_reference"] == pytest.approx(s["mpps"] / ref["mpps"])
        assert 0 < s["delivered"] <= 1 and s["driver_mpps"] > 0
    line = r["line_rate"]
    assert line["interval_ns"] == 67 and line["sent"] == 200_000_000 // 67
    assert line["received"] + line["missed"] == line["sent"]


def test_the_two_core_ring_refuses_what_it_cannot_run() -> None:
    with pytest.raises(_engine.EngineError):
        _engine.twocore_ring(60, 1, 0, 1)
    assert _engine.twocore_ring(4096, 10, 0, 1) == 0  # a frame larger than its buffers: nothing measured


def test_the_transmit_target_needs_the_rate_and_every_frame_intact() -> None:
    from pseudonic.bench.evaluations import transmit_targets

    row = fake_transmit([1500], ["c"], 100, 1)[0]
    assert transmit_targets([row])[0]["met"]
    assert not transmit_targets([{**row, "all_intact": False}])[0]["met"]
    assert not transmit_targets([{**row, "transmit_gbps": 19.9}])[0]["met"]
    missing = transmit_targets({"failed": "RuntimeError: x"})
    assert not missing[0]["met"] and "RuntimeError" in missing[0]["measured"]


@needs_two_cores
def test_bench_all_quick_writes_the_report(tmp_path: Path) -> None:
    r = bench(tmp_path, "all")
    for section in ("send_time", "precision", "sweep", "baseline", "irq_lines", "targets"):
        assert section in r
    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Machine", "## E1", "## E2", "## E3a", "## E3b", "## Targets"):
        assert heading in report
    assert (
        "| virtio-net send time, 1500 B |" in report
        and "| virtio-net C reference driver, spin line, 1500 B |" in report
    )
    for name in ("precision.png", "sweep.png", "irq_lines.png"):
        assert_png(tmp_path / "out" / name)


def test_bench_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (["sweep", "--sizes", "10"], ["sweep", "--intervals", "fast"], ["sweep", "--driver", "nope"],
                 ["precision", "--interval", "0"], ["send-time", "--rounds", "0"], ["transmit", "--sizes", "20000"],
                 ["transmit", "--count", "5"]):  # fmt: skip
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


def test_virtio_targets_mirror_e1000s_and_set_its_send_time_against_e1000s() -> None:
    from pseudonic.bench.evaluations import targets

    results = {
        "devices": ["e1000", "virtio-net"],
        "send_time": [
            {"size": 1500, "device": "e1000", "paced_over_memcpy": 2.5, "p50_ns": 100.0, "memcpy_ns": 40.0},
            {"size": 1500, "device": "virtio-net", "paced_over_memcpy": 2.75, "p50_ns": 110.0, "memcpy_ns": 40.0,
             "e1000_p50_ns": 100.0, "over_e1000": 1.1},
            {"size": 16384, "device": "e1000", "paced_over_memcpy": 2.0, "p50_ns": 300.0, "memcpy_ns": 150.0},
            {"size": 16384, "device": "virtio-net", "paced_over_memcpy": 2.6, "p50_ns": 390.0, "memcpy_ns": 150.0,
             "e1000_p50_ns": 300.0, "over_e1000": 1.3},
        ],
        "sweep": [
            {"driver": "c", "size": 1500, "device": "e1000", "min_full_success_interval_ns": 400,
             "throughput_gbps": 30.0, "max_full_success_gbps": 30.0},
            {"driver": "c", "size": 1500, "device": "virtio-net", "min_full_success_interval_ns": 400,
             "throughput_gbps": 19.0, "max_full_success_gbps": 19.5},
            {"driver": "c", "size": 16384, "device": "e1000", "min_full_success_interval_ns": 2000,
             "throughput_gbps": 60.0, "max_full_success_gbps": 60.0},
            {"driver": "c", "size": 16384, "device": "virtio-net", "min_full_success_interval_ns": 2000,
             "throughput_gbps": 50.0, "max_full_success_gbps": 50.0},
        ],
    }  # fmt: skip
    got = {t["name"]: t for t in targets(results, None)}
    met = {name: t["met"] for name, t in got.items()}
    assert met == {
        "paced send time, 1500 B": True,  # e1000's rows only: the earlier issue's target is e1000's
        "paced send time, 16384 B": True,
        "virtio-net send time, 1500 B": True,
        "virtio-net send time, 16384 B": False,
        "C reference driver, spin line, 1500 B": True,
        "C reference driver, spin line, 16384 B": True,
        "virtio-net C reference driver, spin line, 1500 B": False,
        "virtio-net C reference driver, spin line, 16384 B": True,
    }
    assert got["virtio-net send time, 16384 B"]["measured"] == "1.30× (390 ns vs 300 ns)"
    assert got["virtio-net C reference driver, spin line, 1500 B"]["measured"].startswith("19.50 Gbps")
    # A bench of e1000 alone asks nothing of virtio-net; one whose sweep failed misses virtio's too.
    assert not any("virtio" in t["name"] for t in targets({**results, "devices": ["e1000"]}, None))
    failed = {t["name"]: t for t in targets({**results, "sweep": {"failed": "boom"}}, None)}
    assert failed["virtio-net C reference driver, spin line, 1500 B"]["met"] is False


def test_send_time_alternates_the_models_and_sets_medians_against_e1000s(monkeypatch: pytest.MonkeyPatch) -> None:
    """No node runs: each model's runs answer a send time of their own, and the order they ran in is kept."""
    from types import SimpleNamespace

    from pseudonic.bench import evaluations as ev

    order: list[str] = []
    p50 = {"e1000": iter([100, 120, 110]), "virtio-net": iter([130, 150, 125])}

    def fake_run(*args: Any, device: str = "e1000", slots: Any = None, **kwargs: Any) -> Any:
        if slots is not None:  # back to back: sends 400 ns apart
            starts = np.arange(len(slots), dtype=np.uint64) * 400
            return SimpleNamespace(tx={"start_ns": starts})
        order.append(device)
        v = float(next(p50[device]))
        return SimpleNamespace(send_time_ns={"mean": v, "p50": v, "p99": 2 * v})

    monkeypatch.setattr(ev, "run", fake_run)
    monkeypatch.setattr(ev, "memcpy_p50", lambda size, repeat: 50.0)
    rows = ev.send_time([1500], repeat=20, rounds=3, devices=("e1000", "virtio-net"))
    assert order == ["e1000", "virtio-net", "virtio-net", "e1000", "e1000", "virtio-net"]
    e1000, virtio = rows
    assert (e1000["device"], virtio["device"]) == ("e1000", "virtio-net") and "over_e1000" not in e1000
    assert e1000["p50_ns"] == 110 and virtio["p50_ns"] == 130 and virtio["e1000_p50_ns"] == 110
    assert virtio["over_e1000"] == pytest.approx(130 / 110)
    assert virtio["round_ratios"] == pytest.approx([1.3, 1.25, 125 / 110])
    assert virtio["back_to_back_ns"] == 400 and virtio["paced_over_memcpy"] == pytest.approx(130 / 50)


def test_the_report_sets_both_models_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, results, report, _ = bench_all_with(monkeypatch, tmp_path, None, fake_send_time)
    assert code == 0 and results["devices"] == ["e1000", "virtio-net"]
    assert "Device models: e1000, virtio-net" in report
    e1 = section_of(report, "send_time")
    assert "| size | device |" in e1 and "p50 / e1000's" in e1
    assert "| 1,500 B | virtio-net | 166 ns | 198 ns |" in e1 and "| ×1.10 |" in e1
    e2 = section_of(report, "precision")
    assert "ours, e1000: driver handler entries" in e2 and "ours, virtio-net: device sends" in e2
    assert "| 38.00 µs × 200, virtio-net |" not in e2  # the stand-in has no timing verdicts
    e3 = section_of(report, "sweep")
    for driver in ("python", "c"):
        for device in ("e1000", "virtio-net"):
            assert f"| 1,500 B | {driver} | {device} | spin |" in e3
    targets = report.split("## Targets", 1)[1]
    assert "| virtio-net send time, 1500 B |" in targets and "| 1.10× (198 ns vs 180 ns) | met |" in targets
    assert "| virtio-net C reference driver, spin line, 1500 B |" in targets


# ---------------------------------------------------------------------------- bench all, one evaluation broken
# Each step stands in for a real one and returns a small result shaped like the real one's; no node runs.


def fake_send_time(
    sizes: list[int], repeat: int, rounds: int, devices: tuple[str, ...] = ("e1000",)
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for s in sizes:
        for d in devices:
            slower = 1.0 if d == "e1000" else 1.1
            row = {"size": s, "device": d, "mean_ns": 151.0 * slower, "p50_ns": 180.0 * slower, "p99_ns": 241.0,
                   "back_to_back_ns": 331.0, "memcpy_ns": 30.0, "paper_ns": 205, "paced_over_memcpy": 6.0 * slower,
                   "rounds": rounds, "repeat": repeat}  # fmt: skip
            if d != "e1000" and "e1000" in devices:
                row.update({"e1000_p50_ns": 180.0, "over_e1000": slower, "round_ratios": [slower] * rounds})
            rows.append(row)
    return rows


def fake_precision(
    interval_ns: int, count: int, out: Path | None, driver: str, irq: str, quick: bool = False,
    devices: tuple[str, ...] = ("e1000",),
) -> dict[str, Any]:  # fmt: skip
    from pseudonic.bench.figures import deviation_histograms

    sections = [fake_precision_section(interval_ns, count, driver, irq, d) for d in devices]
    if out is not None:  # the real step draws its histogram itself
        models = [(d, np.array([0, 250, -4_000]), np.array([0, 80]), None) for d in devices]
        deviation_histograms(models, interval_ns, out / "precision.png")
        for section in sections:
            section["figure"] = "precision.png"
    if len(sections) > 1:
        sections[0]["others"] = sections[1:]
    return sections[0]


def fake_precision_section(interval_ns: int, count: int, driver: str, irq: str, device: str) -> dict[str, Any]:
    return {
        "interval_ns": interval_ns, "count": count, "model": device, "driver": driver, "irq": irq, "received": count,
        "within_6_25pct": 0.978, "over_1us": 27, "max_abs_dev_ns": 34_630,
        "intervals_ns": {"min": 3_370, "p50": 38_000, "p99": 47_230, "max": 90_940},
        "device": {"within_6_25pct": 0.988, "over_1us": 18, "max_abs_dev_ns": 20_640,
                   "intervals_ns": {"min": 17_360, "p50": 38_000, "p99": 38_740, "max": 58_640}},
    }  # fmt: skip


def fake_sweep(
    sizes: list[int], drivers: list[str], count: int, intervals: list[int] | None, irq: str, fine_steps: int,
    runs: int = 3, devices: tuple[str, ...] = ("e1000",),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    every = [(d, s, m) for d in drivers for s in sizes for m in devices]
    rows = [{"size": s, "device": m, "driver": d, "irq": irq, "count": count, "min_full_success_interval_ns": 1_000,
             "achieved_interval_ns": 1_010.0, "limited_by": "driver", "handler_ns_per_packet": 700.0,
             "throughput_gbps": s * 8 / 1_010, "max_full_success_gbps": s * 8 / 1_010, "paper_gbps": 6.3,
             "throughput_mpps": 1e3 / 1_010, "max_full_success_mpps": 1e3 / 1_010, "device_floor_ns": 450,
             "device_floor_runs_ns": [450.0] * runs, "device_floor_reason": None,
             "runs_per_interval": runs, "floor_reached": False, "reason": None, "every_run": []}
            for d, s, m in every]  # fmt: skip
    curves = [{"size": s, "device": m, "driver": d, "device_floor_ns": 450,
               "points": [{"interval_ns": i, "success_rate": min(1.0, i / 1_000), "gbps": s * 8 / i, "mpps": 1e3 / i}
                          for i in (500, 1_000, 2_000)]}
              for d, s, m in every]  # fmt: skip
    return rows, curves


def fake_baseline(count: int, intervals: list[int] | None) -> dict[str, Any]:
    return {"gbps": 5.25, "pps": 437_310.0, "min_full_success_interval_ns": 5_000, "size": 1500, "count": count,
            "points": [{"interval_ns": i, "success_rate": 1.0, "gbps": 12_000 / i} for i in intervals or [20_000]],
            "note": "synthetic"}  # fmt: skip


def fake_irq(lines: list[str], drivers: list[str], count: int) -> list[dict[str, Any]]:
    return [{"line": line, "driver": d, "min": 75, "p50": 135.0, "p99": 320.0, "max": 13_220, "interrupts": count,
             "handler_runs": count, "packets": count, "received": count, "note": ""}
            for line in lines for d in drivers]  # fmt: skip


def fake_moderation(count: int) -> list[dict[str, Any]]:
    return [{"mode": "none", "driver": "c", "interval_ns": 300, "itr_ns": 0, "napi_budget": 0, "packets": count,
             "received": count, "interrupts": count, "handler_runs": count, "packets_per_interrupt": 1.0}]  # fmt: skip


def fake_transmit(sizes: list[int], drivers: list[str], count: int, rounds: int) -> list[dict[str, Any]]:
    return [{"size": 1500, "driver": "c", "count": count, "rounds": rounds, "transmit_gbps": 31.2,
             "receive_gbps": 18.1, "transmit_rounds": [31.2], "receive_rounds": [18.1],
             "transmit_mpps": 2.6, "receive_mpps": 1.508, "transmit_mpps_rounds": [2.6], "receive_mpps_rounds": [1.508],
             "transmit_ns_per_frame": 384.6, "receive_ns_per_frame": 663.0, "memcpy_ns": 29.0,
             "transmit_over_memcpy": 13.26, "receive_over_memcpy": 22.86, "all_intact": True}]  # fmt: skip


def fake_small_packets(count: int, rounds: int, line_ns: int) -> dict[str, Any]:
    return {"size_on_wire": 64, "count": count, "rounds": rounds, "rows": [
        {"subject": "bare two-core ring (reference)", "mpps": 10.0, "rounds": [10.0], "delivered": 1.0,
         "driver_mpps": 10.0, "over_reference": 1.0},
        {"subject": "C, NAPI (budget 64), batches of 16", "driver": "c", "options": {}, "mpps": 5.0, "rounds": [5.0],
         "delivered": 1.0, "driver_mpps": 6.0, "over_reference": 0.5}],
        "line_rate": {"target_mpps": 14.88, "interval_ns": 67, "sent": 100, "received": 90, "missed": 10,
                      "delivered": 0.9, "received_mpps": 5.2, "sent_mpps": 5.78, "records_lost": None,
                      "verdict": "PASS"}}  # fmt: skip


#: Per evaluation (as results.json names it): the step `bench all` calls, its stand-in, the heading of its
#: section in report.md, a line of that section drawn from the stand-in's figures, and its figure if it has one.
EVALUATIONS: dict[str, tuple[str, Callable[..., Any], str, str, str | None]] = {
    "send_time": ("step_send_time", fake_send_time, "## E1", "| 1,500 B | e1000 | 151 ns | 180 ns | 241 ns |",
                  None),
    "precision": ("step_precision", fake_precision, "## E2", "| within ±6.25 % | 100.00 % | 97.80 % | 98.80 % |",
                  "precision.png"),
    "sweep": ("step_sweep", fake_sweep, "## E3a",
              "| 1,500 B | c | virtio-net | spin | 450 ns | 1.00 µs | 1.01 µs | driver | 700 ns |", "sweep.png"),
    # (a device column beside the sweep's rows, none without them)
    "baseline": ("step_baseline", fake_baseline, "## E3b", "| kernel | 5.25 Gbps, 0.437 Mpps |", None),
    "irq_lines": ("step_irq", fake_irq, "## Interrupt lines", "| spin | python | 75 ns | 135 ns | 320 ns |",
                  "irq_lines.png"),
    "moderation": ("step_moderation", fake_moderation, "## Interrupt moderation", "| none | c | 500 | 500 |", None),
    "transmit": ("step_transmit", fake_transmit, "## Transmit beside receive",
                 "| 1500 B | c | 31.20 Gbps, 2.600 Mpps | 18.10 Gbps, 1.508 Mpps | 13.26× | 22.86× | yes |", None),
    "small_packets": ("step_small_packets", fake_small_packets, "## Small packets at line rate",
                      "| C, NAPI (budget 64), batches of 16 | 5.00 | 0.50× | 100.00 % | 6.00 |", None),
}  # fmt: skip
#: What an evaluation that gives nothing returns (None, or its section's type left empty), and the reason said.
NOTHING = [
    *[(key, None, "it returned nothing (None)") for key in EVALUATIONS],
    ("send_time", [], "it returned an empty list"),
    ("precision", {}, "it returned an empty dict"),
    ("sweep", ([], []), "it returned an empty list"),  # the sweep's result is its rows; the curves feed the figure
    ("baseline", {}, "it returned an empty dict"),
    ("irq_lines", [], "it returned an empty list"),
    ("moderation", [], "it returned an empty list"),
    ("transmit", [], "it returned an empty list"),
    ("small_packets", {}, "it returned an empty dict"),
]


def stand_ins(monkeypatch: pytest.MonkeyPatch, broken: str | None, step: Callable[..., Any]) -> dict[str, Any]:
    """Every step of `bench all` a stand-in, ``broken``'s replaced by ``step``; what each returned (as JSON has it)."""
    from pseudonic.bench import command

    returned: dict[str, Any] = {}

    def recording(key: str, fake: Callable[..., Any]) -> Callable[..., Any]:
        def stand_in(*args: Any) -> Any:
            value = fake(*args)
            returned[key] = json.loads(json.dumps(value))
            return value

        return stand_in

    for key, (name, fake, *_) in EVALUATIONS.items():
        monkeypatch.setattr(command, name, step if key == broken else recording(key, fake))
    return returned


def bench_all(out: Path) -> int:
    from pseudonic.cli import main

    return main(["bench", "--wait", "all", "--quick", "--out", str(out)])


def bench_all_with(
    monkeypatch: pytest.MonkeyPatch, out: Path, broken: str | None, step: Callable[..., Any]
) -> tuple[int, dict[str, Any], str, dict[str, Any]]:
    """The exit code, results.json, report.md and what each stand-in returned."""
    returned = stand_ins(monkeypatch, broken, step)
    code = bench_all(out)
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return code, results, (out / "report.md").read_text(encoding="utf-8"), returned


def section_of(report: str, key: str) -> str:
    return report.split(EVALUATIONS[key][2], 1)[1].split("\n## ", 1)[0]


def summary_of(report: str) -> str:
    """What report.md says before its first section: the failures are named there."""
    return report.split("## Machine", 1)[0]


def title(key: str) -> str:
    from pseudonic.bench.report import EVALUATIONS as TITLES

    return TITLES[key]


def assert_the_others_ran(
    results: dict[str, Any], report: str, returned: dict[str, Any], out: Path, broken: str | None
) -> None:
    for key, (_, _, _, shown, figure) in EVALUATIONS.items():
        if key == broken:
            continue
        if key == "sweep":
            assert [results["sweep"], results["sweep_curves"]] == returned["sweep"]
        else:
            assert results[key] == returned[key], key
        assert shown in section_of(report, key), key
        if figure is not None:
            assert_png(out / figure)
            assert f"]({figure})" in section_of(report, key)
    assert "## Targets" in report


def test_bench_all_with_every_evaluation_working_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results, report, returned = bench_all_with(monkeypatch, tmp_path, None, fake_send_time)
    assert code == 0
    assert "FAILED" not in summary_of(report) and "no result" not in report.lower()
    assert capsys.readouterr().err == ""
    assert_the_others_ran(results, report, returned, tmp_path, None)


@pytest.mark.parametrize("broken", list(EVALUATIONS))
def test_bench_all_goes_on_when_an_evaluation_raises(
    broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def raises(*args: Any) -> Any:
        raise TypeError(f"unsupported format string passed to NoneType.__format__ (in {broken})")

    code, results, report, returned = bench_all_with(monkeypatch, tmp_path, broken, raises)
    reason = f"TypeError: unsupported format string passed to NoneType.__format__ (in {broken})"

    assert code == 1
    assert results[broken]["failed"] == reason
    assert ", in raises\n" in results[broken]["traceback"]  # where it was raised, not only what
    assert [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line] == [
        f"pseudonic: bench all: {title(broken)} FAILED: {reason}"
    ]
    assert f"FAILED: {title(broken)} — `{reason}`" in summary_of(report)
    assert f"`{reason}`" in section_of(report, broken) and "FAILED" in section_of(report, broken).upper()
    assert_the_others_ran(results, report, returned, tmp_path, broken)
    figure = EVALUATIONS[broken][4]
    if figure is not None:
        assert not (tmp_path / figure).exists()


def test_bench_all_names_an_exception_without_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def asserts(*args: Any) -> Any:
        raise AssertionError

    code, results, report, _ = bench_all_with(monkeypatch, tmp_path, "moderation", asserts)
    assert code == 1
    assert results["moderation"]["failed"] == "AssertionError: (no message)"
    assert "`AssertionError: (no message)`" in section_of(report, "moderation")


@pytest.mark.parametrize(("broken", "nothing", "why"), NOTHING)
def test_bench_all_says_no_result_when_an_evaluation_returns_nothing(
    broken: str, nothing: Any, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code, results, report, returned = bench_all_with(monkeypatch, tmp_path, broken, lambda *args: nothing)

    assert code == 1
    assert results[broken] == {"no_result": why}
    assert capsys.readouterr().err.splitlines() == [f"pseudonic: bench all: {title(broken)}: no result: {why}"]
    assert f"no result: {title(broken)} — {why}" in summary_of(report)
    assert f"No result: {why}" in section_of(report, broken)
    assert_the_others_ran(results, report, returned, tmp_path, broken)


@pytest.mark.parametrize(
    ("exc", "code"), [(KeyboardInterrupt(), 130), (ConfigError("--sizes: 10 B is out of range"), 2)]
)
def test_bench_all_does_not_swallow_ctrl_c_or_a_usage_error(
    exc: BaseException, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def raises(*args: Any) -> Any:
        raise exc

    stand_ins(monkeypatch, "precision", raises)
    assert bench_all(tmp_path) == code
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "report.md").exists()


# ---------------------------------------------------------------------------- the device's own limit, and 64 B


def fake_runs(limit_ns: int, stored_ns: int = 450, dropped_ns: int = 30) -> tuple[Callable[..., Any], list[int]]:
    """No node runs. Back to back (``slots``), the device stores a frame in ``stored_ns`` and drops one (its ring
    full: no copy) in ``dropped_ns``, and drops the later 60 % of the burst; paced, a receiver that takes
    everything at ``limit_ns`` or longer and half as much below, sent no faster than the device can."""
    from types import SimpleNamespace

    from pseudonic.layout import IRQ_RECORD, TX_DROPPED, TX_RECORD, TX_STORED

    paced: list[int] = []

    def fake_run(interval: int = 0, count: int = 0, size: int = 1500, *, slots: Any = None, **kwargs: Any) -> Any:
        if slots is not None:
            n = len(slots)
            tx = np.zeros(n, TX_RECORD)
            tx["flags"] = TX_STORED
            tx["flags"][int(0.4 * n) :] = TX_DROPPED
            took = np.where(tx["flags"] == TX_STORED, stored_ns, dropped_ns)
            tx["start_ns"] = 1_000_000 + np.concatenate([[0], np.cumsum(took)[:-1]])
            return SimpleNamespace(tx=tx)
        paced.append(interval)
        achieved = max(interval, stored_ns)
        rate = 1.0 if interval >= limit_ns else 0.5
        received = round(rate * count)
        return SimpleNamespace(
            success_rate=rate, received=received, throughput_gbps=received * size * 8 / (count * achieved),
            throughput_mpps=received * 1e3 / (count * achieved), error=None, irqs=np.zeros(0, IRQ_RECORD),
            stalls={"device": {"max_ns": 0}, "driver": {"max_ns": 0}},
        )  # fmt: skip

    return fake_run, paced


def test_the_sweeps_floor_is_the_measured_back_to_back_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from pseudonic.bench import evaluations as ev

    fake_run, paced = fake_runs(limit_ns=1)  # a receiver that takes everything the device can send
    monkeypatch.setattr(ev, "run", fake_run)
    (row,), (curve,) = ev.sweep([64], ["c"], count=1000, runs=3)
    # the stored sends' gaps (450 ns), not the drops' (30 ns), nor the old fixed floor (200 ns)
    assert row["device_floor_ns"] == 450 and row["device_floor_runs_ns"] == [450.0] * 3
    assert min(paced) == 450 == curve["device_floor_ns"] and ev.SWEEP_HI_NS in paced
    # it took everything even there: the receiver outran the device, and the device was the limit
    assert row["min_full_success_interval_ns"] == 450 and row["floor_reached"] and row["limited_by"] == "device"
    assert row["throughput_mpps"] == pytest.approx(1e3 / 450) == row["max_full_success_mpps"]
    assert row["throughput_gbps"] == pytest.approx(64 * 8 / 450)


def test_a_receiver_slower_than_the_device_is_the_limit_above_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    from pseudonic.bench import evaluations as ev

    fake_run, paced = fake_runs(limit_ns=1_900)
    monkeypatch.setattr(ev, "run", fake_run)
    (row,), _ = ev.sweep([1500], ["python"], count=1000, runs=1)
    assert row["device_floor_ns"] == 450 and min(paced) >= 450
    assert 1_900 <= row["min_full_success_interval_ns"] <= 2_000 and not row["floor_reached"]
    assert row["limited_by"] == "driver"
    assert row["throughput_mpps"] == pytest.approx(1e3 / row["min_full_success_interval_ns"])


def test_a_device_that_stored_no_two_in_a_row_leaves_the_floor_unmeasured_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pseudonic.bench import evaluations as ev
    from pseudonic.layout import TX_DROPPED, TX_RECORD

    fake_run, paced = fake_runs(limit_ns=1, stored_ns=100)  # a device that keeps up with every interval searched

    def dropping(*args: Any, slots: Any = None, **kwargs: Any) -> Any:
        r = fake_run(*args, slots=slots, **kwargs)
        if slots is not None:
            r.tx = np.zeros(len(slots), TX_RECORD)
            r.tx["flags"] = TX_DROPPED
        return r

    monkeypatch.setattr(ev, "run", dropping)
    (row,), _ = ev.sweep([1500], ["c"], count=100, runs=1)
    assert row["device_floor_ns"] is None and "stored two packets in a row" in row["device_floor_reason"]
    assert min(paced) == ev.SWEEP_LO_NS and row["limited_by"] == "search floor"


def test_the_default_sizes_begin_with_the_64_byte_minimum_frame_on_the_wire() -> None:
    from pseudonic.bench import command
    from pseudonic.frames import MIN_FRAME
    from pseudonic.layout import FCS
    from pseudonic.plan import Plan

    assert command._sizes(command.DEFAULT_SIZES) == [60, 1500, 8192, 16384]
    # a plan's frames are Ethernet frames without the FCS: 60 is the minimum frame, 64 B with its FCS on the wire
    assert MIN_FRAME == 60 and Plan.periodic(1000, 1, 60).frames.sizes == [60] and 60 + FCS == 64


@pytest.mark.parametrize(("args", "measured"), [([], [1500]), (["--sizes", "64,1500"], [64])])
def test_quick_measures_one_size(
    args: list[str], measured: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pseudonic import loading
    from pseudonic.bench import command
    from pseudonic.cli import main

    asked: list[list[int]] = []

    def step(sizes: list[int], *rest: Any) -> Any:
        asked.append(sizes)
        return fake_sweep(sizes, *rest)

    monkeypatch.setattr(command, "step_sweep", step)
    monkeypatch.setattr(loading, "probe", lambda driver: None)
    assert main(["bench", "--wait", "sweep", *args, "--quick"]) == 0
    assert asked == [measured]
    code, results, _, _ = bench_all_with(monkeypatch, tmp_path, None, fake_send_time)
    assert code == 0 and {r["size"] for r in results["sweep"]} == {r["size"] for r in results["send_time"]} == {1500}


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--count", "0"], "--count 0 is out of range: give 10000..1000000 frames"),
     (["--rounds", "101"], "--rounds 101 is out of range: give 1..100"),
     (["--line-rate-for", "2h"], "--line-rate-for 2h is out of range: give 1ms..60s")],
)  # fmt: skip
def test_bench_mpps_names_the_option_out_of_range(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pseudonic.cli import main

    assert main(["bench", "mpps", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
