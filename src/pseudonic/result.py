"""A run's result: the figures, the configuration, and the per-packet records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .verdict import Verdict

if TYPE_CHECKING:
    from .plan import Plan
    from .timing import Attribution

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
    delivered_frames: list[bytes] | None = field(default=None, repr=False)
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
    #: whether the run's timing can be trusted, and if not what disturbed it (pseudonic.timing.timing_verdict)
    timing: dict[str, Any] = field(default_factory=dict)
    #: per handler-entry interval: its deviation and the cause of it, when outside the band (pseudonic.timing)
    attribution: Attribution | None = field(default=None, repr=False)
    #: the machine: CPU, governor, kernel, isolated cores, virtualisation; steal and interrupts on the run's
    #: cores during the run (pseudonic.machine)
    machine: dict[str, Any] = field(default_factory=dict)
    #: the noise floor of the run's cores measured before and after it (``calibrate``), when asked for
    calibration: dict[str, Any] | None = None

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
            "success_rate", "throughput_gbps", "interrupts", "handler_runs", "verified", "config",
            "send_time_ns", "interval_deviation_ns", "device_interval_deviation_ns", "irq_latency_ns", "stalls",
            "spurious", "error", "error_descriptors", "delivered_with_error", "registers", "interrupted",
            "faults", "ring_violations", "sanitizer_cost", "reasserted", "icr_reads", "poisoned", "partial",
            "corruption", "timing", "machine", "calibration",
        ]  # fmt: skip
        out = {k: getattr(self, k) for k in keys}
        out["verdict"] = self.verdict.to_dict() if self.verdict is not None else None
        return out

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
