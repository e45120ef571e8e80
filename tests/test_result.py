"""A run's result from what it left (pseudonic.result.build_result), on records built by hand.

No process and no clock: each test starts from a clean run of twelve packets, 38 µs apart, each one
stored, raised and delivered, changes what the run it describes would have left, and checks the
figures. The verdict's rule is pseudonic.verdict's (tested in test_verdict.py): here, what it is
handed.
"""

from __future__ import annotations

import signal
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from pseudonic import result as result_module
from pseudonic.config import RunConfig
from pseudonic.frames import FrameSet
from pseudonic.layout import (
    DEV_DONE,
    DEV_REGS,
    DEV_STORM,
    DRV_REGS,
    IRQ_LINE,
    IRQ_RECORD,
    RAISE_RECORD,
    RX_DESC,
    RXD_ERR_CE,
    RXD_STAT_DD,
    SAN_KINDS,
    SANITIZER,
    SLOT_SPURIOUS,
    TX_DROPPED,
    TX_RAISED,
    TX_RECORD,
    TX_REFUSED,
    TX_SPURIOUS,
    TX_STORED,
)
from pseudonic.plan import Plan
from pseudonic.result import RunEnd, RunResult, build_result, storm_failure
from pseudonic.schedule import from_offsets
from pseudonic.upper import Deliveries
from pseudonic.verdict import Counts, MissedLimit

N = 12
INTERVAL = 38_000
T0 = 7_000_000_000
RING = 8
SIZES = [100, 200]  # frames 0 and 1, taken in turn


def deliveries(seq: list[int] | np.ndarray[Any, Any], **kw: Any) -> Deliveries:
    """What a verify layer reports for deliveries matched to ``seq`` (-1: matched no frame)."""
    s = np.asarray(seq, dtype=np.int64)
    fields: dict[str, Any] = {"delivered": s.size, "received": int(np.unique(s[s >= 0]).size), "duplicated": 0,
                              "reordered": 0, "corrupted": int(np.count_nonzero(s < 0)), "verified": True}  # fmt: skip
    fields.update(kw)
    return Deliveries(seq=s, **fields)


def clean(n: int = N, **config: Any) -> dict[str, Any]:
    """A clean run's leavings, as RunEnd's fields: the device begins each packet 20 ns after its
    deadline and sends in 150 ns; each raise wakes one handler run 250 ns later, which runs 2 µs and
    delivers its packet."""
    frames = FrameSet.of([bytes(size) for size in SIZES], stamped=False)
    due = np.arange(n, dtype=np.int64) * INTERVAL
    slots = from_offsets(due, frames=np.arange(n) % 2)
    slots["parts"] = 1
    tx = np.zeros(n, TX_RECORD)
    tx["due_ns"] = T0 + due
    tx["start_ns"] = T0 + due + 20
    tx["end_ns"] = tx["start_ns"] + 150
    tx["spin_gap_ns"] = 60
    tx["slot"] = np.arange(n) % RING
    tx["flags"] = TX_STORED | TX_RAISED
    raises = np.zeros(n, RAISE_RECORD)
    raises["raised_ns"] = tx["end_ns"] - 30
    raises["packet"] = np.arange(n)
    irqs = np.zeros(n, IRQ_RECORD)
    irqs["entry_ns"] = raises["raised_ns"] + 250
    irqs["exit_ns"] = irqs["entry_ns"] + 2_000
    irqs["wait_ns"] = np.concatenate([[T0 - 10_000], irqs["exit_ns"][:-1] + 300])
    irqs["doorbell"] = np.arange(1, n + 1)
    irqs["spin_gap_ns"] = 80
    irqs["delivered"] = np.arange(1, n + 1)
    dev = np.zeros(1, DEV_REGS)
    dev["sent"] = n
    dev["gprc"] = n
    dev["rdh"] = n % RING
    dev["icr"] = 0x80
    line = np.zeros(1, IRQ_LINE)
    line["doorbell"] = n
    line["state"] = DEV_DONE
    drv = np.zeros(1, DRV_REGS)
    drv["rdt"] = (n - 1) % RING
    drv["ims"] = 0x9D
    drv["itr"] = 0
    cfg = RunConfig(ring_size=RING, buffer_size=2048, device_core=2, driver_core=3, irq="spin", upper="verify",
                    driver="e1000", itr_ns=0, napi_budget=0)  # fmt: skip
    return {
        "config": replace(cfg, **config),
        "plan": Plan.make(slots, frames, {"kind": "test"}),
        "tx": tx,
        "raises": raises,
        "irqs": irqs,
        "dev": dev,
        "line": line,
        "drv": drv,
        "san": np.zeros(1, SANITIZER),
        "ring_status": np.zeros(RING, RX_DESC["status"]),
        "t0_ns": T0,
        "driver_label": "e1000 (test)",
        "report": {"deliveries": deliveries(np.arange(n)), "rx_errors": 0},
    }


def built(fields: dict[str, Any]) -> RunResult:
    return build_result(RunEnd(**fields))


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Counts]:
    """The counts build_result hands the verdict, as they were handed."""
    seen: list[Counts] = []
    judge = result_module.judge

    def spy(counts: Counts, *args: Any, **kw: Any) -> Any:
        seen.append(counts)
        return judge(counts, *args, **kw)

    monkeypatch.setattr(result_module, "judge", spy)
    return seen


def drop(f: dict[str, Any], packets: list[int]) -> None:
    """The device found no descriptor for ``packets``: not stored, not raised, counted in MPC."""
    f["tx"]["flags"][packets] = TX_DROPPED
    f["dev"]["mpc"] = len(packets)
    kept = np.setdiff1d(np.arange(len(f["tx"])), packets)
    f["report"]["deliveries"] = deliveries(kept)


# -- counts ------------------------------------------------------------------------------------
def test_a_clean_run_counts_every_packet_and_passes(handed: list[Counts]) -> None:
    r = built(clean())
    assert (r.sent, r.stored, r.received, r.missed, r.lost) == (N, N, N, 0, 0)
    assert (r.duplicated, r.reordered, r.corrupted, r.spurious) == (0, 0, 0, 0)
    assert r.success_rate == 1.0 and r.verified and r.ok and r.passed
    assert (r.interrupts, r.handler_runs) == (N, N)
    assert r.verdict is not None and r.verdict.passed
    (c,) = handed
    assert (c.packets, c.stored, c.received, c.interrupts, c.handler_runs) == (N, N, N, N, N)
    assert c.failure is None and c.rdt_written and not c.starved and c.split_dropped == 0


def test_dropped_packets_are_missed_and_lost(handed: list[Counts]) -> None:
    f = clean()
    drop(f, [4, 5, 6])
    r = built(f)
    assert (r.sent, r.stored, r.received, r.missed, r.lost) == (N, N - 3, N - 3, 3, 3)
    assert r.success_rate == (N - 3) / N
    assert (handed[0].missed, handed[0].stored) == (3, N - 3)


def test_stored_but_never_delivered_is_lost_not_missed() -> None:
    f = clean()
    f["report"]["deliveries"] = deliveries(np.arange(N - 2))
    r = built(f)
    assert (r.stored, r.received, r.missed, r.lost) == (N, N - 2, 0, 2)


def test_duplicated_reordered_corrupted_come_from_the_report(handed: list[Counts]) -> None:
    f = clean()
    report = deliveries([0, 1, 1, 3, 2, -1, *range(4, N)], duplicated=1, reordered=1, poisoned=1,
                        corruption=["8 bytes of poison"], partial=np.full(N + 2, -1))  # fmt: skip
    f["report"]["deliveries"] = report
    r = built(f)
    assert (r.duplicated, r.reordered, r.corrupted, r.poisoned, r.partial) == (1, 1, 1, 1, 0)
    assert r.corruption == ["8 bytes of poison"]
    assert r.received == N
    assert list(r.delivered_seq) == list(report.seq)
    c = handed[0]
    assert (c.duplicated, c.reordered, c.corrupted, c.poisoned, c.corruption) == (1, 1, 1, 1, ("8 bytes of poison",))


def test_parts_of_split_frames_delivered_are_counted() -> None:
    f = clean()
    f["report"]["deliveries"] = deliveries([*range(N), -1, -1], corrupted=2,
                                           partial=np.array([-1] * N + [3, 3]))  # fmt: skip
    assert built(f).partial == 2


def test_no_report_counts_nothing_received() -> None:
    f = clean()
    f["report"] = None
    f["failure"] = {"kind": "driver crashed", "stage": "interrupt", "handler_run": 3, "message": "killed by SIGSEGV"}
    r = built(f)
    assert (r.received, r.lost, r.rx_errors, r.verified) == (0, N, 0, False)
    assert r.error == f["failure"] and not r.ok and not r.passed
    assert len(r.delivered_seq) == 0 and r.delivered_frames is None


def test_spurious_entries_are_not_packets(handed: list[Counts]) -> None:
    f = clean()
    # Entry 5 asks for an interrupt with no packet: the device raises, stores nothing.
    f["plan"].slots["flags"][5] |= SLOT_SPURIOUS
    f["tx"]["flags"][5] = TX_SPURIOUS | TX_RAISED
    f["report"]["deliveries"] = deliveries([p for p in range(N) if p != 5])
    r = built(f)
    assert (r.spurious, r.sent, r.stored, r.received, r.lost) == (1, N - 1, N - 1, N - 1, 0)
    assert r.success_rate == 1.0
    assert r.interrupts == N  # its raise is an interrupt all the same
    assert handed[0].packets == N - 1


# -- throughput ----------------------------------------------------------------------------
def span(f: dict[str, Any]) -> int:
    return int(f["tx"]["end_ns"][-1]) - int(f["tx"]["start_ns"][0])


def test_throughput_is_the_bytes_received_over_the_send_span() -> None:
    f = clean()
    f["report"]["deliveries"] = deliveries([0, 1, 2, 2, -1])  # a duplicate and a corrupt one add nothing
    expected_bytes = SIZES[0] + SIZES[1] + SIZES[0]
    assert built(f).throughput_gbps == pytest.approx(8 * expected_bytes / span(f))


def test_unverified_deliveries_count_at_the_stored_mean_size() -> None:
    f = clean(upper="null")
    f["report"]["deliveries"] = Deliveries(5, 5, 0, 0, 0, False, np.full(5, -1, np.int64))
    r = built(f)
    assert r.received == 5 and not r.verified
    assert r.throughput_gbps == pytest.approx(8 * 5 * np.mean(SIZES) / span(f))


def test_mpps_is_the_packets_received_over_the_same_span() -> None:
    f = clean()
    f["report"]["deliveries"] = deliveries([0, 1, 2, 2, -1])  # a duplicate and a corrupt one are no packets
    r = built(f)
    assert r.received == 3 and r.throughput_mpps == pytest.approx(3 / span(f) * 1e9 / 1e6)
    assert r.to_dict()["throughput_mpps"] == r.throughput_mpps


def test_mpps_and_gbps_are_one_rate_at_one_size() -> None:
    f = clean()
    f["plan"] = Plan.make(f["plan"].slots, FrameSet.of([bytes(64)], stamped=False), {"kind": "test"})
    f["plan"].slots["frame"] = 0
    r = built(f)
    assert r.throughput_mpps == pytest.approx(r.throughput_gbps * 1e9 / (8 * 64) / 1e6)


def test_the_summary_shows_mpps_beside_gbps() -> None:
    from rich.console import Console

    from pseudonic.cli import render

    r = built(clean())
    r.transmit = {"handed": 10, "asked": 10, "refused": 0, "intact": 10, "lost": 0, "duplicated": 0, "reordered": 0,
                  "corrupted": 0, "octets": 10 * 1500, "throughput_gbps": 12.0,
                  "latency_ns": {"p50": 900, "p99": 2_000}}  # fmt: skip
    console = Console(record=True, width=200)
    render(r, console)
    text = console.export_text()
    assert f"{r.throughput_gbps:.3f} Gbps, {r.throughput_mpps:.3f} Mpps" in text
    assert "12.000 Gbps, 1.000 Mpps" in text  # 12 Gbps of 1500 B frames, each intact: 1 Mpps
    for intact, octets, shown in ((0, 0, "0.000 Gbps, 0.000 Mpps"), (3, 0, "— Mpps (GOTC counted no octets)")):
        r.transmit.update(intact=intact, octets=octets, throughput_gbps=0.0)
        console = Console(record=True, width=200)
        render(r, console)
        assert shown in console.export_text()


def test_nothing_sent_has_no_throughput_and_no_figures() -> None:
    f = clean()
    f["tx"] = f["tx"][:0]
    f["raises"] = f["raises"][:0]
    f["irqs"] = f["irqs"][:0]
    f["line"]["doorbell"] = 0
    f["report"]["deliveries"] = deliveries([])
    r = built(f)
    assert (r.sent, r.stored, r.received, r.throughput_gbps, r.success_rate) == (0, 0, 0, 0.0, 0.0)
    assert r.throughput_mpps == 0.0
    assert r.send_time_ns["n"] == 0 and r.irq_latency_ns["n"] == 0


# -- error descriptors -----------------------------------------------------------------------
def test_error_descriptors_are_the_plans_error_bits_and_refused_buffers(handed: list[Counts]) -> None:
    f = clean()
    f["plan"].slots["flags"][2] |= RXD_ERR_CE
    f["tx"]["flags"][3] |= TX_REFUSED  # a buffer outside the pool: written back with RXE
    f["plan"].slots["flags"][6] |= RXD_ERR_CE
    f["tx"]["flags"][6] = TX_DROPPED  # an error frame never stored is no error descriptor
    f["report"] = {"deliveries": deliveries([p for p in range(N) if p not in (3, 6)]), "rx_errors": 1}
    r = built(f)
    assert r.error_descriptors == 2
    assert r.delivered_with_error == 1  # packet 2, delivered although its descriptor had CE
    assert r.rx_errors == 1
    c = handed[0]
    assert (c.error_descriptors, c.delivered_with_error, c.rx_errors) == (2, 1, 1)


def test_a_driver_that_keeps_no_rx_errors_hands_none_on() -> None:
    f = clean()
    f["report"]["rx_errors"] = None
    assert built(f).rx_errors is None


# -- registers -----------------------------------------------------------------------------------
def test_the_registers_are_read_as_the_run_left_them(handed: list[Counts]) -> None:
    f = clean()
    f["dev"]["rdh"], f["dev"]["icr"] = 5, 0x81
    f["drv"]["rdt"], f["drv"]["ims"], f["drv"]["itr"] = 4, 0x80, 196
    f["dev"]["reasserted"], f["drv"]["icr_reads"] = 3, 11
    r = built(f)
    assert r.registers == {"rdh": 5, "rdt": 4, "icr": 0x81, "ims": 0x80, "itr": 196}
    assert (r.reasserted, r.icr_reads) == (3, 11)
    assert (handed[0].ims, handed[0].rdt_written) == (0x80, True)


def test_rdt_never_written_is_handed_on(handed: list[Counts]) -> None:
    f = clean()
    f["drv"]["rdt"] = 0
    drop(f, list(range(N)))
    f["line"]["doorbell"] = 0
    f["raises"], f["irqs"] = f["raises"][:0], f["irqs"][:0]
    r = built(f)
    assert (r.stored, r.interrupts, r.handler_runs) == (0, 0, 0)
    assert (handed[0].stored, handed[0].rdt_written) == (0, False)


# -- failures ------------------------------------------------------------------------------------
def test_a_level_line_left_asserted_is_the_drivers_interrupt_storm() -> None:
    f = clean(irq_mode="level")
    f["line"]["state"] = DEV_STORM
    f["dev"]["reasserted"] = 5000
    r = built(f)
    assert r.error == storm_failure(5000, 0, N)
    assert r.error is not None and r.error["kind"] == "driver interrupt storm"
    assert "never read ICR" in r.error["message"] and "5000 raises" in r.error["message"]
    assert not r.passed


def test_a_storm_names_the_icr_reads_it_saw() -> None:
    assert "read ICR 7 times in 3 handler runs" in storm_failure(10, 7, 3)["message"]


def test_a_failure_already_known_is_kept_over_the_storm() -> None:
    f = clean(irq_mode="level")
    f["line"]["state"] = DEV_STORM
    f["failure"] = {"kind": "driver hung", "stage": "interrupt", "handler_run": 2, "message": "no answer"}
    assert built(f).error == f["failure"]


def test_an_interrupted_run_reports_what_it_has_and_hands_no_failure_on(handed: list[Counts]) -> None:
    f = clean()
    stop = {"kind": "interrupted", "stage": "run", "handler_run": None, "message": "stopped by SIGINT"}
    # Stopped after packet 7's raise, before its send was on record: its raise has no deadline here.
    f["tx"] = f["tx"][:7]
    f["dev"]["sent"] = 7
    f["irqs"] = f["irqs"][:8]
    f["raises"] = f["raises"][:8]
    f["line"]["doorbell"] = 8
    f.update(failure=stop, interrupted=int(signal.SIGINT),
             report={"deliveries": deliveries(np.arange(7)), "rx_errors": 0})  # fmt: skip
    r = built(f)
    assert (r.sent, r.received, r.interrupts, r.handler_runs) == (7, 7, 8, 8)
    assert r.error == stop and r.interrupted == signal.SIGINT and r.exit_code == 128 + signal.SIGINT
    assert r.irq_latency_ns["n"] == 7  # the eighth run's raise is for an entry not on record
    assert handed[0].failure is None
    assert r.verdict is not None and r.verdict.interrupted_by == "SIGINT"


# -- the ring ----------------------------------------------------------------------------------
def test_split_frames_stored_and_not_delivered_are_handed_on_as_dropped(handed: list[Counts]) -> None:
    f = clean()
    f["plan"].slots["parts"][[3, 4, 8]] = 2
    f["plan"].slots["flags"][8] |= RXD_ERR_CE  # an error frame is an error descriptor, not a split drop
    f["report"]["deliveries"] = deliveries([p for p in range(N) if p not in (3, 8)])
    built(f)
    assert handed[0].split_dropped == 1


def test_a_ring_with_every_descriptor_held_by_the_driver_is_starved(handed: list[Counts]) -> None:
    f = clean()
    drop(f, [9, 10, 11])
    f["dev"]["rdh"] = f["drv"]["rdt"] = 3
    built(f)
    assert handed[0].starved
    f["ring_status"][5] = RXD_STAT_DD  # a descriptor written back, waiting: the ring is not starved
    built(f)
    assert not handed[1].starved


# -- the sanitizer -----------------------------------------------------------------------------
def test_sanitizer_violations_name_the_last_packet_in_their_descriptor(handed: list[Counts]) -> None:
    f = clean(sanitize=True)
    index, kind = next(iter(SAN_KINDS.items()))
    san = f["san"]
    san["count"][0, index] = 3
    first = san["first"][0, index]
    # descriptor 2 held packets 2 and 10; by the time of the finding the device had written packet 10
    first["descriptor"], first["rdt"], first["time_ns"] = 2, 1, int(f["tx"]["start_ns"][10]) + 5
    r = built(f)
    assert r.ring_violations == {
        kind: {"count": 3, "first": {"packet": 10, "descriptor": 2, "rdt": 1, "time_ns": first["time_ns"]}}
    }
    assert handed[0].ring_violations == r.ring_violations


def test_a_finding_before_any_packet_in_its_descriptor_names_none() -> None:
    f = clean(sanitize=True)
    index, kind = next(iter(SAN_KINDS.items()))
    f["san"]["count"][0, index] = 1
    f["san"]["first"][0, index]["descriptor"] = 2
    f["san"]["first"][0, index]["time_ns"] = T0
    assert built(f).ring_violations[kind]["first"]["packet"] is None


def test_the_sanitizers_cost_leaves_out_its_first_write() -> None:
    f = clean(sanitize=True)
    f["san"]["writes"], f["san"]["spent_ns"], f["san"]["first_ns"] = 11, 50_000, 40_000
    assert built(f).sanitizer_cost == {"rdt_writes": 11, "spent_ns": 50_000, "first_write_ns": 40_000,
                                       "ns_per_write": 1_000.0}  # fmt: skip
    f["san"]["writes"] = 1
    assert built(f).sanitizer_cost["ns_per_write"] is None


def test_no_sanitizer_no_cost() -> None:
    f = clean()
    f["san"]["writes"] = 11
    assert built(f).sanitizer_cost == {} and built(f).ring_violations == {}


# -- timing ------------------------------------------------------------------------------------
def test_latency_is_each_handler_entry_after_the_raise_its_doorbell_named() -> None:
    f = clean()
    irqs, raises = f["irqs"], f["raises"]
    # Run 3 saw the doorbell at 5 (packet 4's raise woke it late: it took both); run 0 saw none on record.
    irqs["entry_ns"][3] = raises["raised_ns"][4] + 900
    irqs["doorbell"][3] = 5
    irqs["doorbell"][0] = 0
    r = built(f)
    expected = np.concatenate([np.full(N - 2, 250), [900]])
    assert r.irq_latency_ns["n"] == N - 1
    assert r.irq_latency_ns["max"] == 900 and r.irq_latency_ns["min"] == 250
    assert r.irq_latency_ns["mean"] == pytest.approx(expected.mean())


def test_the_send_time_counts_stored_packets_only() -> None:
    f = clean()
    drop(f, [3])
    f["tx"]["end_ns"][3] = f["tx"]["start_ns"][3] + 10
    f["tx"]["end_ns"][5] = f["tx"]["start_ns"][5] + 400
    r = built(f)
    assert (r.send_time_ns["n"], r.send_time_ns["min"], r.send_time_ns["max"]) == (N - 1, 150, 400)


def test_a_clean_run_is_within_the_band_and_trustworthy() -> None:
    r = built(clean())
    assert r.interval_deviation_ns["within_6_25pct"] == 1.0
    assert r.device_interval_deviation_ns["within_6_25pct"] == 1.0
    assert r.attribution is not None and r.attribution.outliers == 0 and r.attribution.paced == N - 1
    assert r.timing["trustworthy"]


def test_a_planted_device_stall_is_named_the_machines() -> None:
    f = clean()
    tx, raises, irqs = f["tx"], f["raises"], f["irqs"]
    # The device core taken away 20 us while it waited for packet 5's deadline: its loop saw the gap.
    for column in (tx["start_ns"], tx["end_ns"], raises["raised_ns"], irqs["entry_ns"], irqs["exit_ns"]):
        column[5] += 20_000
    irqs["wait_ns"][6] += 20_000
    tx["spin_gap_ns"][5] = 20_010
    r = built(f)
    assert r.attribution is not None
    assert {k: v for k, v in r.attribution.counts.items() if v} == {"device_stall": 2}
    assert r.interval_deviation_ns["outliers_by_cause"]["device_stall"] == 2
    assert r.interval_deviation_ns["outliers"] == 2
    assert r.stalls["device"]["over_10us"] == 1 and r.stalls["device"]["max_ns"] == 20_010
    assert r.timing["machine_share"] == pytest.approx(2 / (N - 1))
    assert "core 2 (device)" in r.timing["why"]


def test_a_sleeping_line_is_handed_to_the_attribution() -> None:
    f = clean(irq="eventfd")
    # The driver node entered packet 5's handler 20 us late, with nothing on record to say why.
    f["irqs"]["entry_ns"][5] += 20_000
    f["irqs"]["exit_ns"][5] += 20_000
    f["irqs"]["wait_ns"][6] += 20_000
    asleep = built({**f, "sleeping_line": True})
    spinning = built({**f, "sleeping_line": False})
    assert asleep.attribution is not None and spinning.attribution is not None
    assert asleep.attribution.counts["line_wake"] == 2 and spinning.attribution.counts["unexplained"] == 2


def test_what_the_machine_took_from_each_node_is_in_its_stalls() -> None:
    f = clean()
    f["dev"]["run_delay_ns"], f["dev"]["minflt"], f["dev"]["nivcsw"] = 1_000, 2, 3
    f["drv"]["run_delay_ns"], f["drv"]["nivcsw"] = 40, 1
    r = built(f)
    assert r.stalls["device"] == {"over_10us": 0, "max_ns": 60, "run_delay_ns": 1_000, "minflt": 2, "nivcsw": 3}
    assert r.stalls["driver"] == {"over_10us": 0, "max_ns": 80, "run_delay_ns": 40, "minflt": 0, "nivcsw": 1}


# -- what goes through ----------------------------------------------------------------------------
def test_the_configuration_names_the_driver_the_plan_and_the_limit() -> None:
    f = clean()
    f["max_missed"] = MissedLimit(share=0.01)
    r = built(f)
    assert r.config["driver"] == "e1000 (test)" and r.config["driver_spec"] == "e1000"
    assert r.config["max_missed"] == "1%"
    assert r.config["count"] == N and r.config["interval_ns"] == INTERVAL and r.config["plan"] == {"kind": "test"}
    assert r.config["ring_size"] == RING


def test_the_records_the_machine_and_the_clock_offset_go_through() -> None:
    f = clean()
    f["machine"] = {"cpu": "test"}
    f["clock_offset_ns"] = 123
    r = built(f)
    assert r.machine == {"cpu": "test"} and r.clock_offset_ns == 123 and r.t0_ns == T0
    assert r.tx is f["tx"] and r.raises is f["raises"] and r.irqs is f["irqs"] and r.plan is f["plan"]
    assert list(r.due_ns) == list(np.arange(N) * INTERVAL)
