"""racy_driver.py -- a receive driver with a race, for ``pseudonic hunt`` to find.

    python3 -m pseudonic run  --driver examples/racy_driver.py:RacyE1000     # PASS: the race sleeps
    python3 -m pseudonic hunt --driver examples/racy_driver.py:RacyE1000     # finds it, shrinks it

It is the reference driver (pseudonic.drivers.e1000.E1000) with one "optimisation" added, the kind
that looks harmless in review and passes every steady-pace test:

    When an interrupt comes within ``FAST_PATH_NS`` (10 us) of the end of the previous handler
    run, the driver assumes it is falling behind and takes a fast path meant to get the device
    going again sooner: it reads the batch of written-back descriptors (status, errors, length),
    clears them and hands the whole batch back to the device (writes RDT past it) at once --
    and only then allocates a socket buffer for each frame of the batch and copies the frames out.

The bug: a descriptor handed back belongs to the device (8254x SDM 3.2.6), and so does its buffer.
The device may write the next frame into that buffer while the driver is still copying out of
it. It does so only when two things meet:

- interrupts close together (the fast path runs at all): a burst, or moderation releasing a
  backlog, or the driver core coming back from a stall;
- a ring that is (nearly) full: the descriptors handed back are the very next ones the device
  writes (just past RDH), so a frame arriving during the copy lands in a buffer not yet copied.
  With a ring far from full the device has all its free descriptors to fill first and never
  reaches the batch: the default run (1000 x 1500 B every 38 us, a ring of 256) passes even when
  a stall of the driver core makes two handler runs close.

Then the frame delivered is torn or is a later frame (the verdict says ``corrupted``, or a later
frame ``duplicated`` and this one ``undelivered``): a race that depends on timing, not a bug
every run shows. The fix is the reference driver's order: copy, clear, then write RDT.
"""

from __future__ import annotations

import time

from pseudonic.drivers.e1000 import E1000
from pseudonic.layout import RXD_ERR_FRAME, RXD_STAT_DD, RXD_STAT_EOP
from pseudonic.nic import Nic

#: A handler entered this soon after the previous one returned takes the (racy) fast path.
FAST_PATH_NS = 10_000


class RacyE1000(E1000):
    """The reference e1000 driver plus a fast path that hands descriptors back before copying them."""

    name = "racy"

    def __init__(self) -> None:
        super().__init__()
        self._last_exit_ns = 0
        self._fast = False
        #: handler runs that took the fast path (for anyone debugging the driver)
        self.fast_runs = 0

    def interrupt(self, nic: Nic) -> None:
        entry = time.perf_counter_ns()
        # "Interrupts this close together: we are behind, give the device its descriptors back sooner."
        self._fast = self._last_exit_ns != 0 and entry - self._last_exit_ns < FAST_PATH_NS
        self.fast_runs += self._fast
        try:
            super().interrupt(nic)  # ICR, NAPI and the rest as the reference does; clean_rx picks the path
        finally:
            self._last_exit_ns = time.perf_counter_ns()

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        if not self._fast:
            return super().clean_rx(nic, budget)
        desc, desc16, offset, pool, mask = self._desc, self._desc16, self._offset, self._pool, self._mask
        limit = nic.ring_size if budget is None else budget
        i = self.next_to_clean
        batch: list[tuple[int, int, int]] = []  # (descriptor, good frame?, length)
        while len(batch) < limit:
            o = i << 4
            status = desc[o + 12]
            if not status & RXD_STAT_DD:
                break
            # (a frame over several descriptors is dropped part by part here: the fast path is short)
            good = not desc[o + 13] & RXD_ERR_FRAME and status & RXD_STAT_EOP
            batch.append((i, 1 if good else 0, desc16[(o >> 1) + 4]))
            desc[o + 12] = 0
            i = (i + 1) & mask
        if not batch:
            return 0
        # THE BUG: the batch goes back to the device before its buffers are copied out ...
        nic.write_rdt((i - 1) & mask)
        # ... and the copies wait while a socket buffer is allocated for each frame of the batch first
        # (netdev_alloc_skb's place), so a full ring's device has the whole allocation to reach them.
        skbs = [bytearray(length) if good else None for _, good, length in batch]
        deliver = nic.upper.deliver
        errors = 0
        for (index, _, length), skb in zip(batch, skbs, strict=True):
            if skb is None:
                errors += 1
                continue
            start = offset[index]
            skb[:] = pool[start : start + length]  # may read a buffer the device is rewriting
            deliver(bytes(skb))
        self.rx_errors += errors
        self.next_to_clean = i
        return len(batch)
