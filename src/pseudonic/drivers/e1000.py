"""The reference driver in Python: the receive path of Linux's e1000, on our ring.

Subclass it to try a change to one step (``clean_rx``, ``deliver``) and keep
the rest. Its interrupt handler does what ``e1000_intr`` + ``e1000_clean_rx_irq``
do (drivers/net/ethernet/intel/e1000/e1000_main.c):

1. read ICR (read-to-clear); if no receive cause is set, the interrupt is not ours;
2. from ``next_to_clean``, take every descriptor the device has written back
   (DD set) as one batch: numpy finds the batch, Python copies each frame
   out of its receive buffer into a socket buffer (``bytes``) -- the
   paper's step (10) -- and delivers it to the upper layer;
3. a descriptor with any error bit, or without EOP, is counted and dropped;
4. clear the batch's status and return it to the device by writing RDT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layout import ICR_RXDMT0, ICR_RXO, ICR_RXT0, RXD_STAT_DD, RXD_STAT_EOP
from ..nic import Nic

RX_CAUSES = ICR_RXT0 | ICR_RXO | ICR_RXDMT0


def ready_count(status: np.ndarray[Any, Any], start: int) -> int:
    """How many descriptors, in ring order from ``start``, have DD set."""
    tail = np.flatnonzero((status[start:] & RXD_STAT_DD) == 0)
    if tail.size:
        return int(tail[0])
    head = np.flatnonzero((status[:start] & RXD_STAT_DD) == 0)
    return status.size - start + (int(head[0]) if head.size else start)


class E1000:
    """Reference e1000 receive driver (legacy descriptors, one buffer per frame)."""

    name = "python"

    def __init__(self) -> None:
        self.next_to_clean = 0
        self.rx_errors = 0
        self.delivered = 0

    def open(self, nic: Nic) -> None:
        self._status = nic.ring["status"]
        self._length = nic.ring["length"]
        self._errors = nic.ring["errors"]
        self._offset = (nic.ring["buffer_addr"] - nic.buf_off).astype(np.int64)
        self._pool = nic.pool.data
        self._mask = nic.ring_size - 1
        # All descriptors but one go to the device: RDT == RDH would mean "none".
        nic.write_rdt(nic.ring_size - 1)
        nic.enable_interrupts(RX_CAUSES)

    def interrupt(self, nic: Nic) -> None:
        if nic.read_icr() & RX_CAUSES:
            self.clean_rx(nic)

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        """Take up to ``budget`` written-back descriptors; return how many were taken."""
        start = self.next_to_clean
        done = ready_count(self._status, start)
        if budget is not None:
            done = min(done, budget)
        if done == 0:
            return 0
        idx = np.arange(start, start + done) & self._mask
        status = self._status[idx]
        good = (self._errors[idx] == 0) & ((status & RXD_STAT_EOP) != 0)
        self.rx_errors += int(done - np.count_nonzero(good))
        deliver = nic.upper.deliver
        pool = self._pool
        for off, length in zip(self._offset[idx[good]].tolist(), self._length[idx[good]].tolist(), strict=True):
            deliver(bytes(pool[off : off + length]))
        self.delivered += int(np.count_nonzero(good))
        self._status[idx] = 0
        self.next_to_clean = (start + done) & self._mask
        nic.write_rdt((self.next_to_clean - 1) & self._mask)
        return done

    def close(self, nic: Nic) -> None:
        nic.disable_interrupts(RX_CAUSES)
