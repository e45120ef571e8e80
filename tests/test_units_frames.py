"""Quantities users type, and the frames the device sends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pseudonic import _engine, schedule
from pseudonic.errors import ConfigError
from pseudonic.frames import (
    DST_IP,
    DST_MAC,
    SRC_IP,
    SRC_MAC,
    FrameSet,
    generated_frame,
    internet_checksum,
    ipv4_udp_frame,
    ipv4_udp_ok,
    ones_sum,
    read_stamp,
)
from pseudonic.plan import Plan
from pseudonic.units import format_ns, parse_interval, parse_size
from pseudonic.upper import VerifyLayer, _count


@pytest.mark.parametrize(
    ("text", "ns"),
    [("38us", 38_000), ("38µs", 38_000), ("1.5ms", 1_500_000), ("500ns", 500), ("0.25 us", 250)],
)
def test_intervals(text: str, ns: int) -> None:
    assert parse_interval(text) == ns


@pytest.mark.parametrize("text", ["38", "fast", "3 parsecs", "-5us", ""])
def test_bad_intervals_name_the_units(text: str) -> None:
    with pytest.raises(ConfigError, match="ns, us or ms"):
        parse_interval(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1500", 1500),
        ("1.5KB", 1500),
        ("1.5K", 1500),
        ("8KiB", 8192),
        ("16KiB", 16384),
        ("64B", 64),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@given(st.integers(1, 10**9))
def test_interval_in_any_unit_round_trips(ns: int) -> None:
    assert parse_interval(f"{ns}ns") == ns
    assert parse_interval(f"{ns / 1000}us") == pytest.approx(ns, abs=1)


def test_one_duration_formatter_with_the_decimals_asked() -> None:
    from pseudonic.bench.figures import _fmt_us
    from pseudonic.bench.report import fmt_ns

    assert [format_ns(v) for v in (850, 38_000, 1_500_000, 2.5e9, -38_000)] == [
        "850 ns", "38.000 µs", "1.500 ms", "2.500 s", "-38.000 µs"]  # fmt: skip
    assert format_ns(38_000, digits=2) == "38.00 µs" and format_ns(250_000, digits=0) == "250 µs"
    assert format_ns(850.4, digits=2) == "850 ns"  # ns are whole
    # the bench's tables and figures are format_ns with their decimals
    assert [fmt_ns(v) for v in (None, 205, 38_000, 1_500_000)] == ["—", "205 ns", "38.00 µs", "1.50 ms"]
    assert [_fmt_us(v) for v in (0.5, 2.375, 250, 1_250)] == ["500 ns", "2.38 µs", "250 µs", "1.25 ms"]


@given(st.integers(60, 16384))
def test_generated_frames_are_what_scapy_reads(size: int) -> None:
    raw = generated_frame(size)
    assert len(raw) == size
    pkt = Ether(raw)
    assert pkt[IP].len == size - 14 and pkt[UDP].len == size - 34
    # scapy recomputes both checksums when they are deleted: they must agree with ours
    ip_sum, udp_sum = pkt[IP].chksum, pkt[UDP].chksum
    del pkt[IP].chksum, pkt[UDP].chksum
    again = Ether(bytes(pkt))
    assert (again[IP].chksum, again[UDP].chksum) == (ip_sum, udp_sum)
    assert ipv4_udp_ok(raw) and read_stamp(raw) == (0, 0)


def scapy_udp(payload: bytes, **udp: Any) -> bytes:
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=SRC_IP, dst=DST_IP, ttl=64, flags="DF", id=0)
                 / UDP(sport=9, dport=9, **udp) / payload)  # fmt: skip


@pytest.mark.parametrize("length", [0, 1, 18, 19, 100, 1458, 9000, 16330])
def test_the_udp_frame_builder_is_byte_for_byte_scapys(length: int) -> None:
    payload = (np.arange(length, dtype=np.uint32) * 13 + 5).astype(np.uint8).tobytes()
    assert ipv4_udp_frame(payload) == scapy_udp(payload)
    # the kernel baseline's frames: no UDP checksum
    assert ipv4_udp_frame(payload, udp_checksum=False) == scapy_udp(payload, chksum=0)


def test_a_udp_checksum_of_zero_goes_as_all_ones() -> None:
    # a payload whose last word makes the sum 0xffff: its checksum computes to 0, which means "none"
    unsummed = ipv4_udp_frame(b"abcdefgh\0\0", udp_checksum=False)
    udp = unsummed[34:]
    pseudo = unsummed[26:34] + bytes([0, 17]) + len(udp).to_bytes(2, "big")
    payload = b"abcdefgh" + (0xFFFF - ones_sum(pseudo + udp)).to_bytes(2, "big")
    frame = ipv4_udp_frame(payload)
    assert frame[40:42] == b"\xff\xff" and frame == scapy_udp(payload) and ipv4_udp_ok(frame)


@pytest.mark.parametrize("size", [60, 61, 1514, 9014])
def test_generated_frames_are_the_builders(size: int) -> None:
    frame = generated_frame(size)
    assert ipv4_udp_frame(frame[42:]) == frame


def test_checksum_against_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement)
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2 & 0xFFFF)


def test_corruption_is_detected() -> None:
    raw = bytearray(generated_frame(200))
    raw[150] ^= 0xFF
    assert not ipv4_udp_ok(bytes(raw))


def test_user_frames_are_checked_for_size_by_the_plan() -> None:
    short = Plan.custom(schedule.periodic(1, 1000), [b"short"], 1500)
    with pytest.raises(ConfigError, match=r"frame 0 is 5 bytes: frames must be 60\.\.16384 bytes"):
        short.check(2048)
    fs = FrameSet.from_user([bytes(Ether() / IP() / UDP() / (b"x" * 100))])
    assert not fs.stamped and fs.sizes == [142]
    longer = Plan.custom(schedule.periodic(1, 1000), [bytes(fs.templates[0]) * 20], 1500)
    longer.check(2048)  # 2840 bytes: longer than the buffer, so it spans two descriptors
    huge = Plan.custom(schedule.periodic(1, 1000), [bytes(fs.templates[0]) * 116], 1500)
    with pytest.raises(ConfigError, match=r"frame 0 is 16472 bytes: frames must be 60\.\.16384 bytes"):
        huge.check(2048)


def test_schedules() -> None:
    assert list(schedule.periodic(4, 38_000)["due_ns"]) == [0, 38_000, 76_000, 114_000]
    assert schedule.interval_of(schedule.periodic(4, 5)) == 5
    assert schedule.interval_of(schedule.from_offsets([0, 1, 5])) is None
    with pytest.raises(ConfigError, match="non-decreasing"):
        schedule.from_offsets([0, 10, 5])
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        schedule.from_offsets([0], errors=256)


def test_counting_of_deliveries() -> None:
    v = _count(np.array([0, 1, 1, 3, 2, -1, 4]), sent=6, verified=True)
    assert (v.received, v.duplicated, v.reordered, v.corrupted) == (5, 1, 1, 1)


def _count_by_rule(seq: list[int]) -> tuple[int, int, int, int]:
    """The rule, one delivery at a time: -1 is corrupted; a packet's first delivery is received, and
    reordered if a higher packet came before it; any later one is a duplicate."""
    seen: set[int] = set()
    received = duplicated = reordered = corrupted = 0
    highest = -1
    for s in seq:
        if s < 0:
            corrupted += 1
        elif s in seen:
            duplicated += 1
        else:
            seen.add(s)
            received += 1
            reordered += s < highest
            highest = max(highest, s)
    return received, duplicated, reordered, corrupted


@settings(max_examples=200)
@given(st.lists(st.integers(-1, 30), max_size=80))
def test_counting_of_deliveries_follows_the_rule_one_at_a_time(seq: list[int]) -> None:
    v = _count(np.array(seq, dtype=np.int64), sent=31, verified=True)
    assert (v.received, v.duplicated, v.reordered, v.corrupted) == _count_by_rule(seq)
    assert v.delivered == len(seq)


def _stamped(frames: FrameSet, frame_of: np.ndarray[Any, Any], seq: int) -> bytes:
    row = frames.table[int(frame_of[seq])]
    f = bytearray(frames.templates[int(frame_of[seq])])
    _engine.stamp_frame(f, int(row["stamp_off"]), int(row["csum_off"]), seq, 1000 + seq)
    return bytes(f)


def test_verify_layer_matches_single_deliveries_and_kept_bursts_in_the_order_delivered() -> None:
    frames = FrameSet.of([FrameSet.generated(60).templates[0], FrameSet.generated(300).templates[0]], stamped=True)
    slots = schedule.periodic(8, 1000)
    slots["frame"] = [0, 1, 1, 0, 1, 0, 0, 1]
    stored = np.full(8, 1, dtype=np.uint32)  # TX_STORED
    stored[6] = 0  # dropped by the device: a delivery naming it was never sent
    good = [_stamped(frames, slots["frame"], k) for k in range(8)]
    zeroed = bytearray(good[3])
    zeroed[40:42] = b"\0\0"  # its UDP checksum zeroed: not the frame that was sent
    layer = VerifyLayer()
    layer.deliver(good[1])
    layer.deliver(good[0])
    burst = [good[2], good[2], bytes(zeroed), good[6]]
    layer.adopt(memoryview(b"".join(burst)), np.array([len(b) for b in burst]))
    layer.deliver(good[5][:-1] + b"\x01")
    layer.deliver(good[7])
    v = layer.report(frames, slots, stored)
    assert v.seq.tolist() == [1, 0, 2, 2, -1, -1, -1, 7]
    assert (v.received, v.duplicated, v.reordered, v.corrupted) == (4, 1, 1, 3)
    assert len(v.corruption) == 3 and "packet 3" in v.corruption[0]


def test_verify_layer_matches_stamps_and_flags_tampering() -> None:
    fs = FrameSet.generated(128)
    slots = schedule.periodic(3, 1000)
    good = [bytearray(fs.templates[0]) for _ in range(3)]
    layer = VerifyLayer()
    for i, f in enumerate(good):
        f[46:50] = i.to_bytes(4, "big")  # a seq number without fixing the checksum: corrupt
    layer.deliver(bytes(good[0]))  # seq 0 with a zero stamp is the template itself: valid
    layer.deliver(bytes(good[1]))
    v = layer.report(fs, slots, np.ones(3, dtype=np.uint32))
    assert (v.received, v.corrupted) == (1, 1)
