"""Faults: their specs, the device model carrying them out, the ring sanitizer, and the accounts (sans-IO).

DESIGN §4. A fault is a flag on a plan entry (``pseudonic.faults``); the device
model writes it into the ring (``_engine/pnic_e1000.c``); the sanitizer checks
every hand-over of descriptors at the RDT write (``_engine/pnic_sanitize.c``);
the verdict accounts for each kind: injected, delivered, dropped, misdelivered.
Everything here runs on plain buffers: the device's send loop in this process
with no driver, the driver's part played by the test.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment, run_device
from pseudonic import _engine, faults
from pseudonic.errors import ConfigError
from pseudonic.faults import DEFAULT_RATE, KINDS, MEANING, FaultSpec
from pseudonic.frames import (
    STAMP_LEN,
    STAMP_OFF,
    UDP_CSUM_OFF,
    FrameSet,
    generated_frame,
    internet_checksum,
    ipv4_udp_ok,
    ones_sum,
    read_stamp,
)
from pseudonic.layout import (
    ICR_RXDMT0,
    ICR_RXO,
    ICR_RXT0,
    POISON,
    RXCSUM_IPOFL,
    RXCSUM_TUOFL,
    RXD_ERR_FRAME,
    RXD_ERR_IPE,
    RXD_ERR_TCPE,
    RXD_STAT_DD,
    RXD_STAT_EOP,
    RXD_STAT_IPCS,
    RXD_STAT_IXSM,
    RXD_STAT_TCPCS,
    SAN_KINDS,
    SLOT,
    SLOT_ERRORS_MASK,
    SLOT_NO_RAISE,
    SLOT_SPURIOUS,
    TX_DROPPED,
    TX_RAISED,
    TX_SPURIOUS,
    TX_STORED,
    SegmentView,
)
from pseudonic.plan import Plan
from pseudonic.schedule import from_offsets

RING = 8
BUF = 2048
GAP_NS = 1_000
#: an argument for each kind that takes one, as typed and as parsed
ARGS = {"split": ("3", 3), "early-irq": ("2us", 2_000), "burst": ("4", 4)}
FRAME_ERRORS = [name for name, kind in KINDS.items() if kind.error & RXD_ERR_FRAME]
#: kinds that mark the packets they pick and add no entries
MARKING = [name for name in KINDS if name not in ("spurious", "burst")]
NO_DESCRIPTOR = 0xFFFF_FFFF
POISON_BYTES = POISON.to_bytes(4, "little")


def bit(name: str) -> int:
    return 1 << KINDS[name].bit


def spec_text(name: str) -> str:
    """The kind with its argument if it takes one: 'rxe', 'split:3'."""
    return f"{name}:{ARGS[name][0]}" if KINDS[name].arg else name


@functools.cache
def frame_of(size: int) -> bytes:
    return generated_frame(size)


def plan_of(count: int, frames: FrameSet | None = None, which: Sequence[int] | int = 0) -> Plan:
    """``count`` packets ``GAP_NS`` apart."""
    slots = from_offsets([GAP_NS * i for i in range(count)], frames=which)
    return Plan.make(slots, frames or FrameSet.of([frame_of(128)], stamped=True), {"kind": "test"})


def faulted(plan: Plan, *specs: str, seed: int = 0, ring_size: int = RING, buffer_size: int = BUF) -> Plan:
    return faults.apply(plan, list(specs), seed=seed, ring_size=ring_size, buffer_size=buffer_size)


def real(plan: Plan) -> np.ndarray[Any, Any]:
    """The entries that carry a packet."""
    slots: np.ndarray[Any, Any] = plan.slots[(plan.slots["flags"] & SLOT_SPURIOUS) == 0]
    return slots


def marked(plan: Plan, name: str) -> list[int]:
    """The packets (numbered as in the plan before faults) that carry ``name``'s bit."""
    return [int(i) for i in np.flatnonzero(real(plan)["faults"] & bit(name))]


def descriptors(plan: Plan, entry: int = 0) -> int:
    """The descriptors an entry's frame is written over (parts 0 or 1: one)."""
    return max(int(plan.slots["parts"][entry]), 1)


def config_error(call: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """The ConfigError ``call`` raises: its message, one line."""
    with pytest.raises(ConfigError) as exc:
        call(*args, **kwargs)
    message = str(exc.value)
    assert "\n" not in message, "a ConfigError is one line"
    return message


# -- fault specs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_parses_bare_with_a_rate_and_with_indices(name: str) -> None:
    kind = KINDS[name]
    arg = ARGS[name][1] if kind.arg else 0
    head = spec_text(name)
    assert faults.parse(head) == FaultSpec(kind, arg)
    assert faults.parse(f"{head}:0.25") == FaultSpec(kind, arg, rate=0.25)
    assert faults.parse(f"{head}:0") == FaultSpec(kind, arg, rate=0.0)
    assert faults.parse(f"{head}:1") == FaultSpec(kind, arg, rate=1.0)
    assert faults.parse(f"{head}@5,2,5") == FaultSpec(kind, arg, indices=(2, 5))
    assert faults.parse(f" {head.upper()}@0 ") == FaultSpec(kind, arg, indices=(0,))


def test_a_spec_without_rate_or_indices_takes_the_default_rate() -> None:
    assert faults.parse("rxe").describe() == {"kind": "rxe", "rate": DEFAULT_RATE}
    assert faults.parse("split:3:0.5").describe() == {"kind": "split", "N": 3, "rate": 0.5}
    assert faults.parse("early-irq:2us@7,1").describe() == {"kind": "early-irq", "D": 2_000, "at": [1, 7]}


@pytest.mark.parametrize(
    ("spec", "wording"),
    [
        ("bogus", r"^fault 'bogus' is unknown: give one of rxe, ce, se, seq, cxe, ipe, tcpe, split:N, spurious, "
                  r"lost-irq, early-irq:D, burst:N$"),
        ("rxe:1.5", r"^fault 'rxe:1\.5': the rate 1\.5 is out of range: give 0\.\.1 \(a share of packets\)$"),
        ("ce:-0.1", r"^fault 'ce:-0\.1': the rate -0\.1 is out of range: give 0\.\.1"),
        ("tcpe:nan", r"^fault 'tcpe:nan': the rate nan is out of range: give 0\.\.1"),
        ("split:3:2", r"^fault 'split:3:2': the rate 2 is out of range: give 0\.\.1"),
        ("rxe:often", r"^fault 'rxe:often': rate 'often' is not a number$"),
        ("split", r"^fault 'split': give split:N$"),
        ("split:1", r"^fault 'split:1': split:N needs a whole N, 2\.\.4095$"),
        ("split:2.5", r"^fault 'split:2\.5': split:N needs a whole N, 2\.\.4095$"),
        ("split:4096", r"^fault 'split:4096': split:N needs a whole N, 2\.\.4095$"),
        ("burst:1", r"^fault 'burst:1': burst:N needs a whole N, 2\.\.65536$"),
        ("early-irq", r"^fault 'early-irq': give early-irq:D$"),
        ("early-irq:-2us", r"^fault 'early-irq:-2us': the early-irq delay must be 1ns\.\.1ms \(e\.g\. early-irq:2us\)"),
        ("early-irq:0", r"^fault 'early-irq:0': the early-irq delay must be 1ns\.\.1ms"),
        ("early-irq:2ms", r"^fault 'early-irq:2ms': the early-irq delay must be 1ns\.\.1ms"),
        ("rxe@-1", r"^fault 'rxe@-1': @ takes packet indices 0 or more, e\.g\. @3,17$"),
        ("rxe@", r"^fault 'rxe@': @ takes packet indices 0 or more"),
        ("rxe@x", r"^fault 'rxe@x': @ takes packet indices, e\.g\. @3,17$"),
        ("rxe:0.5@1", r"^fault 'rxe:0\.5@1': give a rate or @indices, not both$"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_one_line_naming_the_problem_and_the_range(spec: str, wording: str) -> None:
    assert re.match(wording, config_error(faults.parse, spec))


@pytest.mark.parametrize("spec", ["rxe:0.1:0.2", "lost-irq:3:0.5"])
def test_a_kind_without_an_argument_refuses_two_fields(spec: str) -> None:
    config_error(faults.parse, spec)


def test_split_needs_fewer_descriptors_than_the_ring_has() -> None:
    plan = plan_of(3, FrameSet.generated(1000))
    assert faulted(plan, "split:7@0", ring_size=8).slots["parts"][0] == 7
    message = config_error(faulted, plan, "split:8@0", ring_size=8)
    assert message == "fault split:8 needs 8 descriptors: the ring has 8 (give N below 8)"


def test_an_index_past_the_plan_names_the_packets_there_are() -> None:
    plan = plan_of(3)
    assert marked(faulted(plan, "rxe@2"), "rxe") == [2]
    assert config_error(faulted, plan, "rxe@1,3") == "fault rxe@3: the plan has 3 packets (give indices 0..2)"


def test_a_frame_that_needs_the_whole_ring_is_refused_in_apply() -> None:
    plan = plan_of(1, FrameSet.from_user([bytes(8 * BUF)]))
    message = config_error(faulted, plan, ring_size=8)
    assert message == (
        "a frame needs 8 descriptors of 2048 B: the ring has 8; give a larger --buffer-size or --ring-size"
    )


rates_specs = st.lists(
    st.tuples(st.sampled_from(list(KINDS)), st.floats(0, 1, allow_nan=False)), min_size=1, max_size=4
).map(lambda pairs: [f"{spec_text(name)}:{rate!r}" for name, rate in pairs])


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 200), specs=rates_specs, seed=st.integers(0, 2**63))
def test_the_same_seed_gives_the_same_plan(count: int, specs: list[str], seed: int) -> None:
    plan = plan_of(count)
    first, again = faulted(plan, *specs, seed=seed), faulted(plan, *specs, seed=seed)
    assert first.slots.tobytes() == again.slots.tobytes()
    assert first.origin == again.origin and first.origin["fault_seed"] == seed


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 200), name=st.sampled_from(list(KINDS)), seed=st.integers(0, 2**63))
def test_a_rate_of_zero_injects_nothing(count: int, name: str, seed: int) -> None:
    plan = plan_of(count)
    out = faulted(plan, f"{spec_text(name)}:0", seed=seed)
    assert out.slots.tobytes() == plan.slots.tobytes()


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 200), name=st.sampled_from(MARKING), seed=st.integers(0, 2**63))
def test_a_rate_of_one_injects_every_packet(count: int, name: str, seed: int) -> None:
    out = faulted(plan_of(count, FrameSet.generated(1000)), f"{spec_text(name)}:1", seed=seed)
    assert marked(out, name) == list(range(count))


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 200),
    name=st.sampled_from(MARKING),
    picks=st.lists(st.integers(0, 199), min_size=1, max_size=10),
    seed=st.integers(0, 2**63),
)
def test_indices_mark_exactly_those_packets(count: int, name: str, picks: list[int], seed: int) -> None:
    at = sorted({p % count for p in picks})
    out = faulted(plan_of(count, FrameSet.generated(1000)), f"{spec_text(name)}@{','.join(map(str, at))}", seed=seed)
    assert marked(out, name) == at


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 200), name=st.sampled_from(MARKING), seed=st.integers(0, 2**63))
def test_the_default_rate_injects_at_least_one_packet(count: int, name: str, seed: int) -> None:
    assert marked(faulted(plan_of(count, FrameSet.generated(1000)), spec_text(name), seed=seed), name)


@pytest.mark.parametrize("name", [*FRAME_ERRORS, "ipe", "tcpe"])
def test_an_error_kind_puts_its_bit_in_the_entry_flags(name: str) -> None:
    out = faulted(plan_of(3), f"{name}@1")
    assert out.slots["flags"].tolist() == [0, KINDS[name].error, 0]
    assert KINDS[name].error & ~SLOT_ERRORS_MASK == 0


def test_frame_error_kinds_are_frame_errors_and_checksum_kinds_are_not() -> None:
    assert sorted(FRAME_ERRORS) == ["ce", "cxe", "rxe", "se", "seq"]
    assert KINDS["ipe"].error == RXD_ERR_IPE and KINDS["tcpe"].error == RXD_ERR_TCPE
    assert not (RXD_ERR_IPE | RXD_ERR_TCPE) & RXD_ERR_FRAME


def test_every_kind_has_its_own_bit_and_a_meaning() -> None:
    bits = [kind.bit for kind in KINDS.values()]
    assert len(set(bits)) == len(bits) and max(bits) < 16
    assert set(MEANING) == set(KINDS)


def test_lost_irq_clears_the_raise_and_early_irq_sets_its_delay() -> None:
    out = faulted(plan_of(4), "lost-irq@1", "early-irq:3us@2")
    assert out.slots["flags"][:4].tolist() == [0, SLOT_NO_RAISE, 0, 0]
    assert out.slots["early_ns"][:4].tolist() == [0, 0, 3_000, 0]


def test_split_spreads_the_frame_over_n_descriptors_but_never_more_than_its_bytes() -> None:
    plan = plan_of(2, FrameSet.from_user([bytes(60), bytes(3)]), which=[0, 1])
    assert faulted(plan, "split:5@0,1").slots["parts"].tolist() == [5, 3]


def test_a_spurious_entry_goes_before_its_packet_halfway_from_the_one_before() -> None:
    out = faulted(plan_of(4), "spurious@2")
    assert out.slots["due_ns"].tolist() == [0, 1_000, 1_500, 2_000, 3_000]
    assert out.slots["flags"].tolist() == [0, 0, SLOT_SPURIOUS, 0, 0]
    assert out.slots["faults"].tolist() == [0, 0, bit("spurious"), 0, 0], "the bit is on the spurious entry only"
    assert out.packets == 4
    assert faulted(plan_of(2), "spurious@0").slots["due_ns"].tolist() == [0, 0, 1_000]


def test_a_burst_of_n_adds_n_minus_one_copies_at_the_same_deadline() -> None:
    out = faulted(plan_of(3), "burst:4@1")
    assert out.slots["due_ns"].tolist() == [0, 1_000, 1_000, 1_000, 1_000, 2_000]
    assert out.slots["faults"].tolist() == [0] + [bit("burst")] * 4 + [0]
    assert out.packets == 6


def test_spurious_and_burst_on_one_packet_keep_the_deadlines_in_order() -> None:
    out = faulted(plan_of(3), "spurious@1", "burst:3@1")
    due = out.slots["due_ns"].astype(np.int64)
    assert (np.diff(due) >= 0).all(), due.tolist()
    spurious = (out.slots["flags"] & SLOT_SPURIOUS) != 0
    assert ((out.slots["faults"] & bit("spurious")) != 0).tolist() == spurious.tolist()
    out.check(BUF)


@pytest.mark.parametrize(("spec", "after_ns"), [("lost-irq@3", 100_000), ("early-irq:300us@3", 600_000)])
def test_a_lost_or_early_irq_on_the_last_packet_gets_a_trailing_spurious_entry(spec: str, after_ns: int) -> None:
    out = faulted(plan_of(4), spec)
    assert len(out) == 5 and out.packets == 4
    tail = out.slots[-1]
    assert int(tail["flags"]) == SLOT_SPURIOUS and int(tail["faults"]) == 0
    assert int(tail["due_ns"]) == 3 * GAP_NS + after_ns


@pytest.mark.parametrize("spec", ["lost-irq@2", "early-irq:300us@0", "rxe@3", "spurious@3"])
def test_no_trailing_entry_when_the_last_packet_keeps_its_interrupt(spec: str) -> None:
    out = faulted(plan_of(4), spec)
    assert int(out.slots["flags"][-1]) & SLOT_SPURIOUS == 0


@pytest.mark.parametrize(
    ("length", "buffer_size", "parts"),
    [(60, 2048, 1), (2048, 2048, 1), (2049, 2048, 2), (9000, 2048, 5), (16384, 2048, 8), (1514, 256, 6)],
)
def test_a_frame_longer_than_the_buffer_takes_ceil_length_over_buffer_descriptors(
    length: int, buffer_size: int, parts: int
) -> None:
    plan = plan_of(1, FrameSet.from_user([bytes(length)]))
    assert descriptors(faulted(plan, ring_size=16, buffer_size=buffer_size)) == parts
    assert descriptors(faulted(plan, "split:2@0", ring_size=16, buffer_size=buffer_size)) == max(parts, 2)


# -- the device model -------------------------------------------------------------------------------


def device(ring_size: int = RING, buf_size: int = BUF, rdt: int | None = None, capacity: int = 64) -> SegmentView:
    """A plain segment whose ring is handed to the device (all but one descriptor), RXT0 unmasked."""
    view = plain_segment(ring_size, buf_size, capacity)
    _engine.write_rdt(view.buffer, ring_size - 1 if rdt is None else rdt)
    _engine.write_mask(view.buffer, "ims", ICR_RXT0)
    return view


def written(view: SegmentView, first: int, parts: int) -> list[int]:
    """The descriptors a frame written from ``first`` over ``parts`` descriptors takes, across the wrap."""
    return [(first + k) % view.ring_size for k in range(parts)]


def landed(view: SegmentView, descs: list[int]) -> bytes:
    """The frame as it landed: each descriptor's buffer over its length, in order."""
    return b"".join(bytes(view.buffer_of(d)[: int(view.ring["length"][d])]) for d in descs)


def assert_stamped(data: bytes, template: bytes, seq: int, stamp_ns: int) -> None:
    """``data`` is ``template`` with the stamp (seq, send time) and the UDP checksum the stamp changes."""
    assert read_stamp(data) == (seq, stamp_ns)
    assert len(data) == len(template)
    assert data[:UDP_CSUM_OFF] == template[:UDP_CSUM_OFF]
    assert data[UDP_CSUM_OFF + 2 : STAMP_OFF] == template[UDP_CSUM_OFF + 2 : STAMP_OFF]
    assert data[STAMP_OFF + STAMP_LEN :] == template[STAMP_OFF + STAMP_LEN :]
    assert ipv4_udp_ok(data)


def test_a_split_frame_has_dd_on_every_descriptor_and_eop_on_the_last_only() -> None:
    view = device()
    tx = run_device(view, faulted(plan_of(2, FrameSet.generated(1000)), "split:3@0"))
    assert tx["slot"].tolist() == [0, 3]
    status = view.ring["status"][:4].tolist()
    assert [s & RXD_STAT_DD for s in status] == [RXD_STAT_DD] * 4
    assert [s & RXD_STAT_EOP for s in status] == [0, 0, RXD_STAT_EOP, RXD_STAT_EOP]
    assert int(view.dev["rdh"][0]) == 4 and int(view.dev["gprc"][0]) == 2, "a split frame is one good packet"


def test_the_parts_of_a_split_frame_add_up_to_the_frame_as_stamped() -> None:
    view = device()
    plan = faulted(plan_of(2, FrameSet.generated(1000)), "split:3@1")
    tx = run_device(view, plan)
    descs = written(view, int(tx["slot"][1]), 3)
    assert [int(view.ring["length"][d]) for d in descs] == [334, 334, 332]
    assert_stamped(landed(view, descs), plan.frames.templates[0], 1, int(tx["start_ns"][1]))


def test_errors_and_csum_are_on_the_eop_descriptor_only() -> None:
    view = device()
    tx = run_device(view, faulted(plan_of(1, FrameSet.generated(1000)), "split:3@0", "ce@0"))
    descs = written(view, int(tx["slot"][0]), 3)
    assert [int(view.ring["errors"][d]) for d in descs] == [0, 0, KINDS["ce"].error]
    csum = [int(view.ring["csum"][d]) for d in descs]
    assert csum[:2] == [0, 0] and csum[2] == ones_sum(landed(view, descs)[14:])
    assert [int(view.ring["status"][d]) & (RXD_STAT_IPCS | RXD_STAT_TCPCS) for d in descs] == [
        0, 0, RXD_STAT_IPCS | RXD_STAT_TCPCS
    ]  # fmt: skip


def test_a_split_frame_without_enough_free_descriptors_is_dropped_whole() -> None:
    view = device(rdt=2)
    tx = run_device(view, faulted(plan_of(1, FrameSet.generated(1000)), "split:3@0"))
    assert int(tx["flags"][0]) & (TX_DROPPED | TX_STORED) == TX_DROPPED
    assert int(tx["slot"][0]) == NO_DESCRIPTOR
    assert int(view.dev["mpc"][0]) == 1 and int(view.dev["rdh"][0]) == 0
    assert _engine.read_icr(view.buffer) & ICR_RXO
    assert not view.ring["status"].any() and not view.ring["length"].any(), "no descriptor is written"


def test_after_a_split_frame_is_dropped_the_next_frame_takes_its_descriptors() -> None:
    view = device(rdt=2)
    frames = FrameSet.of([frame_of(1000), frame_of(128)], stamped=True)
    tx = run_device(view, faulted(plan_of(2, frames, which=[0, 1]), "split:3@0"))
    assert [int(f) & (TX_DROPPED | TX_STORED) for f in tx["flags"]] == [TX_DROPPED, TX_STORED]
    assert int(tx["slot"][1]) == 0
    assert_stamped(landed(view, [0]), frame_of(128), 1, int(tx["start_ns"][1]))


def test_a_split_frame_across_the_wrap() -> None:
    view = device()
    for seq in range(6):  # the device writes 0..5; the driver cleans them and hands them back: RDH 6, RDT 5
        _engine.receive(view.buffer, frame_of(128), STAMP_OFF, UDP_CSUM_OFF, seq, 0, 0)
    view.ring["status"][:] = 0
    _engine.write_rdt(view.buffer, 5)
    plan = faulted(plan_of(2, FrameSet.generated(1000)), "split:3@0")
    tx = run_device(view, plan)
    assert tx["slot"].tolist() == [6, 1]
    assert [int(view.ring["status"][d]) & RXD_STAT_EOP for d in (6, 7, 0)] == [0, 0, RXD_STAT_EOP]
    assert_stamped(landed(view, [6, 7, 0]), plan.frames.templates[0], 0, int(tx["start_ns"][0]))
    assert int(view.dev["rdh"][0]) == 2


def test_frames_written_one_per_descriptor_across_the_wrap_keep_their_order() -> None:
    view = device()
    for seq in range(5):
        _engine.receive(view.buffer, frame_of(128), STAMP_OFF, UDP_CSUM_OFF, seq, 0, 0)
    view.ring["status"][:] = 0
    _engine.write_rdt(view.buffer, 4)
    tx = run_device(view, faulted(plan_of(6), "rxe@1", "lost-irq@4"))
    assert tx["slot"].tolist() == [5, 6, 7, 0, 1, 2]
    assert [int(view.ring["errors"][d]) for d in (5, 6, 7, 0, 1, 2)] == [0, KINDS["rxe"].error, 0, 0, 0, 0]
    for seq, d in enumerate(tx["slot"].tolist()):
        assert_stamped(landed(view, [d]), frame_of(128), seq, int(tx["start_ns"][seq]))


def ipv4_frame(protocol: int, fragment: int = 0) -> bytes:
    """Ethernet/IPv4 (valid header checksum) carrying ``protocol``; ``fragment``: the flags/offset word (MF 0x2000)."""
    payload = bytes(46)
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, fragment, 64, protocol, 0,
                                   bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])))  # fmt: skip
    header[10:12] = struct.pack("!H", internet_checksum(bytes(header)))
    return bytes.fromhex("020000000002 020000000001 0800") + bytes(header) + payload


def non_ip_frame() -> bytes:
    return bytes.fromhex("020000000002 020000000001 88b5") + bytes(60)


FRAMES = {
    "udp": lambda: frame_of(128),
    "icmp": lambda: ipv4_frame(1),
    "fragment": lambda: ipv4_frame(17, fragment=0x2000),
    "non-ip": non_ip_frame,
}
BOTH = RXCSUM_IPOFL | RXCSUM_TUOFL


@pytest.mark.parametrize(
    ("rxcsum", "kind", "offload"),
    [
        (BOTH, "udp", RXD_STAT_IPCS | RXD_STAT_TCPCS),
        (BOTH, "icmp", RXD_STAT_IPCS),
        (BOTH, "fragment", RXD_STAT_IPCS),
        (BOTH, "non-ip", 0),
        (RXCSUM_IPOFL, "udp", RXD_STAT_IPCS),
        (RXCSUM_TUOFL, "udp", RXD_STAT_TCPCS),
        (RXCSUM_TUOFL, "icmp", 0),
        (0, "udp", RXD_STAT_IXSM),
        (0, "non-ip", RXD_STAT_IXSM),
    ],
)
def test_checksum_offload_status_follows_rxcsum_and_the_frame(rxcsum: int, kind: str, offload: int) -> None:
    view = device()
    view.drv["rxcsum"][0] = rxcsum
    frame = FRAMES[kind]()
    frames = FrameSet.of([frame], stamped=True) if kind == "udp" else FrameSet.from_user([frame])
    run_device(view, plan_of(1, frames))
    assert int(view.ring["status"][0]) == RXD_STAT_DD | RXD_STAT_EOP | offload
    assert int(view.ring["errors"][0]) == 0


def test_rxcsum_is_on_until_the_driver_turns_it_off() -> None:
    assert int(plain_segment().drv["rxcsum"][0]) == RXCSUM_IPOFL | RXCSUM_TUOFL


@settings(max_examples=40, deadline=None)
@given(size=st.integers(60, 6000), split=st.integers(1, 4), no_udp_checksum=st.booleans())
def test_the_descriptor_csum_is_the_ones_complement_sum_of_the_frame_from_byte_14(
    size: int, split: int, no_udp_checksum: bool
) -> None:
    template = bytearray(frame_of(size))
    if no_udp_checksum:  # RFC 768: zero means none, and the stamp is not compensated for
        template[UDP_CSUM_OFF : UDP_CSUM_OFF + 2] = bytes(2)
    specs = [f"split:{split}@1"] if split > 1 else []
    plan = faulted(plan_of(2, FrameSet.of([bytes(template)], stamped=True)), *specs)
    view = device()
    tx = run_device(view, plan)
    for entry in range(2):
        descs = written(view, int(tx["slot"][entry]), descriptors(plan, entry))
        data = landed(view, descs)
        assert read_stamp(data) == (entry, int(tx["start_ns"][entry]))
        assert int(view.ring["csum"][descs[-1]]) == ones_sum(data[14:])


@pytest.mark.parametrize("name", ["ipe", "tcpe"])
def test_a_checksum_error_is_reported_with_the_offload_that_checked(name: str) -> None:
    view = device()
    run_device(view, faulted(plan_of(3), f"{name}@1"))
    assert [int(e) for e in view.ring["errors"][:3]] == [0, KINDS[name].error, 0]
    assert int(view.ring["status"][1]) == RXD_STAT_DD | RXD_STAT_EOP | RXD_STAT_IPCS | RXD_STAT_TCPCS
    assert int(view.dev["gprc"][0]) == 3, "a bad checksum is not a frame error: the packet is good"


@pytest.mark.parametrize(("name", "kind"), [("ipe", "non-ip"), ("tcpe", "non-ip"), ("tcpe", "icmp")])
def test_a_checksum_error_comes_only_from_an_offload_that_checked(name: str, kind: str) -> None:
    view = device()
    run_device(view, faulted(plan_of(1, FrameSet.from_user([FRAMES[kind]()])), f"{name}@0"))
    status, errors = int(view.ring["status"][0]), int(view.ring["errors"][0])
    assert not errors & RXD_ERR_IPE or status & RXD_STAT_IPCS
    assert not errors & RXD_ERR_TCPE or status & RXD_STAT_TCPCS


@pytest.mark.parametrize("name", FRAME_ERRORS)
def test_a_frame_error_kind_sets_its_bit_and_the_packet_is_not_good(name: str) -> None:
    view = device()
    tx = run_device(view, faulted(plan_of(3), f"{name}@1"))
    assert [int(f) & TX_STORED for f in tx["flags"]] == [TX_STORED] * 3, "stored, for the driver to drop"
    assert [int(e) for e in view.ring["errors"][:3]] == [0, KINDS[name].error, 0]
    assert int(view.dev["gprc"][0]) == 2


def test_a_lost_irq_is_stored_but_not_raised_while_its_neighbours_are() -> None:
    view = device()
    tx = run_device(view, faulted(plan_of(3), "lost-irq@1"))
    assert tx["flags"].tolist() == [TX_STORED | TX_RAISED, TX_STORED, TX_STORED | TX_RAISED]
    assert int(view.line["doorbell"][0]) == 2 and view.raises["packet"][:2].tolist() == [0, 2]
    assert (view.ring["status"][:3] & RXD_STAT_DD).all()


def test_a_lost_irq_on_the_last_packet_is_collected_by_a_trailing_raise() -> None:
    view = device()
    tx = run_device(view, faulted(plan_of(2), "lost-irq@1"))
    assert tx["flags"].tolist() == [TX_STORED | TX_RAISED, TX_STORED, TX_SPURIOUS | TX_RAISED]
    assert view.raises["packet"][:2].tolist() == [0, 2]


@pytest.mark.parametrize(("specs", "icr"), [((), ICR_RXT0 | ICR_RXDMT0), (("early-irq:5us@0",), ICR_RXT0)])
def test_an_early_irq_is_raised_before_its_descriptor_is_written_back(specs: tuple[str, ...], icr: int) -> None:
    # Five descriptors: writing back the first leaves four, half the ring, which sets RXDMT0 (SDM 13.4.22).
    # A raise after the write-back carries RXDMT0; an early one, raised before it, cannot.
    view = device(rdt=5)
    tx = run_device(view, faulted(plan_of(2), *specs))
    assert int(tx["flags"][0]) == TX_STORED | TX_RAISED
    assert int(view.raises["packet"][0]) == 0 and int(view.raises["icr"][0]) == icr
    assert int(view.ring["status"][0]) & RXD_STAT_DD, "and the descriptor is written back after"


def test_a_spurious_entry_raises_with_no_new_descriptor() -> None:
    view = device()
    plan = faulted(plan_of(2), "spurious@1")
    tx = run_device(view, plan)
    assert tx["flags"].tolist() == [TX_STORED | TX_RAISED, TX_SPURIOUS | TX_RAISED, TX_STORED | TX_RAISED]
    assert tx["slot"].tolist() == [0, NO_DESCRIPTOR, 1]
    assert int(view.dev["rdh"][0]) == 2 and int(view.raises["icr"][1]) & ICR_RXT0


def test_a_burst_past_the_free_descriptors_is_dropped_and_counted() -> None:
    view = device(capacity=16)
    tx = run_device(view, faulted(plan_of(2), "burst:10@0"))
    assert len(tx) == 11
    stored = (tx["flags"] & TX_STORED) != 0
    assert stored.tolist() == [True] * 7 + [False] * 4, "seven free descriptors: the rest is dropped"
    assert int(view.dev["mpc"][0]) == 4
    assert tx["slot"][:7].tolist() == list(range(7))


# -- the ring sanitizer -----------------------------------------------------------------------------

SAN_INDEX = {name: index for index, name in SAN_KINDS.items()}


def sanitized(ring_size: int = RING, buf_size: int = BUF) -> SegmentView:
    """A plain segment whose RDT writes go through the sanitizer; the ring not yet handed over."""
    view = plain_segment(ring_size, buf_size, 16)
    view.header["sanitize"][0] = 1
    return view


def sized(seq: int) -> bytes:
    return frame_of((60, 128, 1000, 1514)[seq % 4])


def receive(view: SegmentView, seq: int, frame: bytes | None = None) -> int:
    """The device writes one frame back: its descriptor, or -1 if it owned none."""
    data = sized(seq) if frame is None else frame
    return int(_engine.receive(view.buffer, data, STAMP_OFF, UDP_CSUM_OFF, seq, 1_000 + seq, 0))


def clean(view: SegmentView, *descs: int) -> None:
    """What a driver does with a descriptor it has taken: clear its status."""
    for d in descs:
        view.ring["status"][d] = 0


def findings(view: SegmentView) -> dict[str, int]:
    """The violations counted so far, by name."""
    counts = view.san[0]["count"]
    return {name: int(counts[index]) for index, name in SAN_KINDS.items() if counts[index]}


def first_of(view: SegmentView, name: str) -> tuple[int, int, int]:
    """The first occurrence of a violation: descriptor, RDT written, time."""
    rec = view.san[0]["first"][SAN_INDEX[name]]
    return int(rec["descriptor"]), int(rec["rdt"]), int(rec["time_ns"])


def checked_write(view: SegmentView, rdt: int) -> tuple[int, int]:
    """An RDT write through the sanitizer, and the clock before and after it."""
    before = _engine.now_ns()
    _engine.write_rdt(view.buffer, rdt)
    return before, _engine.now_ns()


def assert_violation(view: SegmentView, name: str, descriptor: int, rdt: int, when: tuple[int, int]) -> None:
    assert findings(view) == {name: 1}
    d, r, t = first_of(view, name)
    assert (d, r) == (descriptor, rdt)
    assert when[0] <= t <= when[1], "recorded at the write that made it"


def poisoned(view: SegmentView, d: int, length: int = 0) -> bool:
    """Buffer ``d``'s first ``length`` bytes (all of it if 0) hold the poison pattern from its start."""
    data = bytes(view.buffer_of(d)[: length or view.buf_size])
    return data == (POISON_BYTES * (len(data) // 4 + 1))[: len(data)]


def test_the_poison_is_de_ad_be_ef() -> None:
    assert bytes.fromhex("deadbeef") == POISON_BYTES


@pytest.mark.parametrize("buf_size", [2048, 1522, 256])
def test_the_first_hand_over_poisons_every_buffer_it_hands_over(buf_size: int) -> None:
    view = sanitized(buf_size=buf_size)
    _engine.write_rdt(view.buffer, RING - 1)
    assert [poisoned(view, d) for d in range(RING)] == [True] * (RING - 1) + [False]
    assert not view.buffer_of(RING - 1).any(), "the descriptor kept back is not handed over"
    assert findings(view) == {}


def test_a_buffer_handed_back_is_poisoned_over_the_length_last_written_only() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    assert [receive(view, seq, frame_of(128)) for seq in (0, 1)] == [0, 1]
    assert read_stamp(bytes(view.buffer_of(0)[:128])) == (0, 1_000), "the frame, not poison, once written"
    view.buffer_of(0)[200:204] = 7  # the driver owns the buffer now: a mark past the frame's end
    clean(view, 0, 1)
    _engine.write_rdt(view.buffer, 1)  # hands back 7 (never written) and 0 (128 bytes written)
    assert poisoned(view, 0, 128) and poisoned(view, RING - 1)
    assert bytes(view.buffer_of(0)[200:204]) == bytes([7] * 4), "past the length last written: left alone"
    assert findings(view) == {}


def test_rdt_past_the_ring_is_a_violation() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    when = checked_write(view, RING)
    assert_violation(view, "rdt-outside-ring", RING - 1, RING, when)


def test_rdt_equal_to_rdh_hands_back_every_descriptor_and_is_a_violation() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    for seq in range(3):
        receive(view, seq)
    clean(view, 0, 1, 2)
    when = checked_write(view, 3)  # RDH is 3: the device would own all eight, which reads as none
    assert_violation(view, "rdt-at-head", 2, 3, when)


def test_rdt_moved_backwards_is_a_violation() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    when = checked_write(view, 3)
    assert_violation(view, "rdt-over-device-owned", 2, 3, when)


def test_rdt_moved_past_rdh_is_a_violation() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, 5)
    for seq in range(2):
        receive(view, seq)
    clean(view, 0, 1)
    when = checked_write(view, 3)  # from 5 on, round the wrap, past RDH = 2: over descriptors 2..4 the device owns
    assert_violation(view, "rdt-over-device-owned", 2, 3, when)


def test_a_descriptor_handed_back_with_dd_still_set_is_a_violation() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    for seq in range(2):
        receive(view, seq)
    clean(view, 1)  # descriptor 0 keeps its DD
    when = checked_write(view, 1)
    assert_violation(view, "dd-still-set", 0, 1, when)


@pytest.mark.parametrize("where", ["before the pool", "at the pool's end", "across the pool's end"])
def test_a_buffer_outside_the_pool_is_a_violation(where: str) -> None:
    view = sanitized()
    pool_end = view.buf_off + RING * BUF
    addr = {"before the pool": view.buf_off - BUF, "at the pool's end": pool_end, "across the pool's end":
            pool_end - BUF + 4}[where]  # fmt: skip
    view.ring["buffer_addr"][3] = addr
    when = checked_write(view, RING - 1)
    assert_violation(view, "buffer-outside-pool", 3, RING - 1, when)
    if where == "before the pool":
        assert not np.frombuffer(view.buffer, np.uint8)[addr : addr + BUF].any(), "not poisoned: not the pool's"


def test_two_descriptors_with_the_same_buffer_is_a_violation() -> None:
    view = sanitized()
    view.ring["buffer_addr"][2] = view.ring["buffer_addr"][1]
    when = checked_write(view, RING - 1)
    assert_violation(view, "buffer-shared", 2, RING - 1, when)


def test_a_buffer_across_two_of_the_pool_holds_both() -> None:
    view = sanitized()
    view.ring["buffer_addr"][1] = view.buf_off + BUF // 2  # half of buffer 0, half of buffer 1
    when = checked_write(view, RING - 1)
    assert_violation(view, "buffer-shared", 1, RING - 1, when)


def test_a_buffer_the_device_wrote_back_may_go_to_another_descriptor() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    for seq in range(2):
        receive(view, seq)
    clean(view, 0, 1)
    addr = view.ring["buffer_addr"]
    addr[0], addr[RING - 1] = int(addr[RING - 1]), int(addr[0])  # buffer 0 is free again: written back
    _engine.write_rdt(view.buffer, 1)
    assert findings(view) == {}


def test_a_buffer_the_device_still_owns_cannot_go_to_another_descriptor() -> None:
    view = sanitized()
    _engine.write_rdt(view.buffer, RING - 1)
    for seq in range(2):
        receive(view, seq)
    clean(view, 0, 1)
    view.ring["buffer_addr"][0] = view.ring["buffer_addr"][2]  # descriptor 2 is the device's, not written yet
    when = checked_write(view, 1)
    assert_violation(view, "buffer-shared", 0, 1, when)


def test_each_violation_is_counted_and_its_first_occurrence_kept() -> None:
    view = sanitized()
    when = checked_write(view, RING)
    _engine.write_rdt(view.buffer, RING + 3)
    assert findings(view) == {"rdt-outside-ring": 2}
    d, rdt, t = first_of(view, "rdt-outside-ring")
    assert (d, rdt) == (0, RING) and when[0] <= t <= when[1]


class CleanDriver:
    """A correct driver: takes the descriptors with DD in order, clears them, and hands them back keeping one
    (RDT one behind the next to clean), as Linux e1000 does; the buffers stay with their descriptors."""

    def __init__(self, view: SegmentView) -> None:
        self.view = view
        self.next_to_clean = 0
        self.rdt = view.ring_size - 1
        self.got: list[int] = []
        _engine.write_rdt(view.buffer, self.rdt)

    def take(self) -> None:
        ring = self.view.ring
        while ring["status"][self.next_to_clean] & RXD_STAT_DD:
            d = self.next_to_clean
            stamp = read_stamp(bytes(self.view.buffer_of(d)[: int(ring["length"][d])]))
            assert stamp is not None, f"descriptor {d} holds a frame"
            self.got.append(stamp[0])
            clean(self.view, d)
            self.next_to_clean = (d + 1) % self.view.ring_size

    def give(self, most: int) -> None:
        n = self.view.ring_size
        k = min(most, (self.next_to_clean - 1 - self.rdt) % n)
        handed = [(self.rdt + j) % n for j in range(k)]
        lengths = [int(self.view.ring["length"][d]) for d in handed]
        self.rdt = (self.rdt + k) % n
        _engine.write_rdt(self.view.buffer, self.rdt)
        for d, length in zip(handed, lengths, strict=True):
            assert poisoned(self.view, d, length), f"descriptor {d} handed back: its buffer poisoned"


def drive(rounds: Sequence[tuple[int, int]]) -> tuple[SegmentView, list[int], list[int]]:
    """Rounds of (frames arriving, descriptors handed back at most): the view, what was stored, what was taken."""
    view = sanitized()
    driver = CleanDriver(view)
    stored: list[int] = []
    seq = 0
    for arriving, giving in rounds:
        for _ in range(arriving):
            if receive(view, seq) >= 0:
                stored.append(seq)
            seq += 1
        driver.take()
        driver.give(giving)
    return view, stored, driver.got


def test_a_correct_driver_over_several_wraps_records_nothing() -> None:
    rounds = [(1, 1), (7, 7), (3, 2), (5, 7), (7, 3), (2, 7), (7, 7), (6, 4), (7, 7), (4, 7), (7, 7), (7, 7)]
    view, stored, got = drive(rounds)
    assert got == stored and len(got) > 5 * RING
    assert findings(view) == {}
    assert int(view.dev["mpc"][0]) > 0, "the ring ran full on the way: a drop is no violation either"


@settings(max_examples=60, deadline=None)
@given(rounds=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=30))
def test_any_correct_receive_clean_hand_back_sequence_records_nothing(rounds: list[tuple[int, int]]) -> None:
    view, stored, got = drive(rounds)
    assert got == stored
    assert findings(view) == {}


# -- the accounts -----------------------------------------------------------------------------------


def accounted(
    marks: dict[str, list[int]],
    seq: list[int],
    *,
    count: int = 3,
    sent: int | None = None,
    checked: list[bool] | None = None,
    partial: list[int] | None = None,
    woken: list[int] | None = None,
) -> dict[str, dict[str, int]]:
    """``faults.accounts`` over ``count`` entries with the fault bits ``marks`` and these deliveries."""
    slots = np.zeros(count, SLOT)
    for name, entries in marks.items():
        slots["faults"][entries] |= bit(name)
    return faults.accounts(
        slots,
        np.ones(count if sent is None else sent, bool),
        np.array(seq, np.int64),
        None if checked is None else np.array(checked, bool),
        None if partial is None else np.array(partial, np.int64),
        None if woken is None else np.array(woken, np.int64),
    )


def account(injected: int, delivered: int, dropped: int, misdelivered: int) -> dict[str, int]:
    return {"injected": injected, "delivered": delivered, "dropped": dropped, "misdelivered": misdelivered}


@pytest.mark.parametrize("name", FRAME_ERRORS)
def test_a_frame_with_an_error_delivered_is_misdelivered(name: str) -> None:
    assert accounted({name: [1]}, [0, 1, 2]) == {name: account(1, 1, 0, 1)}


@pytest.mark.parametrize("name", FRAME_ERRORS)
def test_a_frame_with_an_error_dropped_is_as_it_should_be(name: str) -> None:
    assert accounted({name: [1]}, [0, 2]) == {name: account(1, 0, 1, 0)}


@pytest.mark.parametrize("name", ["ipe", "tcpe"])
def test_a_bad_checksum_delivered_marked_checked_is_misdelivered(name: str) -> None:
    assert accounted({name: [1]}, [0, 1, 2], checked=[True, True, True]) == {name: account(1, 1, 0, 1)}


@pytest.mark.parametrize("name", ["ipe", "tcpe"])
def test_a_bad_checksum_delivered_not_marked_checked_is_as_it_should_be(name: str) -> None:
    assert accounted({name: [1]}, [0, 1, 2], checked=[True, False, True]) == {name: account(1, 1, 0, 0)}
    assert accounted({name: [1]}, [0, 1, 2]) == {name: account(1, 1, 0, 0)}, "no checked marks: none wrong"


def test_each_part_of_a_split_frame_delivered_is_a_misdelivery() -> None:
    got = accounted({"split": [1]}, [0, -1, -1, 2], partial=[-1, 1, 1, -1])
    assert got == {"split": account(1, 0, 1, 2)}


def test_a_split_frame_reassembled_is_delivered() -> None:
    assert accounted({"split": [1]}, [0, 1, 2], partial=[-1, -1, -1]) == {"split": account(1, 1, 0, 0)}


@pytest.mark.parametrize("name", ["lost-irq", "early-irq", "burst", "split", "ipe"])
def test_a_packet_delivered_twice_is_misdelivered(name: str) -> None:
    assert accounted({name: [1]}, [0, 1, 1, 2]) == {name: account(1, 1, 0, 1)}


def test_a_lost_irq_collected_once_is_as_it_should_be() -> None:
    assert accounted({"lost-irq": [1]}, [0, 1, 2]) == {"lost-irq": account(1, 1, 0, 0)}


def test_a_spurious_entry_is_only_injected() -> None:
    assert accounted({"spurious": [1]}, [0, 2]) == {"spurious": account(1, 0, 0, 0)}


def test_kinds_not_in_the_plan_are_left_out() -> None:
    assert accounted({}, [0, 1, 2]) == {}


def test_entries_not_sent_are_not_accounted() -> None:
    assert accounted({"rxe": [1], "ce": [3]}, [0, 1, 2], count=4, sent=3) == {"rxe": account(1, 1, 0, 1)}


def test_a_delivery_matched_to_no_sent_packet_counts_for_none() -> None:
    assert accounted({"rxe": [1]}, [0, -1, 5, 2]) == {"rxe": account(1, 0, 1, 0)}


@pytest.mark.parametrize("name", ["spurious", "early-irq"])
def test_a_bad_delivery_in_a_run_a_spurious_or_early_raise_woke_is_that_fault_misdelivered(name: str) -> None:
    # entry 1 carries the fault; its raise woke the run that made deliveries 1 and 2: 0 again, and no frame
    got = accounted({name: [1]}, [0, 0, -1, 2], woken=[0, 1, 1, 2])
    assert got[name]["misdelivered"] == 2


@pytest.mark.parametrize("name", ["spurious", "early-irq"])
def test_good_deliveries_in_a_run_a_spurious_or_early_raise_woke_are_fine(name: str) -> None:
    assert accounted({name: [1]}, [0, 1, 2], woken=[0, 1, 1])[name]["misdelivered"] == 0


@pytest.mark.parametrize("size", [60, 61, 1514, 1515])
def test_a_frame_received_outside_a_plan_has_its_packet_checksum_too(size: int) -> None:
    view = device()
    d = int(_engine.receive(view.buffer, frame_of(size), STAMP_OFF, UDP_CSUM_OFF, 5, 12_345, 0))
    as_stamped = bytes(view.buffer_of(d)[:size])
    assert int(view.ring["csum"][d]) == ones_sum(as_stamped[14:])
