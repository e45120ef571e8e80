"""The report side of ``pseudonic bench``: machine description, steal meter, figures, report.md."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from pseudonic import machine
from pseudonic.bench import command
from pseudonic.bench.figures import deviation_histogram, irq_latency_figure, sweep_figure
from pseudonic.bench.report import EVALUATIONS, PAPER_REAL_NIC_GBPS, fmt_gbps, fmt_ns, render_report, write_report
from pseudonic.machine import StealMeter, machine_info

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.ptp(image)) > 0  # something was drawn


# ---------------------------------------------------------------------------- machine


def test_machine_info_describes_this_machine() -> None:
    info = machine_info()
    for key in ("cpu_model", "cores", "usable_cores", "kernel", "python", "hostname", "virtualised", "hypervisor"):
        assert key in info
    assert info["usable_cores"] >= 1
    assert info["cores"] is None or info["cores"] >= info["usable_cores"]
    assert info["virtualised"] in (True, False, None)
    if info["hypervisor"] is not None:
        assert info["virtualised"] is True
    assert isinstance(info["virt_evidence"], dict)


def test_machine_info_without_proc_or_dmi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "absent-cpuinfo")
    monkeypatch.setattr(machine, "SYS_VENDOR", tmp_path / "absent-vendor")
    monkeypatch.setattr(machine, "_detect_virt", lambda kind: None)
    info = machine_info()
    assert info["virtualised"] is None and info["hypervisor"] is None and info["virt_evidence"] == {}


def test_machine_info_reads_the_hypervisor_flag_and_vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 hypervisor\n\n")
    vendor = tmp_path / "sys_vendor"
    vendor.write_text("QEMU\n")
    monkeypatch.setattr(machine, "CPUINFO", cpuinfo)
    monkeypatch.setattr(machine, "SYS_VENDOR", vendor)
    monkeypatch.setattr(machine, "_detect_virt", lambda kind: None)
    info = machine_info()
    assert info["cpu_model"] == "Test CPU 9000"
    assert info["virtualised"] is True and info["hypervisor"] == "qemu"


def busy(seconds: float) -> int:
    """Spin the CPU for a bounded time (no sleep): enough for /proc/stat's jiffies to move."""
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
    return n


def test_steal_meter_around_a_busy_loop() -> None:
    with StealMeter() as meter:
        busy(0.3)
    r = meter.result()
    if not r["available"]:
        pytest.skip("/proc/stat is not readable here")
    assert 0.25 <= r["seconds"] < 30
    assert 0.0 <= r["steal_pct"] <= 100.0
    assert r["jiffies"] > 0  # the busy loop itself made jiffies tick
    assert meter.result() == r  # after exit the result is fixed


def test_steal_meter_counts_steal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    monkeypatch.setattr(machine, "PROC_STAT", stat)
    stat.write_text("cpu  100 0 100 700 0 0 0 100 0 0\ncpu0 1 2 3\n")
    with StealMeter() as meter:
        # user +50, idle +100, steal +50: 50 of 200 jiffies stolen
        stat.write_text("cpu  150 0 100 800 0 0 0 150 0 0\n")
    r = meter.result()
    assert r["available"] is True
    assert r["steal_pct"] == pytest.approx(25.0)


def test_steal_meter_without_proc_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "PROC_STAT", tmp_path / "absent")
    with StealMeter() as meter:
        pass
    r = meter.result()
    assert r["available"] is False and r["steal_pct"] is None and r["seconds"] >= 0


def test_steal_meter_result_before_enter() -> None:
    with pytest.raises(RuntimeError):
        StealMeter().result()


# ---------------------------------------------------------------------------- figures


def test_deviation_histogram_with_outliers(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    driver = rng.normal(0, 300, 1000)
    driver[:3] = [250_000, -120_000, 90_000]  # 100x the band
    device = rng.normal(0, 50, 1000).astype(np.int64)
    path = deviation_histogram(driver, device, 38_000, tmp_path / "precision.png")
    assert path == tmp_path / "precision.png"
    assert_png(path)


def test_deviation_histogram_with_exact_and_empty_samples(tmp_path: Path) -> None:
    exact = np.zeros(500, dtype=np.int64)  # every interval exact: most bins are 0 on a log axis
    assert_png(deviation_histogram(exact, np.array([], dtype=np.int64), 38_000, tmp_path / "a.png"))
    assert_png(deviation_histogram(np.array([]), np.array([]), 1_000, tmp_path / "b.png"))


def curve(size: int, driver: str, full_at_ns: int) -> dict[str, Any]:
    intervals = [500, 1_000, 2_000, 4_000, 8_000, 16_000]
    return {
        "size": size,
        "driver": driver,
        "points": [
            {"interval_ns": i, "success_rate": min(1.0, i / full_at_ns), "gbps": size * 8 / i} for i in intervals
        ],
    }


def test_sweep_figure(tmp_path: Path) -> None:
    curves = [curve(1500, "python", 4_000), curve(16384, "python", 32_000), curve(1500, "c", 500)]
    baseline = curve(1500, "kernel", 8_000)
    assert_png(sweep_figure(curves, tmp_path / "sweep.png", baseline=baseline))
    assert_png(sweep_figure([], tmp_path / "empty.png", baseline={"skipped": "no veth"}))


def test_irq_latency_figure(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"line": "spin", "driver": "python", "min": 200, "p50": 900, "p99": 3_000, "max": 250_000},
        {"line": "eventfd", "driver": "python", "min": 3_000, "p50": 9_000, "p99": 40_000, "max": 900_000},
        {"line": "signal", "driver": "c", "min": None, "p50": None, "p99": None, "max": None},
        {"line": "spin", "driver": "c", "min": 0, "p50": 150, "p99": 600, "max": 50_000},
    ]
    assert_png(irq_latency_figure(rows, tmp_path / "irq.png"))
    assert_png(irq_latency_figure([], tmp_path / "none.png"))


# ---------------------------------------------------------------------------- report


def full_results() -> dict[str, Any]:
    return {
        "meta": {
            "command": "pseudonic bench all",
            "date": "2026-11-27T10:00:00",
            "duration_s": 812.4,
            "version": "0.1",
        },
        "machine": {
            "cpu_model": "AMD EPYC",
            "cores": 2,
            "usable_cores": 2,
            "kernel": "6.1.0",
            "python": "3.11.7",
            "hostname": "vm",
            "virtualised": True,
            "hypervisor": "kvm",
            "virt_evidence": {"cpu_flag": "hypervisor flag set"},
            "steal_pct": 3.5,
        },
        "send_time": [
            {
                "size": 1500,
                "mean_ns": 410.0,
                "p50_ns": 400,
                "p99_ns": 900,
                "back_to_back_ns": 300,
                "memcpy_ns": 100,
                "paper_ns": 205,
            },
            {
                "size": 9000,
                "mean_ns": 2100.0,
                "p50_ns": 2000,
                "p99_ns": 3100,
                "back_to_back_ns": 1800,
                "memcpy_ns": 500,
                "paper_ns": None,
            },
        ],
        "precision": {
            "interval_ns": 38_000,
            "count": 1000,
            "within_6_25pct": 0.997,
            "over_1us": 5,
            "max_abs_dev_ns": 250_000,
            "intervals_ns": {"min": 20_000, "p50": 38_000, "p99": 39_200, "max": 288_000},
            "device": {
                "count": 1000,
                "within_6_25pct": 1.0,
                "over_1us": 0,
                "max_abs_dev_ns": 800,
                "intervals_ns": {"min": 37_400, "p50": 38_000, "p99": 38_500, "max": 38_800},
            },
            "paper": {"within_6_25pct": 1.0},
            "figure": "precision.png",
        },
        "sweep": [
            {
                "size": 1500,
                "driver": "python",
                "irq": "spin",
                "device_floor_ns": 480,
                "min_full_success_interval_ns": 4_000,
                "throughput_gbps": 2.987,
                "throughput_mpps": 0.2489,
                "max_full_success_gbps": 3.1,
                "max_full_success_mpps": 0.2583,
                "limited_by": "driver",
                "floor_reached": False,
                "paper_gbps": 6.3,
            },
            {
                "size": 16384,
                "driver": "python",
                "irq": "spin",
                "device_floor_ns": 1_870,
                "min_full_success_interval_ns": None,
                "throughput_gbps": None,
                "throughput_mpps": None,
                "paper_gbps": 30.6,
            },
            {
                # the receiver took everything at the device's own back-to-back limit: the device was the limit
                "size": 64,
                "driver": "c",
                "irq": "spin",
                "device_floor_ns": 180,
                "min_full_success_interval_ns": 180,
                "achieved_interval_ns": 185.0,
                "limited_by": "device",
                "floor_reached": True,
                "throughput_gbps": 2.768,
                "throughput_mpps": 5.405,
                "max_full_success_gbps": 2.768,
                "max_full_success_mpps": 5.405,
                "paper_gbps": None,
            },
        ],
        "sweep_figure": "sweep.png",
        "baseline": {"gbps": 1.234, "pps": 102_833.0, "min_full_success_interval_ns": 9_700},
        "moderation": [
            {
                "mode": "none",
                "driver": "c",
                "packets": 500,
                "received": 500,
                "interrupts": 500,
                "handler_runs": 480,
                "packets_per_interrupt": 1.0,
            },
            {
                "mode": "ITR 8 us",
                "driver": "c",
                "packets": 500,
                "received": 500,
                "interrupts": 62,
                "handler_runs": 62,
                "packets_per_interrupt": 8.06,
            },
        ],
        "small_packets": {
            "size_on_wire": 64,
            "count": 200000,
            "rounds": 5,
            "rows": [
                {
                    "subject": "bare two-core ring (reference)",
                    "mpps": 10.73,
                    "delivered": 1.0,
                    "driver_mpps": 10.73,
                    "over_reference": 1.0,
                },
                {
                    "subject": "C, NAPI (budget 64), batches of 16",
                    "mpps": 5.17,
                    "delivered": 0.9194,
                    "driver_mpps": 6.1,
                    "over_reference": 0.482,
                },
            ],
            "line_rate": {
                "target_mpps": 14.88,
                "interval_ns": 67,
                "sent": 149253731,
                "received": 123077686,
                "delivered": 0.8246,
                "received_mpps": 5.28,
                "sent_mpps": 6.4,
            },
        },
        "transmit": [
            {
                "size": 1500,
                "driver": "c",
                "transmit_gbps": 30.5,
                "receive_gbps": 18.25,
                "transmit_mpps": 2.5417,
                "receive_mpps": 1.5208,
                "transmit_over_memcpy": 13.0,
                "receive_over_memcpy": 22.5,
                "all_intact": True,
            },
        ],
        "irq_lines": [
            {
                "line": "spin",
                "driver": "python",
                "min": 200,
                "p50": 900,
                "p99": 3_000,
                "max": 250_000,
                "interrupts": 1000,
                "note": "",
            },
            {
                "line": "signal",
                "driver": "python",
                "min": 4_000,
                "p50": 12_000,
                "p99": 55_000,
                "max": 1_200_000,
                "interrupts": 1000,
                "note": "a|b",
            },
        ],
        "targets": [
            {"name": "E2 within 6.25 %", "target": "100 %", "measured": "99.70 %", "met": False},
            {"name": "E1 1.5 KB send", "target": "< 1 µs", "measured": "400 ns", "met": True},
        ],
    }


def test_full_report(tmp_path: Path) -> None:
    (tmp_path / "precision.png").write_bytes(PNG_SIGNATURE)  # only its presence matters here
    path = write_report(full_results(), tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")
    # machine first, then the evaluations in order
    order = ["## Machine", "## E1", "## E2", "## E3a", "## E3b", "## Interrupt lines", "## Targets"]
    positions = [text.index(h) for h in order]
    assert positions == sorted(positions)
    assert "AMD EPYC" in text and "yes (kvm)" in text and "3.50 %" in text
    assert "paper Table 1" in text and "paper Fig. 7" in text and "paper Fig. 8" in text and "paper Table 2" in text
    # E1: ours, the paper's and the ratios
    assert "| 1,500 B | 410 ns | 400 ns | 900 ns | 300 ns | 100 ns | ×4.00 | 205 ns | ×1.46 |" in text
    assert "— (no paper figure for this size)" in text
    # E2
    assert "99.70 %" in text and "250.00 µs" in text and "![E2: interval deviation histogram](precision.png)" in text
    # E3: a None says why; the figure is linked even though it is absent, and its absence is said
    assert "— (no measured interval took 100 %)" in text
    assert (
        "| 1,500 B | python | spin | 2.99 Gbps, 0.249 Mpps | 3.10 Gbps, 0.258 Mpps | 6.30 Gbps, 0.525 Mpps derived "
        "| ×0.47 |" in text
    )
    assert (
        "| 64 B | c | spin | 2.77 Gbps, 5.405 Mpps | 2.77 Gbps, 5.405 Mpps | — (no paper figure for this size) |"
        in text
    )
    assert "](sweep.png)" in text and "`sweep.png` was not found" in text
    assert f"{PAPER_REAL_NIC_GBPS:.2f} Gbps, 0.077 Mpps derived (real NIC)" in text
    assert "| kernel | 1.23 Gbps, 0.103 Mpps |" in text and "102,833 packets/s" in text
    # interrupt lines; a pipe in a note does not break the table
    assert "| signal | python | 4.00 µs | 12.00 µs | 55.00 µs | 1.20 ms | 1,000 | a\\|b |" in text
    # targets: a missed one is said plainly
    assert "| E2 within 6.25 % | 100 % | 99.70 % | MISSED |" in text
    assert "| E1 1.5 KB send | < 1 µs | 400 ns | met |" in text
    assert "1 of 2 targets MISSED" in text and "- MISSED: E2 within 6.25 %" in text
    assert "| ITR 8 us | c | 500 | 500 | 62 | 62 | 8.1 |" in text
    assert "| 1500 B | c | 30.50 Gbps, 2.542 Mpps | 18.25 Gbps, 1.521 Mpps | 13.00× | 22.50× | yes |" in text
    assert "| C, NAPI (budget 64), batches of 16 | 5.17 | 0.48× | 91.94 % | 6.10 |" in text
    assert "Paced at 14.88 Mpps (67 ns a frame), C driver: 82.46 % delivered" in text
    assert "not run" not in text.lower()


def test_report_with_sections_missing(tmp_path: Path) -> None:
    results: dict[str, Any] = {
        "meta": {"command": "pseudonic bench sweep", "date": "2026-11-27", "duration_s": 1.0, "version": "0.1"},
        "sweep": [
            {
                "size": 1500,
                "driver": "c",
                "irq": "eventfd",
                "min_full_success_interval_ns": None,
                "throughput_gbps": None,
                "paper_gbps": None,
            }
        ],
        "baseline": {"skipped": "cannot create a veth pair without CAP_NET_ADMIN"},
        "targets": [{"name": "E3b 1.5 KB", "target": "≥ 6.3 Gbps", "measured": None, "met": None}],
    }
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    for heading in ("## Machine", "## E1", "## E2", "## Interrupt lines"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert "not run" in section.lower(), heading
    assert "Kernel baseline skipped: cannot create a veth pair without CAP_NET_ADMIN" in text
    assert "— (no paper figure for this size)" in text
    assert "| E3b 1.5 KB | ≥ 6.3 Gbps | — | MISSED |" in text
    assert "![" not in text  # no figure named, none linked
    assert list(tmp_path.iterdir()) == [tmp_path / "report.md"]


def test_empty_results(tmp_path: Path) -> None:
    text = render_report({}, tmp_path)
    assert text.lower().count("not run") >= 6
    assert "MISSED" not in text


def test_number_formats() -> None:
    assert fmt_ns(None) == "—"
    assert fmt_ns(205) == "205 ns"
    assert fmt_ns(38_000) == "38.00 µs"
    assert fmt_ns(1_500_000) == "1.50 ms"
    assert fmt_gbps(6.3) == "6.30 Gbps"
    assert fmt_gbps(None) == "—"


# ---------------------------------------------------------------------------- packets per second beside Gbps


def table_cells(text: str) -> list[str]:
    """Every cell of every markdown table in ``text``."""
    return [cell.strip() for line in text.splitlines() if line.startswith("|") for cell in line.strip("|").split(" | ")]


def test_the_report_shows_mpps_beside_every_gbps(tmp_path: Path) -> None:
    from pseudonic.bench.evaluations import targets

    results = full_results()
    results["targets"] = targets(results, None)  # the targets as the bench words them, measured from these rows
    text = render_report(results, tmp_path)
    rates = [cell for cell in table_cells(text) if re.search(r"\d Gbps", cell)]
    assert len(rates) >= 10
    for cell in rates:
        assert re.search(r"\d Gbps, (\d+\.\d{3}|—) Mpps", cell) or re.search(r"\d Gbps \([^)]*Mpps", cell), cell
    # where the paper gives a figure it gives Gbps only: its Mpps are derived, and marked so
    assert "6.30 Gbps, 0.525 Mpps derived" in text and "30.60 Gbps, 0.233 Mpps derived" in text
    assert "Gbps / (8 × size)" in section_of(text, "## E3b")
    # the prose's real NIC has its twin too; the memory bandwidth is bytes only, and says so
    assert "(0.92 Gbps, 0.077 Mpps derived, Table 2)" in text and "no packet rate goes with it" in text


def test_the_paper_s_derived_mpps_is_gbps_over_8_times_its_size() -> None:
    from pseudonic.bench.report import PAPER_THROUGHPUT_GBPS, fmt_paper_rate, paper_size

    assert [paper_size(s) for s in (1500, 1514, 8192, 16384)] == [1500, 1500, 8192, 16384]
    for size, gbps in PAPER_THROUGHPUT_GBPS.items():
        mpps = gbps * 1e9 / (8 * size) / 1e6
        assert fmt_paper_rate(gbps, size) == f"{gbps:.2f} Gbps, {mpps:.3f} Mpps derived"


def test_a_row_from_before_the_packet_rate_says_it_was_not_recorded(tmp_path: Path) -> None:
    results = full_results()
    for key in ("throughput_mpps", "max_full_success_mpps"):
        results["sweep"][0].pop(key)
    results["baseline"].pop("pps")
    results["transmit"][0].pop("transmit_mpps")
    text = render_report(results, tmp_path)
    assert "| 1,500 B | python | spin | 2.99 Gbps, — Mpps (not recorded) | 3.10 Gbps, — Mpps (not recorded) |" in text
    assert "| kernel | 1.23 Gbps, — Mpps (not recorded) |" in text
    assert "| 1500 B | c | 30.50 Gbps, — Mpps (not recorded) | 18.25 Gbps, 1.521 Mpps |" in text


def test_the_sweep_names_the_device_s_limit_and_who_outran_whom(tmp_path: Path) -> None:
    e3a = section_of(render_report(full_results(), tmp_path), "## E3a")
    assert "| device's back-to-back limit at this size | shortest 100 % interval |" in e3a
    assert "| 1,500 B | python | spin | 480 ns | 4.00 µs |" in e3a
    assert "| 64 B | c | spin | 180 ns | 180 ns | 185 ns | device |" in e3a
    assert (
        "- 64 B, c: the receiver took everything even at the device's back-to-back limit at this size (180 ns): the "
        "receiver outran the device, and the device was the limit." in e3a
    )
    assert e3a.count("outran the device") == 1  # the Python driver's limit was its own
    # intervals of the user's that stopped above the device's limit never reached it, whatever the device's pace
    results = full_results()
    results["sweep"][2].update(min_full_success_interval_ns=500, achieved_interval_ns=600.0)
    assert "outran the device" not in section_of(render_report(results, tmp_path), "## E3a")
    # what a size is: the frame without its FCS, so 64 is 68 B on the wire
    assert "a 60 B row is the minimum frame, 64 B on the wire with its FCS" in e3a


def test_a_sweep_row_from_before_the_device_s_limit_says_its_floor_was_fixed(tmp_path: Path) -> None:
    results = full_results()
    row = results["sweep"][0]
    row.pop("device_floor_ns")
    assert "| 1,500 B | python | spin | — (not measured: a fixed floor) | 4.00 µs |" in render_report(results, tmp_path)
    row["device_floor_ns"], row["device_floor_reason"] = None, "no back-to-back run stored two packets in a row"
    assert "| — (no back-to-back run stored two packets in a row) | 4.00 µs |" in render_report(results, tmp_path)


def test_the_terminal_tables_show_mpps_beside_gbps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    monkeypatch.setattr(command, "console", Console(width=200))  # a terminal wide enough that no cell wraps
    results = full_results()
    command.show_sweep(results["sweep"])
    command.show_baseline({**results["baseline"], "size": 1500, "note": "synthetic"})
    command.show_transmit(results["transmit"])
    out = capsys.readouterr().out
    for shown in ("5.405 Mpps", "0.249 Mpps", "0.525 Mpps derived", "1.23 Gbps, 0.103 Mpps, 102833 packets/s",
                  "2.542 Mpps", "1.521 Mpps", "outran the device"):  # fmt: skip
        assert shown in out, shown


# ---------------------------------------------------------------------------- missing figures never crash


def with_every_figure_none(value: Any) -> Any:
    """The same sections, rows and keys, with every value in them None."""
    if isinstance(value, dict):
        return {k: with_every_figure_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_every_figure_none(v) for v in value]
    return None


HEADINGS = {
    "send_time": "## E1",
    "precision": "## E2",
    "sweep": "## E3a",
    "baseline": "## E3b",
    "irq_lines": "## Interrupt lines",
    "moderation": "## Interrupt moderation",
    "transmit": "## Transmit beside receive",
    "small_packets": "## Small packets at line rate",
    "targets": "## Targets",
}


def section_of(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_report_with_none_in_every_figure_slot(tmp_path: Path) -> None:
    text = render_report(with_every_figure_none(full_results()), tmp_path)
    assert "None" not in text  # no None reached a cell as text
    assert "| — | — | — | — | — | — | — | — (no paper figure for this size) | — |" in section_of(text, "## E1")
    assert "| within ±6.25 % | 100.00 % | — | — | — |" in section_of(text, "## E2")  # the paper's figure stays
    assert "\n| — | — | — | — | — (no measured interval took 100 %) | — | — | — |" in section_of(text, "## E3a")
    assert "| kernel UDP (veth) | kernel | — (no measured interval took every datagram) |" in text
    assert "| — | — | — | — | — | — | — |  |" in section_of(text, "## Interrupt lines")
    assert "| — | — | — | — | — | — | — |" in section_of(text, "## Interrupt moderation")
    assert "| — | — | — | — | — | — | **no** |" in section_of(text, "## Transmit beside receive")
    assert "**2 of 2 targets MISSED:**" in text  # a target without its verdict is not met


def test_report_with_a_paper_figure_left_empty_uses_the_paper_s(tmp_path: Path) -> None:
    results = full_results()
    results["precision"]["paper"] = {"within_6_25pct": None, "interval_ns": None, "count": None, "exact": None}
    text = render_report(results, tmp_path)
    assert "| within ±6.25 % | 100.00 % | 99.70 % |" in text and "(paper: 4 not exactly on time)" in text


@pytest.mark.parametrize("key", list(HEADINGS))
@pytest.mark.parametrize("nothing", [None, [], {}], ids=["None", "empty list", "empty dict"])
def test_report_with_a_section_that_holds_nothing(key: str, nothing: Any, tmp_path: Path) -> None:
    results = full_results()
    results[key] = nothing
    text = render_report(results, tmp_path)
    if key == "baseline":
        assert "| 1,500 B | kernel UDP (veth) | — | — (not run) |" in text
    else:
        assert "not run" in section_of(text, HEADINGS[key]).lower()
    if key != "send_time":  # the others still render
        assert "| 1,500 B | 410 ns | 400 ns |" in text


@pytest.mark.parametrize("key", list(HEADINGS))
def test_report_says_which_evaluation_failed_and_why(key: str, tmp_path: Path) -> None:
    results = full_results()
    reason = "TypeError: unsupported format string passed to NoneType.__format__"
    results[key] = {"failed": reason, "traceback": f"Traceback (most recent call last):\n  File ...\n{reason}\n"}
    text = render_report(results, tmp_path)
    title = EVALUATIONS[key]
    assert f"- FAILED: {title} — `{reason}`" in text.split("## Machine", 1)[0]
    assert f"`{reason}`" in section_of(text, HEADINGS[key])
    if key != "baseline":  # the baseline is a row of E3b; its traceback stays in results.json
        assert f"```\nTraceback (most recent call last):\n  File ...\n{reason}\n```" in section_of(text, HEADINGS[key])
    # the others still show their figures
    for other, shown in (("send_time", "| 1,500 B | 410 ns | 400 ns |"), ("irq_lines", "| signal | python | 4.00 µs"),
                         ("moderation", "| ITR 8 us | c | 500 | 500 | 62 |")):  # fmt: skip
        if other != key:
            assert shown in section_of(text, HEADINGS[other])


@pytest.mark.parametrize("key", list(HEADINGS))
def test_report_says_which_evaluation_gave_no_result_and_why(key: str, tmp_path: Path) -> None:
    results = full_results()
    results[key] = {"no_result": "it returned nothing (None)"}
    text = render_report(results, tmp_path)
    assert f"- no result: {EVALUATIONS[key]} — it returned nothing (None)" in text.split("## Machine", 1)[0]
    assert "No result: it returned nothing (None)" in section_of(text, HEADINGS[key])


def test_report_says_a_figure_was_not_drawn_and_why(tmp_path: Path) -> None:
    results = full_results()
    results["sweep_figure"] = {"failed": "ValueError: x and y must have the same first dimension", "traceback": ""}
    text = render_report(results, tmp_path)
    assert "`ValueError: x and y must have the same first dimension`" in text.split("## Machine", 1)[0]
    assert "was not drawn: ValueError: x and y must have the same first dimension" in section_of(text, "## E3a")
    assert "](sweep.png)" not in text


# ---------------------------------------------------------------------------- the terminal's tables


def test_every_table_on_the_terminal_with_none_in_every_figure_slot(capsys: pytest.CaptureFixture[str]) -> None:
    results = full_results()
    baseline = {"gbps": None, "pps": None, "min_full_success_interval_ns": None, "size": 1500, "note": None}
    command.show_send_time(with_every_figure_none(results["send_time"]))
    command.show_precision(with_every_figure_none(results["precision"]))
    command.show_sweep(with_every_figure_none(results["sweep"]))
    command.show_baseline(baseline)
    command.show_irq(with_every_figure_none(results["irq_lines"]))
    command.show_moderation(with_every_figure_none(results["moderation"]))
    out = capsys.readouterr().out
    assert "None" not in out
    assert "kernel UDP over veth, 1500 B: —, —, — (shortest 100 % interval —)" in out
    assert out.count("—") > 40


def test_every_table_on_the_terminal_with_no_result(capsys: pytest.CaptureFixture[str]) -> None:
    command.show_send_time(None)
    command.show_precision(None)
    command.show_sweep([])
    command.show_baseline({})
    command.show_irq([])
    command.show_moderation(None)
    assert capsys.readouterr().out.splitlines() == [
        "send time: no result",
        "precision: no result",
        "sweep: no result",
        "kernel baseline: no result",
        "irq lines: no result",
        "moderation: no result",
    ]


# ---------------------------------------------------------------------------- figures with figures missing


def test_sweep_figure_with_points_and_sizes_missing(tmp_path: Path) -> None:
    curves: list[dict[str, Any]] = [
        {"size": None, "driver": None, "points": [{"interval_ns": 1_000, "success_rate": None, "gbps": None}]},
        {"size": 1500, "driver": "c", "points": None},
        {"size": 1500, "driver": "python", "points": [{"interval_ns": None, "success_rate": 1.0},
                                                      {"interval_ns": 2_000, "success_rate": 1.0, "gbps": None}]},
    ]  # fmt: skip
    assert_png(sweep_figure(curves, tmp_path / "sweep.png", baseline={"points": None}))
