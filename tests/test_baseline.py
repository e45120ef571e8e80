"""The kernel baseline: a real measurement over a veth pair, and teardown whatever goes wrong."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pseudonic.bench import baseline
from pseudonic.bench.search import Point
from pseudonic.frames import internet_checksum

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the kernel baseline needs root: it creates network namespaces and a veth pair"
)


def ours() -> list[str]:
    """This process's namespaces, and any veth of ours left in the root namespace."""
    from pyroute2 import IPRoute

    mine = [n for n in baseline.our_namespaces() if n.startswith(f"{baseline.NETNS_PREFIX}{os.getpid()}-")]
    with IPRoute() as ipr:
        links = [link.get("ifname") for link in ipr.get_links()]
    return mine + [name for name in links if name and name.startswith("pnb")]


@pytest.fixture
def usable() -> None:
    reason = baseline.baseline_available()
    if reason is not None:
        pytest.skip(reason)
    assert ours() == []


def test_not_root_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in (baseline.baseline_available() or "")
    assert set(baseline.measure_baseline(count=10)) == {"skipped"}


def test_cpu_mask() -> None:
    assert [baseline._cpu_mask(c) for c in (0, 1, 5, 31, 32, 40)] == [
        "1",
        "2",
        "20",
        "80000000",
        "1,00000000",
        "100,00000000",
    ]


@needs_root
def test_quick_measurement(usable: None) -> None:
    seen: list[tuple[int, Point]] = []
    result = baseline.measure_baseline(count=500, intervals=[20_000, 5_000], progress=lambda i, p: seen.append((i, p)))
    assert "skipped" not in result, result
    assert [i for i, _ in seen] == [0, 1]
    assert [p["interval_ns"] for p in result["points"]] == [5_000, 20_000]
    for p in result["points"]:
        assert 0.0 <= p["success_rate"] <= 1.0
        assert p["gbps"] >= 0.0
    assert result["size"] == 1500 and result["count"] == 500
    assert "1500 B" in result["method"] and "1472" in result["method"]
    assert result["sender"] == "raw" and "AF_PACKET" in result["method"], result["note"]
    assert result["stray_datagrams"] == 0
    assert isinstance(result["note"], str)
    if result["min_full_success_interval_ns"] is not None:
        assert result["gbps"] > 0 and result["pps"] > 0
        assert result["achieved_interval_ns"] >= result["min_full_success_interval_ns"] * 0.9
    assert ours() == []


@needs_root
def test_without_af_packet_the_sender_falls_back_to_udp(usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket

    def no_raw(family: int = -1, *args: object, **kwargs: object) -> socket.socket:
        if family == socket.AF_PACKET:
            raise PermissionError(1, "Operation not permitted")
        return real(family, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", no_raw)  # inherited by the forked sender
    result = baseline.measure_baseline(count=200, intervals=[20_000])
    assert result["sender"] == "udp" and "UDP socket" in result["method"]
    assert "fell back to a UDP socket" in result["note"] and "Operation not permitted" in result["note"]
    assert result["points"][0]["success_rate"] > 0.5
    assert ours() == []


@needs_root
def test_teardown_when_the_measurement_raises(usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> baseline._Shot:
        assert len(ours()) == 2, "both namespaces exist while measuring"
        raise RuntimeError("measurement failed")

    monkeypatch.setattr(baseline, "_measure_once", broken)
    with pytest.raises(RuntimeError, match="measurement failed"):
        baseline.measure_baseline(count=10, intervals=[10_000])
    assert ours() == []


@needs_root
def test_teardown_when_a_child_dies(usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def dying_sender(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(baseline, "_sender", dying_sender)
    with pytest.raises(RuntimeError, match=r"baseline-sender died \(exit code 3\)"):
        baseline.measure_baseline(count=10, intervals=[10_000])
    assert ours() == []


@needs_root
def test_sweep_removes_only_dead_owners(usable: None) -> None:
    from pyroute2 import netns

    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = f"{baseline.NETNS_PREFIX}{gone.pid}-abcdef-rx"
    live = f"{baseline.NETNS_PREFIX}{os.getpid()}-abcdef-rx"
    netns.create(stale)
    netns.create(live)
    try:
        removed = baseline.sweep_stale_namespaces()
        assert stale in removed and live not in removed
        assert live in netns.listnetns() and stale not in netns.listnetns()
    finally:
        for name in (stale, live):
            if name in netns.listnetns():
                netns.remove(name)
    assert ours() == []


def shot(interval_ns: int, achieved_ns: int, received: int, count: int = 1000) -> baseline._Shot:
    return baseline._Shot(interval_ns, count, count, received, received * 1472, achieved_ns * count, 1500)


def test_what_limited_judges_by_the_achieved_intervals() -> None:
    assert baseline.what_limited({}, None)[0] is None
    # Nothing shorter measured: the sender missed the pace (a lower bound), or the search stopped first.
    assert baseline.what_limited({200: shot(200, 2700, 1000)}, 200)[0] == "sender"
    assert baseline.what_limited({200: shot(200, 205, 1000)}, 200)[0] == "search floor"
    # The receiver dropped where the sender sent faster than at the answer: the receiver's limit.
    who, note = baseline.what_limited({1000: shot(1000, 2000, 900), 2000: shot(2000, 2100, 1000)}, 2000)
    assert who == "receiver" and "2000 ns each" in note and "900 of 1000" in note
    # Dropped although the sender went no faster: both at about the same rate.
    assert baseline.what_limited({1000: shot(1000, 2700, 990), 2000: shot(2000, 2690, 1000)}, 2000)[0] == "both"
    # Dropped at 8 us, yet a shorter interval took everything: a stall, not a rate limit.
    shots = {1000: shot(1000, 2700, 1000), 8000: shot(8000, 8000, 950), 16000: shot(16000, 16000, 1000)}
    who, note = baseline.what_limited(shots, 16000)
    assert who == "noise" and "1000 ns" in note


def test_frame_parses_back_with_a_valid_ip_checksum() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    for size in (32, 100, 1500):
        frame = baseline.udp_frame(size, src_mac="02:00:00:00:00:02", dst_mac="02:00:00:00:00:01")
        assert len(frame) == baseline.ETH_HEADER + size
        pkt = Ether(frame)
        assert (pkt.dst, pkt.src, pkt.type) == ("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800)
        ip, udp = pkt[IP], pkt[UDP]
        assert (ip.version, ip.ihl, ip.len, ip.ttl, ip.proto, ip.frag) == (4, 5, size, 64, 17, 0)
        assert ip.flags == "DF" and (ip.src, ip.dst) == (baseline.TX_ADDR, baseline.RX_ADDR)
        assert (udp.sport, udp.dport, udp.len, udp.chksum) == (baseline.TX_PORT, baseline.PORT, size - 20, 0)
        assert bytes(udp.payload) == bytes(size - baseline.IP_UDP_HEADERS)
        # The checksum scapy computes for the same header, and the receiver's check: the header sums to 0xffff.
        again = IP(bytes(ip))
        del again.chksum
        assert IP(bytes(again)).chksum == ip.chksum
        header = frame[baseline.ETH_HEADER : baseline.ETH_HEADER + 20]
        assert internet_checksum(header) == 0
        # The sequence number goes at the start of the UDP payload, where the receiver reads it.
        assert len(frame) - len(bytes(udp.payload)) == baseline.SEQ_OFFSET
    textbook = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")  # the usual worked example
    assert internet_checksum(textbook) == 0xB861
    with pytest.raises(ValueError):
        baseline.udp_frame(1501, src_mac="02:00:00:00:00:02", dst_mac="02:00:00:00:00:01")


def test_frames_are_as_the_baseline_built_them_before_it_used_frames_py() -> None:
    # Recorded from the baseline's own builder (struct and its own checksum) before it took frames.py's.
    small = baseline.udp_frame(32, src_mac="02:00:00:00:00:02", dst_mac="02:00:00:00:00:01")
    assert small.hex() == ("020000000001020000000002080045000020000040004011b6c9c0000202c0000201c0000009000c"
                           "000000000000")  # fmt: skip
    mtu = baseline.udp_frame(1500, src_mac="02:00:00:00:00:02", dst_mac="02:00:00:00:00:01")
    assert hashlib.sha256(mtu).hexdigest() == "f5e047953ef4c0e2a8a2eb7fc3a135d0a793eedc4c62c725f966b55d1fe01a18"


def _library_or_skip() -> Any:
    try:
        return baseline._library()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@contextlib.contextmanager
def _loopback_pair(rcvbuf: int) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A UDP receiver on loopback with ``rcvbuf`` bytes of buffer, and a sender connected to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        rx.bind(("127.0.0.1", 0))
        tx.connect(rx.getsockname())
        yield rx, tx


def test_sender_batches_only_when_behind() -> None:
    """pnb_send on loopback: all due at once goes in sendmmsg batches of 64, each with its own sequence number."""
    lib = _library_or_skip()
    with _loopback_pair(4 << 20) as (rx, tx):
        payload = bytes(100)

        def send(count: int, interval_ns: int, seq_off: int = 0, first_seq: int = 0) -> baseline._SendStats:
            st = baseline._SendStats()
            n = lib.pnb_send(
                tx.fileno(), payload, len(payload), seq_off, first_seq, count, interval_ns, ctypes.byref(st)
            )
            assert n == count
            assert st.end_ns >= st.start_ns and st.refused == 0
            return st

        def seqs(seq_off: int = 0) -> list[int]:
            out: list[int] = []
            while True:
                try:
                    data = rx.recv(2048, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return out
                assert len(data) == len(payload)
                out.append(int.from_bytes(data[seq_off : seq_off + 4], "little"))

        st = send(130, 0)  # every deadline is now: behind from the start
        assert (st.syscalls, st.batch_calls, st.max_batch) == (3, 3, 64)  # 64 + 64 + 2
        assert seqs() == list(range(130))
        st = send(3, 50_000_000)  # 50 ms apart: on time, one send per deadline
        assert (st.syscalls, st.batch_calls, st.max_batch) == (3, 0, 1)
        assert seqs() == [0, 1, 2]
        send(4, 0, seq_off=42, first_seq=2**32 - 2)  # anywhere in the buffer; wraps around
        assert seqs(42) == [2**32 - 2, 2**32 - 1, 0, 1]
        st = baseline._SendStats()
        assert lib.pnb_send(tx.fileno(), payload, len(payload), 97, 0, 1, 0, ctypes.byref(st)) == -errno.EINVAL
    assert payload == bytes(100), "the caller's buffer is left alone"


def test_receiver_counts_only_its_run() -> None:
    """pnb_recv on loopback: datagrams outside first_seq .. first_seq + span - 1 are read but not counted."""
    lib = _library_or_skip()
    with _loopback_pair(1 << 20) as (rx, tx):
        first = 2**32 - 3  # the run's range wraps: 2**32-3 .. 2**32-1, 0 .. 6
        for seq in (5, 2**32 - 4, 2**32 - 3, 7, 0, 6, 1234):
            tx.send(seq.to_bytes(4, "little") + bytes(96))
        tx.send(b"ab")  # too short to carry a sequence number
        nbytes, stray = ctypes.c_uint64(), ctypes.c_uint64()
        got = lib.pnb_recv(rx.fileno(), 100, first, 10, 1_000_000, ctypes.byref(nbytes), ctypes.byref(stray))
        assert (got, nbytes.value, stray.value) == (4, 400, 4)  # 5, 2**32-3, 0, 6 counted; 2**32-4, 7, 1234, b"ab" not
