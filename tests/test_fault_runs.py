"""Faults, the level line and the ring sanitizer end to end: the reference drivers handle every fault kind
as a correct e1000 driver does, and the command line takes them (README "Faults")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pseudonic
from conftest import DRIVERS_DIR, needs_two_cores, run_undisturbed
from pseudonic import recording, schedule
from pseudonic.cli import main
from pseudonic.faults import KINDS
from pseudonic.layout import RXD_ERR_FRAME

pytestmark = needs_two_cores
EVERY_KIND = ["rxe", "ce", "se", "seq", "cxe", "ipe", "tcpe", "split:3", "spurious", "lost-irq", "early-irq:10us"]


@pytest.mark.parametrize("driver", ["python", "c"])
@pytest.mark.parametrize("irq_mode", ["edge", "level"])
def test_the_reference_drivers_handle_every_fault_kind_with_the_sanitizer_on(driver: str, irq_mode: str) -> None:
    r = run_undisturbed(
        slots=schedule.periodic(400, 40_000), size=1500, driver=driver, faults=[f"{k}:0.05" for k in EVERY_KIND],
        fault_seed=7, irq_mode=irq_mode, sanitize=True, wait_for_cores=True,
    )  # fmt: skip
    assert r.passed, r.verdict
    assert set(r.faults) == {k.split(":")[0] for k in EVERY_KIND}
    assert all(a["injected"] > 0 and a["misdelivered"] == 0 for a in r.faults.values()), r.faults
    assert r.plan is not None
    slots = r.plan.slots
    with_frame_error = ((slots["flags"] & RXD_ERR_FRAME) != 0) & ((slots["faults"] & (1 << KINDS["ipe"].bit)) != 0)
    assert r.faults["ce"]["delivered"] == 0 and r.faults["ipe"]["dropped"] == int(with_frame_error.sum())
    assert r.ring_violations == {} and r.sanitizer_cost["rdt_writes"] > 0
    assert r.icr_reads >= r.handler_runs


@pytest.mark.parametrize("driver", ["python", "c"])
def test_frames_longer_than_the_buffer_span_descriptors_and_arrive_whole(driver: str) -> None:
    r = run_undisturbed(interval="50us", count=200, size=9000, buffer_size=2048, driver=driver, sanitize=True,
                        wait_for_cores=True)  # fmt: skip
    assert r.passed and r.received == 200 and r.partial == 0, r.verdict
    assert r.plan is not None and set(r.plan.slots["parts"].tolist()) == {5}


def test_a_burst_overflowing_the_ring_is_counted_as_device_drops() -> None:
    r = pseudonic.run(
        slots=schedule.periodic(100, 50_000), faults=["burst:64@10"], ring_size=32, sanitize=True, wait_for_cores=True
    )
    a = r.faults["burst"]
    assert a["injected"] == 64 and a["misdelivered"] == 0 and r.passed, r.verdict
    # every frame not delivered is a counted device drop (a packet just after the burst may find the ring full too)
    assert r.sent == 163 and 0 < a["dropped"] <= r.missed == r.lost


def test_the_same_fault_seed_draws_the_same_faults() -> None:
    runs = [
        pseudonic.run("40us", 300, faults=["ce:0.1", "split:2:0.1"], fault_seed=11, wait_for_cores=True)
        for _ in range(2)
    ]
    assert runs[0].plan is not None and runs[1].plan is not None
    assert np.array_equal(runs[0].plan.slots, runs[1].plan.slots)
    assert runs[0].plan.origin["fault_seed"] == 11 and runs[0].faults == runs[1].faults


def test_a_fault_plan_is_recorded_and_replayed_as_it_ran(tmp_path: Path) -> None:
    r = pseudonic.run("40us", 200, faults=["lost-irq@199", "tcpe:0.1"], irq_mode="level", sanitize=True,
                      wait_for_cores=True)  # fmt: skip
    assert r.plan is not None and len(r.plan) == 201, "a lost interrupt on the last packet gets one after it"
    rec = recording.load(recording.save(tmp_path / "faulty.pnic", r))
    again = recording.replay(rec, wait_for_cores=True)
    assert again.result.plan is not None and np.array_equal(again.result.plan.slots, r.plan.slots)
    assert again.result.faults["tcpe"]["injected"] == r.faults["tcpe"]["injected"]
    assert again.result.config["irq_mode"] == "level" and again.result.config["sanitize"]


def test_run_takes_faults_and_the_sanitizer_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = main(["run", "--count", "300", "--fault", "ce:0.1", "--fault", "split:3@4", "--fault-seed", "3",
                 "--irq-mode", "level", "--sanitize", "--quiet", "--wait", "--json", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert "misdelivered" in text and "verdict: PASS" in text
    assert "every hand-over of the ring was in order" in text and "RDT writes checked" in " ".join(text.split())
    saved = json.loads(out.read_text())
    split = saved["faults"]["split"]  # dropped if the ce draw hit packet 4 too, else delivered whole
    assert split["injected"] == 1 and split["misdelivered"] == 0 and split["delivered"] + split["dropped"] == 1
    assert saved["config"]["irq_mode"] == "level" and saved["config"]["plan"]["fault_seed"] == 3


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("bogus", "is unknown: give one of rxe"),
        ("ce:1.5", "out of range: give 0..1"),
        ("split:1", "split:N needs a whole N, 2..4095"),
        ("split:64", "needs 64 descriptors: the ring has 64"),
        ("early-irq:-2us", "1ns..1ms"),
        ("ce@1000", "the plan has 1000 packets (give indices 0..999)"),
        ("ce:0.1@3", "a rate or @indices, not both"),
    ],
)
def test_a_bad_fault_is_one_line_and_exit_2(option: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--ring-size", "64", "--fault", option, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_a_driver_that_hands_nothing_back_starves_the_ring_and_fails() -> None:
    # RDT written to next_to_clean: after a batch of 7 into a ring of 8 it equals RDH, and stays there
    due = [0] * 7 + [1_000_000 + 50_000 * i for i in range(20)]
    planted = str(DRIVERS_DIR / "planted.py:RdtAtHead")
    r = pseudonic.run(slots=schedule.from_offsets(due), driver=planted, ring_size=8, itr="100us", sanitize=True,
                      wait_for_cores=True)  # fmt: skip
    assert r.missed == 20 and not r.passed
    assert r.verdict is not None and "ring-starved" in [f.code for f in r.verdict.reasons], r.verdict
