"""The frames a host hands a Python driver's ``transmit(nic, frame)``, in order, each stamped as it is handed.

The C host does the same in C (``_engine/pnic_chost.c``: ``pnic_tx_feed``). Each frame is the
template its place in the order names, stamped with its place and the time it is handed
(``frames.py``), so that the device can say which frame it took, and when it was handed
(``_engine/pnic_e1000_tx.c``). A frame the driver refuses (its ring is full) is offered again
once the transmitter has moved, or after the next interrupt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _engine
from ..frames import FrameSet
from ..layout import SegmentView


class TxFeed:
    """Hands ``transmit`` the frames of ``order`` one after the other, as far as the driver takes them."""

    def __init__(
        self, frames: FrameSet, order: np.ndarray[Any, Any], transmit: Callable[[Any, bytes], Any], nic: Any,
        view: SegmentView,
    ) -> None:  # fmt: skip
        self.frames = frames
        self.order = [int(t) for t in order]
        self.transmit = transmit
        self.nic = nic
        self.view = view
        self.next = 0
        #: calls the driver refused (its ring full)
        self.refused = 0
        #: the transmitter's count of descriptors taken just before the last call: progress since means room
        self.descs_seen = 0

    @property
    def left(self) -> int:
        return len(self.order) - self.next

    def offer(self, seen: int) -> bool:
        """Hand the driver what it takes; True if frames remain: its ring is full, or the line was raised
        (doorbell past ``seen``) and the interrupt goes first, as a hard interrupt preempts a sending stack."""
        table, dev, drv, doorbell = self.frames.table, self.view.dev, self.view.drv, self.view.line["doorbell"]
        while self.next < len(self.order):
            if doorbell[0] != seen:
                return True
            t = self.order[self.next]
            frame = bytearray(self.frames.templates[t])
            stamp_off = int(table["stamp_off"][t])
            if stamp_off:
                _engine.stamp_frame(frame, stamp_off, int(table["csum_off"][t]), self.next, _engine.now_ns())
            self.descs_seen = int(dev["tx_descs"][0])
            queued = self.transmit(self.nic, bytes(frame))
            if not isinstance(queued, bool):
                raise TypeError(f"transmit must return True (queued) or False (ring full), not {queued!r}")
            if not queued:
                self.refused += 1
                return True
            self.next += 1
            drv["tx_handed"][0] = self.next
        drv["tx_done"][0] = 1
        return False
