"""Traffic specs turned into plans: pacing, length, sizes, field variation, and every refusal in one line."""

from __future__ import annotations

import json
import math
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pseudonic import config
from pseudonic.errors import ConfigError
from pseudonic.fields import FIELDS
from pseudonic.frames import STAMP_LEN, STAMP_OFF, generated_frame, ipv4_udp_ok
from pseudonic.plan import MAX_PACKETS, Plan
from pseudonic.traffic import IMIX_PATTERN, MAX_TEMPLATES, Rate, build_plan, format_rate, parse_rate

slow = settings(max_examples=40, deadline=None)


def frames_of(plan: Plan) -> list[bytes]:
    """The frame each packet carries, in order."""
    return [plan.frames.templates[int(f)] for f in plan.slots["frame"]]


def udp_ports(frame: bytes) -> tuple[int, int]:
    return struct.unpack_from("!HH", frame, 34)


def same_plan(a: Plan, b: Plan) -> bool:
    return (
        bool((a.slots == b.slots).all())
        and a.frames.templates == b.frames.templates
        and bool((a.frames.table == b.frames.table).all())
        and a.frames.stamped == b.frames.stamped
        and a.origin == b.origin
    )


# -- the default, and the periodic plan it must stay -------------------------------------------
def test_nothing_given_is_the_default_periodic_plan() -> None:
    expected = Plan.periodic(config.DEFAULT_INTERVAL, config.DEFAULT_COUNT, config.DEFAULT_SIZE)
    assert same_plan(build_plan(), expected)


@pytest.mark.parametrize(("interval", "count", "size"), [("38us", 1000, "1500"), ("1ns", 7, "60"), ("10s", 3, "16KiB")])
def test_interval_count_and_size_alone_are_plan_periodic(interval: str, count: int, size: str) -> None:
    plan = build_plan(interval=interval, count=count, size=size)
    assert same_plan(plan, Plan.periodic(interval, count, size))
    assert plan.origin["kind"] == "periodic"


# -- rates --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("100kpps", 100e3, "pps"),
        ("1.2Mpps", 1.2e6, "pps"),
        ("800Mbps", 800e6, "bps"),
        ("5Gbps", 5e9, "bps"),
        ("10Gbps", 10e9, "bps"),
        ("64pps", 64, "pps"),
        ("9600bps", 9600, "bps"),
        ("2.5 kbps", 2500, "bps"),
        ("1gpps", 1e9, "pps"),
        ("1.5MPPS", 1.5e6, "pps"),
        ("1e3pps", 1000, "pps"),
    ],
)
def test_rates(text: str, value: float, unit: str) -> None:
    assert parse_rate(text) == Rate(value, unit)


@pytest.mark.parametrize("text", ["fast", "100", "10 Gbit/s", "", "5 Tbps", "pps", "1.2.3Mpps", "1e999pps"])
def test_what_is_not_a_rate_is_named_with_examples(text: str) -> None:
    with pytest.raises(ConfigError, match=r"is not a rate: give a number and pps or bps.*10Gbps"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0pps", "-5kpps", "0.0Gbps"])
def test_a_rate_must_be_more_than_zero(text: str) -> None:
    with pytest.raises(ConfigError, match="out of range: give more than 0"):
        parse_rate(text)


@given(st.integers(1, 10**12), st.sampled_from(["pps", "bps"]))
def test_a_formatted_rate_reads_back(value: int, unit: str) -> None:
    assert parse_rate(format_rate(value, unit)) == Rate(value, unit)


# -- packets per second -------------------------------------------------------------------------
@slow
@given(st.integers(1, 20_000), st.integers(1, 10**9))
def test_pps_deadlines_do_not_drift(n: int, pps: int) -> None:
    plan = build_plan(rate=f"{pps}pps", count=n, size="60")
    due = plan.due_ns.astype(np.int64)
    assert (np.diff(due) >= 0).all()
    # the last deadline is where the rate puts it, however many packets came before: no drift
    assert int(due[-1]) == round((n - 1) * 1e9 / pps)
    # and no gap strays a nanosecond from the nominal one
    assert (np.abs(np.diff(due) - 1e9 / pps) < 1).all()


def test_a_million_packets_at_an_awkward_rate_end_where_the_rate_says() -> None:
    # 1e9 / 7.3e6 = 136.986... ns: adding up rounded or float gaps would be off by thousands of ns by the end
    plan = build_plan(rate="7.3Mpps", count=MAX_PACKETS, size="60")
    assert int(plan.due_ns[-1]) == round((MAX_PACKETS - 1) * 1e9 / 7.3e6) == 136_986_164
    assert int(plan.due_ns[-1]) != (MAX_PACKETS - 1) * round(1e9 / 7.3e6)


# a rate, and a duration that holds at most 200 000 of its packets (larger ones are refused, and tested apart)
rate_and_duration = st.integers(1, 10**9).flatmap(
    lambda pps: st.tuples(st.just(pps), st.integers(1, min(3600 * 10**9, 2 * 10**14 // pps)))
)


@slow
@given(rate_and_duration)
def test_a_duration_holds_the_deadlines_before_it(asked: tuple[int, int]) -> None:
    pps, duration = asked
    plan = build_plan(rate=f"{pps}pps", duration=f"{duration}ns", size="60")
    n = len(plan)
    assert int(plan.due_ns[-1]) < duration
    # ... and the next packet would be due at or after it
    assert int(build_plan(rate=f"{pps}pps", count=n + 1, size="60").due_ns[-1]) >= duration
    assert plan.origin["duration_ns"] == duration and plan.origin["count"] == n


def test_a_duration_at_an_interval() -> None:
    plan = build_plan(interval="38us", duration="1ms")
    assert len(plan) == 27  # 0, 38, ..., 988 us
    assert plan.interval_ns == 38_000


# -- bits per second ----------------------------------------------------------------------------
@slow
@given(
    st.lists(st.integers(60, 1518), min_size=1, max_size=5),
    st.integers(1, 3000),
    st.integers(10**6, 4 * 10**11),
    st.booleans(),
)
def test_bps_paces_each_frame_by_its_bits(sizes: list[int], n: int, bps: int, l1: bool) -> None:
    plan = build_plan(rate=f"{bps}bps", rate_l1=l1, count=n, size=",".join(map(str, sizes)))
    on_wire = plan.sizes.astype(np.int64) + (20 if l1 else 0)  # TRex's L1 rate: preamble, SFD and gap, 20 B
    assert [int(s) for s in plan.sizes] == [sizes[i % len(sizes)] for i in range(n)]
    bits_before = np.concatenate([[0], np.cumsum(on_wire * 8)])[:-1]
    assert [int(d) for d in plan.due_ns] == [round(int(b) * 1e9 / bps) for b in bits_before]
    # over the plan, the mean bit rate is the one asked for, within the last deadline's rounding
    assert abs(int(plan.due_ns[-1]) - int(bits_before[-1]) * 1e9 / bps) <= 0.5


def test_l1_rate_at_10gbps_is_14_88_mpps_of_64_byte_frames() -> None:
    # 64 B + 20 B on the wire = 672 bits: 67.2 ns per frame, TRex's (and every 10GbE tester's) 14.88 Mpps
    plan = build_plan(rate="10Gbps", rate_l1=True, size="64", duration="10ms")
    assert len(plan) == 148_810  # deadlines 0, 67.2, ... below 10 ms
    without = build_plan(rate="10Gbps", size="64", duration="10ms")
    assert len(without) == 195_313  # 51.2 ns per frame without the wire overhead


def test_the_highest_bit_rate_is_one_frame_a_nanosecond() -> None:
    plan = build_plan(rate="512Gbps", size="64", count=100)  # 512 bits in 1 ns
    assert (np.diff(plan.due_ns.astype(np.int64)) == 1).all()
    with pytest.raises(ConfigError, match=r"for 64 B frames: give .*\.\.512Gbps \(a gap of 1 ns\.\.10 s per frame\)"):
        build_plan(rate="513Gbps", size="64")
    with pytest.raises(ConfigError, match=r"for 64 B frames \(\+20 B each on the wire\): give .*\.\.672Gbps"):
        build_plan(rate="700Gbps", size="64", rate_l1=True)
    with pytest.raises(ConfigError, match=r"for 64\.\.1518 B frames: give 1\.2144kbps\.\.512Gbps"):
        build_plan(rate="1000Gbps", imix=True)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("2Gpps", r"give 0\.1pps\.\.1Gpps"),
        ("0.05pps", r"give 0\.1pps\.\.1Gpps"),
        ("1e-99pps", r"give 0\.1pps\.\.1Gpps"),
        ("1e99Gpps", r"give 0\.1pps\.\.1Gpps"),
        ("1kbps", r"give 1\.2kbps\.\."),
    ],
)
def test_a_rate_out_of_range_names_the_range(rate: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        build_plan(rate=rate)


# -- bursts -------------------------------------------------------------------------------------
@slow
@given(st.integers(1, 50), st.integers(1, 10**7), st.integers(1, 2000))
def test_a_burst_is_n_frames_on_one_deadline_every_t(burst: int, every_ns: int, n: int) -> None:
    plan = build_plan(burst=burst, every=f"{every_ns}ns", count=n)
    deadlines, sizes = np.unique(plan.due_ns.astype(np.int64), return_counts=True)
    assert (sizes[:-1] == burst).all() and 1 <= sizes[-1] <= burst
    assert (deadlines == np.arange(deadlines.size) * every_ns).all()
    assert plan.origin == {"kind": "burst", "burst": burst, "every_ns": every_ns, "count": n, "size": 1500}


def test_a_burst_over_a_duration_has_whole_bursts() -> None:
    plan = build_plan(burst=8, every="10us", duration="35us")
    assert len(plan) == 32  # bursts at 0, 10, 20 and 30 us


# -- Poisson ------------------------------------------------------------------------------------
def test_poisson_with_one_seed_is_one_plan_and_with_another_another() -> None:
    a = build_plan(poisson=True, rate="1Mpps", count=1000, seed=7)
    assert same_plan(a, build_plan(poisson=True, rate="1Mpps", count=1000, seed=7))
    b = build_plan(poisson=True, rate="1Mpps", count=1000, seed=8)
    assert not (a.due_ns == b.due_ns).all()


def test_poisson_without_a_seed_records_the_one_it_drew() -> None:
    a = build_plan(poisson=True, rate="1Mpps", count=500)
    b = build_plan(poisson=True, rate="1Mpps", count=500)
    assert a.origin["seed"] != b.origin["seed"]
    assert same_plan(a, build_plan(poisson=True, rate="1Mpps", count=500, seed=a.origin["seed"]))


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_poisson_gaps_are_exponential_of_the_mean_asked(seed: int) -> None:
    n = 200_000
    plan = build_plan(poisson=True, rate="1Mpps", count=n, seed=seed)
    due = plan.due_ns.astype(np.int64)
    gaps = np.diff(due)
    assert (gaps >= 0).all() and due[0] == 0
    # The mean of n-1 exponential gaps of mean 1000 ns has a standard deviation of 1000/sqrt(n-1) ns:
    # six of them (a false failure once in 5e8), plus the last deadline's rounding.
    mean = 1000.0
    assert abs(gaps.mean() - mean) < 6 * mean / math.sqrt(n - 1) + 1 / (n - 1)
    # Exponential, not just of the right mean: P(gap > mean) = 1/e, binomial standard deviation, six of them.
    p = math.exp(-1)
    assert abs(np.mean(gaps > mean) - p) < 6 * math.sqrt(p * (1 - p) / (n - 1))


def test_poisson_at_a_bit_rate_keeps_the_mean_bit_rate() -> None:
    n = 100_000
    plan = build_plan(poisson=True, rate="1Gbps", imix=True, count=n, seed=3)
    bits = int(plan.sizes[:-1].astype(np.int64).sum()) * 8
    mean_gap = 1e9 / 1e9 * bits / (n - 1)
    # each gap's standard deviation is its mean; the largest (1518 B) bounds them all
    sd = 1518 * 8 / math.sqrt(n - 1)
    assert abs(int(plan.due_ns[-1]) / (n - 1) - mean_gap) < 6 * sd


def test_poisson_over_a_duration_is_the_start_of_the_same_draw() -> None:
    timed = build_plan(poisson=True, rate="10Mpps", duration="5ms", seed=11)
    counted = build_plan(poisson=True, rate="10Mpps", count=len(timed) + 1, seed=11)
    assert (counted.due_ns[:-1] == timed.due_ns).all()
    assert int(timed.due_ns[-1]) < 5_000_000 <= int(counted.due_ns[-1])
    assert 50_000 - 6 * math.sqrt(50_000) < len(timed) < 50_000 + 6 * math.sqrt(50_000)


# -- sizes --------------------------------------------------------------------------------------
@given(st.integers(1, 200))
def test_imix_is_7_4_1_over_every_12_packets(k: int) -> None:
    sizes = [int(s) for s in build_plan(imix=True, count=12 * k, interval="1us").sizes]
    assert Counter(sizes) == {64: 7 * k, 594: 4 * k, 1518: k}
    # any 12 packets in a row, wherever they start, are the whole mix: no stretch is all small or all large
    for start in range(min(12, len(sizes) - 11)):
        assert Counter(sizes[start : start + 12]) == {64: 7, 594: 4, 1518: 1}


def test_imix_origin() -> None:
    origin = build_plan(imix=True, count=24).origin
    assert origin["imix"] is True and origin["sizes"] == list(IMIX_PATTERN) and "size" not in origin


@given(st.lists(st.integers(60, 2048), min_size=1, max_size=6), st.integers(1, 40))
@settings(deadline=None)
def test_a_size_list_is_taken_in_turn(sizes: list[int], n: int) -> None:
    plan = build_plan(size=",".join(map(str, sizes)), count=n, interval="1us")
    assert [len(f) for f in frames_of(plan)] == [sizes[i % len(sizes)] for i in range(n)]
    assert len(plan.frames.templates) == len(set(sizes[:n]))
    assert all(ipv4_udp_ok(t) for t in plan.frames.templates)


def test_sizes_take_units() -> None:
    assert [int(s) for s in build_plan(size="1.5KB, 64B,1KiB", count=3).sizes] == [1500, 64, 1024]


# -- field variation ----------------------------------------------------------------------------
def test_an_incrementing_field_wraps_over_its_range() -> None:
    plan = build_plan(vary=["udp.sport=1000-1002"], count=7)
    assert [udp_ports(f)[0] for f in frames_of(plan)] == [1000, 1001, 1002, 1000, 1001, 1002, 1000]
    assert len(plan.frames.templates) == 3
    assert plan.origin["vary"] == ["udp.sport=1000-1002:inc"]


def test_a_decrementing_field_counts_down() -> None:
    plan = build_plan(vary=["udp.dport=5-7:dec"], count=5)
    assert [udp_ports(f)[1] for f in frames_of(plan)] == [7, 6, 5, 7, 6]


def test_an_address_range_carries_over_octets() -> None:
    plan = build_plan(vary=["ip.src=10.0.0.254-10.0.1.1"], count=5)
    assert [Ether(f)[IP].src for f in frames_of(plan)] == ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"] * 1 + [
        "10.0.0.254"
    ]


def test_fields_move_together_packet_by_packet() -> None:
    # 2 source ports x 3 destination ports: the pairs repeat every lcm(2, 3) = 6 packets
    plan = build_plan(vary=["udp.sport=1-2", "udp.dport=1-3"], count=12)
    ports = [udp_ports(f) for f in frames_of(plan)]
    assert ports[:6] == [(1, 1), (2, 2), (1, 3), (2, 1), (1, 2), (2, 3)] and ports[6:] == ports[:6]
    assert len(plan.frames.templates) == 6


@pytest.mark.parametrize(
    ("spec", "read"),
    [
        ("eth.dst=02:00:00:00:00:0a", lambda p: p[Ether].dst == "02:00:00:00:00:0a"),
        ("eth.src=02:00:00:00:00:0b", lambda p: p[Ether].src == "02:00:00:00:00:0b"),
        ("ip.tos=184", lambda p: p[IP].tos == 184),
        ("ip.id=0xBEEF", lambda p: p[IP].id == 0xBEEF),
        ("ip.ttl=3", lambda p: p[IP].ttl == 3),
        ("ip.src=198.51.100.7", lambda p: p[IP].src == "198.51.100.7"),
        ("ip.dst=203.0.113.9", lambda p: p[IP].dst == "203.0.113.9"),
        ("udp.sport=53", lambda p: p[UDP].sport == 53),
        ("udp.dport=4789", lambda p: p[UDP].dport == 4789),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_each_field_lands_where_scapy_reads_it(spec: str, read: Any) -> None:
    (frame,) = build_plan(vary=[spec], count=1, size="333").frames.templates
    assert read(Ether(frame)) and ipv4_udp_ok(frame)
    # nothing else moved: outside the field and the two checksums the frame is the generated one
    field = FIELDS[spec.partition("=")[0]]
    touched = {*range(field.offset, field.offset + field.width), 24, 25, 40, 41}
    base = generated_frame(333)
    assert [i for i in range(333) if frame[i] != base[i] and i not in touched] == []


def test_random_values_stay_in_range_and_repeat_with_the_seed() -> None:
    spec = ["udp.sport=1000-1099:random", "ip.dst=10.1.0.0-10.1.0.15:random"]
    plan = build_plan(vary=spec, count=5000, seed=5)
    sports = [udp_ports(f)[0] for f in frames_of(plan)]
    dsts = [Ether(f)[IP].dst for f in plan.frames.templates]
    assert set(sports) == set(range(1000, 1100))  # 5000 draws of 100 values miss one with probability ~1e-20
    assert {d.rsplit(".", 1)[0] for d in dsts} == {"10.1.0"} and {int(d.rsplit(".", 1)[1]) for d in dsts} <= set(
        range(16)
    )
    assert plan.origin["seed"] == 5 and plan.origin["vary"] == [
        "udp.sport=1000-1099:random",
        "ip.dst=10.1.0.0-10.1.0.15:random",
    ]
    assert same_plan(plan, build_plan(vary=spec, count=5000, seed=5))
    assert not same_plan(plan, build_plan(vary=spec, count=5000, seed=6))


def test_a_random_vary_leaves_a_poisson_timeline_be() -> None:
    plain = build_plan(poisson=True, rate="1Mpps", count=100, seed=1)
    varied = build_plan(poisson=True, rate="1Mpps", count=100, seed=1, vary=["udp.sport=1-9:random"])
    assert (plain.due_ns == varied.due_ns).all()


vary_specs = st.lists(
    st.sampled_from(
        [
            "udp.sport=0-65535",
            "udp.dport=1-7:dec",
            "ip.src=10.0.0.1-10.0.0.254:random",
            "ip.dst=0.0.0.0-255.255.255.255:random",
            "ip.ttl=1-255",
            "ip.tos=0-255:random",
            "ip.id=65530-65535",
            "eth.src=02:00:00:00:00:00-02:00:00:00:01:00:random",
        ]
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda s: s.partition("=")[0],
)


@slow
@given(vary_specs, st.lists(st.integers(60, 1600), min_size=1, max_size=3), st.integers(0, 2**32))
def test_every_template_keeps_valid_checksums_and_a_zero_stamp(specs: list[str], sizes: list[int], seed: int) -> None:
    random = any(s.endswith(":random") for s in specs)
    plan = build_plan(vary=specs, size=",".join(map(str, sizes)), count=500, seed=seed if random else None)
    assert plan.frames.stamped
    for t in plan.frames.templates:
        assert ipv4_udp_ok(t) and t[STAMP_OFF : STAMP_OFF + STAMP_LEN] == bytes(STAMP_LEN)


def test_a_udp_checksum_that_sums_to_zero_is_sent_as_all_ones() -> None:
    # RFC 768: 0x0000 means "no checksum"; among 65 536 source ports one makes the computed checksum 0
    templates = build_plan(vary=["udp.sport=0-65535"], count=65_536, size="60", interval="1ns").frames.templates
    sums = [struct.unpack_from("!H", t, 40)[0] for t in templates]
    assert 0 not in sums and 0xFFFF in sums


def test_65536_variants_are_built_without_scapy_per_variant() -> None:
    # scapy takes about a millisecond a frame: a minute for these; numpy takes well under a second here
    start = time.perf_counter()
    plan = build_plan(vary=["udp.sport=0-65535"], count=MAX_PACKETS, size="1518", interval="1us")
    elapsed = time.perf_counter() - start
    assert len(plan.frames.templates) == MAX_TEMPLATES
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert all(ipv4_udp_ok(t) for t in plan.frames.templates[::97])


def test_more_distinct_frames_than_the_cap_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"needs 100000 distinct frames .* more than 65536"):
        build_plan(vary=["ip.src=10.0.0.0-10.255.255.255"], count=100_000)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tcp.sport=1-2", r"there is no field 'tcp.sport'; give one of eth.dst, eth.src, ip.tos, .*udp.dport"),
        ("udp.sport", r"is not a field range: give field=first-last"),
        ("udp.sport=2000-1000", r"runs backwards \(2000 > 1000\): give first <= last"),
        ("udp.sport=0-70000", r"70000 is out of range for udp.sport: give 0\.\.65535"),
        ("ip.ttl=300", r"300 is out of range for ip.ttl: give 0\.\.255"),
        ("ip.src=10.0.0.300", r"'10.0.0.300' is not an IPv4 address"),
        ("ip.dst=10.0.0.9-10.0.0.1", r"runs backwards \(10.0.0.9 > 10.0.0.1\)"),
        ("eth.src=02:00:00:00:00", r"is not a MAC address"),
        ("udp.dport=1-5:shuffle", r"mode 'shuffle' is unknown: give :inc, :dec, :random"),
        ("udp.dport=one-5", r"'one' is not a whole number"),
    ],
)
def test_a_bad_vary_is_named(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as e:
        build_plan(vary=[spec])
    assert spec in str(e.value)


# -- the user's frames --------------------------------------------------------------------------
def test_user_frames_are_sent_in_turn_as_they_are() -> None:
    user = [bytes([i]) * (60 + i) for i in range(3)]
    plan = build_plan(frames=user, rate="1Gbps", count=7)
    assert frames_of(plan) == [user[i % 3] for i in range(7)]
    assert not plan.frames.stamped and plan.origin["frames"] == 3
    # the bit rate counts their own lengths: 60, 61, 62 B
    assert [int(d) for d in plan.due_ns[:4]] == [0, 480, 968, 1464]


@pytest.mark.parametrize(
    ("frames", "expected"),
    [([], "at least one frame"), ([b"x" * 59], "frame 0 is 59 bytes"), ([b"x" * 60, "text"], "frame 1 is a str")],
)
def test_bad_user_frames_are_named(frames: list[Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        build_plan(frames=frames)


# -- an offsets file ----------------------------------------------------------------------------
def test_offsets_give_each_deadline_and_maybe_its_size(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("offset_ns,size\n# a comment\n0,64\n\n100   # trailing comment\n100,1518\n 2500 , \n")
    plan = build_plan(offsets=csv, size="200")
    assert [int(d) for d in plan.due_ns] == [0, 100, 100, 2500]
    assert [int(s) for s in plan.sizes] == [64, 200, 1518, 200]  # a row without a size takes the size given
    assert plan.origin == {"kind": "offsets", "file": str(csv), "count": 4, "file_sizes": 2, "size": 200}
    assert all(ipv4_udp_ok(t) for t in plan.frames.templates)


def test_offsets_with_every_size_do_not_claim_another(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("0,64\n10,128\n")
    assert "size" not in build_plan(offsets=csv).origin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0\n200\n100\n", r"line 3: deadline 100 ns is before the one above \(200 ns\): deadlines must not decrease"),
        ("0\n-5\n", r"line 2: deadline -5 ns is out of range: give 0\.\."),
        ("# nothing\n\n", r"has no deadlines: give one deadline in ns per line"),
        ("ns\n", r"has no deadlines"),
        ("0\nten\n", r"line 2: 'ten' is not a deadline: give a whole number of ns"),
        ("0\n1.5\n", r"line 2: '1.5' is not a deadline"),
        ("0,64,x\n", r"line 1: 3 cells: give deadline_ns or deadline_ns,size_bytes"),
        ("0,big\n", r"line 1: size 'big' is not a whole number of bytes: give 60\.\.16384"),
        ("0,59\n", r"line 1: size 59 B is out of range: give 60\.\.16384 bytes"),
    ],
)
def test_a_bad_offsets_file_is_named_with_its_line(tmp_path: Path, text: str, expected: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(ConfigError, match=expected) as e:
        build_plan(offsets=csv)
    assert str(csv) in str(e.value)


def test_an_unreadable_offsets_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'.*missing.csv' cannot be read: No such file"):
        build_plan(offsets=tmp_path / "missing.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"is not a text \(UTF-8\) file"):
        build_plan(offsets=binary)


def test_offsets_sizes_and_user_frames_conflict(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("0,64\n")
    with pytest.raises(ConfigError, match="gives frame sizes: drop them, or drop frames"):
        build_plan(offsets=csv, frames=[b"x" * 60])


# -- combinations that conflict, and values out of range ----------------------------------------
BAD: list[tuple[dict[str, Any], str]] = [
    ({"interval": "1us", "rate": "1Mpps"}, r"interval and rate both set the pace: give one of interval, rate"),
    ({"rate": "1Mpps", "burst": 4, "every": "1us"}, r"rate and burst/every both set the pace"),
    ({"interval": "1us", "offsets": "x.csv"}, r"interval and offsets both set the pace"),
    ({"rate": "1Mpps", "offsets": "x.csv"}, r"rate and offsets both set the pace"),
    ({"interval": "1us", "rate": "1Mpps", "offsets": "x.csv"}, r"interval and rate and offsets all set the pace"),
    ({"burst": 4}, r"burst needs every: N frames back to back every T"),
    ({"every": "1us"}, r"every needs burst"),
    ({"poisson": True}, r"poisson needs rate, its mean"),
    ({"poisson": True, "interval": "1us"}, r"poisson needs rate"),
    ({"count": 5, "duration": "1s"}, r"count and duration both set the length: give one of them"),
    ({"offsets": "x.csv", "count": 5}, r"offsets gives the count \(one packet per line\): drop count and duration"),
    ({"imix": True, "size": "64"}, r"imix and size both set the frame sizes"),
    ({"frames": [b"x" * 60], "size": "64"}, r"frames are sent as they are: drop size"),
    ({"frames": [b"x" * 60], "imix": True, "vary": ["ip.ttl=1"]}, r"drop imix and vary"),
    ({"seed": 1}, r"seed applies to what is random: give it with poisson or a :random vary"),
    ({"rate": "1Mpps", "rate_l1": True}, r"rate_l1 counts the wire overhead of a bit rate: give rate in bps"),
    ({"rate_l1": True}, r"rate_l1 .*give rate in bps"),
    ({"vary": ["ip.ttl=1-2", "ip.ttl=3"]}, r"vary names ip.ttl more than once"),
    ({"poisson": True, "rate": "1Mpps", "seed": -1}, r"seed -1 is out of range: give a whole number, 0 or more"),
    ({"burst": 0, "every": "1us"}, r"burst 0 is out of range: give 1\.\.1000000 frames"),
    ({"burst": True, "every": "1us"}, r"burst True is out of range"),
    ({"burst": 4, "every": "0us"}, r"every '0us' is out of range: give 1ns\.\.10s"),
    ({"burst": 4, "every": "-1us"}, r"every '-1us' is out of range: give 1ns\.\.10s"),
    ({"interval": "0"}, r"interval '0' is out of range: give 1ns\.\.10s"),
    ({"interval": "11s"}, r"interval '11s' is out of range: give 1ns\.\.10s"),
    ({"count": 0}, r"count 0 is out of range: give 1\.\.1000000"),
    ({"count": MAX_PACKETS + 1, "records": "full"}, r"--records full for 1,000,001 packets would keep 1\.\d GiB"),
    ({"count": MAX_PACKETS + 1, "rate": "1Mpps", "poisson": True}, r"count 1000001 is out of range: give 1\.\.1000000"),
    (
        {"count": 2**32},
        r"count 4294967296 is out of range: give 1\.\.1000000 \(up to 4294967295 without full records\)",
    ),
    ({"count": 2.5}, r"count must be an integer"),
    ({"duration": "0s"}, r"duration '0s' is out of range: give 1ns\.\.86400s"),
    ({"duration": "2d"}, r"duration '2d' is not a duration"),
    ({"duration": "25h"}, r"duration '25h' is out of range: give 1ns\.\.86400s"),
    ({"duration": "2h", "poisson": True, "rate": "1kpps"}, r"duration '2h' is out of range: give 1ns\.\.3600s"),
    ({"size": "59"}, r"size 59 B is out of range: give 60\.\.16384 bytes"),
    ({"size": "64,20000"}, r"size 20000 B is out of range: give 60\.\.16384 bytes"),
    ({"size": "big"}, r"size 'big' is not a size"),
    ({"rate": "0pps"}, r"rate '0pps' is out of range: give more than 0"),
    ({"rate": "-1Gbps"}, r"rate '-1Gbps' is out of range: give more than 0"),
    ({"rate": "1Gpps", "duration": "10s"}, r"duration '10s' holds about 10000000000 packets .*give at most 4294967295"),
    ({"interval": "1ns", "duration": "3600s"}, r"holds about 3600000000000 packets"),
    ({"rate": "1Mpps", "duration": "1000001us", "records": "full"}, r"--records full for 1,000,001 packets"),
    ({"poisson": True, "rate": "1Mpps", "duration": "1100ms", "seed": 1}, r"holds about 1100000 packets"),
]


@pytest.mark.parametrize(("kwargs", "expected"), BAD, ids=[str(k) for k, _ in BAD])
def test_every_refusal_is_one_line_naming_the_problem(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as e:
        build_plan(**kwargs)
    assert "\n" not in str(e.value)


def test_a_poisson_duration_near_the_cap_is_decided_by_the_draw() -> None:
    # 999 990 packets expected, standard deviation 1000: the first check passes it, the draw decides
    with pytest.raises(ConfigError, match=r"holds more than 1000000 packets at this pace: give at most 1000000"):
        build_plan(poisson=True, rate="1Mpps", duration="999990us", seed=1)
    assert len(build_plan(poisson=True, rate="1Mpps", duration="999990us", seed=2)) == 999_029


# -- the origin ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "origin"),
    [
        ({"interval": "2us", "count": 3}, {"kind": "periodic", "interval_ns": 2000, "count": 3, "size": 1500}),
        ({"rate": "1.5Mpps", "count": 3}, {"kind": "rate", "pps": 1_500_000, "count": 3, "size": 1500}),
        (
            {"rate": "2.5Gbps", "rate_l1": True, "count": 3, "size": "64,128"},
            {"kind": "rate", "bps": 2_500_000_000, "l1": True, "count": 3, "sizes": [64, 128]},
        ),
        ({"rate": "0.5pps", "count": 2}, {"kind": "rate", "pps": 0.5, "count": 2, "size": 1500}),
        (
            {"burst": 2, "every": "1ms", "duration": "3ms"},
            {"kind": "burst", "burst": 2, "every_ns": 1_000_000, "count": 6, "duration_ns": 3_000_000, "size": 1500},
        ),
        (
            {"poisson": True, "rate": "1kpps", "count": 2, "seed": 9, "vary": ["ip.ttl=1-2"]},
            {"kind": "poisson", "pps": 1000, "count": 2, "size": 1500, "seed": 9, "vary": ["ip.ttl=1-2:inc"]},
        ),
    ],
)
def test_the_origin_says_what_made_the_plan(kwargs: dict[str, Any], origin: dict[str, Any]) -> None:
    plan = build_plan(**kwargs)
    assert plan.origin == origin
    assert json.loads(json.dumps(plan.origin)) == origin
