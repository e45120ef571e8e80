"""The pseudonic command: a run, its JSON, and one clear line for every bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import DRIVERS_DIR, leftover_segments, needs_two_cores
from pseudonic.cli import main
from pseudonic.node import children

JSON_KEYS = {
    "sent", "received", "missed", "lost", "duplicated", "reordered", "corrupted", "success_rate",
    "throughput_gbps", "config", "send_time_ns", "interval_deviation_ns",
}  # fmt: skip


@needs_two_cores
def test_run_prints_a_summary_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["run", "--interval", "38us", "--count", "1000", "--size", "1500", "--json", str(out)]) == 0
    assert "success rate" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert set(r) >= JSON_KEYS
    assert r["received"] == r["sent"] == 1000 and r["lost"] == 0 and r["corrupted"] == 0
    assert set(r["config"]) >= {"interval_ns", "count", "size", "irq", "driver", "device_core", "driver_core"}
    assert r["config"]["interval_ns"] == 38_000 and r["config"]["driver"] == "python"
    assert {"mean", "p50", "max"} <= set(r["send_time_ns"])
    assert {"min", "p50", "p99", "max", "within_6_25pct", "outliers"} <= set(r["interval_deviation_ns"])
    assert 0 <= r["interval_deviation_ns"]["within_6_25pct"] <= 1


BAD = [
    (["--interval", "0"], "1ns..10s"),
    (["--interval", "-5us"], "ns, us or ms"),
    (["--interval", "38"], "ns, us or ms"),
    (["--count", "0"], "1..1000000"),
    (["--count", "many"], "count"),
    (["--size", "59"], "60..16384"),
    (["--size", "20KB"], "60..16384"),
    (["--ring-size", "100"], "power of two 8..4096"),
    (["--buffer-size", "3000"], "256, 512"),
    (["--device-core", "99"], "does not exist here"),
    (["--device-core", "1", "--driver-core", "1"], "its own core"),
    (["--irq", "carrier-pigeon"], "spin, eventfd, signal"),
    (["--upper", "tap0"], "verify, null"),
    (["--driver", "no_such_module:Driver"], "cannot be imported"),
    (["--driver", "pseudonic.drivers.e1000:Nope"], "has no 'Nope'"),
    (["--driver", str(DRIVERS_DIR / "no_protocol.py:NotADriver")], "lacks interrupt"),
    (["--driver", str(DRIVERS_DIR / "no_protocol.py")], "NotADriver lacks interrupt(nic)"),
    (["--driver", "/nonexistent/driver.py"], "does not exist"),
    (["--json", "/nonexistent/dir/r.json"], "does not exist"),
    (["--driver", "/nonexistent/libdriver.so"], "does not exist"),
    (["--driver", str(DRIVERS_DIR / "not_a_library.so")], "not a shared library"),
    (["--itr", "20ms"], "0 (off) .. 16776960 ns"),
    (["--napi", "-1"], "0 (off) .. 4096"),
    (["--bogus"], "No such option"),
    (["--rate", "0pps"], "more than 0"),
    (["--rate", "-5Mpps"], "rate"),
    (["--rate", "900Gbps", "--size", "64"], "512Gbps"),
    (["--rate", "fast"], "rate"),
    (["--interval", "10us", "--rate", "1Mpps"], "both set the pace"),
    (["--burst", "8"], "burst needs every"),
    (["--poisson"], "poisson needs rate"),
    (["--count", "10", "--duration", "1s"], "count"),
    (["--imix", "--size", "64"], "imix"),
    (["--vary", "udp.nope=1-2"], "udp.sport"),
    (["--vary", "ip.src=10.0.0.9-10.0.0.1"], "ip.src"),
    (["--offsets", "/nonexistent/offsets.csv"], "offsets.csv"),
    (["--speed", "2"], "give --pcap FILE"),
    (["--pcap", "/nonexistent/x.pcap"], "x.pcap"),
    (["--late", "never"], "catch-up"),
    (["--busy-poll", "50us"], "eventfd and signal lines"),
    (["--irq", "eventfd", "--busy-poll", "20ms"], "0 (off) .. 10000 us"),
    (["--rt=always"], "'on', 'try'"),
    (["--calibrate", "50ms"], "100 ms .. 600 s"),
    (["--calibrate", "soon"], "calibration duration"),
    (["--count", "200000", "--size", "16000"], "--records summary"),  # 3.2 GB of frames kept to verify
    (["--driver-timeout", "soon"], "give seconds (10) or a number and a unit (500ms, 2s)"),
    (["--driver-timeout", "2h"], "at most 3600 s"),
    (["--driver-timeout", "0"], "more than 0"),
]


@pytest.mark.parametrize(("args", "says"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_nothing_left(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = leftover_segments()
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pseudonic: error: ") and err.count("\n") == 1, err
    assert says in err
    assert "Traceback" not in err
    assert leftover_segments() == before


@pytest.mark.parametrize(
    ("rows", "says"),
    [("0\n5000\n2000\n", "line 3"), ("0\n-10\n", "line 2"), ("", "no deadlines"), ("0,abc\n", "line 1")],
    ids=["unsorted", "negative", "empty", "bad size"],
)
def test_a_bad_offsets_file_is_one_line_naming_the_line(
    tmp_path: Path, rows: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "offsets.csv"
    f.write_text(rows)
    assert main(["run", "--offsets", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "offsets.csv" in err and says in err, err


@needs_two_cores
@pytest.mark.parametrize(
    ("args", "kind", "count"),
    [
        (["--rate", "40kpps", "--count", "300"], "rate", 300),
        (["--burst", "4", "--every", "200us", "--count", "200", "--ring-size", "64"], "burst", 200),
        (["--poisson", "--rate", "20kpps", "--duration", "10ms", "--seed", "7"], "poisson", None),
        (["--imix", "--interval", "30us", "--count", "240", "--vary", "udp.sport=1000-1100"], "periodic", 240),
    ],
    ids=["rate", "burst", "poisson", "imix+vary"],
)
def test_traffic_options_make_the_plan_the_run_reports(
    tmp_path: Path, args: list[str], kind: str, count: int | None
) -> None:
    out = tmp_path / "r.json"
    assert main(["run", *args, "-q", "--wait", "--json", str(out)]) == 0
    cfg = json.loads(out.read_text())["config"]
    assert cfg["plan"]["kind"] == kind
    assert cfg["count"] == (count if count is not None else cfg["plan"]["count"])
    if kind == "poisson":
        assert cfg["plan"]["seed"] == 7 and cfg["interval_ns"] is None


def test_the_bare_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: pseudonic") and "check-driver" in out and "run" in out


def test_bad_input_through_the_real_command(pseudonic_cli: Callable[..., subprocess.Popen[str]]) -> None:
    p = pseudonic_cli("run", "--count", "-3")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and err.strip().count("\n") == 0 and "1..1000000" in err


@needs_two_cores
def test_a_driver_exception_exits_1_with_where_and_why(pseudonic_cli: Callable[..., subprocess.Popen[str]]) -> None:
    p = pseudonic_cli("run", "--driver", str(DRIVERS_DIR / "misbehaving.py:RaisingE1000"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    assert "ZeroDivisionError" in out and "misbehaving.py" in out and "Traceback" not in out + err


def _interrupt_once_under_way(p: subprocess.Popen[str], under_way: Callable[[], bool]) -> tuple[int, str, list[int]]:
    """Press Ctrl-C on the command ``p`` once ``under_way()`` and its children exist; exit status,
    stderr, and the children it had."""
    deadline = time.monotonic() + 60
    while not (under_way() and len(children(p.pid)) >= 2):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.01)
    kids = children(p.pid)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    return p.returncode, err, kids


@needs_two_cores
def test_ctrl_c_stops_both_nodes_and_removes_the_segment(pseudonic_cli: Callable[..., subprocess.Popen[str]]) -> None:
    before = set(leftover_segments())
    # Under way once the segment and both nodes exist.
    code, err, nodes = _interrupt_once_under_way(
        pseudonic_cli("run", "--interval", "1ms", "--count", "60000"), lambda: bool(set(leftover_segments()) - before)
    )
    assert code == 130 and "interrupted" in err
    assert set(leftover_segments()) == before
    assert len(nodes) == 2 and [pid for pid in nodes if _alive(pid)] == []


def test_ctrl_c_during_the_kernel_baseline_removes_its_namespaces(
    pseudonic_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    from pseudonic.bench.baseline import baseline_available, our_namespaces

    reason = baseline_available()
    if reason is not None:
        pytest.skip(reason)
    before = set(our_namespaces())
    # Under way once its namespaces exist and the sender and receiver are running.
    code, err, kids = _interrupt_once_under_way(
        pseudonic_cli("bench", "baseline", "--count", "200000", "--intervals", "5us"),
        lambda: bool(set(our_namespaces()) - before),
    )
    assert code == 130 and "interrupted" in err
    assert set(our_namespaces()) == before
    assert [pid for pid in kids if _alive(pid)] == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_controller_leaves_a_segment_the_next_run_removes() -> None:
    from pseudonic.segment import Segment, sweep_stale

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    name = f"pseudonic-{child.pid}-deadbeef"
    Path("/dev/shm", name).write_bytes(b"x")
    assert sweep_stale() == [], "its controller still runs"
    child.kill()
    child.wait()
    assert sweep_stale() == [name]
    seg = Segment.create(4096)
    assert seg.path.exists()
    seg.close()
    assert not seg.path.exists()


@needs_two_cores
def test_captures_out_and_back_in(tmp_path: Path) -> None:
    """What the device sent and what the driver delivered, as pcaps; the sent capture sent again, at its own times."""
    import dpkt
    from scapy.utils import rdpcap

    sent, got, records = tmp_path / "sent.pcap", tmp_path / "got.pcap", tmp_path / "rec.npz"
    args = ["--rate", "40kpps", "--count", "240", "--imix", "-q", "--wait"]
    assert main(["run", *args, "--pcap-out-sent", str(sent), "--pcap-out-received", str(got),
                 "--records", str(records)]) == 0  # fmt: skip
    with sent.open("rb") as f:
        by_dpkt = [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]
    received = rdpcap(str(got))
    assert len(by_dpkt) == 240 and len(received) == 240
    # The driver delivered, byte for byte, what the device sent (stamps included), each after it was sent.
    assert [bytes(p) for p in received] == [frame for _, frame in by_dpkt]
    assert all(float(p.time) >= ts for p, (ts, _) in zip(received, by_dpkt, strict=True))
    assert sorted({len(frame) for _, frame in by_dpkt}) == [64, 594, 1518]
    assert set(np.load(records).files) >= {"packets", "raises", "handler_runs", "deliveries"}

    again = tmp_path / "again.json"
    assert main(["run", "--pcap", str(sent), "--speed", "2", "-q", "--wait", "--json", str(again)]) == 0
    r = json.loads(again.read_text())
    assert r["received"] == 240 and r["config"]["plan"]["kind"] == "pcap" and r["config"]["plan"]["speed"] == 2


def test_a_file_that_is_not_a_capture_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.pcap"
    f.write_text("not a capture at all\n")
    assert main(["run", "--pcap", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.pcap" in err


def test_a_capture_with_a_pace_needs_plan_timing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.pcap"
    f.write_bytes(b"")
    assert main(["run", "--pcap", str(f), "--rate", "1Mpps"]) == 2
    assert "--pcap-timing plan" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("10", 10.0), ("0.5", 0.5), ("500ms", 0.5), ("2s", 2.0), ("1min", 60.0)])
def test_a_driver_timeout_is_seconds_or_a_duration_with_its_unit(text: str, seconds: float) -> None:
    from pseudonic.cli import _seconds

    assert _seconds(text, "driver timeout") == seconds
