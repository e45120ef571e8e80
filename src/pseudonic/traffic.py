"""A traffic spec -- pacing, length, frame sizes, field variation -- turned into a :class:`~pseudonic.plan.Plan`.

The command line's traffic options, as TRex's stateless streams offer them:

* pacing, one of: a fixed ``interval``; a ``rate`` in packets or bits per
  second; ``burst`` N frames back to back (one deadline) ``every`` T; a
  ``poisson`` process whose mean is the ``rate``; or an ``offsets`` file
  giving each deadline;
* length: a ``count`` or a ``duration`` (the packets due before it ends);
* frames: a ``size``, a list of sizes taken in turn, the simple IMIX, or
  the user's own ``frames``; with ``vary``, header fields changed per
  packet (see :mod:`pseudonic.fields`).

Every deadline is absolute, computed from the packet's index or an exact
cumulative sum -- never by adding up float intervals -- so the millionth
packet is as exactly placed as the second. Whatever is random draws from a
seed that the plan's ``origin`` records, so that a run can be repeated.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import config, schedule
from .errors import ConfigError
from .fields import Vary, build_templates, parse_vary
from .frames import MIN_FRAME, FrameSet, generated_frame
from .layout import MAX_FRAME
from .plan import (
    MAX_INTERVAL_NS,
    MAX_LONG_PACKETS,
    MAX_LONG_SPAN_NS,
    MAX_PACKETS,
    MAX_SPAN_NS,
    PASS_ENTRIES,
    Plan,
    full_refusal,
)
from .units import parse_interval, parse_size

#: The simple IMIX: 64, 594 and 1518 B frames, 7:4:1 (TRex's stl/imix.py sends the same three streams at 28:16:4 pps).
IMIX_SIZES = (64, 594, 1518)
#: One fixed 12-packet cycle of it, interleaved so that no stretch of the plan is all small or all large frames:
#: 594 every third packet, the one 1518 in the middle, 64 elsewhere. Any 12*k packets hold exactly 7:4:1.
IMIX_PATTERN = (64, 594, 64, 64, 594, 64, 1518, 594, 64, 64, 594, 64)
#: Preamble (7) + SFD (1) + inter-frame gap (12): what a frame also takes on the wire, counted in an L1 rate (TRex).
L1_OVERHEAD = 20
#: Distinct frames (sizes x field values) a plan may carry, and their bytes in all.
MAX_TEMPLATES = 65_536
MAX_TEMPLATE_BYTES = 256 << 20
#: A :random seed fits a double, so that any JSON reader of the origin keeps it exactly.
_SEED_BITS = 53

_RATE_EXAMPLES = "e.g. 100kpps, 1.2Mpps, 800Mbps, 10Gbps"
_RATE = re.compile(
    r"^\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,2})?)\s*([kmg]?)(pps|bps)\s*$", re.IGNORECASE
)
_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


# -- rates --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """A rate: ``value`` packets (``unit="pps"``) or bits (``unit="bps"``) per second."""

    value: float
    unit: str

    def __str__(self) -> str:
        return format_rate(self.value, self.unit)


def parse_rate(text: str) -> Rate:
    """``"100kpps"`` -> Rate(100000.0, "pps"), ``"10Gbps"`` -> Rate(1e10, "bps"); k, M, G are powers of ten."""
    m = _RATE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ConfigError(
            f"rate {text!r} is not a rate: give a number and pps or bps, with k, M or G before it ({_RATE_EXAMPLES})"
        )
    # Exact decimal arithmetic: "1.2Mpps" is 1200000 pps, not 1.2 * 1e6 in floating point. A two-digit
    # exponent keeps every rate a positive float (and 1e999999999 from being worked out in full).
    value = Fraction(m.group(1)) * _PREFIXES[m.group(2).lower()]
    if value <= 0:
        raise ConfigError(f"rate {text!r} is out of range: give more than 0 ({_RATE_EXAMPLES})")
    return Rate(float(value), m.group(3).lower())


def format_rate(value: float, unit: str) -> str:
    """1.2e6, "pps" -> "1.2Mpps"; what :func:`parse_rate` reads back."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.12g}{prefix}{unit}"
    return f"{value:.12g}{unit}"


# -- the one entry point ------------------------------------------------------------------------
def build_plan(
    *,
    interval: str | int | None = None,
    count: int | None = None,
    duration: str | int | None = None,
    size: str | int | None = None,
    imix: bool = False,
    rate: str | None = None,
    rate_l1: bool = False,
    burst: int | None = None,
    every: str | int | None = None,
    poisson: bool = False,
    seed: int | None = None,
    offsets: str | Path | None = None,
    vary: Sequence[str] = (),
    frames: Sequence[bytes] | None = None,
    records: str = "auto",
) -> Plan:
    """The plan a traffic spec asks for; :class:`ConfigError` (one line, naming the range) for what it cannot be.

    With none given: config's default periodic plan. With only ``interval``, ``count`` and ``size``: exactly
    ``Plan.periodic(interval, count, size)``. A length past MAX_PACKETS of a paced plan of generated frames
    (periodic, rate, burst) is one pass repeated (``Plan.total``): a run without full ``records``.
    """
    kind = _pacing_kind(interval, rate, burst, every, poisson, offsets)
    _check_combinations(kind, count, duration, size, imix, rate, rate_l1, frames, vary)
    varies = _parse_varies(vary)
    seed = _seed(seed, random=kind == "poisson" or any(v.mode == "random" for v in varies))

    # What each packet carries, in turn: a cycle of sizes, or of the user's frames.
    user = _user_frames(frames) if frames is not None else None
    if user is not None:
        cycle = np.array([len(f) for f in user], dtype=np.int64)
    else:
        cycle = np.array(IMIX_PATTERN if imix else _sizes(size), dtype=np.int64)
    origin: dict[str, Any] = {"kind": kind}

    if kind == "offsets":
        assert offsets is not None
        due, file_sizes = read_offsets(offsets)
        n = int(due.size)
        if user is not None and (file_sizes > 0).any():
            raise ConfigError(f"offsets {str(offsets)!r} gives frame sizes: drop them, or drop frames")
        sizes = cycle[np.arange(n) % cycle.size]
        sizes = np.where(file_sizes > 0, file_sizes, sizes)
        origin.update(file=str(offsets), count=n)
        if (file_sizes > 0).any():
            origin["file_sizes"] = int(np.count_nonzero(file_sizes))
    else:
        pace = _pace(kind, interval, rate, rate_l1, burst, every, cycle, seed, origin)
        # A pace that repeats, of generated frames: may run past MAX_PACKETS as one pass repeated.
        repeats = kind in ("periodic", "rate", "burst") and user is None and not varies and records != "full"
        longest = MAX_LONG_SPAN_NS if repeats else MAX_SPAN_NS
        duration_ns = _duration(duration, longest) if duration is not None else None
        most = MAX_LONG_PACKETS if repeats or records == "full" else MAX_PACKETS
        n = pace.count_within(duration, duration_ns, most) if duration_ns is not None else _count(count, most)
        if n > MAX_PACKETS and records == "full":
            raise ConfigError(full_refusal(n, float(cycle.mean())))
        origin["count"] = n
        if duration_ns is not None:
            origin["duration_ns"] = duration_ns
        if n > MAX_PACKETS:
            # one pass of whole cycles (of sizes, and of bursts), the next pass one period later
            unit = math.lcm(int(cycle.size), int(burst or 1))
            k = unit * -(-PASS_ENTRIES // unit)
            both = pace.due(k + 1)
            frameset, frame_of = _generated(cycle[np.arange(k) % cycle.size], varies, seed)
            _describe_sizes(origin, cycle, imix)
            one = Plan.make(schedule.from_offsets(both[:k], frame_of), frameset, origin)
            return one.repeated(n, int(both[k] - both[0]))
        due = pace.due(n)
        sizes = cycle[np.arange(n) % cycle.size]

    if user is not None:
        origin["frames"] = len(user)
        frameset = FrameSet.of(user, stamped=False)
        frame_of = np.arange(n, dtype=np.int64) % len(user)
    else:
        if origin.get("file_sizes") != n:  # unless an offsets file gave every size
            _describe_sizes(origin, cycle, imix)
        frameset, frame_of = _generated(sizes, varies, seed)
        if varies:
            origin["vary"] = [v.text for v in varies]
    if seed is not None:
        origin["seed"] = seed
    return Plan.make(schedule.from_offsets(due, frame_of), frameset, origin)


# -- what was asked, checked --------------------------------------------------------------------
def _pacing_kind(interval: Any, rate: Any, burst: Any, every: Any, poisson: bool, offsets: Any) -> str:
    if poisson and rate is None:
        raise ConfigError("poisson needs rate, its mean (e.g. poisson with rate 100kpps)")
    if burst is not None and every is None:
        raise ConfigError("burst needs every: N frames back to back every T (e.g. burst 8 every 10us)")
    if every is not None and burst is None:
        raise ConfigError("every needs burst: N frames back to back every T (e.g. burst 8 every 10us)")
    asked = [
        name
        for name, given in (
            ("interval", interval is not None),
            ("rate", rate is not None),
            ("burst/every", burst is not None),
            ("offsets", offsets is not None),
        )
        if given
    ]
    if len(asked) > 1:
        raise ConfigError(
            f"{' and '.join(asked)} {'both' if len(asked) == 2 else 'all'} set the pace: give one of interval, rate, "
            "burst/every, poisson with rate, or offsets"
        )
    if poisson:
        return "poisson"
    if not asked:
        return "periodic"
    return {"interval": "periodic", "rate": "rate", "burst/every": "burst", "offsets": "offsets"}[asked[0]]


def _check_combinations(
    kind: str,
    count: Any,
    duration: Any,
    size: Any,
    imix: bool,
    rate: str | None,
    rate_l1: bool,
    frames: Any,
    vary: Sequence[str],
) -> None:
    if count is not None and duration is not None:
        raise ConfigError("count and duration both set the length: give one of them")
    if kind == "offsets" and (count is not None or duration is not None):
        raise ConfigError("offsets gives the count (one packet per line): drop count and duration")
    if imix and size is not None:
        raise ConfigError("imix and size both set the frame sizes: give one of them")
    if frames is not None:
        clash = [name for name, given in (("size", size is not None), ("imix", imix), ("vary", bool(vary))) if given]
        if clash:
            raise ConfigError(
                f"frames are sent as they are: drop {' and '.join(clash)} (they apply to generated frames)"
            )
    if rate_l1 and (rate is None or parse_rate(rate).unit != "bps"):
        raise ConfigError("rate_l1 counts the wire overhead of a bit rate: give rate in bps (e.g. 10Gbps)")


def _parse_varies(specs: Sequence[str]) -> list[Vary]:
    if isinstance(specs, str):
        specs = [specs]
    varies = [parse_vary(s) for s in specs]
    names = [v.field.name for v in varies]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"vary names {', '.join(twice)} more than once: give one range per field")
    return varies


def _seed(seed: Any, *, random: bool) -> int | None:
    """The seed of what is random: the one given, or a fresh one (the origin records it)."""
    if seed is not None and not random:
        raise ConfigError("seed applies to what is random: give it with poisson or a :random vary")
    if not random:
        return None
    if seed is None:
        return secrets.randbits(_SEED_BITS)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed {seed!r} is out of range: give a whole number, 0 or more")
    return int(seed)


def _count(count: Any, most: int = MAX_PACKETS) -> int:
    if count is None:
        return config.DEFAULT_COUNT
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise ConfigError(f"count must be an integer, not {count!r}")
    if not 1 <= int(count) <= most:
        more = f" (up to {MAX_LONG_PACKETS} without full records)" if most > MAX_PACKETS else ""
        raise ConfigError(f"count {count} is out of range: give 1..{MAX_PACKETS}{more}")
    return int(count)


def _duration(duration: str | int, longest: int = MAX_SPAN_NS) -> int:
    ns = parse_interval(duration, "duration", signed=True)
    if not 1 <= ns <= longest:
        raise ConfigError(
            f"duration {duration!r} is out of range: give 1ns..{longest // 10**9}s, "
            "with a unit of ns, us, ms, s, min or h (e.g. 10s)"
        )
    return ns


def _interval(text: str | int, what: str) -> int:
    ns = parse_interval(text, what, signed=True)
    if not 1 <= ns <= MAX_INTERVAL_NS:
        raise ConfigError(
            f"{what} {text!r} is out of range: give 1ns..{MAX_INTERVAL_NS // 10**9}s, "
            "with a unit of ns, us or ms (e.g. 38us)"
        )
    return ns


def _sizes(size: str | int | None) -> list[int]:
    """``1500``, ``"1.5KB"``, or ``"64,594,1518"`` (taken in turn, packet by packet)."""
    if size is None:
        return [config.DEFAULT_SIZE]
    parts = size.split(",") if isinstance(size, str) else [size]
    out = []
    for part in parts:
        nbytes = parse_size(part.strip() if isinstance(part, str) else part, signed=True)
        if not MIN_FRAME <= nbytes <= MAX_FRAME:
            raise ConfigError(
                f"size {nbytes} B is out of range: give {MIN_FRAME}..{MAX_FRAME} bytes "
                "(one longer than the buffer spans several descriptors)"
            )
        out.append(nbytes)
    return out


def _user_frames(frames: Sequence[Any]) -> list[bytes]:
    out = list(FrameSet.from_user(frames).templates)
    for i, raw in enumerate(out):
        if len(raw) < MIN_FRAME:
            raise ConfigError(f"frame {i} is {len(raw)} bytes: frames must be at least {MIN_FRAME} bytes")
    return out


def _describe_sizes(origin: dict[str, Any], cycle: np.ndarray[Any, Any], imix: bool) -> None:
    """``size`` when every frame is one size (as Plan.periodic has it), else ``sizes``: the cycle packets take."""
    if imix:
        origin["imix"] = True
    if cycle.size == 1:
        origin["size"] = int(cycle[0])
    else:
        origin["sizes"] = [int(s) for s in cycle]


# -- pacing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pace:
    """Deadlines of packets 0..n-1, and how many fall within a duration."""

    #: deadlines (ns, int64) of the packets whose indices are given: non-decreasing in the index
    at: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]
    #: about how many deadlines fall before a duration (ns): what is refused before anything is made
    guess: Callable[[int], float]
    #: the deadlines, when they do not follow from the index alone (Poisson): of a count, or before a duration
    draw: Callable[[int | None, int | None], np.ndarray[Any, Any]] | None = None

    def due(self, n: int) -> np.ndarray[Any, Any]:
        return self.draw(n, None) if self.draw else self.at(np.arange(n, dtype=np.int64))

    def count_within(self, text: Any, duration_ns: int, most: int = MAX_PACKETS) -> int:
        """The number of deadlines before ``duration_ns``; refused before an array that large is made."""
        guess = self.guess(duration_ns)
        if guess > most + 1:
            raise ConfigError(_too_long(text, f"about {guess:.0f}", most))
        if self.draw:
            n = int(self.draw(None, duration_ns).size)
            if n > MAX_PACKETS:  # the draw stops once past the cap: the count is more still
                raise ConfigError(_too_long(text, f"more than {MAX_PACKETS}", MAX_PACKETS))
        else:

            def due(i: int) -> int:
                return int(self.at(np.array([i], dtype=np.int64))[0])

            # the smallest n whose deadline is not before the duration: packets 0..n-1 are (due(0) = 0)
            lo, hi = 0, max(1, math.ceil(guess))
            while due(hi) < duration_ns:
                lo, hi = hi, hi * 2
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if due(mid) < duration_ns else (lo, mid)
            n = hi
        if n > most:
            raise ConfigError(_too_long(text, str(n), most))
        return n


def _too_long(text: Any, n: str, most: int) -> str:
    return (
        f"duration {text!r} holds {n} packets at this pace: give at most {most} (a shorter duration or a slower pace)"
    )


def _pace(
    kind: str,
    interval: str | int | None,
    rate_text: str | None,
    l1: bool,
    burst: int | None,
    every: str | int | None,
    cycle: np.ndarray[Any, Any],
    seed: int | None,
    origin: dict[str, Any],
) -> _Pace:
    """The pace asked for, its parameters noted in ``origin``."""
    if kind == "periodic":
        step = _interval(config.DEFAULT_INTERVAL if interval is None else interval, "interval")
        origin["interval_ns"] = step
        return _Pace(lambda i: i * step, lambda d: d / step)
    if kind == "burst":
        if isinstance(burst, bool) or not isinstance(burst, (int, np.integer)) or not 1 <= burst <= MAX_PACKETS:
            raise ConfigError(f"burst {burst!r} is out of range: give 1..{MAX_PACKETS} frames")
        assert every is not None
        n_burst, gap = int(burst), _interval(every, "every")
        origin.update(burst=n_burst, every_ns=gap)
        # a burst shares one deadline: the device sends its frames back to back
        return _Pace(lambda i: i // n_burst * gap, lambda d: math.ceil(d / gap) * n_burst)
    assert rate_text is not None
    rate = parse_rate(rate_text)
    origin[rate.unit] = _number(rate.value)
    if rate.unit == "bps":
        origin["l1"] = l1
    # Per frame of the cycle: what it takes of the rate -- its bits (bps; TRex's L1 rate adds 20 B), or one packet.
    bits = (cycle + (L1_OVERHEAD if l1 else 0)) * 8
    cost = bits if rate.unit == "bps" else np.ones_like(cycle)
    _check_rate(rate_text, rate, cost, cycle, l1)
    # Exact integer cumulative cost before packet i, then one rounding: due = round(cost_before_i * 1e9 / rate).
    before = np.concatenate([[0], np.cumsum(cost)]).astype(np.int64)
    per_cycle, period = int(before[-1]), int(cycle.size)

    def cost_before(i: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        whole: np.ndarray[Any, Any] = (i // period) * per_cycle + before[i % period]
        return whole

    def at(i: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.rint(cost_before(i).astype(np.float64) * 1e9 / rate.value).astype(np.int64)

    def guess(d: int) -> float:
        return d * rate.value / 1e9 * period / per_cycle

    if kind == "rate":
        return _Pace(at, guess)
    assert seed is not None
    return _Pace(at, guess, _poisson(rate.value, cost, seed))


def _poisson(
    rate: float, cost: np.ndarray[Any, Any], seed: int
) -> Callable[[int | None, int | None], np.ndarray[Any, Any]]:
    """Deadlines of a Poisson process: gap i exponential, of mean ``cost[i] * 1e9 / rate`` ns, from ``seed``.

    The gaps are drawn in picoseconds, rounded to whole ones and summed exactly, and each sum is rounded
    to ns once: no drift, and the mean rate is the one asked for. Given a count: that many deadlines.
    Given a duration: every deadline before it (at most MAX_PACKETS + 1 of them, so that more is seen),
    drawn a chunk at a time -- the same draws, so the same deadlines, as for a count.
    """
    mean_ps = cost.astype(np.float64) * 1e12 / rate
    period_ps = float(mean_ps.mean())

    def draw(count: int | None, duration_ns: int | None) -> np.ndarray[Any, Any]:
        rng = np.random.default_rng(seed)
        limit_ps = (duration_ns or 0) * 1000
        # a duration's chunk: about a tenth of the packets it holds
        chunk = count - 1 if count is not None else max(1024, int(limit_ps / period_ps / 10))
        sums: list[np.ndarray[Any, Any]] = [np.zeros(1, dtype=np.int64)]
        done = 1  # deadlines so far; the first is at 0
        while (done < count) if count is not None else (int(sums[-1][-1]) < limit_ps and done <= MAX_PACKETS):
            size = min(chunk, count - done) if count is not None else chunk
            # the gap after packet j is packet j's cost at the rate
            scale = mean_ps[np.arange(done - 1, done - 1 + size) % mean_ps.size]
            gaps = np.rint(rng.exponential(scale)).astype(np.int64)
            sums.append(int(sums[-1][-1]) + np.cumsum(gaps))
            done += size
        due = (np.concatenate(sums) + 500) // 1000  # to the nearest ns, once
        return due[due < duration_ns] if duration_ns is not None else due

    return draw


def _check_rate(text: str, rate: Rate, cost: np.ndarray[Any, Any], cycle: np.ndarray[Any, Any], l1: bool) -> None:
    """Each frame's gap at the rate must be 1 ns..10 s: faster would need gaps below what a deadline can say."""
    cheapest, dearest = int(cost.min()), int(cost.max())
    top = cheapest * 1e9  # the gap of the cheapest frame is 1 ns
    bottom = dearest * 1e9 / MAX_INTERVAL_NS  # the gap of the dearest frame is 10 s
    if bottom <= rate.value <= top:
        return
    if rate.unit == "pps":
        frames = ""
    else:
        lo, hi = int(cycle.min()), int(cycle.max())
        frames = f" for {lo}..{hi} B frames" if lo != hi else f" for {lo} B frames"
        frames += " (+20 B each on the wire)" if l1 else ""
    raise ConfigError(
        f"rate {text!r} is out of range{frames}: give {format_rate(bottom, rate.unit)}..{format_rate(top, rate.unit)} "
        "(a gap of 1 ns..10 s per frame)"
    )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# -- frames -------------------------------------------------------------------------------------
def _generated(sizes: np.ndarray[Any, Any], varies: list[Vary], seed: int | None) -> tuple[FrameSet, Any]:
    """The distinct generated frames the packets need, and which one each packet carries."""
    n = int(sizes.size)
    columns: list[np.ndarray[Any, Any]] = [sizes.astype(np.uint64)]
    for k, v in enumerate(varies):
        # each :random field its own stream, apart from Poisson's (default_rng(seed)): a vary leaves the timeline be
        rng = np.random.default_rng([seed, k + 1]) if v.mode == "random" and seed is not None else None
        columns.append(v.values(n, rng))
    frame_of, first = _distinct(columns)
    if first.size > MAX_TEMPLATES:
        raise ConfigError(
            f"the plan needs {first.size} distinct frames (sizes x vary values), more than {MAX_TEMPLATES}: "
            "narrow the vary ranges, use fewer sizes or send fewer packets"
        )
    template_sizes = sizes[first]
    nbytes = int(template_sizes.sum())
    if nbytes > MAX_TEMPLATE_BYTES:
        raise ConfigError(
            f"the plan's {first.size} distinct frames take {nbytes} B, more than {MAX_TEMPLATE_BYTES} B: "
            "narrow the vary ranges, use smaller or fewer sizes"
        )
    bases = {s: generated_frame(s) for s in dict.fromkeys(int(s) for s in template_sizes)}
    if varies:
        templates = build_templates(
            bases, template_sizes, [(v.field, col[first]) for v, col in zip(varies, columns[1:], strict=True)]
        )
    else:
        templates = [bases[int(s)] for s in template_sizes]
    return FrameSet.of(templates, stamped=True), frame_of


def _distinct(columns: list[np.ndarray[Any, Any]]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per row: the index of its distinct value combination, numbered in order of first appearance; and the
    first row of each combination.

    One column at a time: each new column's codes combine with the codes so far (at most n x n < 2**63
    for n <= MAX_PACKETS) and are renumbered densely, so no combined code overflows.
    """
    code = np.zeros(columns[0].size, dtype=np.int64)
    for col in columns:
        values, inverse = np.unique(col, return_inverse=True)
        _, code = np.unique(code * values.size + inverse.reshape(-1), return_inverse=True)
        code = code.reshape(-1)
    _, first = np.unique(code, return_index=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[code], first[order]


# -- an offsets file ----------------------------------------------------------------------------
_WHOLE = re.compile(r"^[-+]?[0-9]+$")


def read_offsets(path: str | Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Deadlines (ns after the start) and frame sizes (0: none given) from a CSV file, one packet a line.

    A line is ``deadline_ns`` or ``deadline_ns,size_bytes``; ``#`` starts a comment; the first line may be a
    header (its first cell not a number). Deadlines must not decrease.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"offsets {name!r} cannot be read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"offsets {name!r} is not a text (UTF-8) file: give one deadline in ns per line") from None
    due: list[int] = []
    sizes: list[int] = []
    seen_content = False
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        cells = [c.strip() for c in body.split(",")]
        where = f"offsets {name!r} line {lineno}"
        if not seen_content:
            seen_content = True
            if re.match(r"^[A-Za-z_\"']", cells[0]):
                continue  # a header
        if len(cells) > 2:
            raise ConfigError(f"{where}: {len(cells)} cells: give deadline_ns or deadline_ns,size_bytes")
        if not _WHOLE.match(cells[0]):
            raise ConfigError(f"{where}: {cells[0]!r} is not a deadline: give a whole number of ns, 0..{MAX_SPAN_NS}")
        ns = int(cells[0])
        if not 0 <= ns <= MAX_SPAN_NS:
            raise ConfigError(f"{where}: deadline {ns} ns is out of range: give 0..{MAX_SPAN_NS} ns")
        if due and ns < due[-1]:
            raise ConfigError(
                f"{where}: deadline {ns} ns is before the one above ({due[-1]} ns): deadlines must not decrease"
            )
        nbytes = 0
        if len(cells) == 2 and cells[1]:
            if not _WHOLE.match(cells[1]):
                raise ConfigError(
                    f"{where}: size {cells[1]!r} is not a whole number of bytes: give {MIN_FRAME}..{MAX_FRAME}"
                )
            nbytes = int(cells[1])
            if not MIN_FRAME <= nbytes <= MAX_FRAME:
                raise ConfigError(f"{where}: size {nbytes} B is out of range: give {MIN_FRAME}..{MAX_FRAME} bytes")
        if len(due) == MAX_PACKETS:
            raise ConfigError(f"offsets {name!r} has more than {MAX_PACKETS} deadlines: give at most {MAX_PACKETS}")
        due.append(ns)
        sizes.append(nbytes)
    if not due:
        raise ConfigError(f"offsets {name!r} has no deadlines: give one deadline in ns per line (optionally ,size)")
    return np.array(due, dtype=np.int64), np.array(sizes, dtype=np.int64)


__all__ = ["IMIX_PATTERN", "IMIX_SIZES", "L1_OVERHEAD", "MAX_TEMPLATES", "Rate", "build_plan", "format_rate",
           "parse_rate", "read_offsets"]  # fmt: skip
