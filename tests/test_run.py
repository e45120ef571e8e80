"""End-to-end runs: device node and driver node on their own cores."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import pseudonic
from conftest import needs_two_cores, raised_with_the_next
from drivers.misbehaving import HangingE1000, KilledE1000, RaisingE1000, SlowE1000
from pseudonic import schedule
from pseudonic.layout import RXD_ERR_CE, TX_DROPPED, TX_RAISED

pytestmark = needs_two_cores


def test_paper_e2_setting_every_packet_received_and_verified() -> None:
    r = pseudonic.run("38us", 1000, 1500)
    if r.missed:
        # The ring lasts 256 x 38 us = 9.7 ms: only a node losing its core longer than that drops here, and
        # this shared VM does that now and then (stalls of 8 ms measured). Once more, as check-driver does.
        r = pseudonic.run("38us", 1000, 1500)
    assert r.ok, r.error
    assert (r.sent, r.stored, r.received) == (1000, 1000, 1000)
    assert (r.missed, r.lost, r.duplicated, r.reordered, r.corrupted) == (0, 0, 0, 0, 0)
    assert r.verified and r.success_rate == 1.0
    # One interrupt a packet -- but packets overdue after a stall of the device's core go back to back, and
    # those raise once per batch (their records share the raise's time).
    assert (r.tx["flags"] & TX_RAISED).all() and r.interrupts == 1000 - raised_with_the_next(r.tx)
    assert 0 < r.handler_runs <= r.interrupts
    assert r.send_time_ns["n"] == 1000
    assert r.interval_deviation_ns["n"] == r.handler_runs - 1
    # throughput as the paper computes it: size x count over the time of the sends
    span = int(r.tx["end_ns"][-1]) - int(r.tx["start_ns"][0])
    assert r.throughput_gbps == pytest.approx(8 * 1500 * 1000 / span)
    # the records are the run's: packet i started no earlier than its deadline
    assert (r.tx["start_ns"].astype("int64") >= r.t0_ns + r.due_ns).all()


@pytest.mark.parametrize("size", [60, 8192, 16384])
def test_paper_sizes(size: int) -> None:
    r = pseudonic.run("50us", 300, size)
    assert r.ok and r.received == 300 and r.corrupted == 0


def test_the_null_layer_counts_deliveries_and_their_throughput() -> None:
    r = pseudonic.run("38us", 300, 1500, upper="null")
    assert r.ok and r.received == 300 and not r.verified
    span = int(r.tx["end_ns"][-1]) - int(r.tx["start_ns"][0])
    assert r.throughput_gbps == pytest.approx(8 * 1500 * 300 / span)


def test_a_slow_driver_loses_exactly_what_the_device_missed() -> None:
    r = pseudonic.run("20us", 400, 1500, driver=SlowE1000, ring_size=16)
    assert r.ok, r.error
    assert 0 < r.success_rate < 1
    assert r.missed > 0 and r.missed == r.lost
    assert int(((r.tx["flags"] & TX_DROPPED) != 0).sum()) == r.missed
    assert r.corrupted == 0 and r.duplicated == 0


def test_user_frames_are_sent_as_given_and_matched_slot_by_slot() -> None:
    a = Ether() / IP(dst="192.0.2.7") / UDP(dport=7) / (b"a" * 200)
    b = bytes(Ether() / IP(dst="192.0.2.8") / UDP(dport=8) / (b"b" * 900))
    slots = schedule.from_offsets([i * 30_000 for i in range(100)], frames=[i % 2 for i in range(100)])
    r = pseudonic.run(frames=[a, b], slots=slots)
    assert r.ok and r.received == 100 and r.corrupted == 0 and r.reordered == 0
    assert r.config["interval_ns"] == 30_000


def test_descriptor_errors_are_dropped_and_counted_by_the_driver() -> None:
    errors = [RXD_ERR_CE if i % 10 == 3 else 0 for i in range(200)]
    r = pseudonic.run(slots=schedule.from_offsets([i * 30_000 for i in range(200)], errors=errors))
    assert r.ok and r.rx_errors == 20 and r.received == 180 and r.lost == 20 and r.missed == 0


def test_any_timeline_a_burst_then_a_trickle() -> None:
    due = [0] * 64 + [10_000 * i for i in range(1, 100)]
    r = pseudonic.run(slots=schedule.from_offsets(due))
    assert r.ok and r.received == r.sent == 163 and r.missed == 0
    assert r.config["interval_ns"] is None
    assert (r.tx["start_ns"].astype("int64") >= r.t0_ns + r.due_ns).all()


def test_a_driver_exception_stops_the_run_and_says_where() -> None:
    r = pseudonic.run("38us", 1000, 1500, driver=RaisingE1000)
    assert not r.ok and r.exit_code == 1
    assert r.error is not None
    assert r.error["kind"] == "driver exception" and r.error["exception"] == "ZeroDivisionError"
    assert "misbehaving.py" in r.error["where"] and r.error["handler_run"] == 10, (
        "handler runs are numbered from 1, as for C drivers"
    )
    assert r.sent < 1000, "the device node was stopped early, not left running"


def test_a_driver_node_killed_by_a_signal_is_reported() -> None:
    r = pseudonic.run("38us", 500, 1500, driver=KilledE1000)
    assert r.error is not None and r.error["kind"] == "driver crashed"
    assert "SIGKILL" in r.error["message"]
    # Each handler run takes at least one new packet: the fifth saw packet 4 or a later one.
    assert r.error["handler_run"] == 5 and 4 <= r.error["last_packet"] < r.sent


def test_a_hanging_driver_is_killed_after_the_timeout() -> None:
    r = pseudonic.run("38us", 200, 1500, driver=HangingE1000, driver_timeout=1.0)
    assert r.error is not None and r.error["kind"] == "driver hung"


def test_verifying_after_the_driver_is_through_is_never_taken_for_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine slow enough that verifying the deliveries outlasts the driver's timeout (a million frames on a
    # loaded machine did): the driver was through, so the run is judged on what it delivered.
    from pseudonic.upper import VerifyLayer

    report = VerifyLayer.report

    def slow_report(self: VerifyLayer, *args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # the slowness under test (in the driver node, forked with this patch)
        return report(self, *args, **kwargs)

    monkeypatch.setattr(VerifyLayer, "report", slow_report)
    for driver in ("python", "c"):
        r = pseudonic.run("38us", 200, 1500, driver=driver, driver_timeout=0.5)
        assert r.error is None and r.passed and r.received == 200, (driver, r.error)


def test_a_c_drivers_deliveries_are_verified_without_a_second_copy() -> None:
    # In a child, so that its peak RSS is the run's nodes' alone. The store layer keeps count x size
    # bytes; verifying them once copied all of it again (4.28 GB peak at the 2 GiB limit).
    count, size = 40_000, 16_384
    code = (
        "import resource, pseudonic\n"
        f"r = pseudonic.run('20us', {count}, {size}, driver='c')\n"
        "print(r.received, r.passed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    received, passed, peak = int(out[0]), out[1] == "True", int(out[2])
    assert received > count // 2 and passed
    assert peak <= 1.2 * count * size, f"peak RSS {peak / 2**20:.0f} MiB for {count * size / 2**20:.0f} MiB kept"
