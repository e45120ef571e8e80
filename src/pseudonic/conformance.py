"""The conformance suite every driver must pass (``pseudonic check-driver DRIVER``).

Each case is one :func:`pseudonic.run` with a schedule chosen to exercise one
rule of the e1000 receive path that a driver must get right, and checks on
its result. A driver that raises, crashes or hangs fails the case it did so
in, with the error's kind and message as the detail -- never a traceback.

1. ``delivery`` -- 1000 frames of 1500 B, 50 µs apart (a pace any driver
   keeps): every frame is delivered once, in order, intact.
2. ``wrap-around`` -- a ring of 8 descriptors and 43 frames: the ring wraps
   five times. The driver must follow ring ownership (8254x SDM 3.2.6: the
   device owns RDH..RDT-1; the driver takes descriptors with DD set from its
   own next-to-clean, clears them and moves RDT past them), including the
   index wrapping from the last descriptor to the first.
3. ``ring-full recovery`` -- a back-to-back burst of 48 frames into a ring of
   16 fills it; the device never waits for the driver: it drops what does not
   fit and counts it in MPC, the Missed Packets Count statistic. Interrupts
   are held back by ITR (SDM 13.4.18, 100 µs) during the burst so that the
   ring fills however fast the driver is. Then 100 frames trickle in, 50 µs
   apart, 2 ms later. Every frame not received must be a counted drop
   (missed == lost), and the driver must have returned its descriptors: the
   whole trickle is received.
4. ``error descriptors`` -- every 10th of 200 frames is written back with a
   CRC error bit (SDM table 3-3, RDESC.ERRORS). The driver must drop and count
   those (``rx_errors``), deliver none of them, and go on with the rest.
5. ``spurious interrupt`` -- 10 extra schedule entries set ICR.RXT0 and raise
   the line with no new descriptor. ICR is read-to-clear and says why the
   line was raised (SDM 13.4.17), not that a descriptor is ready: a driver
   must find nothing to take and return, and deliver all 100 frames.
6. ``high rate`` -- 3000 frames of 1500 B, 5 µs apart, on the line under
   test: faster than many handlers run. A driver that cannot keep up shows
   as device drops (MPC) -- allowed here -- but whenever it is idle and the
   line is raised, its handler must run soon: the p99 of the time from a
   raise to the handler's entry, over the runs that found the driver idle,
   must stay under 1 ms (a ring of 256 lasts 1.28 ms at this pace), and
   every frame not received must be a counted drop.

A case whose counts fall short is run once more before it fails: on a shared
machine a core can be taken away from a node for milliseconds, long enough
for a ring of 16 to overflow. A driver bug fails both runs; an exception or a
crash is never run again. A case that passed on its second run says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import analysis, config, schedule
from .controller import Session
from .errors import ConfigError
from .layout import RXD_ERR_CE, SLOT_SPURIOUS, TX_STORED
from .result import RunResult

#: A relaxed pace: far slower than any driver's handler, so nothing is lost for want of speed.
RELAXED_NS = 50_000
#: Runs per case at most; the second only when the first fell short in its counts (see the module docstring).
ATTEMPTS = 2


@dataclass
class CaseResult:
    name: str
    passed: bool
    detail: str
    seconds: float


@dataclass(frozen=True)
class _Case:
    name: str
    #: keyword arguments of pseudonic.run (besides driver and irq)
    params: Callable[[], dict[str, Any]]
    #: None if the result passes, else why not
    judge: Callable[[RunResult], str | None]
    #: a one-line summary of a passing result
    summary: Callable[[RunResult], str]


# -- the cases --------------------------------------------------------------------------------


def _in_order(r: RunResult, packets: np.ndarray[Any, Any]) -> bool:
    """Every packet of ``packets`` (schedule indices, ascending) delivered once, in that order, and nothing else."""
    return np.array_equal(r.delivered_seq, packets)


def _delivery_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(1000, RELAXED_NS), "size": 1500}


def _delivery_judge(r: RunResult) -> str | None:
    if r.received != r.sent or r.corrupted or r.duplicated or r.reordered or r.missed:
        return (
            f"{r.received}/{r.sent} delivered, {r.corrupted} corrupted, {r.duplicated} duplicated, "
            f"{r.reordered} reordered, {r.missed} missed by the device"
        )
    if not r.verified:
        return "deliveries were not verified"
    return None


WRAP_RING = 8
WRAP_PACKETS = 5 * WRAP_RING + 3


def _wrap_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(WRAP_PACKETS, RELAXED_NS), "ring_size": WRAP_RING}


def _wrap_judge(r: RunResult) -> str | None:
    if r.received != r.sent or not _in_order(r, np.arange(r.sent)):
        return (
            f"{r.received}/{r.sent} delivered through a ring of {WRAP_RING}, {r.reordered} reordered, "
            f"{r.duplicated} duplicated, {r.corrupted} corrupted, {r.missed} missed by the device"
        )
    return None


FULL_RING = 16
BURST = 48
TRICKLE = 100
TRICKLE_START_NS = 2_000_000
FULL_ITR = "100us"


def _full_params() -> dict[str, Any]:
    due = [0] * BURST + [TRICKLE_START_NS + RELAXED_NS * i for i in range(TRICKLE)]
    return {"slots": schedule.from_offsets(due), "ring_size": FULL_RING, "itr": FULL_ITR}


def _trickle_missing(r: RunResult) -> int:
    trickle = np.arange(BURST, BURST + TRICKLE)
    return int(np.count_nonzero(~np.isin(trickle, r.delivered_seq)))


def _full_judge(r: RunResult) -> str | None:
    if r.missed == 0:
        return f"the ring of {FULL_RING} never filled (missed 0): recovery was not exercised"
    if r.missed != r.lost:
        return f"{r.lost} lost but the device dropped only {r.missed}: the driver lost {r.lost - r.missed} itself"
    stored = (r.tx["flags"][BURST:] & TX_STORED) != 0
    missing = _trickle_missing(r)
    if missing:
        return (
            f"{missing} of the {TRICKLE} frames after the burst were not received "
            f"({TRICKLE - int(stored.sum())} found no free descriptor): the driver did not recover"
        )
    if r.corrupted or r.duplicated or r.reordered:
        return f"{r.corrupted} corrupted, {r.duplicated} duplicated, {r.reordered} reordered"
    return None


ERR_PACKETS = 200
ERR_EVERY = 10


def _errors_params() -> dict[str, Any]:
    errors = [RXD_ERR_CE if i % ERR_EVERY == ERR_EVERY - 1 else 0 for i in range(ERR_PACKETS)]
    return {"slots": schedule.from_offsets([RELAXED_NS * i for i in range(ERR_PACKETS)], errors=errors)}


def _errors_judge(r: RunResult) -> str | None:
    bad = ERR_PACKETS // ERR_EVERY
    if r.rx_errors != bad or r.received != ERR_PACKETS - bad or r.corrupted or r.duplicated or r.missed:
        return (
            f"{r.rx_errors} counted as rx_errors (expected {bad}), {r.received} delivered "
            f"(expected {ERR_PACKETS - bad}), {r.corrupted} corrupted, {r.duplicated} duplicated"
        )
    return None


SPUR_PACKETS = 100
SPUR_ENTRIES = 10


def _spurious_params() -> dict[str, Any]:
    # a spurious entry 25 us after every 10th packet, starting with packet 5
    spurious_after = set(range(5, SPUR_PACKETS, SPUR_PACKETS // SPUR_ENTRIES))
    due: list[int] = []
    spurious: list[int] = []
    for i in range(SPUR_PACKETS):
        due.append(RELAXED_NS * i)
        if i in spurious_after:
            spurious.append(len(due))
            due.append(RELAXED_NS * i + RELAXED_NS // 2)
    slots = schedule.from_offsets(due)
    slots["flags"][spurious] |= SLOT_SPURIOUS
    return {"slots": slots}


def _spurious_judge(r: RunResult) -> str | None:
    if r.spurious != SPUR_ENTRIES:
        return f"the device raised {r.spurious} spurious interrupts, not {SPUR_ENTRIES}"
    if r.received != SPUR_PACKETS or r.rx_errors or r.corrupted or r.duplicated or r.reordered:
        return (
            f"{r.received}/{SPUR_PACKETS} delivered, {r.rx_errors} rx_errors, {r.corrupted} corrupted, "
            f"{r.duplicated} duplicated, {r.reordered} reordered"
        )
    return None


HIGH_RATE_PACKETS = 3000
HIGH_RATE_NS = 5_000
#: A raise that finds the driver idle must reach its handler well before the ring (256 at 5 us: 1.28 ms) fills.
HIGH_RATE_WAKE_NS = 1_000_000


def _high_rate_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(HIGH_RATE_PACKETS, HIGH_RATE_NS), "size": 1500}


def idle_wake_ns(r: RunResult) -> np.ndarray[Any, Any]:
    """Raise -> handler entry, for each handler run whose raise found the driver idle (its last run over)."""
    known, raise_of = analysis.woken_by(r.irqs, r.raises)
    raised = r.raises["raised_ns"][raise_of].astype(np.int64)
    entry = r.irqs["entry_ns"][known].astype(np.int64)
    prev_exit = np.concatenate([[0], r.irqs["exit_ns"].astype(np.int64)[:-1]])[known]
    wake: np.ndarray[Any, Any] = (entry - raised)[prev_exit < raised]
    return wake


def _high_rate_judge(r: RunResult) -> str | None:
    wake = idle_wake_ns(r)
    if wake.size == 0:
        return "the handler never ran for a raise: the driver node did not wake"
    p99 = float(np.percentile(wake, 99))
    if p99 > HIGH_RATE_WAKE_NS:
        return (
            f"the driver node woke {p99 / 1000:.0f} µs (p99) after a raise found it idle: it slept through "
            f"interrupts ({r.received}/{r.sent} received, {r.handler_runs} handler runs)"
        )
    if r.lost != r.missed:
        return f"{r.lost} lost but the device dropped only {r.missed}: the driver lost {r.lost - r.missed} itself"
    if r.corrupted or r.duplicated or r.reordered:
        return f"{r.corrupted} corrupted, {r.duplicated} duplicated, {r.reordered} reordered"
    return None


CASES: tuple[_Case, ...] = (
    _Case(
        "delivery",
        _delivery_params,
        _delivery_judge,
        lambda r: f"{r.received}/{r.sent} delivered, 0 corrupted, 0 duplicated, 0 reordered",
    ),
    _Case(
        "wrap-around",
        _wrap_params,
        _wrap_judge,
        lambda r: f"{r.received}/{r.sent} delivered in order, ring of {WRAP_RING} wrapped {r.sent // WRAP_RING} times",
    ),
    _Case(
        "ring-full recovery",
        _full_params,
        _full_judge,
        lambda r: (
            f"burst of {BURST} into a ring of {FULL_RING}: {r.missed} dropped and counted (MPC); "
            f"all {TRICKLE} after it delivered"
        ),
    ),
    _Case(
        "error descriptors",
        _errors_params,
        _errors_judge,
        lambda r: (
            f"{r.rx_errors} error descriptors dropped and counted, {r.received}/{r.sent - (r.rx_errors or 0)} delivered"
        ),
    ),
    _Case(
        "spurious interrupt",
        _spurious_params,
        _spurious_judge,
        lambda r: f"{r.spurious} spurious interrupts tolerated, {r.received}/{r.sent} delivered",
    ),
    _Case(
        "high rate",
        _high_rate_params,
        _high_rate_judge,
        lambda r: (
            f"{r.received}/{r.sent} at {HIGH_RATE_NS // 1000} µs, {r.missed} dropped by the device (MPC); "
            f"idle wake-up p99 {float(np.percentile(idle_wake_ns(r), 99)) / 1000:.1f} µs"
        ),
    ),
)

#: The cases' names, in the order they run.
CASE_NAMES = tuple(c.name for c in CASES)


# -- running them -----------------------------------------------------------------------------


def _describe_error(error: dict[str, Any]) -> str:
    kind = str(error.get("kind", "driver failure"))
    message = str(error.get("message", ""))
    if error.get("exception"):
        message = f"{error['exception']}: {message}"
    where = error.get("where")
    if where:
        message = f"{message} at {where}"
    stage = error.get("stage")
    if stage and error.get("handler_run") is not None:
        message = f"{message} (in {stage}, handler run {error['handler_run']})"
    return f"{kind}: {message}"


def _run_case(case: _Case, session: Session, irq: str) -> CaseResult:
    start = time.perf_counter()
    first_failure: str | None = None
    for attempt in range(ATTEMPTS):
        try:
            r = session.run(irq=irq, **case.params())
        except ConfigError:
            raise  # a usage error (the driver cannot be loaded, a bad line): the whole check stops
        except Exception as exc:  # a failure of the run itself: this case fails, the suite goes on
            return CaseResult(case.name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        if r.error is not None:
            return CaseResult(case.name, False, _describe_error(r.error), time.perf_counter() - start)
        why = case.judge(r)
        if why is None:
            detail = case.summary(r)
            if attempt:
                detail += f" (on the second run; the first: {first_failure})"
            return CaseResult(case.name, True, detail, time.perf_counter() - start)
        if first_failure is None:
            first_failure = why
    detail = f"{why} (in both runs)" if why == first_failure else f"{why} (the first run: {first_failure})"
    return CaseResult(case.name, False, detail, time.perf_counter() - start)


def check_driver(
    driver: str | type,
    *,
    irq: str = config.DEFAULT_IRQ,
    progress: Callable[[CaseResult], None] | None = None,
    wait_for_cores: bool = False,
) -> list[CaseResult]:
    """Run every conformance case against ``driver`` on interrupt line ``irq``; one result per case.

    ``driver`` is what :func:`pseudonic.run` accepts (``python``, ``c``, ``module:Class``,
    ``file.py[:Class]``, ``path/to/lib.so``, or a class). ``progress`` is called with each
    case's result as soon as it is known. A driver that cannot be loaded, or a line that does
    not exist, raises :class:`~pseudonic.errors.DriverLoadError` / ``ConfigError`` before any case runs.
    """
    if irq not in config.IRQ_LINES:
        raise ConfigError(f"interrupt line {irq!r} is not available: give one of {', '.join(config.IRQ_LINES)}")
    results: list[CaseResult] = []
    with Session(driver, wait_for_cores=wait_for_cores) as session:
        # Loaded once, in the session's driver node, for every case (a case the driver fails loads it again):
        # a driver that cannot load is a usage error before any case runs.
        session.load()
        for case in CASES:
            result = _run_case(case, session, irq)
            results.append(result)
            if progress is not None:
                progress(result)
    return results


__all__ = ["CASE_NAMES", "CaseResult", "check_driver"]
