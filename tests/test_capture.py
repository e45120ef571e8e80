"""Captures in and out (pseudonic.capture), and the driver node's capture of its deliveries.

In: a pcap (µs or ns) or pcapng file gives frames and timestamps exact to
the ns; anything else is one ConfigError line naming the file and the
problem. A capture plays on its own gaps, divided by ``speed``, ``loop``
times, each loop one median gap after the last. Out: a nanosecond pcap of
Ethernet frames that scapy, dpkt and tcpdump read back exactly; the frames
the device sent, byte for byte as they landed in the ring.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from collections.abc import Callable
from decimal import Decimal
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import needs_two_cores, plain_segment, run_device
from pseudonic import _engine
from pseudonic.capture import (
    LINKTYPE_ETHERNET,
    Capture,
    capture_plan,
    delivered_capture,
    read_capture,
    sent_capture,
    sent_frames,
    write_pcap,
)
from pseudonic.drivers.e1000 import E1000
from pseudonic.errors import ConfigError
from pseudonic.frames import STAMP_OFF, UDP_CSUM_OFF, FrameSet, generated_frame, ipv4_udp_ok, read_stamp
from pseudonic.hosts import HostPlan, NodeRun, c_host, python_host
from pseudonic.layout import (
    ICR_RXT0,
    SLOT_SPURIOUS,
    TX_DROPPED,
    TX_RECORD,
    TX_SPURIOUS,
    TX_STORED,
)
from pseudonic.line import Line
from pseudonic.loading import CDriver, reference_library
from pseudonic.plan import MAX_PACKETS, Plan
from pseudonic.schedule import from_offsets

EPOCH = 1_700_000_000_000_000_000  # 2023-11-14, in ns: a realistic wall-clock stamp


def frame(i: int, size: int = 64) -> bytes:
    """An Ethernet frame of ``size`` bytes whose payload bytes are all ``i`` (EtherType 0x88b5: local use)."""
    return bytes.fromhex("020000000002 020000000001 88b5") + bytes([i & 0xFF]) * (size - 14)


# -- fixtures written by hand, so that reading is not only checked against our own writer ----------


def pcap_file(
    records: list[tuple[int, int, bytes]],
    *,
    nano: bool,
    endian: str = "<",
    linktype: int = LINKTYPE_ETHERNET,
    wirelen: int | None = None,
) -> bytes:
    """A pcap: (seconds, fraction of a second in µs or ns, frame) per record."""
    out = struct.pack(endian + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), wirelen or len(data)) + data
    return out


def _block(endian: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(endian + "II", btype, len(body) + 12) + body + struct.pack(endian + "I", len(body) + 12)


def pcapng_file(
    records: list[tuple[int, bytes]],
    *,
    tsresol: int | None = 9,
    endian: str = "<",
    linktype: int = LINKTYPE_ETHERNET,
    simple: bool = False,
) -> bytes:
    """A pcapng: one section, one interface (if_tsresol = ``tsresol``, absent if None), one packet block per
    (timestamp in ticks, frame); ``simple`` makes them Simple Packet Blocks, which carry no timestamp."""
    out = _block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if tsresol is not None:
        options = struct.pack(endian + "HHB3x", 9, 1, tsresol) + struct.pack(endian + "HH", 0, 0)
    out += _block(endian, 1, struct.pack(endian + "HHI", linktype, 0, 0) + options)
    for ticks, data in records:
        if simple:
            out += _block(endian, 3, struct.pack(endian + "I", len(data)) + data)
        else:
            epb = struct.pack(endian + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
            out += _block(endian, 6, epb + data)
    return out


def written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- out: a nanosecond pcap -------------------------------------------------------------------------

FRAMES = [frame(1, 60), frame(2, 1514), generated_frame(128)]
STAMPS = [EPOCH + 123_456_789, EPOCH + 999_999_999, EPOCH + 1_000_000_001]


def test_written_pcap_is_a_nanosecond_pcap_of_ethernet_frames(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    write_pcap(path, FRAMES, STAMPS)
    raw = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, linktype) == (0xA1B23C4D, 2, 4, 1)
    off, records = 24, []
    while off < len(raw):
        sec, nsec, caplen, wirelen = struct.unpack_from("<IIII", raw, off)
        records.append((sec * 10**9 + nsec, raw[off + 16 : off + 16 + caplen], wirelen))
        off += 16 + caplen
    assert records == [(s, f, len(f)) for s, f in zip(STAMPS, FRAMES, strict=True)]


def test_written_pcap_reads_back_exactly_with_scapy(tmp_path: Path) -> None:
    from scapy.utils import RawPcapReader

    path = tmp_path / "out.pcap"
    write_pcap(path, FRAMES, np.array(STAMPS, dtype=np.int64))
    with RawPcapReader(str(path)) as reader:
        got = [(meta.sec * 10**9 + meta.usec, data) for data, meta in reader]
        assert reader.nano and reader.linktype == 1
    assert got == list(zip(STAMPS, FRAMES, strict=True))


def test_written_pcap_reads_back_exactly_with_dpkt(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    write_pcap(path, [memoryview(f) for f in FRAMES], STAMPS)
    with path.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        # dpkt gives a nanosecond pcap's timestamps as Decimal seconds: exact
        got = [(int(Decimal(ts) * 10**9), bytes(buf)) for ts, buf in reader]
    assert got == list(zip(STAMPS, FRAMES, strict=True))


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_reads_the_written_pcap_to_the_nanosecond(tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    write_pcap(path, FRAMES, STAMPS)
    out = subprocess.run(
        ["tcpdump", "-nn", "-tt", "--time-stamp-precision=nano", "-r", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "link-type EN10MB" in out.stderr
    headlines = [line for line in out.stdout.splitlines() if not line[:1].isspace()]  # not the hex dumps
    assert [line.split()[0] for line in headlines] == [
        "1700000000.123456789",
        "1700000000.999999999",
        "1700000001.000000001",
    ]


def test_an_empty_pcap_is_a_header_alone(tmp_path: Path) -> None:
    path = tmp_path / "none.pcap"
    write_pcap(path, [], [])
    assert len(path.read_bytes()) == 24


@pytest.mark.parametrize(
    ("frames", "stamps", "wording"),
    [
        ([frame(1)], [], "1 frames but 0 timestamps"),
        ([frame(1)], [-1], "frame 0 is stamped -1 ns: a pcap holds 0..4294967295999999999 ns since the epoch"),
        ([frame(1)], [1 << 32 << 30], "needs the run's clock offset added"),
    ],
)
def test_write_pcap_refuses_what_a_pcap_cannot_hold(
    tmp_path: Path, frames: list[bytes], stamps: list[int], wording: str
) -> None:
    with pytest.raises(ConfigError, match=r"^pcap .*out\.pcap: ") as exc:
        write_pcap(tmp_path / "out.pcap", frames, stamps)
    assert wording in str(exc.value)


def test_write_pcap_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^pcap .*/nowhere/out.pcap cannot be written: No such file or directory$"):
        write_pcap(tmp_path / "nowhere" / "out.pcap", [frame(1)], [EPOCH])


# -- in: pcap and pcapng, exact to the ns -----------------------------------------------------------

THREE = [frame(1, 60), frame(2, 100), frame(3, 1514)]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_reads_a_microsecond_pcap(tmp_path: Path, endian: str) -> None:
    records = [(1_700_000_000, 1, THREE[0]), (1_700_000_000, 999_999, THREE[1]), (1_700_000_001, 0, THREE[2])]
    data = pcap_file(records, nano=False, endian=endian)
    cap = read_capture(written(tmp_path, "us.pcap", data))
    assert cap.frames == THREE
    assert cap.stamps_ns.tolist() == [EPOCH + 1_000, EPOCH + 999_999_000, EPOCH + 1_000_000_000]
    assert cap.stamps_ns.dtype == np.int64 and cap.linktype == LINKTYPE_ETHERNET
    assert cap.name.endswith("us.pcap") and len(cap) == 3


@pytest.mark.parametrize("endian", ["<", ">"])
def test_reads_a_nanosecond_pcap(tmp_path: Path, endian: str) -> None:
    records = [(1_700_000_000, 1, THREE[0]), (1_700_000_000, 999_999_999, THREE[1]), (1_700_000_001, 7, THREE[2])]
    data = pcap_file(records, nano=True, endian=endian)
    cap = read_capture(written(tmp_path, "ns.pcap", data))
    assert cap.frames == THREE
    assert cap.stamps_ns.tolist() == [EPOCH + 1, EPOCH + 999_999_999, EPOCH + 1_000_000_007]


def test_reads_a_gzip_compressed_pcap_as_scapy_does(tmp_path: Path) -> None:
    data = gzip.compress(pcap_file([(1_700_000_000, 5, THREE[0])], nano=True))
    assert read_capture(written(tmp_path, "ns.pcap.gz", data)).stamps_ns.tolist() == [EPOCH + 5]


@pytest.mark.parametrize(
    ("tsresol", "ticks", "ns"),
    [
        (9, [EPOCH + 1, EPOCH + 2_000_000_003], [EPOCH + 1, EPOCH + 2_000_000_003]),  # ns
        (None, [EPOCH // 1000 + 1, EPOCH // 1000 + 2], [EPOCH + 1_000, EPOCH + 2_000]),  # µs, the default
        (3, [EPOCH // 10**6 + 1, EPOCH // 10**6 + 2], [EPOCH + 10**6, EPOCH + 2 * 10**6]),  # ms
        (0x80 | 10, [3 << 10, (3 << 10) + 1], [3 * 10**9, 3 * 10**9 + 976_562]),  # 2^-10 s, rounded down
    ],
)
def test_reads_a_pcapng_at_its_interface_resolution(
    tmp_path: Path, tsresol: int | None, ticks: list[int], ns: list[int]
) -> None:
    for endian in "<>":
        data = pcapng_file(list(zip(ticks, THREE, strict=False)), tsresol=tsresol, endian=endian)
        cap = read_capture(written(tmp_path, f"c{endian == '<'}.pcapng", data))
        assert cap.frames == THREE[:2]
        assert cap.stamps_ns.tolist() == ns


def test_reads_a_pcapng_written_by_scapy(tmp_path: Path) -> None:
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcapng

    packets = [Ether(f) for f in THREE]
    for k, p in enumerate(packets):
        p.time = 1_700_000_000.25 + k  # exact in binary; scapy's pcapng is in µs
    path = tmp_path / "scapy.pcapng"
    wrpcapng(str(path), packets)
    cap = read_capture(path)
    assert cap.frames == THREE
    assert cap.stamps_ns.tolist() == [EPOCH + 250_000_000 + k * 10**9 for k in range(3)]


def test_a_pcapng_may_end_with_blocks_that_are_not_packets(tmp_path: Path) -> None:
    statistics = _block("<", 5, struct.pack("<III", 0, 0, 0))  # an Interface Statistics Block
    cap = read_capture(written(tmp_path, "isb.pcapng", pcapng_file([(EPOCH, THREE[0])]) + statistics))
    assert cap.frames == THREE[:1]


def test_timestamps_that_go_back_are_read_as_they_are(tmp_path: Path) -> None:
    data = pcap_file([(1_700_000_001, 0, THREE[0]), (1_700_000_000, 0, THREE[1])], nano=True)
    cap = read_capture(written(tmp_path, "back.pcap", data))
    assert cap.stamps_ns.tolist() == [EPOCH + 10**9, EPOCH]


def test_a_written_pcap_reads_back_as_it_was_written(tmp_path: Path) -> None:
    write_pcap(tmp_path / "rt.pcap", FRAMES, STAMPS)
    cap = read_capture(tmp_path / "rt.pcap")
    assert cap.frames == FRAMES and cap.stamps_ns.tolist() == STAMPS


GOOD_PCAP = pcap_file([(1_700_000_000, 0, THREE[0]), (1_700_000_000, 10, THREE[1])], nano=True)
GOOD_PCAPNG = pcapng_file([(EPOCH, THREE[0]), (EPOCH + 10, THREE[1])])

BAD_FILES: list[tuple[str, bytes | None, str]] = [
    ("missing", None, "cannot be read: No such file or directory"),
    ("empty", b"", "is empty: give a pcap or pcapng capture"),
    ("text", b"hello, world\n", "is not a pcap or pcapng capture (it begins 68 65 6c 6c)"),
    ("bad gzip", b"\x1f\x8b\x08\x00garbage", "is not a pcap or pcapng capture (a damaged gzip file)"),
    ("pcap header cut short", GOOD_PCAP[:10], "its pcap file header is cut short or damaged"),
    ("pcapng header cut short", GOOD_PCAPNG[:20], "its pcapng file header is cut short or damaged"),
    ("no frames", GOOD_PCAP[:24], "holds no frames"),
    ("pcapng without frames", pcapng_file([]), "holds no frames"),
    ("partial record header", GOOD_PCAP[:-len(THREE[1]) - 6],
     "ends inside frame 1 (10 bytes of a partial record): a capture still being written, or a damaged file"),
    ("partial record data", GOOD_PCAP[:-5],
     "frame 1 is cut short (its record holds 100 bytes, the file 95): a capture still being written"),
    ("partial pcapng block", GOOD_PCAPNG[:-7], "ends inside frame 1 ("),
    ("snapped", pcap_file([(1, 0, THREE[0][:40])], nano=True, wirelen=60),
     "frame 0 was captured in part (40 of 60 bytes, the capture's snap length): capture whole frames (tcpdump -s 0)"),
    ("linux cooked", pcap_file([(1, 0, THREE[0])], nano=True, linktype=113),
     "has link type 113 (LINUX_SLL (tcpdump -i any)): pseudonic sends Ethernet frames; give a capture of link type 1"),
    ("pcapng raw ip", pcapng_file([(1, THREE[0])], linktype=101),
     "frame 0 has link type 101 (RAW (IP without a link layer)): pseudonic sends Ethernet frames"),
    ("unknown link type", pcap_file([(1, 0, THREE[0])], nano=True, linktype=4242), "has link type 4242: "),
    ("simple packet blocks", pcapng_file([(0, THREE[0])], simple=True),
     "frame 0 has no timestamp (a pcapng Simple Packet Block): give a capture whose frames are Enhanced Packet Blocks"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "wording"), BAD_FILES, ids=[c for c, _, _ in BAD_FILES])
def test_a_bad_capture_is_one_line_naming_the_file_and_the_problem(
    tmp_path: Path, case: str, data: bytes | None, wording: str
) -> None:
    path = tmp_path / "bad.cap"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ConfigError) as exc:
        read_capture(path)
    message = str(exc.value)
    assert message.startswith(f"capture {path}")
    assert wording in message and "\n" not in message


def test_a_folder_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^capture {tmp_path} cannot be read: Is a directory$"):
        read_capture(tmp_path)


# -- a capture as a plan ----------------------------------------------------------------------------

T = 1_700_000_000_000_000_000


def cap_of(offsets: list[int], frames: list[bytes] | None = None, name: str = "c.pcap") -> Capture:
    frames = frames if frames is not None else [frame(i) for i in range(len(offsets))]
    return Capture(frames, np.array([T + o for o in offsets], dtype=np.int64), LINKTYPE_ETHERNET, name)


GAPS = [0, 1_000, 1_003, 5_000]  # gaps 1000, 3, 3997: the median gap is 1000


def test_a_capture_plays_on_its_own_gaps_from_zero() -> None:
    plan = capture_plan(cap_of(GAPS), buffer_size=2048)
    assert plan.due_ns.tolist() == [0, 1_000, 1_003, 5_000]
    assert plan.slots["frame"].tolist() == [0, 1, 2, 3] and plan.slots["flags"].tolist() == [0, 0, 0, 0]
    assert plan.origin == {"kind": "pcap", "file": "c.pcap", "frames": 4, "speed": 1.0, "loop": 1}
    plan.check(2048)


@pytest.mark.parametrize(
    ("speed", "due"),
    [
        (2, [0, 500, 502, 2_500]),  # 501.5 rounds up
        (0.5, [0, 2_000, 2_006, 10_000]),
        (3, [0, 333, 334, 1_667]),
        (1.1, [0, 909, 912, 4_545]),  # 1000 / (11/10) = 909.09..., 5000 / 1.1 = 4545.45...
    ],
)
def test_speed_divides_every_deadline_rounded_to_the_nearest_ns(speed: float, due: list[int]) -> None:
    plan = capture_plan(cap_of(GAPS), buffer_size=2048, speed=speed)
    assert plan.due_ns.tolist() == due
    assert plan.origin["speed"] == speed


def test_each_loop_starts_one_median_gap_after_the_last_frame_of_the_one_before() -> None:
    plan = capture_plan(cap_of(GAPS), buffer_size=2048, loop=3)
    assert plan.due_ns.tolist() == [0, 1_000, 1_003, 5_000, 6_000, 7_000, 7_003, 11_000, 12_000, 13_000, 13_003, 17_000]
    assert plan.slots["frame"].tolist() == [0, 1, 2, 3] * 3
    assert len(plan.frames.templates) == 4 and plan.origin["loop"] == 3


def test_loop_and_speed_together() -> None:
    plan = capture_plan(cap_of(GAPS), buffer_size=2048, speed=4, loop=2)
    assert plan.due_ns.tolist() == [0, 250, 251, 1_250, 1_500, 1_750, 1_751, 2_750]


def test_the_median_of_an_even_number_of_gaps_is_rounded_down() -> None:
    plan = capture_plan(cap_of([0, 10, 13]), buffer_size=2048, loop=2)  # gaps 10, 3: median 6.5
    assert plan.due_ns.tolist() == [0, 10, 13, 19, 29, 32]


def test_deadlines_come_from_the_timestamps_so_rounding_never_accumulates() -> None:
    # 1 ns gaps at speed 3: each gap alone rounds to 0 ns; deadline i is still i/3 rounded
    n = 100_000
    plan = capture_plan(cap_of(list(range(n)), [frame(0)] * n), buffer_size=2048, speed=3, loop=2)
    due = plan.due_ns.astype(np.int64)
    assert due[:7].tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert int(due[n - 1]) == 33_333  # 99_999 / 3
    assert int(due[n]) == 33_333  # loop 1 starts one median gap (1 ns) after 99_999: 100_000 / 3 = 33_333.3
    assert int(due[-1]) == 66_666  # and ends at (100_000 + 99_999) / 3 = 66_666.33


def test_every_capture_frame_is_its_own_template_even_when_equal() -> None:
    plan = capture_plan(cap_of([0, 1, 2], [frame(7), frame(7), frame(8)]), buffer_size=2048)
    assert plan.frames.templates == (frame(7), frame(7), frame(8))
    assert not plan.frames.stamped and plan.frames.table["stamp_off"].tolist() == [0, 0, 0]


def test_a_capture_file_makes_a_plan(tmp_path: Path) -> None:
    path = written(tmp_path, "f.pcapng", pcapng_file([(EPOCH + 7, THREE[0]), (EPOCH + 1_007, THREE[1])]))
    plan = capture_plan(path, buffer_size=2048)
    assert plan.due_ns.tolist() == [0, 1_000] and plan.frames.templates == tuple(THREE[:2])
    assert plan.origin["file"] == str(path)


@pytest.mark.parametrize(
    ("kwargs", "wording"),
    [
        ({"speed": 0}, "speed 0 is out of range: give a number above 0 (2 plays the capture twice as fast)"),
        ({"speed": -1.0}, "speed -1.0 is out of range"),
        ({"speed": float("nan")}, "speed nan is out of range"),
        ({"speed": float("inf")}, "speed inf is out of range"),
        ({"speed": True}, "speed True is out of range"),
        ({"speed": "2"}, "speed '2' is out of range"),
        ({"loop": 0}, f"loop 0 is out of range: give a whole number of plays, 1..{MAX_PACKETS}"),
        ({"loop": 1.5}, "loop 1.5 is out of range"),
        ({"loop": True}, "loop True is out of range"),
        ({"loop": MAX_PACKETS}, f"capture c.pcap: 4 frames × loop {MAX_PACKETS} = {4 * MAX_PACKETS} packets: give"),
    ],
)  # fmt: skip
def test_speed_and_loop_out_of_range(kwargs: dict[str, Any], wording: str) -> None:
    with pytest.raises(ConfigError) as exc:
        capture_plan(cap_of(GAPS), buffer_size=2048, **kwargs)
    assert wording in str(exc.value)


@pytest.mark.parametrize(
    ("size", "index"), [(59, 1), (2049, 1), (2048, None), (60, None)], ids=["short", "long", "buffer", "minimum"]
)
def test_a_frame_must_fit_one_receive_buffer(size: int, index: int | None) -> None:
    cap = cap_of([0, 1, 2], [frame(0), frame(1, size), frame(2)])
    if index is None:
        capture_plan(cap, buffer_size=2048).check(2048)
        return
    with pytest.raises(ConfigError) as exc:
        capture_plan(cap, buffer_size=2048)
    assert str(exc.value) == (
        f"capture frame 1 is {size} bytes: frames must be 60..2048 bytes "
        "(the receive buffer size; a frame over several descriptors is not modelled)"
    )


def test_timestamps_that_go_back_make_no_plan() -> None:
    with pytest.raises(ConfigError) as exc:
        capture_plan(cap_of([0, 10, 4, 20]), buffer_size=2048)
    assert str(exc.value) == (
        "capture c.pcap: frame 2 is stamped 6 ns before frame 1: a plan's deadlines must not decrease; "
        "sort the capture by time (reordercap)"
    )


def test_equal_timestamps_are_back_to_back() -> None:
    assert capture_plan(cap_of([0, 0, 0]), buffer_size=2048).due_ns.tolist() == [0, 0, 0]


def test_a_one_frame_capture_has_no_gap_to_loop_on() -> None:
    assert capture_plan(cap_of([0]), buffer_size=2048).due_ns.tolist() == [0]
    with pytest.raises(ConfigError, match=r"^capture c\.pcap holds one frame: looping needs a gap between frames"):
        capture_plan(cap_of([0]), buffer_size=2048, loop=2)


def test_a_capture_built_by_hand_needs_one_timestamp_per_frame() -> None:
    bad = Capture([frame(0), frame(1)], np.array([T], np.int64), LINKTYPE_ETHERNET, "")
    with pytest.raises(ConfigError, match=r"^capture \(in memory\): 2 frames but 1 timestamps"):
        capture_plan(bad, buffer_size=2048)


# -- what the device sent -----------------------------------------------------------------------------


def stamped_plan() -> Plan:
    """Generated (stamped) frames of two sizes and a spurious entry; one per 2 µs."""
    frames = FrameSet.of([generated_frame(128), generated_frame(1500)], stamped=True)
    which = [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
    slots = from_offsets([2_000 * i for i in range(len(which))], frames=which)
    slots["flags"][4] = SLOT_SPURIOUS
    return Plan.make(slots, frames, {"kind": "test"})


def mixed_plan() -> Plan:
    """Stamped frames of two sizes, an unstamped one, a spurious entry; one per 2 µs."""
    stamped = [generated_frame(128), generated_frame(1500)]
    frames = FrameSet.of([*stamped, frame(9, 90)], stamped=False)
    table = frames.table.copy()
    table["stamp_off"][:2] = STAMP_OFF
    table["csum_off"][:2] = UDP_CSUM_OFF
    frames = FrameSet(frames.templates, table, frames.blob, stamped=True)
    which = [0, 1, 2, 0, 0, 1, 2, 1, 0, 0]
    slots = from_offsets([2_000 * i for i in range(len(which))], frames=which)
    slots["flags"][4] = SLOT_SPURIOUS
    return Plan.make(slots, frames, {"kind": "test"})


def test_sent_frames_are_what_landed_in_the_ring_byte_for_byte() -> None:
    plan = mixed_plan()
    view = plain_segment(ring_size=16, buf_size=2048, capacity=len(plan))
    _engine.write_rdt(view.buffer, 15)
    tx = run_device(view, plan)
    assert len(tx) == len(plan) and (tx["flags"] & TX_STORED).sum() == 9
    sent = sent_frames(plan, tx)
    for i, rec in enumerate(tx):
        if rec["flags"] & TX_SPURIOUS:
            assert sent[i] is None
            continue
        got = sent[i]
        assert got is not None
        ring = bytes(view.buffer_of(int(rec["slot"]))[: len(got)])
        assert got == ring, f"entry {i}"
    stamped = [s for s in sent if s is not None and read_stamp(s) is not None]
    assert len(stamped) == 7 and all(ipv4_udp_ok(s) for s in stamped)


def test_dropped_frames_are_sent_frames_too() -> None:
    plan = mixed_plan()
    view = plain_segment(ring_size=4, buf_size=2048, capacity=len(plan))
    _engine.write_rdt(view.buffer, 3)  # room for 3: the rest is dropped
    tx = run_device(view, plan)
    dropped = np.flatnonzero(tx["flags"] & TX_DROPPED).tolist()
    assert dropped == [3, 5, 6, 7, 8, 9]
    sent = sent_frames(plan, tx)
    for i in dropped:
        got = sent[i]
        assert got is not None
        if int(plan.slots["frame"][i]) != 2:
            assert read_stamp(got) == (i, int(tx["start_ns"][i])) and ipv4_udp_ok(got)
        else:
            assert got == frame(9, 90)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(60, 1514),
    starts=st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=8),
    checksum=st.one_of(st.just(0), st.just(0xFFFF), st.integers(0, 0xFFFF)),  # 0: no checksum (RFC 768)
)
def test_the_stamp_and_checksum_patch_match_the_engine(size: int, starts: list[int], checksum: int) -> None:
    template = bytearray(generated_frame(size))
    template[UDP_CSUM_OFF : UDP_CSUM_OFF + 2] = struct.pack("!H", checksum)
    frames = FrameSet.of([bytes(template)], stamped=True)
    plan = Plan.make(from_offsets(list(range(len(starts)))), frames, {})
    tx = np.zeros(len(starts), TX_RECORD)
    tx["start_ns"] = starts
    tx["flags"] = TX_STORED
    sent = sent_frames(plan, tx)
    view = plain_segment(ring_size=16, buf_size=2048, capacity=16)
    _engine.write_rdt(view.buffer, 15)
    for i, start in enumerate(starts):
        slot = _engine.receive(view.buffer, bytes(template), STAMP_OFF, UDP_CSUM_OFF, i, start, 0)
        assert sent[i] == bytes(view.buffer_of(slot)[:size])


def test_every_sent_frame_of_a_long_plan_carries_its_own_stamp() -> None:
    n = 40_000
    plan = Plan.make(from_offsets(list(range(n))), FrameSet.generated(64), {})
    tx = np.zeros(n, TX_RECORD)
    tx["start_ns"] = 10**12 + np.arange(n) * 7
    tx["flags"] = TX_STORED
    sent = sent_frames(plan, tx)
    assert [read_stamp(s) if s is not None else None for s in sent] == [(i, 10**12 + 7 * i) for i in range(n)]
    assert all(ipv4_udp_ok(s) for s in sent[16_380:16_390] + sent[-3:] if s is not None)


def test_sent_frames_upto_and_its_range() -> None:
    plan = mixed_plan()
    tx = np.zeros(len(plan), TX_RECORD)
    assert len(sent_frames(plan, tx, upto=3)) == 3
    with pytest.raises(ConfigError, match=r"^sent frames: upto 11 is out of range: give 0\.\.10$"):
        sent_frames(plan, tx, upto=11)


def test_sent_capture_is_stamped_with_each_send_in_wall_clock_time(tmp_path: Path) -> None:
    plan = mixed_plan()
    tx = np.zeros(len(plan), TX_RECORD)
    tx["start_ns"] = 5_000_000 + np.arange(len(plan)) * 2_000
    tx["flags"] = TX_STORED
    tx["flags"][4] = TX_SPURIOUS
    cap = sent_capture(plan, tx, clock_offset_ns=EPOCH)
    assert len(cap) == 9  # the spurious entry carries no frame
    assert cap.stamps_ns.tolist() == [EPOCH + 5_000_000 + i * 2_000 for i in range(10) if i != 4]
    write_pcap(tmp_path / "sent.pcap", cap.frames, cap.stamps_ns)
    back = read_capture(tmp_path / "sent.pcap")
    assert back.frames == cap.frames and back.stamps_ns.tolist() == cap.stamps_ns.tolist()


def test_delivered_capture_adds_the_clock_offset() -> None:
    cap = delivered_capture([memoryview(frame(1)), frame(2)], np.array([10, 20]), clock_offset_ns=EPOCH)
    assert cap.frames == [frame(1), frame(2)] and cap.stamps_ns.tolist() == [EPOCH + 10, EPOCH + 20]
    with pytest.raises(ConfigError, match=r"^deliveries: 2 frames but 1 delivery times"):
        delivered_capture([frame(1), frame(2)], [10], clock_offset_ns=0)


# -- the driver node keeps its deliveries, with their times, when asked -----------------------------

Host = Callable[..., Callable[[], dict[str, Any]]]


def host_after_device(host: Host, driver: Any, keep_frames: bool, upper: str = "verify") -> tuple[Any, Any, int, int]:
    """The device sends a stamped plan into the ring first (interrupts unmasked, so it raises), then the
    driver node's host runs the driver over it in this process: what the host reports, the device's records,
    and the clock before and after the host."""
    plan = stamped_plan()
    view = plain_segment(ring_size=16, buf_size=2048, capacity=len(plan))
    _engine.write_rdt(view.buffer, 15)
    _engine.write_mask(view.buffer, "ims", ICR_RXT0)
    tx = run_device(view, plan)
    recv_end, send_end = Pipe(duplex=False)
    try:
        before = _engine.now_ns()
        run = NodeRun("", upper, plan.frames, plan.slots, Line.make("spin"), 0, keep_frames)
        report = host(HostPlan.of(run, send_end, view.buffer, view), driver)()
        after = _engine.now_ns()
        assert recv_end.recv() == ("ready", None)
    finally:
        recv_end.close()
        send_end.close()
    return report["deliveries"], (plan, tx), before, after


HOSTS = [
    pytest.param(python_host.host_python, lambda: E1000, id="python"),
    pytest.param(c_host.host_c, lambda: CDriver.load(str(reference_library())), id="c"),
]


@pytest.mark.parametrize(("host", "driver"), HOSTS)
def test_a_host_asked_to_keep_frames_reports_each_delivery_and_when_it_came(
    monkeypatch: pytest.MonkeyPatch, host: Host, driver: Callable[[], Any]
) -> None:
    monkeypatch.setattr(c_host.faulthandler, "disable", lambda: None)  # the C host's; not this process's
    got, (plan, tx), before, after = host_after_device(host, driver(), keep_frames=True)
    stored = np.flatnonzero(tx["flags"] & TX_STORED).tolist()
    assert got.received == 9 and got.seq.tolist() == stored
    sent = sent_frames(plan, tx)
    assert got.frames == [sent[i] for i in stored]
    when = got.delivered_ns
    assert when is not None and when.dtype == np.int64 and len(when) == 9
    assert before <= int(when[0]) and int(when[-1]) <= after and (np.diff(when) >= 0).all()
    assert (when >= tx["start_ns"][stored].astype(np.int64)).all(), "delivered after it was sent"


@pytest.mark.parametrize(("host", "driver"), HOSTS)
def test_a_host_not_asked_keeps_no_frames(
    monkeypatch: pytest.MonkeyPatch, host: Host, driver: Callable[[], Any]
) -> None:
    monkeypatch.setattr(c_host.faulthandler, "disable", lambda: None)
    for upper in ("verify", "null"):
        got, _, _, _ = host_after_device(host, driver(), keep_frames=upper == "null", upper=upper)
        assert got.delivered == 9 and got.frames is None and got.delivered_ns is None


def test_the_c_host_refuses_a_stamp_buffer_shorter_than_its_lengths() -> None:
    view = plain_segment()
    lib = CDriver.load(str(reference_library()))
    arena, lengths = bytearray(4096), np.zeros(4, np.uint32)
    with pytest.raises(_engine.EngineError):
        _engine.cdriver_new(
            view.buffer, lib.open, lib.interrupt, lib.close, 0, 0, arena, lengths, np.zeros(3, np.uint64)
        )
    with pytest.raises(_engine.EngineError):
        _engine.cdriver_new(view.buffer, lib.open, lib.interrupt, lib.close, 0, 0, None, None, np.zeros(4, np.uint64))
    _engine.cdriver_new(view.buffer, lib.open, lib.interrupt, lib.close, 0, 0, arena, lengths, np.zeros(4, np.uint64))


# -- end to end ---------------------------------------------------------------------------------------


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_a_capture_file_plays_through_a_run_and_every_frame_is_delivered(tmp_path: Path, driver: str) -> None:
    import pseudonic

    frames = [frame(i, 60 + 29 * i) for i in range(40)]
    stamps = [EPOCH + 20_000 * i + 3_000 * (i % 4) for i in range(40)]
    write_pcap(tmp_path / "in.pcap", frames, stamps)
    plan = capture_plan(tmp_path / "in.pcap", buffer_size=2048, speed=2, loop=2)
    result = pseudonic.run(plan=plan, driver=driver, wait_for_cores=True)
    assert result.passed and result.sent == 80 and result.received == 80
    # the device kept the capture's timing: each packet began on or after its deadline
    assert (result.tx["start_ns"].astype(np.int64) >= result.t0_ns + plan.due_ns.astype(np.int64)).all()
