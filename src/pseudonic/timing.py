"""Whose is each deviation: every interval outside the band gets a cause, and a run a timing verdict.

The paper's point is that overhead outside the driver distorts interrupt timing (its section 1); on
a shared machine most of that overhead is the machine's. So each handler-entry interval outside the
paper's E2 band (+-6.25 %) is traced to what made its late endpoint late, from the records alone
(pure: no process, no clock; tested on synthetic timelines with known causes). A handler entry is
late by the sum of three parts, each compared with its median over the run:

- the device's wait: it began the packet after its deadline (``tx.start_ns - tx.due_ns``);
- the send: from beginning the packet to raising the line (``raised_ns - start_ns``);
- the line: from the raise to the handler's entry (``entry_ns - raised_ns``).

The part that grew most names the cause, refined by what else the records say (each spinning
loop's longest gap between two clock reads, when the driver node went back to waiting, its
previous handler's exit). Lateness passed on -- a device catching up after a stall, a handler
entered late because the one before it was -- keeps the cause it came from. Causes fall in three
groups: the **machine** took a core away (a loop saw the stall); the **driver** set the interval
(its handler time, its ITR or mask); the **tool** (pseudonic's own path, or nothing on record
explains it). A false attribution is worse than a bad number: a cause is given only when the
records show it, and what none shows is ``unexplained`` and counts against the tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The band (the paper's E2) and the stall threshold (hwlatdetect's) are analysis's; a send on the spin
# line that ran STALL_NS past its median is a stall as a gap of that length between two clock reads is.
from .analysis import PRECISION_BAND, STALL_NS

#: The paper's E2 result: 996 of 1000 intervals exact, so 4 in 1000 may be off and the timing still
#: be as good as the paper's (bare metal, no other task on either core).
TRUST_LIMIT = 0.004

#: cause -> (group, what it means and what to do), in the order the summary lists them.
CAUSES: dict[str, tuple[str, str]] = {
    "device_stall": ("machine", "the device core was taken away (its loop saw the stall), or the device was catching "
                                "up after such a stall"),
    "driver_stall": ("machine", "the driver core was taken away while it waited for the line (its loop saw the stall)"),
    "driver_busy": ("driver", "the driver was still in its previous handler when the line was raised: the interval "
                              "was shorter than its handler"),
    "handler_slow": ("driver", "the driver's previous handler ran far past its median: its own slow path (GC, a "
                               "lock), or a stall of its core inside the handler, which no loop can see"),
    "held": ("driver", "the raise was held back by what the driver programmed (ITR, IMS) or by the level line "
                       "while a handler ran"),
    "device_busy": ("tool", "the device was still sending earlier packets: the plan asked for packets closer "
                            "together than one send"),
    "device_send": ("tool", "the device's send ran past its median, by less than a stall or in the line's system "
                            "call (eventfd, signal)"),
    "host": ("tool", "the driver node went back to waiting only after the raise, its handler long returned: "
                     "the host's own time between handlers"),
    "line_wake": ("tool", "the sleeping line took longer than usual to wake the driver node (--busy-poll, or the "
                          "spin line, avoid the sleep)"),
    "unexplained": ("tool", "no record explains it: counted against the tool"),
}  # fmt: skip
CAUSE_NAMES = tuple(CAUSES)
GROUPS = ("machine", "driver", "tool")
#: per-interval code for an interval within the band
WITHIN = -1
_CODE = {name: i for i, name in enumerate(CAUSE_NAMES)}
_INHERIT = -2


@dataclass(frozen=True)
class Records:
    """What attribution reads, per schedule entry (``packet`` arrays) and per handler run (``run`` arrays).

    Times are CLOCK_MONOTONIC ns. ``planned_ns`` is each entry's deadline as planned (the intervals the
    band is about); ``due_ns`` the deadline the device kept (the same, unless ``--late shift`` moved the
    schedule after a late start). ``woke`` is, per handler run, the schedule entry whose raise woke it;
    ``raised`` when that raise was made. ``wait_ns`` is 0 where the host does not know when it went back
    to waiting. ``sleeping_line``: the driver node sleeps between interrupts (eventfd, signal).
    """

    planned_ns: np.ndarray[Any, Any]
    due_ns: np.ndarray[Any, Any]
    start_ns: np.ndarray[Any, Any]
    end_ns: np.ndarray[Any, Any]
    device_gap_ns: np.ndarray[Any, Any]
    woke: np.ndarray[Any, Any]
    raised_ns: np.ndarray[Any, Any]
    wait_ns: np.ndarray[Any, Any]
    entry_ns: np.ndarray[Any, Any]
    exit_ns: np.ndarray[Any, Any]
    driver_gap_ns: np.ndarray[Any, Any]
    sleeping_line: bool = False


@dataclass
class Attribution:
    """Per handler-entry interval: its deviation from the plan, and its cause's code (``WITHIN`` if in band)."""

    deviation_ns: np.ndarray[Any, Any]
    cause: np.ndarray[Any, Any]
    #: intervals the plan spaced apart (an interval of 0 has no band)
    paced: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def outliers(self) -> int:
        return int(np.count_nonzero(self.cause != WITHIN))

    def by_group(self) -> dict[str, int]:
        out = dict.fromkeys(GROUPS, 0)
        for name, n in self.counts.items():
            out[CAUSES[name][0]] += n
        return out

    def group_of_interval(self) -> np.ndarray[Any, Any]:
        """Per interval: the index of its cause's group in GROUPS, or -1 within the band."""
        lookup = np.array([GROUPS.index(CAUSES[n][0]) for n in CAUSE_NAMES], dtype=np.int64)
        out = np.full(self.cause.shape, -1, dtype=np.int64)
        off = self.cause != WITHIN
        out[off] = lookup[self.cause[off]]
        return out


def _i64(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(a, dtype=np.int64)


def _median(a: np.ndarray[Any, Any]) -> int:
    return int(np.median(a)) if a.size else 0


def device_causes(r: Records, slack_ns: int) -> np.ndarray[Any, Any]:
    """Per schedule entry: why the device began it late (a code), or WITHIN if it began on time.

    A device that began late with a stall in its wait covering most of the lateness was taken
    away; one whose wait saw no stall began late because it was still busy with the entry before
    (its loop comes back after its deadline), and inherits that entry's cause -- or, if that entry
    was on time, its send ran long or the plan's interval was shorter than a send (``device_busy``).
    A send on the spin line is straight-line code between two clock reads: one that ran a stall's
    length past its median was the core taken away (``device_stall``), as a gap in a loop is; one a
    little long, or on a line whose send ends in a system call, is ``device_send``.
    """
    due, start, end, gap = _i64(r.due_ns), _i64(r.start_ns), _i64(r.end_ns), _i64(r.device_gap_ns)
    late = start - due
    send = end - start
    usual_send = _median(send)
    codes = np.full(due.size, WITHIN, dtype=np.int64)
    if due.size == 0:
        return codes
    is_late = late > slack_ns
    own_stall = is_late & (2 * gap >= late)
    after_late = np.zeros(due.size, dtype=bool)
    after_late[1:] = is_late[:-1]
    # An entry late with no stall of its own, after a late one, inherits its cause: the cause of the
    # latest entry in its run of late ones that had a cause of its own (a stall, or the run's first).
    own = is_late & (own_stall | ~after_late)
    # The send before ran long (the first entry has none before it).
    over = np.zeros(due.size, dtype=np.int64)
    over[1:] = send[:-1] - usual_send
    ran_long = np.zeros(due.size, dtype=bool)
    ran_long[1:] = over[1:] > slack_ns
    stalled = ran_long & (over >= STALL_NS) & (not r.sleeping_line)
    by_send = np.where(stalled, _CODE["device_stall"], np.where(ran_long, _CODE["device_send"], _CODE["device_busy"]))
    codes[own] = np.where(own_stall, _CODE["device_stall"], by_send)[own]
    anchor = np.maximum.accumulate(np.where(own, np.arange(due.size), -1))
    inherit = is_late & ~own
    codes[inherit] = codes[anchor[inherit]]
    return codes


def attribute(r: Records, band: float = PRECISION_BAND) -> Attribution:
    """The cause of every handler-entry interval outside ``band`` (see the module's docstring)."""
    woke = _i64(r.woke)
    entry = _i64(r.entry_ns)
    n = entry.size
    if n < 2:
        return Attribution(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, dict.fromkeys(CAUSE_NAMES, 0))
    planned = _i64(r.planned_ns)[woke]
    due = _i64(r.due_ns)[woke]
    start = _i64(r.start_ns)[woke]
    end = _i64(r.end_ns)[woke]
    raised = _i64(r.raised_ns)
    wait, exit_, dgap = _i64(r.wait_ns), _i64(r.exit_ns), _i64(r.driver_gap_ns)

    expected = np.diff(planned)
    deviation = np.diff(entry - planned)
    lateness = entry - due  # against the deadline the device kept: a shifted schedule is not late
    paced = expected > 0
    off = paced & (np.abs(deviation) > band * np.where(paced, expected, 1))
    tol = int(band * _median(expected[paced])) if paced.any() else 0
    slack = max(tol // 2, 1)

    device_code = device_causes(r, slack)[woke]
    parts = np.stack([start - due, raised - start, entry - raised])
    handler = exit_ - entry
    handler_excess = handler - _median(handler)
    # A raise made well after its packet's send ended was held (ITR, IMS, a level line in service).
    held = raised - end > slack

    def late_cause(j: np.ndarray[Any, Any], other: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Per pair: why endpoint j came later than endpoint ``other``: the part of the lateness that grew
        most (the first of them on a tie), or _INHERIT where it was passed on from why j - 1 came late."""
        delta = parts[:, j] - parts[:, other]
        biggest = np.argmax(delta, axis=0)
        amount = delta[biggest, np.arange(j.size)]
        # 0: the device began the packet late.
        device = np.where(device_code[j] != WITHIN, device_code[j], _CODE["unexplained"])
        # 1: from beginning the packet to stamping its raise is straight-line code on every line.
        sending = np.where(
            held[j], _CODE["held"], np.where(amount >= STALL_NS, _CODE["device_stall"], _CODE["device_send"])
        )
        # 2: the driver entered late. Still in its previous handler: that handler ran long, or began late
        # and passes it on.
        before, two_before = np.maximum(j - 1, 0), np.maximum(j - 2, 0)
        was_waiting = wait[j] > raised[j]
        in_previous = was_waiting & (j > 0) & (exit_[before] >= raised[j])
        passed_on = (j > 1) & ((lateness[before] - lateness[two_before]) > slack)
        previous = np.where(
            2 * handler_excess[before] >= amount,
            _CODE["handler_slow"],
            np.where(passed_on, _INHERIT, _CODE["driver_busy"]),
        )
        woke = _CODE["line_wake"] if r.sleeping_line else _CODE["unexplained"]
        entering = np.where(
            in_previous,
            previous,
            np.where(was_waiting, _CODE["host"], np.where(2 * dgap[j] >= amount, _CODE["driver_stall"], woke)),
        )
        out: np.ndarray[Any, Any] = np.choose(biggest, [device, sending, entering])
        return out

    cause = np.full(n - 1, WITHIN, dtype=np.int64)
    k = np.flatnonzero(off)
    if k.size:
        later = deviation[k] > 0
        j = np.where(later, k + 1, k)
        cause[k] = late_cause(j, np.where(later, k, k + 1))
        passed = k[cause[k] == _INHERIT]
        if passed.size:
            # Lateness passed on is followed back to where it began: per endpoint i >= 1, why i came later than
            # i - 1, the last one before that was not itself passed on (a driver slower than the plan passes it
            # down the whole run).
            ends = np.arange(1, n)
            own = late_cause(ends, ends - 1)
            began = np.maximum.accumulate(np.where(own != _INHERIT, np.arange(n - 1), 0))
            first = np.where(deviation[passed] > 0, passed + 1, passed)  # the endpoint that inherited
            cause[passed] = own[began[first - 2]]
    counts = {name: int(np.count_nonzero(cause == code)) for name, code in _CODE.items()}
    return Attribution(deviation, cause, int(paced.sum()), counts)


def timing_verdict(
    attribution: Attribution,
    stalls: dict[str, Any],
    *,
    expected_disturbed_share: float | None = None,
    cores: tuple[int, int] | None = None,
    limit: float = TRUST_LIMIT,
) -> dict[str, Any]:
    """Whether a run's timing can be trusted, and if not what disturbed it, in one line (``why``).

    Trustworthy: intervals off the band through the machine or the tool are at most ``limit`` of the
    intervals (the paper's 4 in 1000). Those the driver caused are its own timing, which is what the
    run measures. ``stalls`` is the result's (per node: stalls seen, longest).
    """
    paced = attribution.paced
    groups = attribution.by_group()
    share = (lambda k: k / paced) if paced else (lambda k: 0.0)
    machine, tool = groups["machine"], groups["tool"]
    trustworthy = paced == 0 or (machine + tool) <= limit * paced
    reasons: list[str] = []
    if machine:
        device_core, driver_core = cores if cores is not None else ("device", "driver")
        taken = []
        for node, core in (("device", device_core), ("driver", driver_core)):
            seen = int(stalls.get(node, {}).get("over_10us", 0))
            if seen:
                longest = int(stalls[node].get("max_ns", 0))
                taken.append(f"core {core} ({node}) {seen} times (longest {longest / 1000:.0f} µs)")
        took = ("the machine took " + " and ".join(taken) + " for > 10 µs; ") if taken else ""
        reasons.append(f"{took}{machine} of {attribution.outliers} outliers are stalls of the machine")
    if tool:
        named = ", ".join(f"{attribution.counts[n]} {n.replace('_', ' ')}" for n in CAUSE_NAMES
                          if CAUSES[n][0] == "tool" and attribution.counts.get(n))  # fmt: skip
        reasons.append(f"{tool} {'is' if tool == 1 else 'are'} the tool's ({named})")
    if groups["driver"] and not trustworthy:
        reasons.append(f"{groups['driver']} {'is' if groups['driver'] == 1 else 'are'} the driver's own")
    if trustworthy:
        why = (f"{machine + tool} of {paced} intervals off the band through the machine or the tool "
               f"(limit {limit * 100:.1f} %)")  # fmt: skip
    else:
        why = "; ".join(reasons)
    if expected_disturbed_share is not None and paced:
        ratio = share(attribution.outliers) / expected_disturbed_share if expected_disturbed_share > 0 else None
        why += (f"; this machine's calibration predicts {expected_disturbed_share * 100:.2f} % disturbed, "
                f"the run had {share(attribution.outliers) * 100:.2f} %"
                + (f" (×{ratio:.2f})" if ratio is not None else ""))  # fmt: skip
    return {
        "intervals": paced,
        "raw_off_share": share(attribution.outliers),
        "machine_share": share(machine),
        "driver_share": share(groups["driver"]),
        "tool_attributed_share": share(tool),
        "expected_disturbed_share": expected_disturbed_share,
        "trustworthy": bool(trustworthy),
        "why": why,
    }
