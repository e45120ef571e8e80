"""Faults: per-packet flags of a plan the device model honours, and what a correct driver does with each.

DESIGN §4: a fault is a flag on a plan entry; the device model carries it
out (``_engine/pnic_e1000.c``, the device model), and the verdict accounts for it per kind:
injected, delivered, dropped, misdelivered. What a correct e1000 driver
does with each kind is stated once, here, in :data:`KINDS` (8254x SDM
3.2.3; Linux ``e1000_clean_rx_irq`` / ``e1000_rx_checksum``):

- descriptor errors ``rxe ce se seq cxe``: drop the frame and count it;
- checksum errors ``ipe tcpe`` (the offload checked, and found a bad
  checksum): deliver the frame, never marked as checksum-checked;
- ``split:N``: a frame over N descriptors, EOP on the last only (also what
  a frame longer than the buffer gets): reassemble it, or drop it whole --
  never deliver a part;
- ``spurious``: a raise with no new descriptor (answered before the device
  writes on): take nothing;
- ``lost-irq``: the descriptor is written, the line is not raised: the next
  interrupt collects it;
- ``early-irq:D``: the line is raised D ns -- and the handler it woke has
  returned -- before the frame and its descriptor are written (the interrupt
  overtook the DMA writes): take
  nothing that is not DD yet -- its buffer still holds what was there, or
  the sanitizer's poison -- and collect it on the next interrupt;
- ``burst:N``: N packets back to back at once, more than the ring holds:
  the device drops what does not fit (MPC), the driver delivers the rest.

A spec is ``KIND[:ARG][:RATE | @I,J,...]``: RATE (0..1) draws each packet
with that probability from a seeded generator (the run's ``fault_seed``),
``@I,J`` names packet indices of the plan; with neither, one packet in a
hundred, at least one. A lost or early interrupt on the plan's last packet
gets a spurious entry after it -- the "next interrupt" that must collect it
(Linux e1000's watchdog does the same with an ICS write).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .layout import (
    MAX_FRAME,
    RXD_ERR_CE,
    RXD_ERR_CXE,
    RXD_ERR_IPE,
    RXD_ERR_RXE,
    RXD_ERR_SE,
    RXD_ERR_SEQ,
    RXD_ERR_TCPE,
    SLOT_NO_RAISE,
    SLOT_SPURIOUS,
)
from .plan import MAX_PACKETS, Plan

#: with no RATE and no @indices: this share of the packets, at least one
DEFAULT_RATE = 0.01
#: the longest early-interrupt delay: the device spins it out before the next packet
MAX_EARLY_NS = 1_000_000
MAX_BURST = 65_536


@dataclass(frozen=True)
class Kind:
    """One fault kind: its bit in ``SLOT.faults``, what the device does, what a correct driver does."""

    name: str
    bit: int
    injects: str
    expected: str
    #: a descriptor error bit the device writes (0: none)
    error: int = 0
    #: the kind takes an argument (split:N, early-irq:D, burst:N)
    arg: str = ""
    #: why the kind does not apply to virtio-net ("": it does)
    not_virtio: str = ""


_FRAME_ERRORS = {"rxe": RXD_ERR_RXE, "ce": RXD_ERR_CE, "se": RXD_ERR_SE, "seq": RXD_ERR_SEQ, "cxe": RXD_ERR_CXE}
_NO_ERROR_BITS = "virtio-net has no receive error bits: its device drops a damaged frame itself (VIRTIO 1.1 5.1.6)"
_NO_CSUM = ("virtio-net reports a checksum only as VIRTIO_NET_HDR_F_DATA_VALID under VIRTIO_NET_F_GUEST_CSUM, "
            "which the model does not offer")  # fmt: skip
KINDS: dict[str, Kind] = {
    **{
        name: Kind(name, i, f"the descriptor's error bit {name.upper()}", "drop the frame and count it in rx_errors",
                   error=bit, not_virtio=_NO_ERROR_BITS)
        for i, (name, bit) in enumerate(_FRAME_ERRORS.items())
    },
    "ipe": Kind("ipe", 5, "IPCS set with IPE: the offload found a bad IPv4 header checksum",
                "deliver it, not marked checksum-checked", error=RXD_ERR_IPE, not_virtio=_NO_CSUM),
    "tcpe": Kind("tcpe", 6, "TCPCS set with TCPE: the offload found a bad TCP/UDP checksum",
                 "deliver it, not marked checksum-checked", error=RXD_ERR_TCPE, not_virtio=_NO_CSUM),
    "split": Kind("split", 7, "the frame over N descriptors, EOP on the last only",
                  "reassemble it, or drop it whole; never deliver a part", arg="N"),
    "spurious": Kind("spurious", 8, "a raise with no new descriptor, answered before the device writes on",
                     "take nothing"),
    "lost-irq": Kind("lost-irq", 9, "the descriptor written, the line not raised",
                     "collect it at the next interrupt"),
    "early-irq": Kind("early-irq", 10, "the line raised D ns, and answered, before the frame and DD are written",
                      "take nothing before DD; collect it at the next interrupt", arg="D"),
    "burst": Kind("burst", 11, "N packets back to back, more than the ring holds",
                  "deliver every frame the device stored (it drops the rest: MPC)", arg="N"),
}  # fmt: skip
#: what a driver that mishandles each kind usually gets wrong, for the verdict
MEANING = {
    **dict.fromkeys(_FRAME_ERRORS, "a frame with a descriptor error bit must be dropped and counted (SDM 3.2.3)"),
    "ipe": "a frame whose checksum the device found bad was handed up as checksum-checked (CHECKSUM_UNNECESSARY): "
    "check IPE/TCPE before trusting IPCS/TCPCS",
    "tcpe": "a frame whose checksum the device found bad was handed up as checksum-checked (CHECKSUM_UNNECESSARY): "
    "check IPE/TCPE before trusting IPCS/TCPCS",
    "split": "a part of a frame over several descriptors was delivered as a frame: gather until EOP, or drop "
    "every part until EOP",
    "spurious": "an interrupt with no new descriptor made the driver take one",
    "lost-irq": "a descriptor written without its own interrupt was taken twice",
    "early-irq": "a descriptor taken before its DD was set: a buffer read before the device wrote it",
    "burst": "frames of a burst that overflowed the ring were delivered twice",
}


@dataclass(frozen=True)
class FaultSpec:
    """One ``--fault``: its kind, argument, and which packets (a rate, or indices)."""

    kind: Kind
    arg: int = 0
    rate: float | None = None
    indices: tuple[int, ...] = ()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.name}
        if self.kind.arg:
            out[self.kind.arg] = self.arg
        if self.indices:
            out["at"] = list(self.indices)
        else:
            out["rate"] = DEFAULT_RATE if self.rate is None else self.rate
        return out


_SPEC = re.compile(r"^(?P<kind>[a-z-]+)(?::(?P<arg>[^:@]+))?(?::(?P<rate>[^:@]+))?(?:@(?P<at>.*))?$")


def _number(text: str, what: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"fault {spec!r}: {what} {text!r} is not a number") from None


def parse(spec: str) -> FaultSpec:
    """One ``KIND[:ARG][:RATE | @I,J,...]``; :class:`ConfigError` names what is wrong and the accepted range."""
    from .units import parse_interval

    m = _SPEC.match(spec.strip().lower())
    kind = KINDS.get(m.group("kind")) if m else None
    if m is None or kind is None:
        raise ConfigError(f"fault {spec!r} is unknown: give one of {', '.join(_usage(k) for k in KINDS.values())}")
    arg_text, rate_text = m.group("arg"), m.group("rate")
    if not kind.arg and arg_text is not None:  # rxe:0.1 -- the one field is the rate
        if rate_text is not None:
            raise ConfigError(f"fault {spec!r}: {kind.name} takes no argument: give {kind.name}[:RATE | @I,J]")
        arg_text, rate_text = None, arg_text
    arg = 0
    if kind.arg:
        if arg_text is None:
            raise ConfigError(f"fault {spec!r}: give {_usage(kind)}")
        if kind.name == "early-irq":
            arg = parse_interval(arg_text, "early-irq delay", signed=True)
            if not 1 <= arg <= MAX_EARLY_NS:
                raise ConfigError(f"fault {spec!r}: the early-irq delay must be 1ns..1ms (e.g. early-irq:2us)")
        else:
            n = _number(arg_text, kind.arg, spec)
            top = 4095 if kind.name == "split" else MAX_BURST
            if not n.is_integer() or not 2 <= n <= top:
                raise ConfigError(f"fault {spec!r}: {kind.name}:N needs a whole N, 2..{top}")
            arg = int(n)
    rate = None
    if rate_text is not None:
        rate = _number(rate_text, "rate", spec)
        if not 0 <= rate <= 1:
            raise ConfigError(f"fault {spec!r}: the rate {rate_text} is out of range: give 0..1 (a share of packets)")
    indices: tuple[int, ...] = ()
    if m.group("at") is not None:
        if rate is not None:
            raise ConfigError(f"fault {spec!r}: give a rate or @indices, not both")
        try:
            indices = tuple(sorted({int(i) for i in m.group("at").split(",") if i.strip()}))
        except ValueError:
            raise ConfigError(f"fault {spec!r}: @ takes packet indices, e.g. @3,17") from None
        if not indices or indices[0] < 0:
            raise ConfigError(f"fault {spec!r}: @ takes packet indices 0 or more, e.g. @3,17")
    return FaultSpec(kind, arg, rate, indices)


def _usage(kind: Kind) -> str:
    return f"{kind.name}:{kind.arg}" if kind.arg else kind.name


def apply(
    plan: Plan, specs: Sequence[str | FaultSpec], seed: int, ring_size: int, buffer_size: int, device: str = "e1000"
) -> Plan:
    """The plan with its faults, and with every frame longer than the buffer split over as many
    descriptors as it takes; bounds against the ring, and what applies to ``device``, are checked here
    (:class:`ConfigError`). On virtio-net, ``split:N`` writes the frame over N buffers (MRG_RXBUF's
    num_buffers), and the other kinds but the error bits mean what they mean on e1000."""
    parsed = [s if isinstance(s, FaultSpec) else parse(s) for s in specs]
    for spec in parsed:
        if device == "virtio-net" and spec.kind.not_virtio:
            raise ConfigError(f"fault {spec.kind.name} applies to e1000 only: {spec.kind.not_virtio}")
    slots = plan.slots.copy()
    lengths = np.asarray(plan.frames.table["length"], dtype=np.int64)[slots["frame"]]
    if (lengths > MAX_FRAME).any():
        raise ConfigError(f"frames must be at most {MAX_FRAME} bytes")
    rng = np.random.default_rng(seed)
    packets = np.flatnonzero((slots["flags"] & SLOT_SPURIOUS) == 0)
    inserts: list[tuple[int, str, int]] = []  # (entry, kind, arg): entries to add before/after
    for spec in parsed:
        chosen = _choose(spec, packets, rng)
        kind = spec.kind
        slots["faults"][chosen] |= np.uint16(1 << kind.bit)
        if kind.error:
            slots["flags"][chosen] |= np.uint32(kind.error)
        elif kind.name == "split":
            if spec.arg >= ring_size:
                raise ConfigError(f"fault split:{spec.arg} needs {spec.arg} descriptors: the ring has {ring_size} "
                                  f"(give N below {ring_size})")  # fmt: skip
            slots["parts"][chosen] = np.minimum(spec.arg, lengths[chosen]).astype(np.uint16)
        elif kind.name == "lost-irq":
            slots["flags"][chosen] |= np.uint32(SLOT_NO_RAISE)
        elif kind.name == "early-irq":
            slots["early_ns"][chosen] = spec.arg
        inserts += [(int(i), kind.name, spec.arg) for i in chosen if kind.name in ("spurious", "burst")]
    # A frame longer than a buffer takes as many descriptors as it needs (EOP on the last).
    need = -(-lengths // buffer_size)
    slots["parts"] = np.where(need > 1, np.maximum(slots["parts"], need), slots["parts"]).astype(np.uint16)
    top = int(slots["parts"].max()) if slots.size else 0
    if top >= ring_size:
        raise ConfigError(f"a frame needs {top} descriptors of {buffer_size} B: the ring has {ring_size}; "
                          "give a larger --buffer-size or --ring-size")  # fmt: skip
    slots = _insert(slots, inserts)
    real = np.flatnonzero((slots["flags"] & SLOT_SPURIOUS) == 0)
    if real.size and real[-1] == slots.size - 1:
        # the "next interrupt" a lost or early one on the last packet needs
        tail = slots[int(real[-1])]
        if tail["flags"] & SLOT_NO_RAISE or tail["early_ns"]:
            extra = np.zeros(1, dtype=slots.dtype)
            extra["due_ns"] = int(slots["due_ns"][-1]) + max(int(tail["early_ns"]) * 2, 100_000)
            extra["flags"] = SLOT_SPURIOUS
            slots = np.concatenate([slots, extra])
    if slots.size > MAX_PACKETS:
        raise ConfigError(f"with its faults the plan has {slots.size} entries: give at most {MAX_PACKETS}")
    origin = dict(plan.origin)
    if parsed:
        origin["faults"] = [*origin.get("faults", []), *(s.describe() for s in parsed)]
        origin["fault_seed"] = seed
    return Plan(slots, plan.frames, origin)


def _choose(spec: FaultSpec, packets: np.ndarray[Any, Any], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    if spec.indices:
        past = [i for i in spec.indices if i >= packets.size]
        if past:
            raise ConfigError(
                f"fault {spec.kind.name}@{past[0]}: the plan has {packets.size} packets "
                f"(give indices 0..{packets.size - 1})"
            )
        return packets[list(spec.indices)]
    rate = DEFAULT_RATE if spec.rate is None else spec.rate
    picked = packets[rng.random(packets.size) < rate]
    if spec.rate is None and picked.size == 0 and packets.size:
        picked = packets[[int(rng.integers(packets.size))]]
    return picked


def _insert(slots: np.ndarray[Any, Any], inserts: list[tuple[int, str, int]]) -> np.ndarray[Any, Any]:
    """Spurious entries before their packet (halfway from the one before); a burst's N-1 extra copies at its
    packet's deadline."""
    if not inserts:
        return slots
    pieces: list[np.ndarray[Any, Any]] = []
    start = 0
    due = slots["due_ns"].astype(np.int64)
    # At one packet, its spurious entry before its burst's copies (which must not carry the spurious mark).
    for entry, kind, arg in sorted(inserts, key=lambda e: (e[0], e[1] != "spurious")):
        pieces.append(slots[start:entry])
        start = entry
        if kind == "spurious":
            extra = np.zeros(1, dtype=slots.dtype)
            before = int(due[entry - 1]) if entry else 0
            extra["due_ns"] = (before + int(due[entry])) // 2
            extra["flags"] = SLOT_SPURIOUS
            extra["faults"] = 1 << KINDS["spurious"].bit
            slots["faults"][entry] &= np.uint16(~(1 << KINDS["spurious"].bit) & 0xFFFF)
        else:
            extra = np.repeat(slots[entry : entry + 1], arg - 1)
        pieces.append(extra)
    pieces.append(slots[start:])
    return np.concatenate(pieces)


def accounts(
    slots: np.ndarray[Any, Any],
    stored: np.ndarray[Any, Any],
    seq: np.ndarray[Any, Any],
    checked: np.ndarray[Any, Any] | None,
    partial: np.ndarray[Any, Any] | None,
    woken: np.ndarray[Any, Any] | None = None,
) -> dict[str, dict[str, int]]:
    """Per fault kind in the plan: injected, delivered, dropped, misdelivered (the last fails a run).

    ``seq`` is, per delivery, the packet it was matched to (-1: none); ``checked`` per delivery, whether the
    driver marked it checksum-checked; ``partial`` per delivery, the packet it was a part of (split frames);
    ``woken`` per delivery, the entry whose raise woke the handler run that made it (-1: not known). A bad
    delivery (matching no frame, or a frame again) made in a run a spurious or an early raise woke is
    that fault misdelivered: the driver took something the interrupt did not bring.
    """
    sent = len(stored)
    mask = slots["faults"][:sent]
    out: dict[str, dict[str, int]] = {}
    matched = seq[(seq >= 0) & (seq < sent)]
    times = np.bincount(matched, minlength=sent) if sent else np.zeros(0, np.int64)
    bad = np.zeros(len(seq), dtype=bool)
    if len(seq):
        first = np.zeros(len(seq), dtype=bool)
        good = np.flatnonzero(seq >= 0)
        first[good[np.unique(seq[good], return_index=True)[1]]] = True
        bad = ~first
    for kind in KINDS.values():
        has = (mask & (1 << kind.bit)) != 0
        injected = int(has.sum())
        if not injected:
            continue
        took = 0
        if woken is not None and len(woken) and kind.name in ("spurious", "early-irq"):
            by = woken[bad]
            took = int(np.count_nonzero(has[by[(by >= 0) & (by < sent)]]))
        if kind.name == "spurious":
            out[kind.name] = {"injected": injected, "delivered": 0, "dropped": 0, "misdelivered": took}
            continue
        delivered = int(np.count_nonzero(has & (times > 0)))
        twice = int((times[has] - 1).clip(min=0).sum())
        wrong = twice + took
        if kind.error and kind.name in _FRAME_ERRORS:
            wrong += delivered
        elif kind.error and checked is not None and checked.size:
            marked = seq[checked.astype(bool) & (seq >= 0) & (seq < sent)]
            wrong += int(np.count_nonzero(has[marked]))
        elif kind.name == "split" and partial is not None and partial.size:
            parts = partial[(partial >= 0) & (partial < sent)]
            wrong += int(np.count_nonzero(has[parts]))
        out[kind.name] = {
            "injected": injected,
            "delivered": delivered,
            "dropped": injected - delivered,
            "misdelivered": wrong,
        }
    return out


def frame_error_count(slots: np.ndarray[Any, Any], stored: np.ndarray[Any, Any]) -> int:
    """Stored entries whose descriptor carries a frame error (the drops a driver must count)."""
    from .layout import RXD_ERR_FRAME

    return int(np.count_nonzero(stored & ((slots["flags"][: len(stored)] & RXD_ERR_FRAME) != 0)))


__all__ = ["KINDS", "MEANING", "FaultSpec", "Kind", "accounts", "apply", "parse"]
