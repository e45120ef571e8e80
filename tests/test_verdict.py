"""The verdict, sans-IO: each rule both ways on synthetic counts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pseudonic.errors import ConfigError
from pseudonic.verdict import Counts, MissedLimit, judge, parse_missed_limit

CLEAN = Counts(
    packets=1000, stored=1000, error_descriptors=0, received=1000, delivered_with_error=0, missed=0,
    duplicated=0, reordered=0, corrupted=0, rx_errors=0, verified=True, interrupts=1000, handler_runs=990,
    ims=0x80, rdt_written=True,
)  # fmt: skip


def codes(c: Counts, limit: MissedLimit | None = None) -> list[str]:
    return [f.code for f in judge(c, limit).reasons]


def test_a_clean_run_passes() -> None:
    v = judge(CLEAN)
    assert v.passed and v.reasons == [] and v.line() == "PASS"


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"duplicated": 21015}, "duplicated", "status not cleared"),
        ({"reordered": 3}, "reordered", "out of ring order"),
        ({"corrupted": 1000, "received": 0}, "corrupted", "before DD"),
        ({"received": 990}, "undelivered", "10 of 1000 stored frames never delivered"),
        ({"error_descriptors": 20, "received": 980, "rx_errors": 0}, "rx-errors-miscounted", "rx_errors is 0"),
        ({"error_descriptors": 20, "received": 980, "rx_errors": None}, "rx-errors-not-kept", "self.rx_errors"),
        ({"error_descriptors": 20, "received": 1000, "delivered_with_error": 20, "rx_errors": 20},
         "error-delivered", "must be dropped"),
        ({"received": 0, "interrupts": 0, "handler_runs": 0, "ims": 0}, "interrupts-masked", "enable_interrupts"),
        ({"stored": 0, "received": 0, "missed": 1000, "rdt_written": False, "handler_runs": 0},
         "rdt-never-written", "write_rdt"),
        ({"failure": {"kind": "driver crashed", "message": "killed by SIGSEGV", "handler_run": 4}},
         "driver-failed", "SIGSEGV"),
        ({"failure": {"kind": "device node died", "message": "killed by SIGKILL"}}, "run-failed", "SIGKILL"),
        ({"stored": 7, "received": 7, "missed": 993, "starved": True}, "ring-starved", "next_to_clean - 1"),
        ({"faults": {"split": {"injected": 3, "delivered": 3, "dropped": 0, "misdelivered": 2}}}, "fault-split",
         "gather until EOP"),
        ({"ring_violations": {"dd-still-set": {"count": 4, "first": {"packet": 9, "descriptor": 9, "rdt": 10}}}},
         "ring-dd-still-set", "first: packet 9, descriptor 9, rdt 10"),
        ({"corrupted": 5, "received": 995, "poisoned": 5, "corruption": ("delivery 3 carries the poison",)},
         "corrupted", "(5 poisoned) -- delivery 3 carries the poison"),
    ],
)  # fmt: skip
def test_each_failure_fails_and_says_what_it_usually_means(change: dict[str, object], code: str, says: str) -> None:
    v = judge(replace(CLEAN, **change))  # type: ignore[arg-type]
    assert not v.passed
    assert code in [f.code for f in v.reasons]
    assert says in v.line() and v.line().startswith("FAIL: ")


def test_device_drops_alone_pass_and_say_so() -> None:
    c = replace(CLEAN, stored=900, received=900, missed=100)
    v = judge(c)
    assert v.passed and [n.code for n in v.notes] == ["missed"]
    assert "100 of 1000" in v.line() and "not a failure" in v.line()


@pytest.mark.parametrize(("limit", "passes"), [("100", True), ("99", False), ("10%", True), ("9.9%", False)])
def test_max_missed_turns_drops_into_a_failure_past_its_limit(limit: str, passes: bool) -> None:
    c = replace(CLEAN, stored=900, received=900, missed=100)
    assert judge(c, parse_missed_limit(limit)).passed is passes


def test_drops_with_a_failure_do_not_also_count_as_undelivered() -> None:
    c = replace(CLEAN, stored=900, received=900, missed=100)
    assert codes(c) == []


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "101%", "-3%", ""])
def test_a_bad_max_missed_is_a_usage_error_naming_the_range(text: str) -> None:
    with pytest.raises(ConfigError, match="max missed"):
        parse_missed_limit(text)


def test_an_interrupted_run_says_so_in_its_verdict() -> None:
    v = judge(replace(CLEAN, received=500, stored=500, packets=500), interrupted_by="SIGTERM")
    assert v.line().startswith("INTERRUPTED by SIGTERM (partial figures)")


def test_frames_still_in_the_ring_when_a_run_is_stopped_are_not_judged_but_frames_lost_are() -> None:
    """Stopped by a signal, the driver is stopped with the device: frames it had not yet taken are in flight.
    More undelivered than the ring still holds were lost by the driver, stopped or not."""
    in_flight = replace(CLEAN, received=997, left_in_ring=3)
    v = judge(in_flight, interrupted_by="SIGINT")
    assert v.passed and [n.code for n in v.notes] == ["undelivered"]
    assert "3 of 1000 stored frames were still in the ring when the run was stopped" in str(v.notes[0])
    assert codes(in_flight) == ["undelivered"]  # a run that ended on its own: its handler left them
    lost = judge(replace(CLEAN, received=990, left_in_ring=3), interrupted_by="SIGINT")
    assert not lost.passed and "10 of 1000 stored frames never delivered" in lost.line()


def test_drops_with_descriptors_still_waiting_are_slowness_not_a_starved_ring() -> None:
    v = judge(replace(CLEAN, stored=900, received=900, missed=100, starved=False))
    assert v.passed and [n.code for n in v.notes] == ["missed"]


def test_a_split_frame_dropped_whole_may_be_counted_or_not() -> None:
    for rx_errors in (0, 1):
        assert judge(replace(CLEAN, received=999, split_dropped=1, rx_errors=rx_errors)).passed
    assert "rx-errors-miscounted" in codes(replace(CLEAN, received=999, split_dropped=1, rx_errors=2))
