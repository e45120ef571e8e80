"""virtio-net's receive queue (VIRTIO 1.1, split virtqueue), as the device and a driver use it -- on plain buffers.

The rules here are the reference the C model and the drivers are tested against (sans-IO: no
process, no clock). Sections are those of the VIRTIO 1.1 specification.

**Ownership** (§2.6, stated once). A descriptor chain is the driver's until its head is placed in
the available ring at an index the device has not consumed yet (below ``avail.idx``, the driver
having published that index after the chain); from then on it is the device's, which writes into
its WRITE descriptors only, and gives it back by putting ``{id: head, len: bytes written}`` in the
used ring and moving ``used.idx`` past it. The driver reads a buffer only after it has seen it
used, and may make it available again only after it has taken it. The device consumes available
entries and writes used entries in order; both indices are free-running 16-bit counters (a ring
index is ``idx % size``, and the counters wrap at 65536, not at the ring's size).

**Notifications** (§2.6.7, §2.6.10). Without ``VIRTIO_RING_F_EVENT_IDX`` the device interrupts
after using buffers unless the driver set ``VIRTQ_AVAIL_F_NO_INTERRUPT`` in ``avail.flags``, and
the driver notifies unless the device set ``VIRTQ_USED_F_NO_NOTIFY``. With it, each side publishes
the index at which it wants to hear from the other (``used_event`` at the end of the available
ring, ``avail_event`` at the end of the used ring), and the other side signals only when its own
index moved past that one (:func:`need_event`).

**Frames** (§5.1.6). Each frame is preceded by ``struct virtio_net_hdr`` (12 bytes with
``VIRTIO_F_VERSION_1``, ``num_buffers`` included). Without ``VIRTIO_NET_F_MRG_RXBUF`` a frame and its
header go into one chain (§5.1.6.3.1: the driver must give buffers big enough); with it, a frame may
be written over several chains, each its own used entry, and the first header's ``num_buffers``
says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layout import (
    VIRTIO_F_VERSION_1,
    VIRTIO_MAX_QUEUE,
    VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_NET_HDR,
    VIRTIO_NET_HDR_T,
    VIRTIO_OFFERED,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTQ_AVAIL_F_NO_INTERRUPT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
    VIRTQ_USED_F_NO_NOTIFY,
    VQ_DESC,
    VQ_USED_ELEM,
)

# The layout's (pnic_layout.h), under the names the specification uses.
#: what the model offers; a driver asking for anything else is refused at open
OFFERED = VIRTIO_OFFERED
#: queue sizes are a power of two up to 32768 (§2.6)
MAX_QUEUE_SIZE = VIRTIO_MAX_QUEUE
DESC, USED_ELEM, NET_HDR = VQ_DESC, VQ_USED_ELEM, VIRTIO_NET_HDR_T
NET_HDR_SIZE = VIRTIO_NET_HDR  # 12


def need_event(event_idx: int, new_idx: int, old_idx: int) -> bool:
    """Whether moving an index from ``old_idx`` to ``new_idx`` passed ``event_idx`` (vring_need_event, §2.6.7.2):
    the other side asked to hear when the index went past ``event_idx``. All three wrap at 2**16."""
    return (new_idx - event_idx - 1) & 0xFFFF < (new_idx - old_idx) & 0xFFFF


#: the feature bits by name, for messages
FEATURE_NAMES = {
    VIRTIO_NET_F_MRG_RXBUF: "VIRTIO_NET_F_MRG_RXBUF",
    VIRTIO_RING_F_EVENT_IDX: "VIRTIO_RING_F_EVENT_IDX",
    VIRTIO_F_VERSION_1: "VIRTIO_F_VERSION_1",
}


def _named(bits: int) -> str:
    return ", ".join(FEATURE_NAMES.get(b, f"bit {b}") for b in range(64) if bits >> b & 1)


def features_refusal(accepted: int, offered: int) -> str | None:
    """Why a driver's feature negotiation (VIRTIO 1.1 3.1.1) fails, or None if it may go on: a bit the
    device did not offer, or no VIRTIO_F_VERSION_1 (the model is virtio 1.x only, 6.1)."""
    extra = accepted & ~offered
    if extra:
        return f"the driver accepted {_named(extra)}, which the device does not offer: it offers {_named(offered)}"
    if not accepted >> VIRTIO_F_VERSION_1 & 1:
        return (
            "the driver did not accept VIRTIO_F_VERSION_1: pseudonic models virtio 1.x only (the 12-byte "
            "virtio_net_hdr, little-endian rings); accept it in open"
        )
    return None


def check_queue_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size > MAX_QUEUE_SIZE or size & (size - 1):
        raise ValueError(f"queue size {size!r} is not allowed: give a power of two 1..{MAX_QUEUE_SIZE}")
    return size


@dataclass(frozen=True)
class QueueLayout:
    """Where each part of a split virtqueue of ``size`` entries lies (§2.6: alignment 16, 2, 4)."""

    size: int
    desc: int
    avail: int
    used: int
    total: int

    @classmethod
    def of(cls, size: int, base: int = 0) -> QueueLayout:
        size = check_queue_size(size)

        def align(x: int, a: int) -> int:
            return (x + a - 1) & ~(a - 1)

        desc = align(base, 16)
        avail = align(desc + DESC.itemsize * size, 2)
        used = align(avail + 2 + 2 + 2 * size + 2, 4)  # flags, idx, ring[size], used_event
        end = used + 2 + 2 + USED_ELEM.itemsize * size + 2  # flags, idx, ring[size], avail_event
        return cls(size, desc, avail, used, end - base)


class Virtqueue:
    """numpy views of one split virtqueue held in ``buffer`` at ``layout`` (little-endian, as virtio 1.x is)."""

    def __init__(self, buffer: Any, layout: QueueLayout) -> None:
        n = layout.size
        mem = np.frombuffer(buffer, dtype=np.uint8)
        self.layout = layout
        self.size = n
        self.desc = mem[layout.desc : layout.desc + 16 * n].view(DESC)
        avail = mem[layout.avail : layout.avail + 2 * (n + 3)].view("<u2")
        self.avail_flags, self.avail_idx, self.avail_ring = avail[0:1], avail[1:2], avail[2 : 2 + n]
        self.used_event = avail[2 + n : 3 + n]
        used_hdr = mem[layout.used : layout.used + 4].view("<u2")
        self.used_flags, self.used_idx = used_hdr[0:1], used_hdr[1:2]
        self.used_ring = mem[layout.used + 4 : layout.used + 4 + 8 * n].view(USED_ELEM)
        self.avail_event = mem[layout.used + 4 + 8 * n : layout.used + 6 + 8 * n].view("<u2")


#: Ownership violations the device sees when it reads the available ring (the sanitizer's, for virtio).
VIOLATIONS = {
    "avail-overrun": "avail.idx moved more than the queue's size past what the device consumed (or backwards): "
                     "the driver published entries it had not written",
    "buffer-reused": "a chain made available again while the device still owned it (before it was used): the "
                     "driver reused a buffer it had not got back",
    "head-outside": "an available entry names a descriptor past the table",
}  # fmt: skip


@dataclass
class RxCounts:
    """What the device model counted (each a rule a driver can break, or the device's own drop)."""

    received: int = 0
    #: no chain available when a frame came (the driver was behind): the frame is dropped, as a NIC drops it
    dropped: int = 0
    #: a chain shorter than header + frame without MRG_RXBUF (§5.1.6.3.1): used with len 0, the frame dropped
    too_small: int = 0
    #: a descriptor the device was to write without the WRITE flag, or a chain that loops or leaves the table
    bad_chain: int = 0
    interrupts: int = 0
    violations: dict[str, int] = field(default_factory=dict)


@dataclass
class DeviceRx:
    """The device's side of the receive queue: consume available chains in order, write frames, use them.

    ``memory`` is what the descriptors' ``addr`` points into (an offset, as in the segment: no DMA).
    """

    vq: Virtqueue
    memory: np.ndarray[Any, Any]
    features: int
    last_avail: int = 0
    #: used.idx when the device last decided whether to interrupt (QEMU's signalled_used)
    signalled_used: int = 0
    counts: RxCounts = field(default_factory=RxCounts)
    #: the sanitizer: check every newly available entry against who owns its chain
    sanitize: bool = False
    #: avail.idx as far as the sanitizer has checked it
    checked_avail: int = 0
    #: per descriptor head: made available and not used yet (the device's)
    owned: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        self.checked_avail = self.last_avail
        if self.owned.size != self.vq.size:
            self.owned = np.zeros(self.vq.size, bool)

    def _violation(self, kind: str) -> None:
        self.counts.violations[kind] = self.counts.violations.get(kind, 0) + 1

    def check_avail(self) -> None:
        """The sanitizer: every entry made available since the last look names a chain the driver owned."""
        vq = self.vq
        avail = int(vq.avail_idx[0])
        if (avail - self.last_avail) & 0xFFFF > vq.size:
            self._violation("avail-overrun")
            self.checked_avail = avail
            return
        while self.checked_avail != avail:
            head = int(vq.avail_ring[self.checked_avail % vq.size])
            self.checked_avail = (self.checked_avail + 1) & 0xFFFF
            if head >= vq.size:
                self._violation("head-outside")
            elif self.owned[head]:
                self._violation("buffer-reused")
            else:
                self.owned[head] = True

    @property
    def mergeable(self) -> bool:
        return bool(self.features >> VIRTIO_NET_F_MRG_RXBUF & 1)

    @property
    def event_idx(self) -> bool:
        return bool(self.features >> VIRTIO_RING_F_EVENT_IDX & 1)

    def _chain(self, head: int) -> list[tuple[int, int]] | None:
        """The (addr, len) of each writable descriptor of the chain at ``head``; None if it breaks a rule."""
        out: list[tuple[int, int]] = []
        i = head
        for _ in range(self.vq.size):
            if i >= self.vq.size:
                return None
            d = self.vq.desc[i]
            if not int(d["flags"]) & VIRTQ_DESC_F_WRITE:
                return None  # a receive buffer the device may not write (§2.6.5: device-writable only)
            addr, length = int(d["addr"]), int(d["len"])
            if addr + length > self.memory.size:
                return None
            out.append((addr, length))
            if not int(d["flags"]) & VIRTQ_DESC_F_NEXT:
                return out
            i = int(d["next"])
        return None  # longer than the table: a loop

    def receive(self, frame: bytes) -> bool:
        """Write ``frame`` (with its header) into the next available chain(s) and use them; False if dropped."""
        vq = self.vq
        if self.sanitize:
            self.check_avail()
        need = NET_HDR_SIZE + len(frame)
        avail = int(vq.avail_idx[0])
        chains: list[tuple[int, list[tuple[int, int]]]] = []
        room, taken = 0, self.last_avail
        while room < need:
            if taken == avail:
                self.counts.dropped += 1  # nothing consumed: the chains looked at stay available
                return False
            head = int(vq.avail_ring[taken % vq.size])
            chain = self._chain(head)
            taken = (taken + 1) & 0xFFFF
            if chain is None:
                self.counts.bad_chain += 1
                self._use([(head, 0)], taken)
                return False
            chains.append((head, chain))
            room += sum(length for _, length in chain)
            if not self.mergeable and room < need:
                self.counts.too_small += 1
                self._use([(head, 0)], taken)
                return False
        data = np.frombuffer(bytes(np.zeros(1, NET_HDR).tobytes()) + frame, dtype=np.uint8).copy()
        data[10:12] = np.frombuffer(np.uint16(len(chains)).tobytes(), np.uint8)  # num_buffers (§5.1.6.4)
        used: list[tuple[int, int]] = []
        at = 0
        for head, chain in chains:
            written = 0
            for addr, length in chain:
                n = min(length, data.size - at)
                self.memory[addr : addr + n] = data[at : at + n]
                at += n
                written += n
                if at == data.size:
                    break
            used.append((head, written))
        self._use(used, taken)
        self.counts.received += 1
        return True

    def _use(self, entries: list[tuple[int, int]], taken: int) -> None:
        """Put ``entries`` in the used ring, then publish used.idx past them (the driver sees them only then)."""
        vq = self.vq
        idx = int(vq.used_idx[0])
        for k, (head, length) in enumerate(entries):
            slot = vq.used_ring[(idx + k) % vq.size]
            slot["id"], slot["len"] = head, length
            if head < vq.size:
                self.owned[head] = False
        self.last_avail = taken
        vq.used_idx[0] = (idx + len(entries)) & 0xFFFF
        if self.event_idx:
            vq.avail_event[0] = self.last_avail  # notify me once you add past what I have consumed

    def should_interrupt(self) -> bool:
        """Whether to interrupt the driver now, for what was used since the last decision (§2.6.7)."""
        new, old = int(self.vq.used_idx[0]), self.signalled_used
        self.signalled_used = new
        if new == old:
            return False
        if self.event_idx:
            fire = need_event(int(self.vq.used_event[0]), new, old)
        else:
            fire = not int(self.vq.avail_flags[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT
        self.counts.interrupts += int(fire)
        return fire


@dataclass
class DriverRx:
    """A correct driver's side of the receive queue (the reference the Python driver follows).

    Each of ``size`` descriptors is one buffer of ``buf_size`` bytes at ``base + i * buf_size``,
    a chain of one (WRITE); all are made available at setup.
    """

    vq: Virtqueue
    memory: np.ndarray[Any, Any]
    buf_size: int
    base: int = 0
    features: int = OFFERED
    last_used: int = 0
    #: avail.idx at the last notification decision
    notified_avail: int = 0

    def setup(self) -> None:
        vq = self.vq
        for i in range(vq.size):
            vq.desc[i] = (self.base + i * self.buf_size, self.buf_size, VIRTQ_DESC_F_WRITE, 0)
            vq.avail_ring[i] = i
        vq.avail_idx[0] = vq.size & 0xFFFF
        vq.used_event[0] = 0  # interrupt me for the first used entry

    def take(self) -> list[bytes]:
        """Every frame the device has used since the last take; each buffer made available again after."""
        vq = self.vq
        frames: list[bytes] = []
        used = int(vq.used_idx[0])
        while self.last_used != used:
            first = vq.used_ring[self.last_used % vq.size]
            head, length = int(first["id"]), int(first["len"])
            buf = self.memory[self.base + head * self.buf_size : self.base + head * self.buf_size + length]
            if length < NET_HDR_SIZE:  # used without a frame (a chain the device refused): give it back
                self.last_used = (self.last_used + 1) & 0xFFFF
                self._make_available([head])
                continue
            count = int(buf[10:12].view("<u2")[0]) if self.features >> VIRTIO_NET_F_MRG_RXBUF & 1 else 1
            parts = [bytes(buf[NET_HDR_SIZE:])]
            heads = [head]
            for k in range(1, count):
                e = vq.used_ring[(self.last_used + k) % vq.size]
                h, n = int(e["id"]), int(e["len"])
                parts.append(bytes(self.memory[self.base + h * self.buf_size : self.base + h * self.buf_size + n]))
                heads.append(h)
            frames.append(b"".join(parts))
            self.last_used = (self.last_used + count) & 0xFFFF
            self._make_available(heads)  # taken: only now may they be made available again
        if self.features >> VIRTIO_RING_F_EVENT_IDX & 1:
            vq.used_event[0] = self.last_used  # interrupt me at the next used entry
        return frames

    def _make_available(self, heads: list[int]) -> None:
        vq = self.vq
        for h in heads:
            vq.avail_ring[int(vq.avail_idx[0]) % vq.size] = h
            vq.avail_idx[0] = (int(vq.avail_idx[0]) + 1) & 0xFFFF

    def should_notify(self) -> bool:
        """Whether the device asked to hear of the chains made available since the last decision (§2.6.10)."""
        new, old = int(self.vq.avail_idx[0]), self.notified_avail
        self.notified_avail = new
        if self.features >> VIRTIO_RING_F_EVENT_IDX & 1:
            return need_event(int(self.vq.avail_event[0]), new, old)
        return not int(self.vq.used_flags[0]) & VIRTQ_USED_F_NO_NOTIFY
