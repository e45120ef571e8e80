"""``pseudonic hunt``: randomised plans that shake races out of a receive path; keep what fails.

A receive path's races show only under timings a steady pace never makes:
a burst that fills the ring, intervals jittered down to back to back, a
small ring, moderation (ITR) or NAPI polling releasing a backlog at once,
interrupts that carry nothing, frames of mixed sizes. :func:`hunt` runs
random plans of that kind, one :func:`pseudonic.run` each, until a verdict
fails or the budget (runs or time) is spent. The first failing run is
saved as a record file (:mod:`pseudonic.recording`), shrunk while it still
fails -- a shorter prefix, found by binary search, then simpler options and
fewer entries, chunks deleted as hypothesis and delta debugging delete them
-- and the shrunk run, saved again, is replayed K times with each timing
(the plan's deadlines, and the times the failing run actually sent at) to
say how often the failure comes back. Only a failing verdict stops the hunt:
device drops (MPC) alone do not fail a run (README, "Verdict and exit
status"), so a driver merely too slow for a trial's pace is no finding.

Everything comes from one seed: trial ``i`` of seed ``s`` is drawn from
``numpy.random.default_rng([s, i, ...])`` alone (:func:`make_trial`), so
any trial can be made again by itself, and ``hunt --seed s`` hunts the same
plans in the same order. Whether a trial fails still depends on timing: the
seed fixes what is asked of the driver, not how the machine schedules it.

Races are flaky, and a shrinker that keeps a candidate because it failed
once in a few tries drifts, step by step, to candidates that failed by luck
(measured with the racy example: shrunk records that failed again in 0 to 2
of 10 replays, where the first failure came back in 7 to 10). So a candidate
still fails if ``need`` of ``tries`` runs fail (by default all 3; ``need=1``
is the "any of r" rule), the shrinker stops at ``budget`` runs, and the
steps it kept are confirmed at the end in fresh runs, undoing those whose
candidate does not fail in all but one of them. The shrinker is pure: it is
given the function that runs a candidate (:func:`shrink`), so it is tested
without processes.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from . import config, faults
from .errors import ConfigError
from .frames import FrameSet, generated_frame
from .layout import SLOT, SLOT_ERRORS_MASK, SLOT_NO_RAISE, SLOT_SPURIOUS
from .paths import check_writable
from .plan import Plan
from .result import RunResult
from .units import format_ns

# -- the documented ranges of a trial -------------------------------------------------------------
# Small rings fill fastest: they are drawn more often (weights below).
RING_SIZES = (8, 16, 32, 64, 128, 256)
_RING_WEIGHTS = (0.25, 0.25, 0.2, 0.15, 0.1, 0.05)
BUFFER_SIZES = (2048, 4096, 16384)
#: Frame sizes a trial mixes from (those that fit its buffer), plus one drawn at random in range.
FRAME_SIZES = (60, 64, 128, 256, 512, 1024, 1500, 2048, 4096, 9000, 16384)
#: At most this many distinct frame sizes in one trial.
MAX_SIZES = 3
#: ITR, when on: 256 ns .. 64 µs in the e1000's 256 ns steps. Off in 60 % of trials.
ITR_MAX_NS = 65_536
ITR_SHARE = 0.4
#: NAPI budgets a trial may poll with (Linux's weight is 64). Off in 60 % of trials.
NAPI_BUDGETS = (1, 4, 16, 64)
NAPI_SHARE = 0.4
#: Lines drawn when the hunt is not told one (--irq): the spin line half the time.
IRQ_LINES = ("spin", "eventfd", "signal")
_IRQ_WEIGHTS = (0.5, 0.25, 0.25)
#: Phases of a trial's timeline: each a burst, a steady pace or a jittered one, after an optional pause.
PHASE_KINDS = ("burst", "paced", "jitter")
MAX_PHASES = 6
#: Packets of a paced or jittered phase; a burst is 1/2 .. 3 rings' worth.
PHASE_PACKETS = (8, 400)
#: Intervals of a paced phase, and mean intervals of a jittered one (log-uniform): from faster than
#: any Python handler to a relaxed pace. A jittered interval is uniform in 0..2x its mean, and
#: back to back (0) in a quarter of cases.
INTERVAL_NS = (200, 50_000)
#: A pause before a phase (log-uniform), in half of the phases after the first: lets the ring drain.
PAUSE_NS = (5_000, 500_000)
#: Packets of a trial at most (phases past it are cut): runs stay short.
MAX_PACKETS = 2000
#: Spurious interrupts (entries that raise the line with no packet): in 30 % of trials, up to 5 % of the packets.
SPURIOUS_SHARE = 0.3
MAX_SPURIOUS_FRACTION = 0.05
#: Faults (pseudonic.faults): in 40 % of trials, one or two kinds, each on 0.5 .. 5 % of the packets.
FAULT_SHARE = 0.4
MAX_FAULT_KINDS = 2
FAULT_RATE = (0.005, 0.05)
#: early-irq delays drawn (log-uniform), and split's most descriptors.
EARLY_NS = (500, 50_000)
MAX_SPLIT = 8

#: Defaults of the hunt: runs, replays, and the shrinker's tries per candidate and runs in all.
DEFAULT_RUNS = 200
DEFAULT_REPLAYS = 10
#: The timings the record is replayed with (pseudonic.recording.TIMINGS), each ``replays`` times.
REPLAY_TIMINGS = ("plan", "measured")
SHRINK_TRIES = 3
SHRINK_NEED = 3
SHRINK_BUDGET = 100
#: Fresh runs that confirm a shrunk candidate: it must fail in all but one of them (4 of 5). All of
#: them undid more steps for no better reproduction (measured: 7 of 10 hunts' records failed again
#: in at least half of 10 replays with 5 of 5, 8 of 10 with 4 of 5, on this shared VM).
CONFIRM_RUNS = 5

# The streams of one trial, from (seed, index, stream): its parameters, its timeline's details, its faults
# (a stream of their own, so that hunts of a seed drawn before faults existed draw the same trials).
_PARAMS, _TIMELINE, _FAULTS = 0, 1, 2


@dataclass(frozen=True)
class Phase:
    """One stretch of a trial's timeline."""

    kind: str  # burst | paced | jitter
    packets: int
    #: burst: 0; paced: the interval; jitter: the mean interval
    interval_ns: int
    #: idle time before the phase's first packet
    pause_ns: int = 0

    def describe(self) -> str:
        pause = f"pause {format_ns(self.pause_ns)}, " if self.pause_ns else ""
        if self.kind == "burst":
            return f"{pause}burst of {self.packets}"
        how = "every" if self.kind == "paced" else "jittered around"
        return f"{pause}{self.packets} {how} {format_ns(self.interval_ns)}"


@dataclass(frozen=True)
class Trial:
    """One trial's parameters: what :func:`make_trial` drew for (seed, index). Its plan is :meth:`plan`."""

    seed: int
    index: int
    ring_size: int
    buffer_size: int
    irq: str
    itr_ns: int
    napi_budget: int
    sizes: tuple[int, ...]
    phases: tuple[Phase, ...]
    spurious: int
    #: fault specs (pseudonic.faults), drawn with the trial
    faults: tuple[str, ...] = ()
    #: the device model (config.DEVICES)
    device: str = config.DEFAULT_DEVICE

    @property
    def packets(self) -> int:
        return sum(p.packets for p in self.phases)

    def options(self, driver: str | type) -> dict[str, Any]:
        """The keyword arguments of :func:`pseudonic.run` for this trial (besides its plan)."""
        return {
            "driver": driver,
            "ring_size": self.ring_size,
            "buffer_size": self.buffer_size,
            "irq": self.irq,
            "itr": self.itr_ns,
            "napi_budget": self.napi_budget,
            # As check-driver: the 8254x's level line (a handler leaving ICR set storms) and the ring sanitizer.
            # virtio-net interrupts with MSI-X messages: edge, its only mode.
            "irq_mode": "level" if self.device == "e1000" else "edge",
            "sanitize": True,
            "device": self.device,
        }

    def describe(self) -> str:
        """One line: the trial's platform settings and its timeline."""
        extras = [f"ITR {format_ns(self.itr_ns)}"] if self.itr_ns else []
        extras += [f"NAPI {self.napi_budget}"] if self.napi_budget else []
        extras += [f"{self.spurious} spurious"] if self.spurious else []
        extras += [f"faults {' '.join(self.faults)}"] if self.faults else []
        sizes = "/".join(str(s) for s in self.sizes)
        ring = "queue" if self.device == "virtio-net" else "ring"
        head = f"{ring} {self.ring_size}, buf {self.buffer_size}, irq {self.irq}, {sizes} B"
        if self.device != config.DEFAULT_DEVICE:
            head = f"{self.device}, {head}"
        return ", ".join([head, *extras]) + ": " + "; ".join(p.describe() for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        d["phases"] = [asdict(p) for p in self.phases]
        d["faults"] = list(self.faults)
        return d

    def plan(self) -> Plan:
        """The trial's plan: deadlines, frames and flags, from (seed, index) alone."""
        rng = np.random.default_rng([self.seed, self.index, _TIMELINE])
        gaps: list[np.ndarray[Any, Any]] = []
        for ph in self.phases:
            if ph.kind == "burst":
                g = np.zeros(ph.packets, dtype=np.int64)
            elif ph.kind == "paced":
                g = np.full(ph.packets, ph.interval_ns, dtype=np.int64)
            else:
                g = rng.integers(0, 2 * ph.interval_ns + 1, ph.packets).astype(np.int64)
                g[rng.random(ph.packets) < 0.25] = 0  # jittered all the way down to back to back
            g[0] += ph.pause_ns
            gaps.append(g)
        gap = np.concatenate(gaps)
        gap[0] = 0  # the first packet is due at t0
        due = np.cumsum(gap)
        frame = rng.integers(0, len(self.sizes), due.size).astype(np.uint32)
        flags = np.zeros(due.size, dtype=np.uint32)
        if self.spurious:
            # A spurious entry shares its neighbour's deadline: it raises the line amid the traffic.
            at = np.sort(rng.integers(0, due.size, self.spurious))
            due = np.insert(due, at, due[at])
            frame = np.insert(frame, at, 0)
            flags = np.insert(flags, at, SLOT_SPURIOUS)
        slots = np.zeros(due.size, dtype=SLOT)
        slots["due_ns"] = due.astype(np.uint64)
        slots["frame"] = frame
        slots["flags"] = flags
        origin = {"kind": "hunt", "seed": self.seed, "trial": self.index, "params": self.to_dict()}
        plan = Plan.make(slots, frames_of(self.sizes), origin)
        # Which packets carry them: from the trial's fault stream too.
        draw = int(np.random.default_rng([self.seed, self.index, _FAULTS, 1]).integers(1 << 62))
        return faults.apply(plan, self.faults, draw, self.ring_size, self.buffer_size, self.device)


@functools.lru_cache(maxsize=64)
def _template(size: int) -> bytes:
    return generated_frame(size)  # scapy builds it: once per size per process


def frames_of(sizes: tuple[int, ...]) -> FrameSet:
    """Generated, stamped frames of these sizes: any corruption of a delivery shows against its template."""
    return FrameSet.of([_template(s) for s in sizes], stamped=True)


def _log_uniform(rng: np.random.Generator, low: int, high: int) -> int:
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))))


def make_trial(
    seed: int, index: int, irq: str | None = None, max_packets: int = MAX_PACKETS, device: str = config.DEFAULT_DEVICE
) -> Trial:
    """Trial ``index`` of hunt ``seed``: drawn from (seed, index) alone; ``irq`` fixes the line, else drawn.

    ``max_packets`` cuts the timeline (phases past it are cut short or left out); the parameters are
    drawn alike whatever it is, so a smaller one gives the same platform and phases, cut shorter.
    On ``device`` virtio-net the same draws are made, and what virtio-net has none of is left out: ITR
    (its driver suppresses interrupts in the queue) and the faults that set error bits.
    """
    if seed < 0 or index < 0:
        raise ConfigError(f"seed and trial index must be 0 or more, not {seed}, {index}")
    if not 1 <= max_packets <= MAX_PACKETS:
        raise ConfigError(f"max packets {max_packets} is out of range: give 1..{MAX_PACKETS}")
    if device not in config.DEVICES:
        raise ConfigError(f"device {device!r} is unknown: give one of {', '.join(config.DEVICES)}")
    rng = np.random.default_rng([seed, index, _PARAMS])
    ring = int(rng.choice(RING_SIZES, p=_RING_WEIGHTS))
    buf = int(rng.choice(BUFFER_SIZES))
    line = irq if irq is not None else str(rng.choice(IRQ_LINES, p=_IRQ_WEIGHTS))
    itr = 256 * int(rng.integers(1, ITR_MAX_NS // 256 + 1)) if rng.random() < ITR_SHARE else 0
    napi = int(rng.choice(NAPI_BUDGETS)) if rng.random() < NAPI_SHARE else 0
    menu = [s for s in FRAME_SIZES if s <= buf] + [int(rng.integers(60, buf + 1))]
    nsizes = int(rng.integers(1, MAX_SIZES + 1))
    sizes = tuple(sorted({int(s) for s in rng.choice(menu, size=nsizes, replace=False)}))
    phases: list[Phase] = []
    total = 0
    for k in range(int(rng.integers(1, MAX_PHASES + 1))):
        kind = str(rng.choice(PHASE_KINDS))
        if kind == "burst":
            n = int(rng.integers(ring // 2, 3 * ring + 1))
            interval = 0
        else:
            n = int(rng.integers(PHASE_PACKETS[0], PHASE_PACKETS[1] + 1))
            interval = _log_uniform(rng, *INTERVAL_NS)
        pause = _log_uniform(rng, *PAUSE_NS) if k and rng.random() < 0.5 else 0
        # Every draw is made whatever the cut, so that the stream stays the same for any max_packets.
        n = min(n, max_packets - total)
        if n > 0:
            phases.append(Phase(kind, n, interval, pause))
            total += n
    spurious = 0
    if rng.random() < SPURIOUS_SHARE:
        spurious = int(rng.integers(1, max(1, int(MAX_SPURIOUS_FRACTION * total)) + 1))
    faults_drawn = draw_faults(seed, index, ring, total, device)
    if device != "e1000":
        itr = 0  # drawn all the same: the stream stays the one e1000's trials draw
    return Trial(seed, index, ring, buf, line, itr, napi, sizes, tuple(phases), spurious, faults_drawn, device)


def fault_kinds(device: str = config.DEFAULT_DEVICE) -> list[str]:
    """The fault kinds a trial on ``device`` draws from (virtio-net: those that apply to it)."""
    return [name for name, kind in faults.KINDS.items() if device == "e1000" or not kind.not_virtio]


def draw_faults(seed: int, index: int, ring: int, packets: int, device: str = config.DEFAULT_DEVICE) -> tuple[str, ...]:
    """The fault specs of trial ``index`` of hunt ``seed`` (none in most trials), from their own stream.

    A burst fault is drawn at one to three packets, not at a rate: each adds up to two rings of entries."""
    rng = np.random.default_rng([seed, index, _FAULTS])
    if rng.random() >= FAULT_SHARE:
        return ()
    kinds = rng.choice(fault_kinds(device), size=int(rng.integers(1, MAX_FAULT_KINDS + 1)), replace=False)
    specs: list[str] = []
    for kind in sorted(str(k) for k in kinds):
        rate = round(float(rng.uniform(*FAULT_RATE)), 4)
        if kind == "split":
            kind = f"split:{int(rng.integers(2, min(MAX_SPLIT, ring - 1) + 1))}"
        elif kind == "early-irq":
            kind = f"early-irq:{_log_uniform(rng, *EARLY_NS)}ns"
        elif kind == "burst":
            at = sorted({int(i) for i in rng.integers(0, packets, int(rng.integers(1, 4)))})
            specs.append(f"burst:{int(rng.integers(max(2, ring // 2), 2 * ring + 1))}@{','.join(map(str, at))}")
            continue
        specs.append(f"{kind}:{rate}")
    return tuple(specs)


# -- the shrinker ---------------------------------------------------------------------------------

#: What a failing run of a candidate gives the shrinker (a RunResult in a hunt; anything in a test).
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class ShrinkProgress:
    runs: int
    budget: int
    entries: int
    trying: str


@dataclass
class Shrunk(Generic[Outcome]):
    """The smallest failing candidate the shrinker found, and how it got there."""

    plan: Plan
    options: dict[str, Any]
    #: a failing outcome of ``plan`` with ``options`` (the last one seen)
    outcome: Outcome
    entries_before: int
    #: each accepted step, in order, e.g. "prefix 412 → 97 entries"
    steps: list[str] = field(default_factory=list)
    #: runs spent: at most the budget, and the confirming runs (see :func:`shrink`)
    runs: int = 0
    #: the budget ran out before every step had been tried
    exhausted: bool = False
    #: steps undone because the candidate they made did not fail in all but one of the confirming runs
    dropped: list[str] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return len(self.plan)


def prefix(plan: Plan, n: int) -> Plan:
    """The plan's first ``n`` entries."""
    return Plan.make(plan.slots[:n].copy(), plan.frames, plan.origin)


def delete(plan: Plan, start: int, stop: int) -> Plan:
    """The plan without entries ``start..stop-1``; the rest keep the gaps before them, so the timeline closes up.

    Keeping each remaining entry's gap to the one before it (rather than its deadline) keeps what a race
    depends on -- how close together packets come -- and drops the idle time the deleted ones took.
    """
    due = plan.slots["due_ns"].astype(np.int64)
    gaps = np.diff(due, prepend=due[:1])
    keep = np.ones(len(plan), dtype=bool)
    keep[start:stop] = False
    slots = plan.slots[keep].copy()
    g = gaps[keep]
    if g.size:
        g[0] = 0
        slots["due_ns"] = (int(due[0]) + np.cumsum(g)).astype(np.uint64)
    return Plan.make(slots, plan.frames, plan.origin)


def without_spurious(plan: Plan) -> tuple[str, Plan] | None:
    """The plan without its spurious-interrupt entries (None if it has none, or nothing else)."""
    spurious = (plan.slots["flags"] & SLOT_SPURIOUS) != 0
    if not spurious.any() or spurious.all():
        return None
    slots = plan.slots[~spurious].copy()
    return f"no spurious interrupts: {len(plan)} → {len(slots)} entries", Plan.make(slots, plan.frames, plan.origin)


def one_size(plan: Plan) -> tuple[str, Plan] | None:
    """The plan with every entry carrying its most common frame (None if it uses one already)."""
    used = Counter(int(f) for f in plan.slots["frame"])
    if len(used) < 2:
        return None
    common = used.most_common(1)[0][0]
    slots = plan.slots.copy()
    slots["frame"] = common
    return f"one frame size ({plan.frames.sizes[common]} B)", Plan.make(slots, plan.frames, plan.origin)


def without_faults(plan: Plan) -> tuple[str, Plan] | None:
    """The plan with its packets' faults taken off (None if it has none): no error bits, one descriptor a
    frame that fits one, no lost or early interrupt. Entries a fault added stay, as plain entries."""
    slots = plan.slots.copy()
    fits = plan.sizes <= int(plan.origin.get("params", {}).get("buffer_size", 1 << 30))
    faulty = (slots["faults"] != 0) | ((slots["flags"] & (SLOT_ERRORS_MASK | SLOT_NO_RAISE)) != 0)
    faulty |= (slots["early_ns"] != 0) | ((slots["parts"] > 1) & fits)
    if not faulty.any():
        return None
    slots["flags"] &= ~np.uint32(SLOT_ERRORS_MASK | SLOT_NO_RAISE)
    slots["early_ns"] = 0
    slots["faults"] = 0
    slots["parts"][fits] = 0
    return f"no faults on {int(faulty.sum())} entries", Plan.make(slots, plan.frames, plan.origin)


#: Whole-plan simplifications, tried in turn on the plan as it is by then.
_SIMPLER_PLANS = (without_faults, without_spurious, one_size)


#: Options the shrinker turns off, one at a time: a failure without them is the simpler one to read.
_SIMPLER_OPTIONS = (("napi_budget", 0, "NAPI off"), ("itr", 0, "ITR off"))


class _Runs(Generic[Outcome]):
    """The shrinker's runs: ``tries`` per candidate, ``budget`` in all."""

    def __init__(
        self,
        attempt: Callable[[Plan, Mapping[str, Any]], Outcome | None],
        tries: int,
        need: int,
        budget: int,
        progress: Callable[[ShrinkProgress], None] | None,
    ) -> None:
        self.attempt, self.tries, self.need, self.budget, self.progress = attempt, tries, need, budget, progress
        self.runs = 0

    @property
    def left(self) -> bool:
        return self.runs < self.budget

    def fails(self, plan: Plan, options: Mapping[str, Any], trying: str) -> Outcome | None:
        """A failing outcome if the candidate failed ``need`` of ``tries`` runs, else None (or out of budget)."""
        failed, last = 0, None
        for k in range(self.tries):
            # Stop as soon as the answer is known: enough failures, or too few tries left to reach them.
            if failed >= self.need or failed + (self.tries - k) < self.need or not self.left:
                break
            self.runs += 1
            if self.progress is not None:
                self.progress(ShrinkProgress(self.runs, self.budget, len(plan), trying))
            out = self.attempt(plan, options)
            if out is not None:
                failed, last = failed + 1, out
        return last if failed >= self.need else None


def shortest_prefix(
    plan: Plan,
    options: Mapping[str, Any],
    fails: Callable[[Plan, Mapping[str, Any], str], Outcome | None],
) -> tuple[int, Outcome | None]:
    """Binary search for the shortest failing prefix of a plan that fails: (its length, a failing outcome).

    The empty plan is taken to pass and the whole plan to fail; a prefix that passed (maybe by luck, for a
    flaky failure) only leaves the answer longer than it could be, never one that does not fail.
    Returns (len(plan), None) if no shorter prefix failed.
    """
    lo, hi = 0, len(plan)
    best: Outcome | None = None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        out = fails(prefix(plan, mid), options, f"prefix of {mid}")
        if out is not None:
            hi, best = mid, out
        else:
            lo = mid
    return hi, best


def shrink(
    plan: Plan,
    options: Mapping[str, Any],
    outcome: Outcome,
    attempt: Callable[[Plan, Mapping[str, Any]], Outcome | None],
    *,
    tries: int = SHRINK_TRIES,
    need: int = SHRINK_NEED,
    budget: int = SHRINK_BUDGET,
    confirm: int = CONFIRM_RUNS,
    progress: Callable[[ShrinkProgress], None] | None = None,
) -> Shrunk[Outcome]:
    """Shrink a failing (plan, options) while it still fails: prefix, then options, then entries; confirm.

    ``attempt`` runs a candidate once and returns its failing outcome, or None if it passed; a candidate
    still fails if ``need`` of ``tries`` attempts fail. ``outcome`` is the failure already seen. Steps, in
    order, at most ``budget`` attempts in all: the shortest failing prefix (binary search); each option
    off (NAPI, ITR) and each whole-plan simplification (no spurious interrupts, one frame size); then
    chunks of entries deleted, halves first, down to single entries (delta debugging's order).

    Then, with ``confirm`` > 0, the result is confirmed: each step kept is one more chance for a
    candidate that fails rarely to have failed by luck (or in a spell when the machine was busy), so
    a smaller candidate can reproduce far less often than the first failure did. The accepted
    candidates form a chain, original first; a candidate is confirmed if it fails in all but one of
    ``confirm`` fresh runs, and a binary search over the chain keeps the smallest confirmed one
    (the original if none is). That costs at most ``confirm`` x (log2(steps) + 1) runs more.
    """
    if not 1 <= need <= tries or budget < 0 or confirm < 0:
        raise ConfigError(
            f"shrink: give 1 <= need <= tries, a budget >= 0 and confirm >= 0, not {need}, {tries}, {budget}, {confirm}"
        )
    runs = _Runs(attempt, tries, need, budget, progress)
    best = Shrunk(plan, dict(options), outcome, len(plan))
    chain: list[tuple[str, Plan, dict[str, Any], Outcome]] = []

    def keep(step: str, candidate_plan: Plan, candidate_options: dict[str, Any], out: Outcome) -> None:
        chain.append((step, candidate_plan, candidate_options, out))
        best.steps.append(step)
        best.plan, best.options, best.outcome = candidate_plan, candidate_options, out

    # 1. The shortest failing prefix.
    if runs.left and len(plan) > 1:
        n, out = shortest_prefix(best.plan, best.options, runs.fails)
        if out is not None:
            keep(f"prefix {len(best.plan)} → {n} entries", prefix(best.plan, n), best.options, out)

    # 2. Options off, and whole-plan simplifications.
    for key, simple, what in _SIMPLER_OPTIONS:
        if runs.left and key in best.options and best.options[key] != simple:
            candidate = {**best.options, key: simple}
            out = runs.fails(best.plan, candidate, what)
            if out is not None:
                keep(what, best.plan, candidate, out)
    for simpler in _SIMPLER_PLANS:
        simplified = simpler(best.plan)
        if simplified is None or not runs.left:
            continue
        what, candidate_plan = simplified
        out = runs.fails(candidate_plan, best.options, what)
        if out is not None:
            keep(what, candidate_plan, best.options, out)

    # 3. Fewer entries: delete chunks, halves first, down to one entry at a time.
    chunk = len(best.plan) // 2
    while chunk >= 1 and runs.left:
        i = 0
        while i < len(best.plan) and len(best.plan) > 1 and runs.left:
            stop = min(i + chunk, len(best.plan))
            if stop - i >= len(best.plan):
                break  # never the whole plan
            candidate_plan = delete(best.plan, i, stop)
            out = runs.fails(candidate_plan, best.options, f"delete {stop - i} at {i}")
            if out is not None:
                step = f"delete {stop - i} at {i}: {len(best.plan)} → {len(candidate_plan)} entries"
                keep(step, candidate_plan, best.options, out)
            else:
                i += chunk
        chunk //= 2
    best.exhausted = not runs.left

    # 4. Confirm: the smallest candidate of the chain that fails in all but one of ``confirm`` fresh runs.
    if confirm and chain:
        check = _Runs(attempt, confirm, max(1, confirm - 1), confirm * (len(chain).bit_length() + 1), progress)
        check.runs = runs.runs
        check.budget += runs.runs

        def confirmed(k: int) -> Outcome | None:
            step, p, o, _ = chain[k]
            return check.fails(p, o, f"confirm: {step}")

        lo, lo_out = -1, None  # -1: the original, taken as it was found
        hi = len(chain)
        top = confirmed(len(chain) - 1)
        if top is not None:
            lo, lo_out = len(chain) - 1, top
        else:
            hi = len(chain) - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                out = confirmed(mid)
                if out is not None:
                    lo, lo_out = mid, out
                else:
                    hi = mid
        if lo < len(chain) - 1:
            best.dropped = best.steps[lo + 1 :]
            best.steps = best.steps[: lo + 1]
            if lo < 0:
                best.plan, best.options, best.outcome = plan, dict(options), outcome
            else:
                _, best.plan, best.options, best.outcome = chain[lo]
        if lo_out is not None:
            best.outcome = lo_out
        runs.runs = check.runs
    best.runs = runs.runs
    return best


# -- the hunt -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HuntProgress:
    """How the hunt is going, for a live line: which stage, which trial, what it is doing."""

    stage: str  # "trial" | "shrink" | "replay"
    #: trials run so far, this one included
    trial: int
    #: the run budget, or None when the hunt is bounded by time
    runs: int | None
    #: the time budget, or None when the hunt is bounded by runs
    time_s: float | None
    elapsed_s: float
    #: the current trial's parameters, the shrink step, or the replays so far
    detail: str
    #: the failing trial, once found
    failing: int | None = None
    #: the record saved so far (the first failure as found, then the shrunk one), if any
    saved: Path | None = None


@dataclass
class HuntResult:
    """Everything a hunt did and found."""

    seed: int
    driver: str
    irq: str | None
    #: the budget asked: runs, or seconds
    runs: int | None
    time_s: float | None
    trials: int = 0
    elapsed_s: float = 0.0
    #: the first trial whose verdict failed, its plan and its run
    failing: Trial | None = None
    failing_plan: Plan | None = None
    first_failure: RunResult | None = None
    #: the shrinker's result (its outcome: the shrunk run's failing result)
    shrunk: Shrunk[RunResult] | None = None
    #: the shrunk failing run, and the first failing run as it was found
    record: Path | None = None
    original_record: Path | None = None
    #: replays of the record per timing (``plan``, ``measured``: see pseudonic.recording), and per timing
    #: how many of them failed the same way again
    replays: int = 0
    reproduced: dict[str, int] = field(default_factory=dict)
    #: per timing, per replay: the finding codes of its verdict (empty: it passed)
    replay_codes: dict[str, list[list[str]]] = field(default_factory=dict)
    #: the device model every trial ran
    device: str = config.DEFAULT_DEVICE

    @property
    def found(self) -> bool:
        return self.failing is not None

    def reproduction_rate(self, timing: str = "plan") -> float | None:
        """The share of the replays with ``timing`` that failed the same way again (None: no replays)."""
        return self.reproduced.get(timing, 0) / self.replays if self.replays else None

    def replay_commands(self) -> list[str]:
        if self.record is None:
            return []
        return [f"pseudonic replay {self.record}", f"pseudonic replay {self.record} --timing measured"]

    def to_dict(self) -> dict[str, Any]:
        s, first = self.shrunk, self.first_failure
        shrunk = None
        if s is not None:
            shrunk = {
                "entries_before": s.entries_before,
                "entries": s.entries,
                "steps": s.steps,
                "runs": s.runs,
                "exhausted": s.exhausted,
                "options": _jsonable(s.options),
            }
        return {
            "seed": self.seed,
            "driver": self.driver,
            "device": self.device,
            "irq": self.irq,
            "runs": self.runs,
            "time_s": self.time_s,
            "trials": self.trials,
            "elapsed_s": self.elapsed_s,
            "found": self.found,
            "failing_trial": self.failing.to_dict() if self.failing else None,
            "first_verdict": first.verdict.to_dict() if first is not None and first.verdict is not None else None,
            "shrink": shrunk,
            "record": str(self.record) if self.record else None,
            "original_record": str(self.original_record) if self.original_record else None,
            "replays": self.replays,
            "reproduced": self.reproduced,
            "replay_codes": self.replay_codes,
        }


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)) for k, v in options.items()}


def fresh_seed() -> int:
    """A seed for a hunt not told one (printed, so that the hunt can be repeated)."""
    return secrets.randbelow(2**32)


def default_record(seed: int, out_dir: str | Path | None = None) -> Path:
    return Path(out_dir or ".") / f"hunt-{seed}.pnic"


def original_path(record: Path) -> Path:
    """Where the first failing run is kept, unshrunk, beside the record: ``hunt-S.pnic`` → ``hunt-S.unshrunk.pnic``."""
    return record.with_name(f"{record.stem}.unshrunk{record.suffix or '.pnic'}")


def check_record_path(path: str | Path) -> Path:
    """A record path the hunt can write, checked before it runs anything (ConfigError names the problem)."""
    return check_writable(path, "record")


def _failed(result: RunResult) -> bool:
    return not result.passed


def hunt(
    driver: str | type,
    *,
    runs: int | None = DEFAULT_RUNS,
    time_s: float | None = None,
    seed: int | None = None,
    irq: str | None = None,
    replays: int = DEFAULT_REPLAYS,
    record: str | Path | None = None,
    shrink_tries: int = SHRINK_TRIES,
    shrink_need: int = SHRINK_NEED,
    shrink_budget: int = SHRINK_BUDGET,
    shrink_confirm: int = CONFIRM_RUNS,
    max_packets: int = MAX_PACKETS,
    wait_for_cores: bool = False,
    progress: Callable[[HuntProgress], None] | None = None,
    device: str = config.DEFAULT_DEVICE,
) -> HuntResult:
    """Run random trials against ``driver`` until one fails or the budget is spent; shrink, save, replay it.

    ``runs`` bounds the trials, ``time_s`` the time (the trial under way finishes); give one. ``seed``
    (default: :func:`fresh_seed`) fixes every trial; ``irq`` fixes the line (default: drawn per trial).
    The failing run is saved to ``record`` (default ``hunt-<seed>.pnic`` here), the first failure as found
    beside it (:func:`original_path`), the shrunk one at ``record`` itself, which is replayed
    ``replays`` times with each of :data:`REPLAY_TIMINGS`. ``max_packets`` cuts each trial shorter;
    ``shrink_*`` are :func:`shrink`'s settings. ``device`` is the model every trial runs: on e1000 the
    trials run on the level line (a handler that leaves its cause in ICR storms), on virtio-net on edge
    (MSI-X, its only mode), without ITR and without the error-bit faults (:func:`make_trial`). A signal
    stops the hunt with :class:`~pseudonic.controller.RunInterrupted` (a ``KeyboardInterrupt``); bad input raises
    :class:`~pseudonic.errors.ConfigError` before anything runs.
    """
    from . import recording
    from .controller import run

    seed, path, runs, time_s = check_args(
        driver, runs=runs, time_s=time_s, seed=seed, irq=irq, replays=replays, record=record,
        max_packets=max_packets, shrink_budget=shrink_budget, device=device,
    )  # fmt: skip
    label = driver if isinstance(driver, str) else f"{driver.__module__}:{driver.__qualname__}"
    out = HuntResult(seed=seed, driver=label, irq=irq, runs=runs, time_s=time_s, device=device)
    started = time.monotonic()

    def tell(stage: str, detail: str) -> None:
        out.elapsed_s = time.monotonic() - started
        if progress is not None:
            saved = out.record or out.original_record
            progress(HuntProgress(stage, out.trials, runs, time_s, out.elapsed_s, detail,
                                  out.failing.index if out.failing else None, saved))  # fmt: skip

    def attempt(plan: Plan, options: Mapping[str, Any]) -> RunResult | None:
        result = run(plan=plan, wait_for_cores=wait_for_cores, **options)
        return result if _failed(result) else None

    index = 0
    while (runs is None or index < runs) and (time_s is None or time.monotonic() - started < time_s):
        trial = make_trial(seed, index, irq, max_packets, device)
        plan = trial.plan()
        out.trials = index + 1
        tell("trial", trial.describe())
        result = run(plan=plan, wait_for_cores=wait_for_cores, **trial.options(driver))
        index += 1
        if _failed(result):
            out.failing, out.failing_plan, out.first_failure = trial, plan, result
            break
    if out.failing is None or out.first_failure is None or out.failing_plan is None:
        tell("done", f"no failure in {out.trials} runs")
        return out

    # Kept at once, as found: whatever the shrinker does, the failure is on disk.
    out.original_record = recording.save(original_path(path), out.first_failure)

    def on_shrink(p: ShrinkProgress) -> None:
        tell("shrink", f"run {p.runs}/{p.budget}, {p.entries} entries: {p.trying}")

    out.shrunk = shrink(
        out.failing_plan,
        out.failing.options(driver),
        out.first_failure,
        attempt,
        tries=shrink_tries,
        need=shrink_need,
        budget=shrink_budget,
        confirm=shrink_confirm,
        progress=on_shrink,
    )
    shrunk_result = out.shrunk.outcome
    if shrunk_result.plan is not None and out.shrunk.steps:
        origin = {**out.failing_plan.origin, "shrunk": out.shrunk.steps, "entries_before": out.shrunk.entries_before}
        shrunk_result = replace(shrunk_result, plan=replace(shrunk_result.plan, origin=origin))
    out.record = recording.save(path, shrunk_result)

    rec = recording.load(out.record)
    # Both timings: the plan's deadlines, and the times the failing run actually sent at (its stalls
    # included): a failure that a stall of the device brought on comes back with the second only.
    for timing in REPLAY_TIMINGS:
        out.reproduced[timing], out.replay_codes[timing] = 0, []
        for k in range(replays):
            tell("replay", f"{timing} timing: replay {k + 1}/{replays}, {out.reproduced[timing]} failed again")
            rp = recording.replay(rec, timing=timing, wait_for_cores=wait_for_cores)
            out.reproduced[timing] += rp.reproduced
            out.replay_codes[timing].append([f.code for f in rp.result.verdict.reasons] if rp.result.verdict else [])
    out.replays = replays
    tell("done", ", ".join(f"{timing}: {n} of {replays} failed again" for timing, n in out.reproduced.items()))
    return out


def check_args(
    driver: str | type,
    *,
    runs: int | None = None,
    time_s: float | None = None,
    seed: int | None = None,
    irq: str | None = None,
    replays: int = DEFAULT_REPLAYS,
    record: str | Path | None = None,
    max_packets: int = MAX_PACKETS,
    shrink_budget: int = SHRINK_BUDGET,
    device: str = config.DEFAULT_DEVICE,
) -> tuple[int, Path, int | None, float | None]:
    """A hunt's input checked before anything runs: (seed, record path, runs, time); ConfigError names the range.

    The CLI calls it too, before it prints anything, so that a usage error is its one line.
    """
    from .loading import check_spec

    if runs is not None and time_s is not None:
        raise ConfigError("give --runs or --time, not both")
    if runs is None and time_s is None:
        runs = DEFAULT_RUNS
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 1_000_000):
        raise ConfigError(f"runs {runs!r} is out of range: give 1..1000000")
    if time_s is not None and not 0 < time_s <= 7 * 86400:
        raise ConfigError(f"time {time_s!r} s is out of range: give more than 0 and at most 7 days (e.g. 60s, 10m)")
    if seed is None:
        seed = fresh_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ConfigError(f"seed {seed!r} is out of range: give a whole number 0..2^64-1")
    if device not in config.DEVICES:
        raise ConfigError(f"device {device!r} is unknown: give one of {', '.join(config.DEVICES)}")
    if irq is not None and irq not in config.IRQ_LINES:
        raise ConfigError(f"irq {irq!r} is unknown: give one of {', '.join(config.IRQ_LINES)}")
    if isinstance(replays, bool) or not isinstance(replays, int) or not 0 <= replays <= 10_000:
        raise ConfigError(f"replays {replays!r} is out of range: give 0..10000")
    if isinstance(max_packets, bool) or not isinstance(max_packets, int) or not 1 <= max_packets <= MAX_PACKETS:
        raise ConfigError(f"max packets {max_packets!r} is out of range: give 1..{MAX_PACKETS}")
    if isinstance(shrink_budget, bool) or not isinstance(shrink_budget, int) or not 0 <= shrink_budget <= 100_000:
        raise ConfigError(f"shrink budget {shrink_budget!r} is out of range: give 0..100000 runs")
    if isinstance(driver, str):
        check_spec(driver)  # a missing file or library is one line now, not after the first trial
    path = check_record_path(record if record is not None else default_record(seed))
    return seed, path, runs, time_s


__all__ = [
    "DEFAULT_REPLAYS",
    "DEFAULT_RUNS",
    "HuntProgress",
    "HuntResult",
    "Phase",
    "ShrinkProgress",
    "Shrunk",
    "Trial",
    "check_args",
    "delete",
    "fault_kinds",
    "hunt",
    "make_trial",
    "one_size",
    "prefix",
    "shortest_prefix",
    "shrink",
    "without_faults",
    "without_spurious",
]
