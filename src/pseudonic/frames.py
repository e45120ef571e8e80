"""Frames the device sends: Ethernet/IPv4/UDP built with scapy, or the user's.

A generated frame carries, at the start of its UDP payload, ``b"PNIC"``,
then a sequence number (u32) and the send timestamp (u64, ns on
CLOCK_MONOTONIC), both big-endian and written by the device at send time
with the UDP checksum patched (RFC 1624) -- so every frame on the ring has
valid IPv4 and UDP checksums. The rest of the payload is a fixed byte
pattern, so that any corruption of the frame shows against the template.
Addresses are from RFC 5737's documentation range; nothing leaves the host.
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _engine
from .errors import ConfigError
from .layout import FRAME, FRAME_IPV4, FRAME_L4, PCSS

MIN_FRAME = 60  # Ethernet minimum without FCS (IEEE 802.3 clause 3.2.8)
ETH_HLEN = 14
IP_HLEN = 20
UDP_HLEN = 8
PAYLOAD_OFF = ETH_HLEN + IP_HLEN + UDP_HLEN
MAGIC = b"PNIC"
STAMP_OFF = PAYLOAD_OFF + len(MAGIC)  # seq u32 + timestamp u64
STAMP_LEN = 12
UDP_CSUM_OFF = ETH_HLEN + IP_HLEN + 6
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
SRC_IP, DST_IP = "192.0.2.1", "192.0.2.2"
UDP_PORT = 9  # discard


def internet_checksum(data: bytes | memoryview | np.ndarray[Any, Any]) -> int:
    """RFC 1071 one's complement sum, complemented."""
    a = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if a.size % 2:
        a = np.concatenate([a, np.zeros(1, np.uint8)])
    s = int(a.view(">u2").sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ones_sum(data: bytes) -> int:
    """RFC 1071 one's complement sum of big-endian 16-bit words, folded, not complemented."""
    a = np.frombuffer(data + b"\0" * (len(data) % 2), dtype=">u2")
    s = int(a.sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def offload_kind(frame: bytes) -> int:
    """What the device's checksum offload can check in ``frame`` (layout.FRAME_*): an IPv4 header at
    byte 14, and a TCP or UDP header after it in an unfragmented datagram."""
    if len(frame) < ETH_HLEN + IP_HLEN or frame[12:14] != b"\x08\x00" or frame[ETH_HLEN] >> 4 != 4:
        return 0
    kind = FRAME_IPV4
    fragment = struct.unpack_from("!H", frame, ETH_HLEN + 6)[0] & 0x3FFF  # MF or an offset
    if frame[ETH_HLEN + 9] in (6, 17) and not fragment:
        kind |= FRAME_L4
    return kind


def ipv4_udp_ok(frame: bytes) -> bool:
    """True if ``frame`` is Ethernet/IPv4/UDP with valid IPv4 header and UDP checksums."""
    if len(frame) < PAYLOAD_OFF or frame[12:14] != b"\x08\x00":
        return False
    ihl = (frame[ETH_HLEN] & 0x0F) * 4
    ip = frame[ETH_HLEN : ETH_HLEN + ihl]
    if frame[ETH_HLEN] >> 4 != 4 or ihl < IP_HLEN or internet_checksum(ip) != 0 or ip[9] != 17:
        return False
    total = struct.unpack_from("!H", ip, 2)[0]
    udp = frame[ETH_HLEN + ihl : ETH_HLEN + total]
    if len(udp) < UDP_HLEN or struct.unpack_from("!H", udp, 4)[0] != len(udp):
        return False
    if udp[6:8] == b"\x00\x00":  # checksum not used (RFC 768)
        return True
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    return internet_checksum(pseudo + udp) == 0


def read_stamp(frame: bytes) -> tuple[int, int] | None:
    """(sequence, send timestamp ns) of a generated frame, or None if it carries none."""
    if len(frame) < STAMP_OFF + STAMP_LEN or frame[PAYLOAD_OFF:STAMP_OFF] != MAGIC:
        return None
    seq, ts = struct.unpack_from("!IQ", frame, STAMP_OFF)
    return seq, ts


def ipv4_udp_frame(
    payload: bytes,
    *,
    src_mac: str = SRC_MAC,
    dst_mac: str = DST_MAC,
    src_ip: str = SRC_IP,
    dst_ip: str = DST_IP,
    sport: int = UDP_PORT,
    dport: int = UDP_PORT,
    udp_checksum: bool = True,
) -> bytes:
    """Ethernet II / IPv4 / UDP around ``payload``, as scapy builds it with these fields.

    IPv4 without options, DF set, id 0, TTL 64, its header checksum set. The UDP checksum is set too
    (a sum of 0 goes as 0xffff, RFC 768), or, without ``udp_checksum``, left 0: "no checksum", which
    IPv4 allows (the kernel baseline's frames, as a UDP socket over a veth sends them).
    """
    udp_len = UDP_HLEN + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,  # version 4, 5 words of header
        0,  # DSCP/ECN
        IP_HLEN + udp_len,
        0,  # id
        0x4000,  # DF, fragment offset 0
        64,  # TTL
        socket.IPPROTO_UDP,
        0,  # the header checksum, filled in below
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    if udp_checksum:
        pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
        udp = udp[:6] + struct.pack("!H", internet_checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
    return eth + ip + udp


def generated_frame(size: int) -> bytes:
    """The template of a generated frame of ``size`` bytes (stamp zeroed, checksums valid)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    fill = size - PAYLOAD_OFF - len(MAGIC) - STAMP_LEN
    if fill < 0:
        raise ConfigError(f"frame size {size} is below the {PAYLOAD_OFF + len(MAGIC) + STAMP_LEN} bytes a stamp needs")
    payload = MAGIC + bytes(STAMP_LEN) + (np.arange(fill, dtype=np.uint32) * 7 + 3).astype(np.uint8).tobytes()
    pkt = (
        Ether(src=SRC_MAC, dst=DST_MAC)
        / IP(src=SRC_IP, dst=DST_IP, ttl=64, flags="DF", id=0)
        / UDP(sport=UDP_PORT, dport=UDP_PORT)
        / payload
    )
    raw = bytes(pkt)
    assert len(raw) == size, (len(raw), size)
    return raw


@dataclass(frozen=True)
class FrameSet:
    """Frames the device can send, as the engine takes them: one blob, one table."""

    templates: tuple[bytes, ...]
    table: np.ndarray[Any, Any]  # FRAME dtype
    blob: bytes
    stamped: bool

    @property
    def sizes(self) -> list[int]:
        return [len(t) for t in self.templates]

    @classmethod
    def of(cls, templates: Sequence[bytes], stamped: bool) -> FrameSet:
        """Frames as they are; ``stamped`` ones carry a zeroed stamp at STAMP_OFF (see the module docstring)."""
        table = np.zeros(len(templates), dtype=FRAME)
        off = 0
        for i, t in enumerate(templates):
            table[i]["data_off"] = off
            table[i]["length"] = len(t)
            # The descriptor's csum is this plus what the stamp adds (pnic_stamp.h: pnic_stamp_frame).
            table[i]["sum"] = ones_sum(t[PCSS:])
            table[i]["kind"] = offload_kind(t)
            # The FCS a device that keeps it appends (RCTL.SECRC clear), from the template's and the stamp's bytes.
            table[i]["fcs"] = zlib.crc32(t)
            if stamped:
                table[i]["stamp_off"] = STAMP_OFF
                table[i]["csum_off"] = UDP_CSUM_OFF
                table[i]["fcs_shift"] = _engine.fcs_shift(len(t) - max(STAMP_OFF + STAMP_LEN, UDP_CSUM_OFF + 2))
            off += len(t)
        return cls(tuple(templates), table, b"".join(templates), stamped)

    @classmethod
    def generated(cls, size: int) -> FrameSet:
        return cls.of([generated_frame(size)], stamped=True)

    @classmethod
    def from_user(cls, frames: Sequence[Any]) -> FrameSet:
        """User frames (bytes-like or scapy packets), sent as they are, unstamped; their sizes are a plan's bound."""
        if isinstance(frames, (bytes, bytearray)) or len(frames) == 0:
            raise ConfigError("frames: give a list of at least one frame (bytes)")
        out: list[bytes] = []
        for i, f in enumerate(frames):
            # bytes(5) would be five zero bytes, bytes("x") an error: take only what is bytes, or says how to be
            bytes_like = isinstance(f, (bytes, bytearray, memoryview)) or hasattr(f, "__bytes__")
            if not bytes_like or isinstance(f, (str, int)):
                raise ConfigError(f"frame {i} is a {type(f).__name__}: give bytes or a scapy packet")
            out.append(bytes(f))
        return cls.of(out, stamped=False)
