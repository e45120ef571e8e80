"""A run's result: the figures, the configuration, and the per-packet records.

:func:`build_result` makes one from what a run left (:class:`RunEnd`: the records and registers copied
out of its segment, the driver node's report): pure, so that every figure can be tested on records
built by hand, with no process and no clock.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import analysis, faults, stream, timing, transmit
from .layout import (
    DEV_FAULT,
    DEV_STORM,
    FAULTS,
    FAULTS_NO_RING,
    RXD_ERR_FRAME,
    RXD_STAT_DD,
    SAN_KINDS,
    SLOT_SPURIOUS,
    TCTL_EN,
    TX_RECORD,
    TX_REFUSED,
    TX_STORED,
    TXV_RECORD,
)
from .verdict import Counts, MissedLimit, Verdict, judge

if TYPE_CHECKING:
    from .config import RunConfig
    from .frame_list import FrameList
    from .plan import Plan
    from .stream import Fold
    from .timing import Attribution
    from .upper import Deliveries

_EMPTY = np.zeros(0)


@dataclass
class RunResult:
    config: dict[str, Any]
    sent: int
    stored: int
    received: int
    missed: int
    lost: int
    duplicated: int
    reordered: int
    corrupted: int
    #: drops the driver counted for error descriptors; None when a Python driver keeps no ``rx_errors``
    rx_errors: int | None
    success_rate: float
    throughput_gbps: float
    interrupts: int
    handler_runs: int
    send_time_ns: dict[str, Any]
    interval_deviation_ns: dict[str, Any]
    device_interval_deviation_ns: dict[str, Any]
    irq_latency_ns: dict[str, Any]
    stalls: dict[str, Any]
    verified: bool
    #: received packets over the same span as ``throughput_gbps`` (the time of the sends), in Mpps
    throughput_mpps: float = 0.0
    error: dict[str, Any] | None = None
    #: spurious interrupts the schedule asked for (no packet)
    spurious: int = 0
    #: per schedule entry: deadline after t0 (ns)
    due_ns: np.ndarray[Any, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    #: per schedule entry: layout.TX_RECORD (start_ns, end_ns, spin_gap_ns, slot, flags)
    tx: np.ndarray[Any, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    #: per interrupt raised: layout.RAISE_RECORD
    raises: np.ndarray[Any, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    #: per handler run: layout.IRQ_RECORD
    irqs: np.ndarray[Any, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    #: per delivery: the packet it was matched to (-1: corrupted / unmatched)
    delivered_seq: np.ndarray[Any, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    t0_ns: int = 0
    #: stored frames whose descriptor the device wrote back with an error bit (the driver must drop them)
    error_descriptors: int = 0
    #: of those, how many the driver delivered anyway
    delivered_with_error: int = 0
    #: the device's and the driver's registers when the run ended (rdh, rdt, icr, ims, itr)
    registers: dict[str, int] = field(default_factory=dict)
    #: PASS or FAIL with the reasons (pseudonic.verdict); None only for results built by hand
    verdict: Verdict | None = None
    #: the signal that stopped the run early (the figures are then partial)
    interrupted: int | None = None
    #: the plan the run ran (pseudonic.plan.Plan): its deadlines, frames and origin
    plan: Plan | None = field(default=None, repr=False)
    #: CLOCK_REALTIME - CLOCK_MONOTONIC (ns) at the run, to put the records' times on the wall clock (pcap)
    clock_offset_ns: int = 0
    #: per delivery, when the run kept them (keep_frames): the frame as the driver delivered it
    #: (a sequence of bytes, kept as a few buffers: pseudonic.frame_list)
    delivered_frames: FrameList | None = field(default=None, repr=False)
    #: per delivery, when the run kept them: when it was delivered (CLOCK_MONOTONIC ns)
    delivered_ns: np.ndarray[Any, Any] | None = field(default=None, repr=False)
    #: per fault kind the plan carried: injected, delivered, dropped, misdelivered (pseudonic.faults)
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    #: per ring sanitizer finding (--sanitize): count, and the first one's packet, descriptor, time and RDT
    ring_violations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the sanitizer's cost, when it was on: RDT writes checked, and the time checking them took the driver
    sanitizer_cost: dict[str, Any] = field(default_factory=dict)
    #: level line: raises with no new packet and no ICR read since the one before
    reasserted: int = 0
    #: ICR reads by the driver over the run
    icr_reads: int = 0
    #: deliveries that matched no frame and carried the sanitizer's poison; parts of split frames delivered
    poisoned: int = 0
    partial: int = 0
    #: how the first deliveries that matched no frame differ from what was sent
    corruption: list[str] = field(default_factory=list)
    #: e1000's register window as the driver used it: RCTL and CTRL at the end, the error statistics it read
    #: (CRCERRS, RXERRC: their counts when last read), writes to registers the model does not have, the first
    register_window: dict[str, int] = field(default_factory=dict)
    #: whether the run's timing can be trusted, and if not what disturbed it (pseudonic.timing.timing_verdict)
    timing: dict[str, Any] = field(default_factory=dict)
    #: per handler-entry interval: its deviation and the cause of it, when outside the band (pseudonic.timing)
    attribution: Attribution | None = field(default=None, repr=False)
    #: the machine: CPU, governor, kernel, isolated cores, virtualisation; steal and interrupts on the run's
    #: cores during the run (pseudonic.machine)
    machine: dict[str, Any] = field(default_factory=dict)
    #: the noise floor of the run's cores measured before and after it (``calibrate``), when asked for
    calibration: dict[str, Any] | None = None
    #: e1000 with --transmit: what the driver transmitted, and how it went (pseudonic.transmit.TransmitAccount)
    transmit: dict[str, Any] | None = None
    #: e1000 with --transmit: the transmitter's records, one per frame it took (layout.TXV_RECORD)
    txv: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, TXV_RECORD), repr=False)
    #: how the per-packet records were kept (full, summary, none); for a run without full records, its record
    #: rings, records written over before they were read, and each process's peak memory
    records: dict[str, Any] = field(default_factory=lambda: {"mode": "full"})
    #: a run without full records: the newest records its rings still held at the end, oldest first --
    #: ``packets`` (layout.TX_RECORD) from schedule entry ``first_packet`` on, ``raises`` from raise
    #: ``first_raise``, ``handler_runs`` from handler run ``first_run`` (pseudonic.records writes them)
    tail: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """The driver ran to the end without failing (says nothing of what it delivered: see ``passed``)."""
        return self.error is None

    @property
    def passed(self) -> bool:
        """The verdict: the driver delivered what it should have (README, "Verdict and exit status")."""
        return self.verdict.passed if self.verdict is not None else self.ok

    @property
    def exit_code(self) -> int:
        """0 PASS, 1 FAIL, 128+N stopped by signal N."""
        if self.interrupted:
            return 128 + self.interrupted
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        keys = [
            "sent", "stored", "received", "missed", "lost", "duplicated", "reordered", "corrupted", "rx_errors",
            "success_rate", "throughput_gbps", "throughput_mpps", "interrupts", "handler_runs", "verified", "config",
            "send_time_ns", "interval_deviation_ns", "device_interval_deviation_ns", "irq_latency_ns", "stalls",
            "spurious", "error", "error_descriptors", "delivered_with_error", "registers", "interrupted",
            "faults", "ring_violations", "sanitizer_cost", "reasserted", "icr_reads", "poisoned", "partial",
            "corruption", "register_window", "timing", "machine", "calibration", "transmit", "records",
        ]  # fmt: skip
        out = {k: getattr(self, k) for k in keys}
        out["verdict"] = self.verdict.to_dict() if self.verdict is not None else None
        return out

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


@dataclass(frozen=True)
class RunEnd:
    """What a run left when it ended: :func:`build_result`'s one input.

    The controller copies it out of the segment and the nodes' messages; tests build it by hand. The
    register blocks are one-record arrays of the segment's dtypes (``layout.DEV_REGS``, ``IRQ_LINE``,
    ``DRV_REGS``, ``SANITIZER``), so each figure reads the register it names.
    """

    config: RunConfig
    plan: Plan
    #: per schedule entry the device sent (``dev.sent`` of them): layout.TX_RECORD
    tx: np.ndarray[Any, Any]
    #: per raise on record (the doorbell's count, up to the records' capacity): layout.RAISE_RECORD
    raises: np.ndarray[Any, Any]
    #: per handler run: layout.IRQ_RECORD
    irqs: np.ndarray[Any, Any]
    dev: np.ndarray[Any, Any]
    line: np.ndarray[Any, Any]
    drv: np.ndarray[Any, Any]
    san: np.ndarray[Any, Any]
    #: per descriptor: its status byte when the run ended
    ring_status: np.ndarray[Any, Any]
    t0_ns: int
    #: the driver's name as it loaded
    driver_label: str
    #: the driver node's report (``deliveries``: upper.Deliveries, ``rx_errors``); None when it gave none
    report: dict[str, Any] | None = None
    #: what stopped the run, if anything did (the controller's failure dict)
    failure: dict[str, Any] | None = None
    #: the signal that stopped the run early
    interrupted: int | None = None
    max_missed: MissedLimit | None = None
    #: the driver node slept between interrupts (eventfd, signal lines: pseudonic.line.Line.sleeps)
    sleeping_line: bool = False
    #: the machine and what it did to the run's cores (read by the controller: pseudonic.machine)
    machine: dict[str, Any] = field(default_factory=dict)
    #: CLOCK_REALTIME - CLOCK_MONOTONIC (ns) at the run
    clock_offset_ns: int = 0
    #: virtio-net: the queue's indices and flags when the driver's handling ended, before its close
    #: (``SegmentView.queue_state``); empty for e1000
    queue: dict[str, int] = field(default_factory=dict)
    #: e1000 with --transmit: the transmitter's records, one per frame it took (layout.TXV_RECORD)
    txv: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, TXV_RECORD))
    #: a run without full records (--records summary): its figures, folded while it went (stream.Fold)
    fold: Fold | None = None
    #: a run without full records: its record rings and each process's peak memory
    memory: dict[str, Any] = field(default_factory=dict)
    #: a run without full records: its newest records, as RunResult.tail
    tail: dict[str, Any] = field(default_factory=dict)


def _counted(counts: Counts) -> dict[str, Any]:
    """The result's counts, as the verdict read them: the same for every record mode."""
    return {
        "sent": counts.packets, "stored": counts.stored, "received": counts.received, "missed": counts.missed,
        "lost": counts.packets - counts.received, "duplicated": counts.duplicated, "reordered": counts.reordered,
        "corrupted": counts.corrupted, "rx_errors": counts.rx_errors, "error_descriptors": counts.error_descriptors,
        "delivered_with_error": counts.delivered_with_error,
        "success_rate": counts.received / counts.packets if counts.packets else 0.0,
        "interrupts": counts.interrupts, "handler_runs": counts.handler_runs,
    }  # fmt: skip


def build_result(end: RunEnd) -> RunResult:
    """Every figure of a run, and its verdict, from what it left (pure: no process, no clock)."""
    if end.config.records != "full":
        return _build_long(end)
    cfg, plan, dev_regs = end.config, end.plan, end.dev
    slots = plan.slots
    dev = dev_regs[0]
    tx = end.tx
    sent = len(tx)
    # Spurious-interrupt entries of a schedule carry no packet.
    spurious = int(np.count_nonzero(slots["flags"][:sent] & SLOT_SPURIOUS))
    packets = sent - spurious
    raised = int(end.line["doorbell"][0])
    raises = end.raises
    irqs = end.irqs
    runs = len(irqs)
    t0 = end.t0_ns
    due = slots["due_ns"][:sent].astype(np.int64)
    stored = (tx["flags"] & TX_STORED) != 0
    report = end.report
    failure = end.failure
    interrupted = end.interrupted

    verdict: Deliveries | None = report["deliveries"] if report else None
    received = verdict.received if verdict else 0
    sizes = np.array(plan.frames.sizes, dtype=np.int64)[slots["frame"][:sent]]
    delivered_seq = verdict.seq if verdict else np.zeros(0, np.int64)
    # each packet delivered (a mark per packet, for the np.unique this took four times: 0.12 s each on a million
    # deliveries here, numpy 2.4)
    hit = np.zeros(sent, dtype=bool)
    hit[delivered_seq[(delivered_seq >= 0) & (delivered_seq < sent)]] = True
    got = np.flatnonzero(hit)
    if verdict is not None and verdict.verified:
        received_bytes = int(sizes[got].sum())
    else:  # unverified deliveries are not matched to packets: take the stored packets' mean size
        received_bytes = round(received * float(sizes[stored].mean())) if stored.any() else 0
    span = (int(tx["start_ns"][0]), int(tx["end_ns"][-1])) if sent else (0, 0)
    # Frame errors: the plan's, and RXE where the device refused a buffer outside the pool.
    errored = stored & (((slots["flags"][:sent] & RXD_ERR_FRAME) != 0) | ((tx["flags"] & TX_REFUSED) != 0))
    delivered_with_error = int(np.count_nonzero(errored[got]))
    rx_errors: int | None = report["rx_errors"] if report else 0
    failure = failure if failure is not None else _device_stopped(end, runs, sent)
    parts = slots["parts"][:sent]
    split_dropped = int(np.count_nonzero(stored & (parts > 1) & ~errored)) - int(
        np.count_nonzero((parts[got] > 1) & ~errored[got])
    )
    fault_accounts = faults.accounts(
        slots,
        stored,
        delivered_seq,
        verdict.checked if verdict is not None else None,
        verdict.partial if verdict is not None else None,
        analysis.woken_packet(irqs, raises, len(delivered_seq)),
    )
    violations = ring_violations(end.san, tx)
    registers, window = _registers(end), _window(end)
    sent_tx = (report or {}).get("tx") or {}
    tx_account = (
        transmit.account(
            end.txv, cfg.transmit, int(sent_tx.get("handed", end.drv["tx_handed"][0])),
            int(sent_tx.get("refused", 0)), int(dev_regs["gotc"][0]), bool(end.drv["tctl"][0] & TCTL_EN),
        ).to_dict()
        if cfg.transmit
        else None
    )  # fmt: skip
    counts = Counts(
        packets=packets,
        stored=int(stored.sum()),
        error_descriptors=int(errored.sum()),
        received=received,
        delivered_with_error=delivered_with_error,
        missed=int(dev["mpc"]),
        duplicated=verdict.duplicated if verdict else 0,
        reordered=verdict.reordered if verdict else 0,
        corrupted=verdict.corrupted if verdict else 0,
        rx_errors=rx_errors,
        verified=verdict.verified if verdict else cfg.upper == "verify",
        interrupts=raised,
        handler_runs=runs,
        failure=failure if interrupted is None else None,
        split_dropped=max(split_dropped, 0),
        **_register_counts(end, registers, window),
        poisoned=verdict.poisoned if verdict else 0,
        partial=int(np.count_nonzero(verdict.partial >= 0))
        if verdict is not None and verdict.partial is not None
        else 0,
        corruption=tuple(verdict.corruption) if verdict else (),
        faults=fault_accounts,
        ring_violations=violations,
        transmit=tx_account,
    )
    run_verdict = judge(
        counts, end.max_missed, interrupted_by=signal.Signals(interrupted).name if interrupted else None
    )

    # Which packet woke each handler run: the one that raised the doorbell it saw.
    known, raise_of = analysis.woken_by(irqs, raises)
    # A raise for an entry the device had not finished when it stopped has no deadline on record here.
    recorded = raises["packet"][raise_of].astype(np.int64) < sent
    if cfg.loopback:
        # Frames came when the driver transmitted them, not on the plan's deadlines: no interval is measured
        # against those, and the timing verdict, which judges that, is not given.
        recorded[:] = False
    known[known] = recorded
    raise_of = raise_of[recorded]
    woke_packet = raises["packet"][raise_of].astype(np.int64)
    deviation = analysis.interval_deviation(irqs["entry_ns"][known], t0 + due[woke_packet])
    attribution = timing.attribute(
        timing.Records(
            planned_ns=t0 + due,
            due_ns=tx["due_ns"],
            start_ns=tx["start_ns"],
            end_ns=tx["end_ns"],
            device_gap_ns=tx["spin_gap_ns"],
            woke=woke_packet,
            raised_ns=raises["raised_ns"][raise_of],
            wait_ns=irqs["wait_ns"][known],
            entry_ns=irqs["entry_ns"][known],
            exit_ns=irqs["exit_ns"][known],
            driver_gap_ns=irqs["spin_gap_ns"][known],
            sleeping_line=end.sleeping_line,
        )
    )
    deviation["outliers_by_cause"] = attribution.counts
    stalls = {
        "device": {**analysis.stalls(tx["spin_gap_ns"]), **_taken(dev_regs)},
        "driver": {**analysis.stalls(irqs["spin_gap_ns"]), **_taken(end.drv)},
    }
    timing_verdict = (
        {} if cfg.loopback else timing.timing_verdict(attribution, stalls, cores=(cfg.device_core, cfg.driver_core))
    )
    return RunResult(
        config=_config(end),
        **_counted(counts),
        throughput_gbps=analysis.throughput_gbps(received_bytes, *span),
        throughput_mpps=analysis.throughput_mpps(received, *span),
        send_time_ns=analysis.summarize((tx["end_ns"] - tx["start_ns"])[stored]),
        interval_deviation_ns=deviation,
        device_interval_deviation_ns=analysis.interval_deviation(
            tx["start_ns"][:0] if cfg.loopback else tx["start_ns"], (t0 + due)[:0] if cfg.loopback else t0 + due
        ),
        irq_latency_ns=analysis.summarize(
            irqs["entry_ns"][known].astype(np.int64) - raises["raised_ns"][raise_of].astype(np.int64)
        ),
        stalls=stalls,
        timing=timing_verdict,
        attribution=attribution,
        machine=end.machine,
        verified=verdict.verified if verdict else False,
        error=failure,
        spurious=spurious,
        due_ns=due,
        tx=tx,
        raises=raises,
        irqs=irqs,
        delivered_seq=delivered_seq,
        t0_ns=t0,
        registers=registers,
        verdict=run_verdict,
        interrupted=interrupted,
        plan=plan,
        clock_offset_ns=end.clock_offset_ns,
        delivered_frames=verdict.frames if verdict is not None else None,
        delivered_ns=verdict.delivered_ns if verdict is not None else None,
        faults=fault_accounts,
        ring_violations=violations,
        sanitizer_cost=sanitizer_cost(end.san) if cfg.sanitize else {},
        reasserted=int(dev_regs["reasserted"][0]),
        icr_reads=int(end.drv["icr_reads"][0]),
        poisoned=counts.poisoned,
        partial=counts.partial,
        corruption=list(counts.corruption),
        register_window=window,
        transmit=tx_account,
        txv=end.txv,
    )


def _build_long(end: RunEnd) -> RunResult:
    """A run without full records: its counters, its deliveries as checked when they came, the figures folded
    while it went (``end.fold``; none with --records none). Nothing per packet is kept."""
    cfg, plan, dev_regs, fold = end.config, end.plan, end.dev, end.fold
    sent = int(dev_regs["sent"][0])
    raised = int(end.line["doorbell"][0])
    runs = int(end.drv["handled"][0])
    report, failure, interrupted = end.report, end.failure, end.interrupted
    d: Deliveries | None = report["deliveries"] if report else None
    received = d.received if d else 0
    failure = failure if failure is not None else _device_stopped(end, runs, sent)
    registers, window = _registers(end), _window(end)
    counts = Counts(
        packets=sent,
        stored=int(dev_regs["gprc"][0]),
        error_descriptors=0,
        received=received,
        delivered_with_error=0,
        missed=int(dev_regs["mpc"][0]),
        duplicated=d.duplicated if d else 0,
        reordered=d.reordered if d else 0,
        corrupted=d.corrupted if d else 0,
        rx_errors=report["rx_errors"] if report else 0,
        verified=d.verified if d else cfg.upper == "verify",
        interrupts=raised,
        handler_runs=runs,
        failure=failure if interrupted is None else None,
        **_register_counts(end, registers, window),
        corruption=tuple(d.corruption) if d else (),
        ring_violations=ring_violations(end.san, np.zeros(0, TX_RECORD)),
    )
    run_verdict = judge(
        counts, end.max_missed, interrupted_by=signal.Signals(interrupted).name if interrupted else None
    )
    mean_size = float(np.mean(plan.sizes))
    empty = analysis.summarize(np.zeros(0))
    span = (fold.first_start_ns or 0, fold.last_end_ns) if fold is not None else _tail_span(end)
    deviation = fold.driver.result() if fold is not None else analysis.interval_deviation(np.zeros(0), np.zeros(0))
    lost = fold.lost_records if fold is not None else None
    records = {
        "mode": cfg.records,
        # a frame size cycle's bytes are counted at the plan's mean size
        "figures": f"streaming histograms: min, max, mean exact; percentiles within 1/{stream.SUB_BUCKETS} of the value"
        if fold is not None
        else "none kept: counts and the verdict only",
        "records_lost": lost,
        **end.memory,
    }
    return RunResult(
        config=_config(end),
        **_counted(counts),
        throughput_gbps=analysis.throughput_gbps(round(received * mean_size), *span),
        throughput_mpps=analysis.throughput_mpps(received, *span),
        send_time_ns=fold.send_time.summary() if fold is not None else empty,
        interval_deviation_ns=deviation,
        device_interval_deviation_ns=fold.device.result() if fold is not None else deviation,
        irq_latency_ns=fold.irq_latency.summary() if fold is not None else empty,
        stalls={
            "device": {**(fold.device_stalls.result() if fold else {}), **_taken(dev_regs)},
            "driver": {**(fold.driver_stalls.result() if fold else {}), **_taken(end.drv)},
        },
        timing={
            "trustworthy": None,
            "raw_off_share": 1 - deviation["within_6_25pct"] if deviation.get("within_6_25pct") is not None else None,
            "why": f"not judged: --records {cfg.records} keeps no per-packet records to name the cause of each "
            "interval off the band (run a shorter stretch with --records full for that)",
        },
        machine=end.machine,
        verified=counts.verified,
        error=failure,
        t0_ns=end.t0_ns,
        registers=registers,
        verdict=run_verdict,
        interrupted=interrupted,
        plan=plan,
        clock_offset_ns=end.clock_offset_ns,
        ring_violations=counts.ring_violations,
        sanitizer_cost=sanitizer_cost(end.san) if cfg.sanitize else {},
        reasserted=int(dev_regs["reasserted"][0]),
        icr_reads=int(end.drv["icr_reads"][0]),
        corruption=list(counts.corruption),
        register_window=window,
        records=records,
        tail=end.tail or None,
    )


def _tail_span(end: RunEnd) -> tuple[int, int]:
    """--records none folds nothing: the sends' span as the record ring still shows it at the end -- the last
    send's end (the ring keeps the newest), the first send's start as planned (its record is long written over;
    the device begins it at its deadline, late by its lateness at the first packet)."""
    packets = end.tail.get("packets")
    if packets is None or not len(packets) or not len(end.plan):
        return 0, 0
    last = max(int(packets["end_ns"].max()), int(packets["start_ns"].max()))
    return end.t0_ns + int(end.plan.slots["due_ns"][0]), last


def _config(end: RunEnd) -> dict[str, Any]:
    """The run's configuration as its result shows it: the platform's, the plan's, the driver's."""
    return {
        **end.config.as_dict(),
        # interval_ns is None when the plan is not periodic: its deadlines are in due_ns
        **end.plan.summary(),
        "driver": end.driver_label,
        "driver_spec": end.config.driver,
        "max_missed": str(end.max_missed) if end.max_missed is not None else None,
    }


def _device_stopped(end: RunEnd, runs: int, sent: int) -> dict[str, Any] | None:
    """What stopped the device, if it stopped itself: a storm of the level line, a ring it could not use."""
    state, dev_regs = int(end.line["state"][0]), end.dev
    if state == DEV_STORM:
        return storm_failure(int(dev_regs["reasserted"][0]), int(end.drv["icr_reads"][0]), runs)
    if state == DEV_FAULT:
        return device_fault(int(dev_regs["fault"][0]), int(dev_regs["fault_value"][0]), sent)
    return None


def _register_counts(end: RunEnd, registers: dict[str, int], window: dict[str, int]) -> dict[str, Any]:
    """The verdict's counts read from the registers when the run ended (pseudonic.verdict.Counts)."""
    virtio = end.config.device == "virtio-net"
    return {
        # virtio-net has no mask: a driver suppresses interrupts in the queue (queue's used_event, avail_flags)
        "ims": registers["ims"] if not virtio else -1,
        "rdt_written": registers["rdt"] != 0 if not virtio else registers["avail_idx"] != 0,
        "starved": registers["rdh"] == registers["rdt"] and not (end.ring_status & RXD_STAT_DD).any()
        if not virtio
        else registers["avail_idx"] == registers["last_avail"],
        "left_in_ring": 0 if virtio else int(np.count_nonzero(end.ring_status & RXD_STAT_DD)),
        "device": end.config.device,
        "queue": dict(end.queue),
        "sanitized": end.config.sanitize,
        "unmodelled": window.get("unmodelled_writes", 0),
        "unmodelled_first": window.get("first_unmodelled", 0),
        "errors_by_statistics": window.get("crcerrs_read", 0) + window.get("rxerrc_read", 0) > 0,
        "discarded_long": window.get("discarded_long", 0),
        "receiver_off": window.get("receiver_off", 0),
    }


def _registers(end: RunEnd) -> dict[str, int]:
    """The registers a result shows: e1000's RDH, RDT, ICR, IMS, ITR; virtio-net's queue."""
    if end.config.device == "virtio-net":
        return dict(end.queue)
    dev_regs = end.dev
    return {
        "rdh": int(dev_regs["rdh"][0]),
        "rdt": int(end.drv["rdt"][0]),
        "icr": int(dev_regs["icr"][0]),
        "ims": int(end.drv["ims"][0]),
        "itr": int(end.drv["itr"][0]),
    }


def _window(end: RunEnd) -> dict[str, int]:
    """e1000's register window as the driver used it (empty for virtio-net)."""
    if end.config.device == "virtio-net":
        return {}
    dev_regs = end.dev
    return {
        "rctl": int(end.drv["rctl"][0]),
        "ctrl": int(end.drv["ctrl"][0]),
        "crcerrs_read": int(end.drv["read_crcerrs"][0]),
        "rxerrc_read": int(end.drv["read_rxerrc"][0]),
        "unmodelled_writes": int(end.drv["unmodelled"][0]),
        "discarded_long": int(dev_regs["roc"][0]),
        "receiver_off": int(dev_regs["rx_off"][0]),
        "first_unmodelled": int(end.drv["unmodelled_first"][0]),
        # the rings the device used at the end: where (a bus address) and how many descriptors
        "rx_ring_base": int(dev_regs["ring_base"][0]),
        "rx_ring_count": int(dev_regs["ring_count"][0]),
        "tctl": int(end.drv["tctl"][0]),
        "tx_ring_base": int(dev_regs["tx_base"][0]),
        "tx_ring_count": int(dev_regs["tx_count"][0]),
        "tdh": int(dev_regs["tdh"][0]),
        "tdt": int(end.drv["tdt"][0]),
    }


def _taken(regs: np.ndarray[Any, Any]) -> dict[str, int]:
    """What the machine took from a node over its loop (pseudonic.node.disturbance)."""
    return {k: int(regs[k][0]) for k in ("run_delay_ns", "minflt", "nivcsw")}


def sanitizer_cost(san: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The ring sanitizer's cost, from its registers (layout.SANITIZER)."""
    rec = san[0]
    writes, spent, first = int(rec["writes"]), int(rec["spent_ns"]), int(rec["first_ns"])
    # The first write (in open) poisons the whole pool; the rest are the per-packet cost.
    return {
        "rdt_writes": writes, "spent_ns": spent, "first_write_ns": first,
        "ns_per_write": (spent - first) / (writes - 1) if writes > 1 else None,
    }  # fmt: skip


def ring_violations(san: np.ndarray[Any, Any], tx: np.ndarray[Any, Any]) -> dict[str, dict[str, Any]]:
    """The sanitizer's findings, each with its first occurrence; its packet is the last one the device
    had written into that descriptor by then."""
    rec = san[0]
    out: dict[str, dict[str, Any]] = {}
    for index, name in SAN_KINDS.items():
        count = int(rec["count"][index])
        if not count:
            continue
        first = rec["first"][index]
        desc, when = int(first["descriptor"]), int(first["time_ns"])
        before = np.flatnonzero((tx["slot"] == desc) & (tx["start_ns"] <= when))
        out[name] = {
            "count": count,
            "first": {
                "packet": int(before[-1]) if before.size else None,
                "descriptor": desc,
                "rdt": int(first["rdt"]),
                "time_ns": when,
            },
        }
    return out


def fault_message(fault: int, value: int) -> str:
    """A ring or descriptor the device could not use, as one line naming the register and its value."""
    register, what = FAULTS.get(fault, ("a register", f"held something the device cannot use (fault {fault})"))
    if fault in FAULTS_NO_RING:
        return what
    return f"{register} = {value:#x} {what}"


def device_fault(fault: int, value: int, sent: int) -> dict[str, Any]:
    """The device stopped because the driver programmed a ring, or queued a descriptor, it cannot use."""
    return {
        "kind": "ring programmed wrong", "stage": "schedule", "handler_run": None,
        "last_packet": sent - 1 if sent else None,
        "message": f"the device stopped after {sent} schedule entries: {fault_message(fault, value)}",
    }  # fmt: skip


def storm_failure(reasserted: int, icr_reads: int, runs: int) -> dict[str, Any]:
    """The run stopped because the level line never went down: what it means."""
    read = "never read ICR" if icr_reads == 0 else f"read ICR {icr_reads} times in {runs} handler runs"
    return {
        "kind": "driver interrupt storm", "stage": "interrupt", "handler_run": None,
        "message": f"the level line stayed asserted through {reasserted} raises with no new packet: the driver "
        f"{read}, so its cause stays set and INTx re-enters the handler at once; read ICR (read-to-clear) "
        "in the handler",
    }  # fmt: skip
