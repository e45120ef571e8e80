"""Reference virtio-net receive driver (VIRTIO 1.1 split virtqueue, 5.1.6), the Python one.

It follows :class:`pseudonic.models.virtio_net.DriverRx`, the rules sans-IO, at the speed a
Python driver can: one buffer per descriptor, every descriptor available from the start, each
chain made available again only after its frame was copied out (2.6: the buffer is the device's
from then on), EVENT_IDX to ask for the next interrupt, and the re-check after re-arming that
closes the race with a frame used meanwhile (2.6.7.2).
"""

from __future__ import annotations

import numpy as np

from ..layout import (
    VIRTIO_F_VERSION_1,
    VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_NET_HDR,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTQ_AVAIL_F_NO_INTERRUPT,
    VIRTQ_DESC_F_WRITE,
    VIRTQ_USED_F_NO_NOTIFY,
)
from ..models.virtio_net import need_event
from ..nic import VirtioNic

WANTED = (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_NET_F_MRG_RXBUF) | (1 << VIRTIO_RING_F_EVENT_IDX)
#: chains are made available in groups of this many (as e1000's RX_BUFFER_WRITE)
AVAIL_BATCH = 16


class VirtioNet:
    """Reference virtio-net receive driver."""

    name = "python"
    model = "virtio-net"

    def __init__(self) -> None:
        self.last_used = 0
        self.avail = 0
        self.rx_errors = 0

    def open(self, nic: VirtioNic) -> None:
        features = nic.offered & WANTED
        nic.accept_features(features)
        self.event_idx = bool(features >> VIRTIO_RING_F_EVENT_IDX & 1)
        self.mergeable = bool(features >> VIRTIO_NET_F_MRG_RXBUF & 1)
        n = nic.ring_size
        # The header at the end of the slot's room, so that the frame after it starts on a cache line, or a
        # page (pnic_layout.h, PNIC_VIRTIO_ROOM).
        self._lead = lead = nic.buf_stride - nic.buf_size - VIRTIO_NET_HDR
        nic.desc["addr"] = nic.buf_off + lead + np.arange(n, dtype=np.uint64) * nic.buf_stride
        nic.desc["len"] = nic.buf_size + VIRTIO_NET_HDR
        nic.desc["flags"] = VIRTQ_DESC_F_WRITE
        nic.desc["next"] = 0
        nic.avail_ring[:] = np.arange(n, dtype=np.uint16)
        nic.used_event[0] = 0  # interrupt me at the first used entry
        nic.avail_flags[0] = 0
        self._pool = nic.pool.data
        self._stride = nic.buf_stride
        self._mask = n - 1
        self._ids = nic.used_ring.view(np.uint32).data  # id, len, id, len, ...
        self._used_idx = nic.used_idx.data
        self._used_event = nic.used_event.data
        self._avail_ring = nic.avail_ring.data
        self.last_used, self.avail = 0, n & 0xFFFF
        nic.publish_avail(self.avail)

    def interrupt(self, nic: VirtioNic) -> None:
        budget = nic.napi_budget
        if not budget:
            while self.take(nic) and not self.rearm(nic):
                pass
            return
        # NAPI: no interrupts while polling (2.6.7: NO_INTERRUPT, or used_event left behind)
        if not self.event_idx:
            nic.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT
        while True:
            while self.take(nic, budget) == budget:
                pass
            if not self.event_idx:
                nic.avail_flags[0] = 0
            if self.rearm(nic):
                return
            if not self.event_idx:
                nic.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT

    def rearm(self, nic: VirtioNic) -> bool:
        """Ask for the next interrupt, then look again: True if nothing was used meanwhile."""
        if self.event_idx:
            self._used_event[0] = self.last_used
        nic.mb()  # our store before the load of the device's index: else both sides may miss (2.6.7.2)
        return self._used_idx[0] == self.last_used

    def take(self, nic: VirtioNic, budget: int | None = None) -> int:
        """Deliver up to ``budget`` frames the device has used; return how many."""
        # Plain memoryviews of the rings and the pool: numpy scalars per entry would cost more than the frame.
        ids, pool, stride, lead, mask = self._ids, self._pool, self._stride, self._lead, self._mask
        deliver = nic.upper.deliver
        new = (self._used_idx[0] - self.last_used) & 0xFFFF  # both indices run free over 16 bits (2.6.8)
        limit = 1 << 16 if budget is None else budget
        i, taken, frames = self.last_used, 0, 0
        heads: list[int] = []
        while taken < new and frames < limit:
            k = (i & mask) << 1
            head, length = ids[k], ids[k + 1]
            start = head * stride + lead
            # MRG_RXBUF (5.1.6.4): the frame goes on in the next num_buffers - 1 entries, used with it
            count = pool[start + 10] | pool[start + 11] << 8 if self.mergeable and length >= VIRTIO_NET_HDR else 1
            if length < VIRTIO_NET_HDR or not 0 < count <= new - taken:
                # a chain given back unwritten, or a num_buffers of none or of more entries than were used: the
                # device's error, counted; those entries go back (as receive_mergeable)
                self.rx_errors += 1
                n = min(max(count, 1), new - taken)
                heads += [ids[((i + j) & mask) << 1] for j in range(n)]
                i, taken = (i + n) & 0xFFFF, taken + n
                continue
            if count == 1:
                deliver(bytes(pool[start + VIRTIO_NET_HDR : start + length]))
                heads.append(head)
            else:
                parts = [bytes(pool[start + VIRTIO_NET_HDR : start + length])]
                heads.append(head)
                for j in range(1, count):
                    kj = ((i + j) & mask) << 1
                    h, n = ids[kj], ids[kj + 1]
                    parts.append(bytes(pool[h * stride + lead : h * stride + lead + n]))
                    heads.append(h)
                deliver(b"".join(parts))
            i, taken, frames = (i + count) & 0xFFFF, taken + count, frames + 1
            if len(heads) >= AVAIL_BATCH:
                self.give_back(nic, heads)
        self.last_used = i
        self.give_back(nic, heads)
        return frames

    def give_back(self, nic: VirtioNic, heads: list[int]) -> None:
        """Make the chains of ``heads`` available again (they were taken: only now), and notify if asked."""
        if not heads:
            return
        old, ring, mask = self.avail, self._avail_ring, self._mask
        for h in heads:
            ring[self.avail & mask] = h
            self.avail = (self.avail + 1) & 0xFFFF
        heads.clear()
        nic.publish_avail(self.avail)
        if self.event_idx:
            nic.mb()  # avail.idx stored before avail_event is loaded (virtqueue_kick_prepare)
            wanted = need_event(int(nic.avail_event[0]), self.avail, old)
        else:
            wanted = not int(nic.used_flags[0]) & VIRTQ_USED_F_NO_NOTIFY
        if wanted:
            nic.notify()

    def close(self, nic: VirtioNic) -> None:
        nic.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT
