"""The pseudonic command with --device: virtio-net end to end, and one clear line for every input it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import leftover_segments, needs_two_cores
from pseudonic.cli import main

EXAMPLE_E1000 = Path(__file__).parent.parent / "examples" / "python_driver" / "mydriver.py"

#: A virtio-net driver that accepts a feature the device does not offer (bit 5, VIRTIO_NET_F_MAC).
UNOFFERED = """
from pseudonic.drivers.virtio_net import VirtioNet


class Greedy(VirtioNet):
    def open(self, nic):
        super().open(nic)
        nic.accept_features(nic.features | (1 << 5))
"""

BAD = [
    (["--device", "nic9"], "'nic9' is not one of 'e1000', 'virtio-net'"),
    (["--device", "virtio-net", "--ring-size", "3"], "power of two 1..32768"),
    (["--device", "virtio-net", "--ring-size", "65536"], "power of two 1..32768"),
    (["--device", "virtio-net", "--irq-mode", "level"], "e1000 only"),
    (["--device", "virtio-net", "--itr", "10us"], "virtio-net has none"),
    (["--device", "virtio-net", "--fault", "ce"], "fault ce applies to e1000 only"),
]


def one_line(err: str) -> None:
    assert err.startswith("pseudonic: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(("args", "says"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_device_input_is_one_line_exit_2_nothing_left(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = leftover_segments()
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert says in err
    assert leftover_segments() == before


@pytest.mark.parametrize("command", ["check-driver python", "hunt --driver python", "replay x.pnic", "bench sweep"])
def test_every_command_takes_the_same_device_choice(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command.split(), "--device", "nic9"]) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "'nic9' is not one of" in err


@needs_two_cores
def test_a_driver_built_for_e1000_is_refused_on_virtio(capsys: pytest.CaptureFixture[str]) -> None:
    before = leftover_segments()
    args = ["run", "--device", "virtio-net", "--driver", f"{EXAMPLE_E1000}:MyDriver", "--count", "10", "--wait"]
    assert main(args) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "built for e1000" in err and "--device e1000" in err
    assert leftover_segments() == before


@needs_two_cores
def test_a_driver_accepting_an_unoffered_feature_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driver = tmp_path / "greedy.py"
    driver.write_text(UNOFFERED)
    before = leftover_segments()
    assert main(["run", "--device", "virtio-net", "--driver", f"{driver}:Greedy", "--count", "10", "--wait"]) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "not offer" in err and "bit 5" in err, err
    assert leftover_segments() == before


@needs_two_cores
def test_a_virtio_run_passes_and_shows_its_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the summary's rows on one line each
    out = tmp_path / "r.json"
    args = ["run", "--device", "virtio-net", "--interval", "20us", "--count", "300", "--wait", "-q", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "virtio-net" in text and "verdict: PASS" in text
    # The queue where e1000 shows its registers; none of e1000's own lines.
    for figure in ("avail.idx", "notifications", "uses announced by no interrupt", "EVENT_IDX"):
        assert figure in text, figure
    assert "ICR reads" not in text and "re-raised" not in text
    r = json.loads(out.read_text())
    assert r["config"]["device"] == "virtio-net" and r["received"] == r["sent"] == 300
    assert {"avail_idx", "used_idx", "used_event", "notifies", "quiet"} <= set(r["registers"])
    assert r["registers"]["used_idx"] == 300


@needs_two_cores
def test_a_recording_replays_on_its_device_unless_told_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec, first, second = tmp_path / "v.pnic", tmp_path / "a.json", tmp_path / "b.json"
    common = ["--wait", "-q"]
    run = ["run", "--device", "virtio-net", "--interval", "20us", "--count", "200", "--record", str(rec)]
    assert main([*run, *common]) == 0
    assert main(["replay", str(rec), "--json", str(first), *common]) == 0
    assert json.loads(first.read_text())["config"]["device"] == "virtio-net"
    assert main(["replay", str(rec), "--device", "e1000", "--json", str(second), *common]) == 0
    assert json.loads(second.read_text())["config"]["device"] == "e1000"
    capsys.readouterr()


@needs_two_cores
def test_check_driver_checks_a_virtio_driver_on_virtio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-driver", "--device", "virtio-net", "--wait", "c"]) == 0
    out = capsys.readouterr().out
    assert "virtio-net" in out and "cases passed" in out and "FAIL" not in out


@needs_two_cores
def test_check_driver_refuses_a_driver_of_the_other_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-driver", "--device", "virtio-net", "--wait", f"{EXAMPLE_E1000}:MyDriver"]) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "built for e1000" in err


@needs_two_cores
def test_a_virtio_hunt_runs_its_trials_on_virtio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "h.pnic"
    args = ["hunt", "--device", "virtio-net", "--driver", "c", "--runs", "3", "--max-packets", "300", "--seed", "11",
            "--record", str(record), "--wait", "-q"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "pseudonic hunt: virtio-net, driver c, seed 11" in captured.err
    assert "no failure in 3 runs" in captured.out
