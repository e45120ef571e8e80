"""Record and replay: one file keeps a run whole, and running it again brings its timeline back."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import DRIVERS_DIR, needs_two_cores
from pseudonic import recording, schedule
from pseudonic.cli import main
from pseudonic.controller import run
from pseudonic.errors import ConfigError
from pseudonic.layout import RXD_ERR_CE, SLOT_SPURIOUS

DUPLICATING = f"{DRIVERS_DIR / 'misbehaving.py'}:DuplicatingE1000"


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:  # type: ignore[type-arg]
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# -- files that are not records: one line each --------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        recording.load(tmp_path / "none.pnic")


def test_a_file_that_is_not_a_zip_is_not_a_record(tmp_path: Path) -> None:
    p = tmp_path / "x.pnic"
    p.write_bytes(b"\xd4\xc3\xb2\xa1 a pcap, say")
    with pytest.raises(ConfigError, match="is not a pseudonic record file"):
        recording.load(p)


def test_a_zip_without_a_manifest_is_not_a_record(tmp_path: Path) -> None:
    p = _write_zip(tmp_path / "x.pnic", {"other.npy": _npy(np.zeros(3))})
    with pytest.raises(ConfigError, match="no manifest"):
        recording.load(p)


def test_a_record_of_another_format_version_is_refused_saying_so(tmp_path: Path) -> None:
    manifest = json.dumps({"format": recording.FORMAT, "version": recording.VERSION + 1, "pseudonic": "9.9"})
    p = _write_zip(tmp_path / "x.pnic", {"manifest.npy": _npy(np.frombuffer(manifest.encode(), np.uint8))})
    with pytest.raises(
        ConfigError, match=f"format version {recording.VERSION + 1}.*reads versions .*{recording.VERSION}"
    ):
        recording.load(p)


def test_a_foreign_manifest_is_refused(tmp_path: Path) -> None:
    manifest = json.dumps({"format": "something-else", "version": 1})
    p = _write_zip(tmp_path / "x.pnic", {"manifest.npy": _npy(np.frombuffer(manifest.encode(), np.uint8))})
    with pytest.raises(ConfigError, match="its manifest is not one"):
        recording.load(p)


def test_replay_of_a_bad_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.pnic"
    p.write_text("hello")
    assert main(["replay", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a pseudonic record file" in err


# -- a run recorded, loaded and replayed --------------------------------------------------------


def _mixed_slots() -> np.ndarray:  # type: ignore[type-arg]
    """Uneven gaps, a CRC error and a spurious interrupt: everything a record must keep."""
    due = np.cumsum([0] + [15_000 + 7_000 * (i % 3) for i in range(199)])
    errors = [RXD_ERR_CE if i == 50 else 0 for i in range(200)]
    slots = schedule.from_offsets(due, errors=errors)
    slots["flags"][120] |= SLOT_SPURIOUS
    return slots


@needs_two_cores
def test_a_record_keeps_the_plan_options_records_and_verdict(tmp_path: Path) -> None:
    r = run(slots=_mixed_slots(), size=600, ring_size=64, irq="eventfd", itr="2us", wait_for_cores=True)
    rec = recording.load(recording.save(tmp_path / "run.pnic", r))
    assert r.plan is not None
    assert np.array_equal(rec.plan.slots, r.plan.slots)
    assert rec.plan.frames.templates == r.plan.frames.templates and rec.plan.frames.stamped
    assert rec.options == {
        "driver": "python", "ring_size": 64, "buffer_size": 16384, "device_core": 0, "driver_core": 1,
        "irq": "eventfd", "upper": "verify", "itr": 2048, "napi_budget": 0, "max_missed": None,
        "irq_mode": "edge", "sanitize": False, "late": "catch-up", "busy_poll": 0, "rt": "off", "device": "e1000",
        "transmit": 0, "tx_rate": "off", "loopback": False, "batch": 4,
    }  # fmt: skip
    assert np.array_equal(rec.tx, r.tx) and np.array_equal(rec.irqs, r.irqs) and np.array_equal(rec.raises, r.raises)
    assert np.array_equal(rec.delivered_seq, r.delivered_seq)
    assert rec.t0_ns == r.t0_ns and rec.passed == r.passed
    assert rec.result["received"] == r.received and rec.machine["cores"] >= 2


@needs_two_cores
def test_measured_timing_sends_when_the_recording_did(tmp_path: Path) -> None:
    r = run("25us", 300, 1500, wait_for_cores=True)
    rec = recording.load(recording.save(tmp_path / "run.pnic", r))
    measured = rec.measured_plan()
    assert np.array_equal(measured.due_ns.astype(np.int64), r.tx["start_ns"].astype(np.int64) - r.t0_ns)
    assert measured.origin["timing"] == "measured" and measured.origin["recorded"]["kind"] == "periodic"
    rp = recording.replay(rec, timing="measured", wait_for_cores=True)
    assert rp.result.passed and rp.same_verdict and not rp.reproduced
    assert rp.send_deviation_ns["n"] == 300
    assert rp.result.config["plan"]["kind"] == "replay"


@needs_two_cores
def test_a_recorded_failure_comes_back_and_another_driver_is_compared(tmp_path: Path) -> None:
    r = run("30us", 600, 800, driver=DUPLICATING, wait_for_cores=True)
    assert not r.passed
    path = recording.save(tmp_path / "dup.pnic", r)
    again = recording.replay(path, timing="measured", wait_for_cores=True)
    assert again.reproduced and "duplicated" in {f.code for f in again.result.verdict.reasons}  # type: ignore[union-attr]
    fixed = recording.replay(path, driver="python", wait_for_cores=True)
    assert fixed.result.passed and not fixed.same_verdict and not fixed.reproduced


@needs_two_cores
def test_replay_command_compares_verdicts_and_exits_with_the_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dup.pnic"
    args = ["--interval", "30us", "--count", "500", "--size", "700", "-q", "--wait"]
    assert main(["run", *args, "--driver", DUPLICATING, "--record", str(path)]) == 1
    assert f"pseudonic replay {path}" in capsys.readouterr().out
    assert main(["replay", str(path), "--timing", "measured", "--wait", "-q"]) == 1
    out = capsys.readouterr().out
    assert "the recorded failure came back" in out and "sends vs the recording (measured timing)" in out
    assert main(["replay", str(path), "--driver", "python", "--wait", "-q"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_replay_timing_is_plan_or_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "x.pnic"), "--timing", "exact"]) == 2
    assert "'exact' is not one of 'plan', 'measured'" in capsys.readouterr().err


def _as_version_3(path: Path, device_in_config: str | None) -> Path:
    """The record rewritten as version 3 wrote it: no device among its options (and, from before virtio-net,
    none in its result's configuration either)."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    import io

    manifest = json.loads(bytes(np.load(io.BytesIO(members["manifest.npy"]))).decode())
    manifest["version"] = 3
    del manifest["options"]["device"]
    if device_in_config is None:
        del manifest["result"]["config"]["device"]
    members["manifest.npy"] = _npy(np.frombuffer(json.dumps(manifest).encode(), np.uint8))
    return _write_zip(path.with_name(f"v3-{device_in_config}.pnic"), members)


@needs_two_cores
def test_a_record_keeps_its_device_and_a_version_3_record_reads_as_its_config_says(tmp_path: Path) -> None:
    r = run("20us", 100, 1500, device="virtio-net", wait_for_cores=True)
    path = recording.save(tmp_path / "v.pnic", r)
    assert recording.load(path).options["device"] == "virtio-net"
    assert recording.load(_as_version_3(path, "virtio-net")).options["device"] == "virtio-net"
    old = recording.load(_as_version_3(path, None))
    assert old.options["device"] == "e1000"  # before virtio-net, every run was e1000's
    assert recording.replay(old, wait_for_cores=True).result.config["device"] == "e1000"


@needs_two_cores
def test_a_recording_with_error_bits_is_refused_on_virtio(tmp_path: Path) -> None:
    r = run(slots=_mixed_slots(), size=600, ring_size=64, wait_for_cores=True)
    path = recording.save(tmp_path / "ce.pnic", r)
    with pytest.raises(ConfigError, match="virtio-net has no receive error bits"):
        recording.replay(path, device="virtio-net", wait_for_cores=True)
