"""The conformance suite every driver must pass (``pseudonic check-driver DRIVER``).

Each case is one :func:`pseudonic.run` with a plan chosen to exercise one
rule of the e1000 receive path that a driver must get right, with the ring
sanitizer on (``--sanitize``: every hand-over of descriptors checked, every
buffer handed back poisoned), and checks on its result. A case that fails
names every anomaly its run showed -- its own check first, then each reason
of the run's verdict -- never only the first. A driver that raises, crashes
or hangs fails the case it did so in, with the error's kind and message as
the detail, never a traceback.

- ``delivery`` -- 1000 frames of 1500 B, 50 µs apart (a pace any driver
  keeps): every frame is delivered once, in order, intact.
- ``wrap-around`` -- a ring of 8 descriptors and 163 frames (a driver on a
  ring of its own: twenty times its ring, and 3): the ring wraps twenty times
  (at least five even if a stall of the machine makes the device drop some;
  every frame stored must be delivered, in order). The driver
  must follow ring ownership (8254x SDM 3.2.6: the device owns RDH..RDT-1;
  the driver takes descriptors with DD set from its own next-to-clean,
  clears them and moves RDT past them), including the index wrapping from
  the last descriptor to the first.
- ``ring-full recovery`` -- a back-to-back burst of 48 frames into a ring of
  16 fills it; the device never waits for the driver: it drops what does not
  fit and counts it in MPC. Interrupts are held back during the burst (the
  line is raised with its last frame only, and ITR is 100 µs, SDM 13.4.18)
  so that the ring fills however fast the driver is. A driver on a ring of
  its own larger than 16 gets a burst of three times its ring. Then 100
  frames trickle in, 50 µs apart, 2 ms later. Every frame not
  received must be a counted drop, and the trickle's second half is received
  (a driver that did not recover loses it all; a stall of the machine may
  cost one that did a few early frames).
- ``ICR, level line`` -- 300 frames on the level-triggered line (INTx, the
  8254x's): a handler that returns without reading ICR (read-to-clear)
  leaves the line asserted and is entered again at once -- an interrupt
  storm the device stops the run for.
- one case per fault kind (:mod:`pseudonic.faults`, which states what a
  correct driver does with each): ``fault rxe``, ``ce``, ``se``, ``seq``,
  ``cxe`` (drop and count), ``ipe``, ``tcpe`` (deliver, never marked
  checksum-checked), ``split`` (reassemble or drop whole), ``spurious``
  (take nothing), ``lost-irq`` and ``early-irq`` (collect at the next
  interrupt), ``burst`` (overflow the ring, deliver what was stored): 200
  frames 50 µs apart with the fault on some of them (a fixed seed, so a
  failure comes back the same); the case fails on any misdelivered fault.
- ``high rate`` on each line (spin, eventfd, signal) -- 3000 frames of
  1500 B, 5 µs apart: faster than many handlers run. Device drops (MPC) are
  allowed here, but whenever the driver is idle and the line is raised, its
  handler must run soon: the p99 of raise -> handler entry over the runs
  that found it idle stays under 1 ms (a ring of 256 lasts 1.28 ms at this
  pace), and every frame not received is a counted drop.

A driver with a transmit entry point (``transmit(nic, frame)``,
``pnic_driver_transmit``) is checked on the transmit ring too (8254x SDM
3.3, 3.4: the device owns TDH..TDT-1; TDT == TDH is an empty ring; DD comes
back where RS asks); a driver without one has these cases skipped, and says so:

- ``transmit`` -- 2000 frames of 1500 B handed over as fast as the driver
  takes them, 100 received meanwhile: every frame reaches the wire once, in
  order, intact (the transmitter checks each against the frame handed).
- ``transmit ring full`` -- 600 frames of 1000 B with the transmitter paced
  at 100 Mbps: the driver's ring fills, its transmit says so, the frames are
  offered again as the ring drains; every frame is still sent once, in
  order, intact, and the ring wraps at least twice (a larger ring of the
  driver's own gets enough frames for that).
- ``transmit and receive`` -- 1000 frames received 50 µs apart while 3000
  are transmitted: both directions at once, each verified.

With ``profile="xv6-lab"`` (:mod:`pseudonic.profiles`) the cases are
:data:`XV6_CASES`, modelled on what xv6's network lab checks, on its setting
(16 descriptors, 2048-byte buffers, the level line, 60-byte frames): ``one
frame each way``; ``many in a row`` (200 each way, received 100 µs apart);
``more frames than descriptors`` (a burst of 48 into the ring of 16, the
line raised at its end only, then 100 more; 100 transmitted at 10 Mbps --
or three times a larger transmit ring of the driver's own -- so the transmit
ring fills and wraps); ``transmit while receiving`` (500 each way, received
50 µs apart).

With ``device="virtio-net"`` the cases are :data:`VIRTIO_CASES` (VIRTIO 1.1
split virtqueue, receive queue), with the same names where they mean the same:

- ``delivery`` and ``wrap-around`` as above, the latter through a queue of 8:
  the driver takes used entries from its own last_used and makes each chain
  available again only after its frame was copied out (2.6.8); the ring
  slot wraps at the queue's size, the free-running 16-bit indices do not
  (their wrap at 65536 is tested sans-IO: ``models/virtio_net.py``).
- ``ring-full recovery`` -- the same burst and trickle, with no ITR: virtio
  has none, and a back-to-back burst of 48 fills a queue of 16 on its own.
- ``interrupt suppression`` (for ``ICR, level line``: MSI-X has no level and
  no ICR) -- 2000 frames at gaps from 1 to 30 µs, so that the driver is
  often still in its handler, or re-arming, when the next frame is used;
  then a pause, an interrupt that brings nothing halfway through it (the
  driver takes what it left and re-arms at rest), and one frame alone. A
  driver that re-arms (used_event, VIRTQ_AVAIL_F_NO_INTERRUPT; 2.6.7)
  wrongly, or without looking at used.idx once more, is not interrupted
  for what came meanwhile, and the lone last frame is left behind for good.
- the fault cases of the kinds that apply to virtio (``split`` over several
  buffers with MRG_RXBUF, ``spurious``, ``lost-irq``, ``early-irq``,
  ``burst``) and ``high rate`` on each line, as above.

A case whose counts fall short is run once more before it fails: on a shared
machine a core can be taken away from a node for milliseconds, long enough
for a ring of 16 to overflow. A driver bug fails both runs; an exception or a
crash is never run again. A case that passed on its second run says so. A
run in which the kernel kept either node from its core longer than
DISTURBED_NS (its schedstat run delay, or a gap in its own spinning: a host
that deschedules the vCPU shows only there; both measured by the node) is not
judged: it is run again, up to DISTURBED_RERUNS times, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import analysis, config, faults, profiles, schedule
from .controller import Session
from .errors import ConfigError
from .layout import SLOT_NO_RAISE, TX_STORED
from .result import RunResult

#: A relaxed pace: far slower than any driver's handler, so nothing is lost for want of speed.
RELAXED_NS = 50_000
#: Runs per case at most; the second only when the first fell short in its counts (see the module docstring).
ATTEMPTS = 2
#: A run in which the machine kept a node from its core this long (the kernel's run_delay) is not judged;
#: it is run again, at most DISTURBED_RERUNS times more. A ring of 8 at 50 µs lasts 400 µs.
DISTURBED_NS = 400_000
DISTURBED_RERUNS = 3


@dataclass
class CaseResult:
    name: str
    passed: bool
    detail: str
    seconds: float
    #: the case does not apply to this driver (it has no transmit entry point): not run, not passed
    skipped: bool = False


@dataclass(frozen=True)
class _Case:
    name: str
    #: keyword arguments of pseudonic.run (besides driver, irq and sanitize)
    params: Callable[[], dict[str, Any]]
    #: None if the result passes this case's own check, else why not (the run's verdict is checked too)
    judge: Callable[[RunResult], str | None]
    #: a one-line summary of a passing result
    summary: Callable[[RunResult], str]
    #: the line this case runs on, whatever the check's (the high-rate case runs on each)
    line: str | None = None
    #: for a driver that placed a receive ring of its own (larger than the one the case sized): the case's
    #: arguments sized to that ring, from the first run's result; None: the case fits as it is
    resize: Callable[[RunResult], dict[str, Any] | None] | None = None
    #: the case hands the driver frames to transmit: only for a driver with a transmit entry point
    transmits: bool = False


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
WRAP_WRAPS = 5
#: Frames enough for the ring to wrap WRAP_WRAPS times even if a stall of the machine makes the device drop
#: some: a ring of 8 at 50 µs lasts 400 µs, and a shared VM takes a core away for milliseconds now and then
#: (a CI run of 67 frames, 3.35 ms, had 59 of them dropped); 163 frames last 8.15 ms.
WRAP_PACKETS = 20 * WRAP_RING + 3


def _wrap_params(ring: int = WRAP_RING) -> dict[str, Any]:
    return {"slots": schedule.periodic(WRAP_PACKETS // WRAP_RING * ring + 3, RELAXED_NS), "ring_size": WRAP_RING}


def _ring_of(r: RunResult) -> int:
    """The receive ring the device used: the one the case asked for, or the driver's own (e1000, RDLEN)."""
    return int(r.register_window.get("rx_ring_count", 0)) or int(r.config["ring_size"])


def _own_ring(r: RunResult, sized: int) -> int | None:
    """The driver's own receive ring, if it is larger than the ``sized`` one the case was made for."""
    n = _ring_of(r)
    return n if n > sized else None


def _wrap_judge(r: RunResult, ring: str = "ring") -> str | None:
    stored = np.flatnonzero((r.tx["flags"] & TX_STORED) != 0)
    n = _ring_of(r)
    # Every frame stored delivered once, in ring order; a frame the device dropped (MPC) is no fault of the driver.
    if not _in_order(r, stored) or r.missed != r.lost:
        return (
            f"{r.received}/{stored.size} stored frames delivered in order through a {ring} of {n}, "
            f"{r.reordered} reordered, {r.duplicated} duplicated, {r.corrupted} corrupted"
        )
    if stored.size < WRAP_WRAPS * n:
        return (
            f"only {stored.size} frames stored ({r.missed} dropped by the device): the {ring} of {n} wrapped fewer "
            f"than {WRAP_WRAPS} times"
        )
    return None


FULL_RING = 16
BURST = 48
TRICKLE = 100
TRICKLE_START_NS = 2_000_000
FULL_ITR = "100us"


def _full_params(burst: int = BURST) -> dict[str, Any]:
    due = [0] * burst + [TRICKLE_START_NS + RELAXED_NS * i for i in range(TRICKLE)]
    slots = schedule.from_offsets(due)
    # The burst raises the line only with its last frame, as if ITR held every interrupt back: a driver that
    # resets its registers (CTRL.RST clears ITR) and keeps pace with the device still sees its ring fill.
    slots["flags"][: burst - 1] |= np.uint32(SLOT_NO_RAISE)
    return {"slots": slots, "ring_size": FULL_RING, "itr": FULL_ITR}


def _burst_of(r: RunResult) -> int:
    """The burst's frames: those due at once at the start."""
    return int(np.count_nonzero(r.due_ns == 0))


def _trickle_missing(r: RunResult) -> int:
    """Frames of the trickle's second half not received: a driver that did not recover loses them all; one that
    did may still lose frames early in the trickle if the machine took its core away (the device then drops)."""
    burst = _burst_of(r)
    late = np.arange(burst + TRICKLE // 2, burst + TRICKLE)
    return int(np.count_nonzero(~np.isin(late, r.delivered_seq)))


def _full_judge(r: RunResult, ring: str = "ring", free: str = "free descriptor") -> str | None:
    if r.missed == 0:
        return f"the {ring} of {_ring_of(r)} never filled (missed 0): recovery was not exercised"
    if r.missed != r.lost:
        return f"{r.lost} lost but the device dropped only {r.missed}: the driver lost {r.lost - r.missed} itself"
    stored = (r.tx["flags"][_burst_of(r) :] & TX_STORED) != 0
    missing = _trickle_missing(r)
    if missing:
        return (
            f"{missing} of the last {TRICKLE // 2} of {TRICKLE} frames after the burst were not received "
            f"({TRICKLE - int(stored.sum())} of the {TRICKLE} found no {free}): the driver did not recover"
        )
    if r.corrupted or r.duplicated or r.reordered:
        return f"{r.corrupted} corrupted, {r.duplicated} duplicated, {r.reordered} reordered"
    return None


ICR_PACKETS = 300


def _icr_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(ICR_PACKETS, RELAXED_NS), "irq_mode": "level"}


def _icr_judge(r: RunResult) -> str | None:
    if r.received != r.sent:
        return f"{r.received}/{r.sent} delivered on the level line"
    return None


SUPPRESSION_PACKETS = 2000
#: The gaps the interrupt-suppression case draws from: from back to back for a Python handler (a few µs) to
#: a C handler's whole run, so that re-arming races a frame often, whichever the driver.
SUPPRESSION_GAPS_NS = (1_000, 2_000, 3_000, 5_000, 8_000, 13_000, 20_000, 30_000)
SUPPRESSION_SEED = 1
#: The pause before the lone last frame; halfway through it, an interrupt with nothing new (a spurious one).
SUPPRESSION_PAUSE_NS = 1_000_000


def _suppression_params() -> dict[str, Any]:
    gaps = np.random.default_rng(SUPPRESSION_SEED).choice(SUPPRESSION_GAPS_NS, SUPPRESSION_PACKETS - 2)
    due = np.concatenate([[0], np.cumsum(gaps)])
    # Whatever the driver left waiting before the pause, the spurious interrupt has it take it and re-arm once
    # more with nothing pending: the lone frame then finds the queue as the driver asked, and only a right
    # used_event (or a cleared NO_INTERRUPT) brings its interrupt (2.6.7).
    return {"slots": schedule.from_offsets(np.append(due, due[-1] + SUPPRESSION_PAUSE_NS)), "size": 1500,
            "faults": [f"spurious@{SUPPRESSION_PACKETS - 1}"]}  # fmt: skip


def _suppression_judge(r: RunResult) -> str | None:
    stored = np.flatnonzero((r.tx["flags"] & TX_STORED) != 0)
    if not _in_order(r, stored) or r.missed != r.lost:
        return (
            f"{r.received}/{stored.size} stored frames delivered in order, {r.reordered} reordered, "
            f"{r.duplicated} duplicated, {r.corrupted} corrupted"
        )
    if r.tx.size == 0 or not r.tx["flags"][-1] & TX_STORED:
        return "the lone last frame was not stored: re-arming at rest was not exercised"
    return None


def _suppression_summary(r: RunResult) -> str:
    quiet = int(r.registers.get("quiet", 0))
    return (
        f"{r.received}/{r.sent} delivered in order, the lone last one included, in {r.handler_runs} handler runs; "
        f"{quiet} used entries announced by no interrupt (suppressed as asked)"
        + (f"; {r.missed} dropped by the device" if r.missed else "")
    )


FAULT_PACKETS = 200
#: The fault cases' seed: a case that fails, fails the same way again.
FAULT_SEED = 1
#: Per kind, the fault spec and the run's other arguments.
FAULT_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{kind: (f"{kind}:0.1", {}) for kind in ("rxe", "ce", "se", "seq", "cxe", "ipe", "tcpe")},
    "split": ("split:3:0.2", {}),
    "spurious": ("spurious:0.1", {}),
    "lost-irq": ("lost-irq:0.1", {}),
    "early-irq": ("early-irq:20us:0.1", {}),
    "burst": ("burst:48:0.02", {"ring_size": 32}),
}


#: What a correct virtio-net driver does with each kind that applies to it (faults.KINDS says e1000's).
VIRTIO_EXPECTED = {
    "split": "gather the num_buffers used entries into one frame (MRG_RXBUF, VIRTIO 1.1 5.1.6.4)",
    "spurious": "take nothing: used.idx did not move",
    "lost-irq": "collect it at the next interrupt",
    "early-irq": "take nothing past used.idx; collect it at the next interrupt",
    "burst": "deliver every frame the device stored (it drops the rest: no chain available)",
}
#: The fault kinds a virtio-net driver is checked with: those that apply to it, in FAULT_CASES' order.
VIRTIO_FAULTS = tuple(k for k in FAULT_CASES if not faults.KINDS[k].not_virtio)


def _fault_case(kind: str, expected: str | None = None) -> _Case:
    spec, extra = FAULT_CASES[kind]
    expected = faults.KINDS[kind].expected if expected is None else expected

    def params() -> dict[str, Any]:
        return {"slots": schedule.periodic(FAULT_PACKETS, RELAXED_NS), "size": 1500, "faults": [spec],
                "fault_seed": FAULT_SEED, **extra}  # fmt: skip

    def judge(r: RunResult) -> str | None:
        if not r.faults.get(kind, {}).get("injected"):
            return f"no {kind} fault was injected"
        return None

    def summary(r: RunResult) -> str:
        a = r.faults[kind]
        return (f"{a['injected']} injected, {a['delivered']} delivered, {a['dropped']} dropped, none misdelivered "
                f"({expected})")  # fmt: skip

    return _Case(f"fault {kind}", params, judge, summary)


TX_FRAMES = 2000
TX_FULL_FRAMES = 600
TX_FULL_RATE = "100Mbps"
TX_FULL_WRAPS = 2
TX_BOTH_RECEIVED = 1000
TX_BOTH_SENT = 3000


def _tx_problems(r: RunResult, asked: int) -> str | None:
    """Every frame handed sent once, in order, intact; None if so."""
    t = r.transmit or {}
    if t.get("intact") != asked or t.get("taken") != asked:
        return (
            f"{t.get('intact', 0)}/{asked} frames sent intact ({t.get('handed', 0)} handed, {t.get('lost', 0)} "
            f"lost, {t.get('duplicated', 0)} duplicated, {t.get('reordered', 0)} reordered, "
            f"{t.get('corrupted', 0)} corrupted)"
        )
    return None


def _tx_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(100, RELAXED_NS), "size": 1500, "transmit": TX_FRAMES}


def _tx_summary(r: RunResult) -> str:
    t = r.transmit or {}
    return (f"{t.get('intact')}/{t.get('handed')} sent once, in order, intact through a ring of "
            f"{r.register_window.get('tx_ring_count')}, {t.get('throughput_gbps', 0.0):.1f} Gbps")  # fmt: skip


def _tx_full_params(frames: int = TX_FULL_FRAMES) -> dict[str, Any]:
    return {"slots": schedule.periodic(20, RELAXED_NS), "size": 1000, "transmit": frames, "tx_rate": TX_FULL_RATE}


def _tx_ring_of(r: RunResult) -> int:
    return int(r.register_window.get("tx_ring_count", 0))


def _tx_full_judge(r: RunResult) -> str | None:
    t = r.transmit or {}
    asked = int(t.get("asked", 0))
    if (why := _tx_problems(r, asked)) is not None:
        return why
    if not t.get("refused"):
        return f"the transmit ring of {_tx_ring_of(r)} never filled (no transmit refused): fullness not exercised"
    if asked < TX_FULL_WRAPS * _tx_ring_of(r):
        return f"the transmit ring of {_tx_ring_of(r)} wrapped fewer than {TX_FULL_WRAPS} times"
    return None


def _tx_full_resize(r: RunResult) -> dict[str, Any] | None:
    """A transmit ring of the driver's own too large for the case: as many frames as wrap it, and more."""
    n = _tx_ring_of(r)
    return _tx_full_params(TX_FULL_WRAPS * n + TX_FULL_FRAMES // 2) if TX_FULL_WRAPS * n > TX_FULL_FRAMES else None


def _tx_both_params() -> dict[str, Any]:
    return {"slots": schedule.periodic(TX_BOTH_RECEIVED, RELAXED_NS), "size": 1500, "transmit": TX_BOTH_SENT}


def _tx_both_judge(r: RunResult) -> str | None:
    return _both(r, TX_BOTH_SENT)


TX_CASES: tuple[_Case, ...] = (
    _Case("transmit", _tx_params, lambda r: _tx_problems(r, TX_FRAMES), _tx_summary, transmits=True),
    _Case(
        "transmit ring full",
        _tx_full_params,
        _tx_full_judge,
        lambda r: (
            f"{(r.transmit or {}).get('refused')} transmits refused while the ring of {_tx_ring_of(r)} was full at "
            f"{TX_FULL_RATE}; all {(r.transmit or {}).get('intact')} sent once, in order, intact"
        ),
        resize=_tx_full_resize,
        transmits=True,
    ),
    _Case(
        "transmit and receive",
        _tx_both_params,
        _tx_both_judge,
        lambda r: f"{r.received}/{r.sent} received and {(r.transmit or {}).get('intact')}/{TX_BOTH_SENT} sent intact",
        transmits=True,
    ),
)


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


def _high_rate_case(line: str, dropped: str = "MPC") -> _Case:
    return _Case(
        f"high rate ({line})",
        _high_rate_params,
        _high_rate_judge,
        lambda r: (
            f"{r.received}/{r.sent} at {HIGH_RATE_NS // 1000} µs, {r.missed} dropped by the device ({dropped}); "
            f"idle wake-up p99 {float(np.percentile(idle_wake_ns(r), 99)) / 1000:.1f} µs"
        ),
        line=line,
    )


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
        lambda r: (
            f"{r.received}/{r.sent} delivered in order, ring of {_ring_of(r)} wrapped {r.stored // _ring_of(r)} "
            "times" + (f" ({r.missed} dropped by the device)" if r.missed else "")
        ),
        resize=lambda r: None if (n := _own_ring(r, WRAP_RING)) is None else _wrap_params(n),
    ),
    _Case(
        "ring-full recovery",
        _full_params,
        _full_judge,
        lambda r: (
            f"burst of {_burst_of(r)} into a ring of {_ring_of(r)}: {r.missed} dropped and counted (MPC); "
            f"all {TRICKLE} after it delivered"
        ),
        resize=lambda r: None if (n := _own_ring(r, FULL_RING)) is None else _full_params(3 * n),
    ),
    _Case(
        "ICR, level line",
        _icr_params,
        _icr_judge,
        lambda r: (
            f"{r.icr_reads} ICR reads in {r.handler_runs} handler runs, the line re-raised {r.reasserted} times "
            f"with nothing new; {r.received}/{r.sent} delivered"
        ),
    ),
    *(_fault_case(kind) for kind in FAULT_CASES),
    *(_high_rate_case(line) for line in config.IRQ_LINES),
    *TX_CASES,
)

#: The cases' names, in the order they run.
CASE_NAMES = tuple(c.name for c in CASES)

VIRTIO_CASES: tuple[_Case, ...] = (
    CASES[0],
    _Case(
        "wrap-around",
        _wrap_params,
        lambda r: _wrap_judge(r, "queue"),
        lambda r: (
            f"{r.received}/{r.sent} delivered in order, queue of {WRAP_RING} wrapped {r.stored // WRAP_RING} times"
            + (f" ({r.missed} dropped by the device)" if r.missed else "")
        ),
    ),
    _Case(
        "ring-full recovery",
        lambda: {k: v for k, v in _full_params().items() if k != "itr"},  # no ITR: the burst fills it alone
        lambda r: _full_judge(r, "queue", "available chain"),
        lambda r: (
            f"burst of {BURST} into a queue of {FULL_RING}: {r.missed} dropped and counted (no chain available); "
            f"all {TRICKLE} after it delivered"
        ),
    ),
    _Case("interrupt suppression", _suppression_params, _suppression_judge, _suppression_summary),
    *(_fault_case(kind, VIRTIO_EXPECTED[kind]) for kind in VIRTIO_FAULTS),
    *(_high_rate_case(line, "no chain available") for line in config.IRQ_LINES),
)


def _received_in_order(r: RunResult) -> str | None:
    """Every frame the device stored delivered once, in order, intact; a drop the device counted (MPC) is no
    fault of the driver's -- a ring of 16 outlasts few stalls of a shared machine."""
    stored = np.flatnonzero((r.tx["flags"] & TX_STORED) != 0)
    if not _in_order(r, stored) or r.missed != r.lost:
        return (
            f"{r.received}/{stored.size} stored frames delivered in order, {r.reordered} reordered, "
            f"{r.duplicated} duplicated, {r.corrupted} corrupted"
        )
    return None


def _both(r: RunResult, sent: int) -> str | None:
    """Every frame stored delivered, and every frame transmitted sent, once, in order, intact."""
    found = [f"receive: {rx}"] if (rx := _received_in_order(r)) is not None else []
    if (tx := _tx_problems(r, sent)) is not None:
        found.append(f"transmit: {tx}")
    return "; ".join(found) or None


#: The transmitter's pace in xv6's ring-full case: its 60-byte frames take 67 µs each, longer than any driver
#: takes to queue one, so its transmit ring fills.
XV6_TX_RATE = "10Mbps"


def _xv6_full_params(burst: int = BURST, transmit: int = TRICKLE) -> dict[str, Any]:
    return {**_full_params(burst), "transmit": transmit, "tx_rate": XV6_TX_RATE}


def _xv6_full_resize(r: RunResult) -> dict[str, Any] | None:
    """Rings of the driver's own larger than xv6's 16: a burst of three times its receive ring, and three times
    its transmit ring to send."""
    rx, tx = _own_ring(r, FULL_RING), _tx_ring_of(r)
    if rx is None and 3 * tx <= TRICKLE:
        return None
    return _xv6_full_params(3 * rx if rx is not None else BURST, max(TRICKLE, 3 * tx))


def _xv6_full_judge(r: RunResult) -> str | None:
    found = [why] if (why := _full_judge(r)) is not None else []
    if (tx := _tx_problems(r, int((r.transmit or {}).get("asked", 0)))) is not None:
        found.append(f"transmit: {tx}")
    elif not (r.transmit or {}).get("refused"):
        found.append(f"the transmit ring of {_tx_ring_of(r)} never filled: fullness not exercised")
    return "; ".join(found) or None


#: xv6's pace: a ring of 16 lasts 1.6 ms at it, longer than this VM takes a core away most of the time.
XV6_PACE_NS = 100_000

XV6_CASES: tuple[_Case, ...] = (
    _Case(
        "one frame each way",
        lambda: {"slots": schedule.periodic(1, RELAXED_NS), "transmit": 1},
        lambda r: _both(r, 1),
        lambda r: "1 received, 1 sent intact",
        transmits=True,
    ),
    _Case(
        "many in a row",
        lambda: {"slots": schedule.periodic(200, XV6_PACE_NS), "transmit": 200},
        lambda r: _both(r, 200),
        lambda r: f"{r.received}/200 received and {(r.transmit or {}).get('intact')}/200 sent, in order, intact",
        transmits=True,
    ),
    _Case(
        "more frames than descriptors",
        _xv6_full_params,
        _xv6_full_judge,
        lambda r: (
            f"burst of {_burst_of(r)} into a ring of {_ring_of(r)}: {r.missed} dropped and counted, the "
            f"{TRICKLE} after it received; {(r.transmit or {}).get('intact')} sent through a transmit ring of "
            f"{_tx_ring_of(r)} that filled ({(r.transmit or {}).get('refused')} refused, offered again)"
        ),
        resize=_xv6_full_resize,
        transmits=True,
    ),
    _Case(
        "transmit while receiving",
        lambda: {"slots": schedule.periodic(500, RELAXED_NS), "transmit": 500},
        lambda r: _both(r, 500),
        lambda r: (
            f"{r.received}/500 received {RELAXED_NS // 1000} µs apart while {(r.transmit or {}).get('intact')}/500 "
            "were sent intact"
        ),
        transmits=True,
    ),
)

#: virtio-net's cases' names, in the order they run.
VIRTIO_CASE_NAMES = tuple(c.name for c in VIRTIO_CASES)
#: Per device model, its cases.
DEVICE_CASES: dict[str, tuple[_Case, ...]] = {"e1000": CASES, "virtio-net": VIRTIO_CASES}


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


def _problems(case: _Case, r: RunResult) -> str | None:
    """Everything wrong with a case's run: its own check, then every reason of the run's verdict."""
    found = [why] if (why := case.judge(r)) is not None else []
    if r.verdict is not None:
        found += [str(f) for f in r.verdict.reasons]
    return "; ".join(found) if found else None


def disturbed_ns(r: RunResult) -> int:
    """The longest the machine kept either node of ``r`` from its core: the kernel's run delay (its wait while
    runnable; 0 where the kernel keeps no count), or the longest gap between two clock reads of the node's own
    spinning, whichever is longer. A hypervisor that deschedules the vCPU leaves no run delay -- the guest's
    scheduler never saw it wait (pseudonic.machine: steal) -- only that gap."""
    return max(
        max(int(stalls.get("run_delay_ns", 0)), int(stalls.get("max_ns", 0)))
        for stalls in (r.stalls.get(node, {}) for node in ("device", "driver"))
    )


def _run_case(
    case: _Case, session: Session, irq: str, device: str = config.DEFAULT_DEVICE, setting: dict[str, Any] | None = None
) -> CaseResult:
    start = time.perf_counter()
    first_failure: str | None = None
    attempt = reruns = 0
    params = {**(setting or {}), **case.params()}
    resized = False
    while attempt < ATTEMPTS:
        try:
            r = session.run(irq=case.line or irq, sanitize=True, device=device, **params)
        except ConfigError:
            raise  # a usage error (the driver cannot be loaded, a bad line): the whole check stops
        except Exception as exc:  # a failure of the run itself: this case fails, the suite goes on
            return CaseResult(case.name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        if r.error is not None:
            return CaseResult(case.name, False, _describe_error(r.error), time.perf_counter() - start)
        if not resized and case.resize is not None and (bigger := case.resize(r)) is not None:
            params, resized = {**(setting or {}), **bigger}, True  # the driver's own ring: sized to it (not judged)
            continue
        why = _problems(case, r)
        if why is None:
            detail = case.summary(r)
            if attempt:
                detail += f" (on the second run; the first: {first_failure})"
            if reruns:
                detail += f" ({reruns} run(s) the machine disturbed not judged)"
            return CaseResult(case.name, True, detail, time.perf_counter() - start)
        waited = disturbed_ns(r)
        if waited > DISTURBED_NS and reruns < DISTURBED_RERUNS:
            reruns += 1  # the machine, not the driver, may have done it: run again, this one not judged
            continue
        if waited > DISTURBED_NS:
            why += f" (the machine kept a node from its core {waited / 1e6:.1f} ms in this run too)"
        if first_failure is None:
            first_failure = why
        attempt += 1
    detail = f"{why} (in both runs)" if why == first_failure else f"{why} (the first run: {first_failure})"
    return CaseResult(case.name, False, detail, time.perf_counter() - start)


def check_driver(
    driver: str | type,
    *,
    irq: str = config.DEFAULT_IRQ,
    progress: Callable[[CaseResult], None] | None = None,
    wait_for_cores: bool = False,
    device: str = config.DEFAULT_DEVICE,
    profile: str | None = None,
) -> list[CaseResult]:
    """Run every conformance case of ``device`` (``e1000``: :data:`CASE_NAMES`; ``virtio-net``:
    :data:`VIRTIO_CASE_NAMES`) against ``driver`` on interrupt line ``irq``; one result per case.

    ``driver`` is what :func:`pseudonic.run` accepts (``python``, ``c``, ``module:Class``,
    ``file.py[:Class]``, ``path/to/lib.so``, or a class). ``progress`` is called with each
    case's result as soon as it is known. A driver that cannot be loaded, or a line that does
    not exist, raises :class:`~pseudonic.errors.DriverLoadError` / ``ConfigError`` before any case runs.
    ``profile`` (``xv6-lab``) runs that profile's cases on its setting instead.
    """
    if irq not in config.IRQ_LINES:
        raise ConfigError(f"interrupt line {irq!r} is not available: give one of {', '.join(config.IRQ_LINES)}")
    if device not in DEVICE_CASES:
        raise ConfigError(f"device {device!r} is unknown: give one of {', '.join(DEVICE_CASES)}")
    cases, setting = DEVICE_CASES[device], {}
    if profile is not None:
        chosen = profiles.profile(profile)
        if device != "e1000":
            raise ConfigError(f"profile {profile} is e1000's: run it without --device {device}")
        cases = XV6_CASES
        # The profile's platform (ring, buffers, line, frame size); each case sets its own traffic.
        setting = {k: v for k, v in chosen.run.items() if k not in ("count", "interval", "transmit")}
    results: list[CaseResult] = []
    with Session(driver, wait_for_cores=wait_for_cores) as session:
        # Loaded once, in the session's driver node, for every case (a case the driver fails loads it again):
        # a driver that cannot load is a usage error before any case runs.
        session.load()
        for case in cases:
            if case.transmits and not session.transmits:
                result = CaseResult(case.name, False, "skipped: the driver has no transmit entry point "
                                    "(transmit(nic, frame) / pnic_driver_transmit)", 0.0, skipped=True)  # fmt: skip
            elif case.transmits and irq == "signal":
                result = CaseResult(case.name, False, "skipped: transmit runs on the spin and eventfd lines", 0.0,
                                    skipped=True)  # fmt: skip
            else:
                result = _run_case(case, session, irq, device, setting)
            results.append(result)
            if progress is not None:
                progress(result)
    return results


#: xv6-lab's cases' names, in the order they run.
XV6_CASE_NAMES = tuple(c.name for c in XV6_CASES)

__all__ = ["CASE_NAMES", "VIRTIO_CASE_NAMES", "XV6_CASE_NAMES", "CaseResult", "check_driver"]
