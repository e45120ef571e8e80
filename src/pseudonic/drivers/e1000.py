"""The reference driver in Python: the receive path of Linux's e1000, on our ring.

Subclass it to try a change to one step (``clean_rx``, ``deliver``) and keep
the rest. Its interrupt handler does what ``e1000_intr`` + ``e1000_clean_rx_irq``
do (drivers/net/ethernet/intel/e1000/e1000_main.c):

1. read ICR (read-to-clear); if no receive cause is set, the interrupt is not ours;
2. from ``next_to_clean``, take every descriptor the device has written back
   (DD set), copying each frame out of its receive buffer into a socket
   buffer -- the paper's step (10) -- and delivering it to the upper layer:
   in bursts while the frames are whole and good (``nic.rx_burst`` finds
   the run of written-back descriptors in C, ``upper.deliver_many`` copies
   them out in one call, as DPDK's ``rx_burst`` hands up a burst: measured
   back to back at 64 B, 1.3 -> 2.9 Mpps), and one by one for a frame over
   several descriptors or with an error. One by one, descriptor fields are
   read through flat memoryviews of the ring: per descriptor that costs far
   less than numpy's per-call overhead (measured: handler p50 11.4 us with
   numpy fancy indexing for 1-descriptor batches);
3. a frame may span several descriptors, EOP on its last: the parts are
   gathered and the frame handed up whole at EOP (``e1000_clean_jumbo_rx_irq``);
   a frame with a frame error (``RXD_ERR_FRAME``) is dropped and counted once;
   a frame is handed up as checksum-checked (``deliver_checked``) only if the
   device says so: TCPCS set, IXSM clear, neither IPE nor TCPE
   (``e1000_rx_checksum``);
4. clear each descriptor's status and return them to the device by writing
   RDT every ``RX_BUFFER_WRITE`` (16) descriptors, as e1000 does, so that a
   long batch never leaves the device without descriptors.

With ``nic.napi_budget`` set, the handler works as e1000's NAPI path
(``e1000_intr`` -> ``e1000_clean``): mask RXT0 (IMC), poll up to the
budget at a time until the ring is clean, then unmask (IMS) -- a cause that
arrived meanwhile raises the line again at once.

Transmit (``e1000_xmit_frame``, ``e1000_clean_tx_irq``): at open the driver
places a ring of ``TX_RING`` legacy descriptors and a buffer of
``layout.TX_BUFFER`` bytes for each in DMA memory, and programs
TDBAL/TDLEN/TDH/TDT and TCTL (SDM 14.5). ``transmit`` copies the frame into
as many buffers as it needs (EOP on the last; IFCS and RS on each), and
moves TDT. Sent descriptors (DD written back) are reclaimed when the ring
looks full, and on a transmit interrupt; the ring always keeps one
descriptor free, since TDT == TDH reads as empty (SDM 3.4).
"""

from __future__ import annotations

import numpy as np

from ..layout import (
    ICR_RXDMT0,
    ICR_RXO,
    ICR_RXT0,
    ICR_TXDW,
    ICR_TXQE,
    REGISTERS,
    RX_DESC,
    RXD_ERR_FRAME,
    RXD_ERR_IPE,
    RXD_ERR_TCPE,
    RXD_STAT_DD,
    RXD_STAT_EOP,
    RXD_STAT_IXSM,
    RXD_STAT_TCPCS,
    TCTL_EN,
    TCTL_PSP,
    TX_BUFFER,
    TX_DESC,
    TXD_CMD_EOP,
    TXD_CMD_IFCS,
    TXD_CMD_RS,
    TXD_STAT_DD,
)
from ..nic import Nic

RX_CAUSES = ICR_RXT0 | ICR_RXO | ICR_RXDMT0
TX_CAUSES = ICR_TXDW | ICR_TXQE
#: transmit descriptors (Linux e1000's default, E1000_DEFAULT_TXD)
TX_RING = 256
#: e1000's E1000_RX_BUFFER_WRITE: descriptors are handed back in groups of this many.
RX_BUFFER_WRITE = 16
#: The most descriptors one burst takes (then hands back at once), and the fewest worth a burst: a burst call
#: costs a few microseconds whatever its size, more than taking a handful one by one. A ring's worth (256, the
#: default ring) a call: back to back at 64 B, 3 rounds each, the driver's pace went from 1.7-2.9 Mpps at 64
#: to 4.9-5.7 Mpps at 256 (no NAPI budget; a budget caps the burst at itself).
RX_BURST = 256
RX_BURST_MIN = 8
_CSUM_ERRORS = RXD_ERR_IPE | RXD_ERR_TCPE
# Where a descriptor's fields lie (the layout's, checked against pnic_layout.h): descriptor i
# starts at byte i << _DESC_SHIFT (16 bytes: a static_assert there); its length is u16 word _LENGTH_WORD of it.
_DESC_SHIFT = RX_DESC.itemsize.bit_length() - 1
_FIELD_AT = {name: int(field[1]) for name, field in (RX_DESC.fields or {}).items()}
_STATUS, _ERRORS, _LENGTH_WORD = _FIELD_AT["status"], _FIELD_AT["errors"], _FIELD_AT["length"] // 2
_TX_AT = {name: int(field[1]) for name, field in (TX_DESC.fields or {}).items()}
_TX_LENGTH, _TX_CMD, _TX_STATUS = _TX_AT["length"], _TX_AT["cmd"], _TX_AT["status"]


class E1000:
    """Reference e1000 receive driver (legacy descriptors, one buffer per frame)."""

    name = "python"

    def __init__(self) -> None:
        self.next_to_clean = 0
        self.rx_errors = 0
        #: the parts of a frame over several descriptors, until its EOP
        self.gathered: list[bytes] = []
        #: the transmit ring: the next descriptor to fill, and the oldest not yet reclaimed
        self.tx_next_to_use = self.tx_next_to_clean = 0

    def open(self, nic: Nic) -> None:
        raw = nic.ring.view(np.uint8).reshape(-1).data
        self._desc = raw  # bytes of the ring
        self._desc16 = raw.cast("H")  # little-endian u16 words, for the length
        self._offset = (nic.ring["buffer_addr"] - nic.buf_off).astype(np.int64).tolist()
        self._pool = nic.pool.data
        #: the whole segment: a descriptor's buffer address is an offset into it
        self._segment = nic.view.buffer
        self._mask = nic.ring_size - 1
        # All descriptors but one go to the device: RDT == RDH would mean "none".
        nic.write_rdt(nic.ring_size - 1)
        self.setup_tx(nic)
        nic.enable_interrupts(RX_CAUSES)

    def setup_tx(self, nic: Nic) -> None:
        """Place the transmit ring and its buffers in DMA memory, and enable the transmitter (SDM 14.5)."""
        self.tx_ring, bus = nic.dma_array(TX_RING, TX_DESC)
        self._tx_bufs, buf_bus = nic.dma_alloc(TX_RING * TX_BUFFER, 4096)
        self.tx_ring["buffer_addr"] = buf_bus + np.arange(TX_RING, dtype=np.uint64) * TX_BUFFER
        self._tx_desc = self.tx_ring.view(np.uint8).reshape(-1).data
        nic.write_reg(REGISTERS["TDBAL"], bus & 0xFFFFFFFF)
        nic.write_reg(REGISTERS["TDBAH"], bus >> 32)
        nic.write_reg(REGISTERS["TDLEN"], TX_RING * TX_DESC.itemsize)
        nic.write_reg(REGISTERS["TDH"], 0)
        nic.write_reg(REGISTERS["TDT"], 0)
        nic.write_reg(REGISTERS["TCTL"], TCTL_EN | TCTL_PSP)

    def transmit(self, nic: Nic, frame: bytes) -> bool:
        """Queue ``frame``; False if the ring has no room for it even after reclaiming what was sent."""
        need = -(-len(frame) // TX_BUFFER)
        if self._tx_free() < need:
            self.clean_tx()
            if self._tx_free() < need:
                return False
        desc, bufs, i = self._tx_desc, self._tx_bufs, self.tx_next_to_use
        for k in range(need):
            part = frame[k * TX_BUFFER : (k + 1) * TX_BUFFER]
            bufs[i * TX_BUFFER : i * TX_BUFFER + len(part)] = part
            o = i << _DESC_SHIFT
            desc[o + _TX_LENGTH : o + _TX_LENGTH + 2] = len(part).to_bytes(2, "little")
            desc[o + _TX_STATUS] = 0  # DD comes back when the device is done with it
            desc[o + _TX_CMD] = TXD_CMD_IFCS | TXD_CMD_RS | (TXD_CMD_EOP if k == need - 1 else 0)
            i = (i + 1) % TX_RING
        self.tx_next_to_use = i
        nic.write_tdt(i)
        return True

    def _tx_free(self) -> int:
        """Descriptors free to fill: all but one of those not queued (TDT == TDH reads as empty)."""
        return (self.tx_next_to_clean - self.tx_next_to_use - 1) % TX_RING

    def clean_tx(self) -> int:
        """Reclaim the descriptors the device has sent (DD written back); return how many."""
        desc, i, n = self._tx_desc, self.tx_next_to_clean, 0
        while i != self.tx_next_to_use and desc[(i << _DESC_SHIFT) + _TX_STATUS] & TXD_STAT_DD:
            desc[(i << _DESC_SHIFT) + _TX_STATUS] = 0
            i = (i + 1) % TX_RING
            n += 1
        self.tx_next_to_clean = i
        return n

    def interrupt(self, nic: Nic) -> None:
        icr = nic.read_icr()
        if icr & TX_CAUSES:
            self.clean_tx()
        if not icr & RX_CAUSES:
            return  # not a receive cause
        budget = nic.napi_budget
        if not budget:
            self.clean_rx(nic)
            return
        nic.disable_interrupts(ICR_RXT0)
        while self.clean_rx(nic, budget) == budget:
            pass
        nic.enable_interrupts(ICR_RXT0)

    def clean_rx(self, nic: Nic, budget: int | None = None) -> int:
        """Take up to ``budget`` written-back descriptors; return how many were taken: in bursts while frames
        are whole and good (:meth:`take_burst`), one by one otherwise."""
        limit = nic.ring_size if budget is None else budget
        taken = 0
        desc, mask = self._desc, self._mask
        # A burst only when RX_BURST_MIN descriptors are written back: the last of them has DD (the device writes
        # back in ring order). One look, so that the usual interrupt, one frame, costs no burst call.
        while (
            taken + RX_BURST_MIN <= limit
            and not self.gathered
            and desc[(((self.next_to_clean + RX_BURST_MIN - 1) & mask) << _DESC_SHIFT) + _STATUS] & RXD_STAT_DD
        ):
            got = self.take_burst(nic, min(limit - taken, RX_BURST))
            if got == 0:
                break
            taken += got
        if taken < limit:
            taken += self.clean_one_by_one(nic, limit - taken)
        return taken

    def take_burst(self, nic: Nic, most: int) -> int:
        """As DPDK's rx_burst: the run of written-back descriptors from next-to-clean, each a whole frame with
        no frame error, handed up in one call (``deliver_many``), their status cleared and RDT moved once;
        0 (nothing taken) if the run is shorter than RX_BURST_MIN or starts with a frame that is not so simple."""
        n = nic.rx_burst(self.next_to_clean, most)
        if n < RX_BURST_MIN:
            return 0
        b = nic.burst
        status, errors = b.status[:n], b.errors[:n]
        simple = np.flatnonzero(((status & RXD_STAT_EOP) == 0) | ((errors & RXD_ERR_FRAME) != 0))
        n = int(simple[0]) if simple.size else n
        if n < RX_BURST_MIN:
            return 0
        status, errors = status[:n], errors[:n]
        checked = ((status & RXD_STAT_TCPCS) != 0) & ((status & RXD_STAT_IXSM) == 0) & ((errors & _CSUM_ERRORS) == 0)
        nic.upper.deliver_many(self._segment, b.addr[:n], b.length[:n], checked)
        i, size = self.next_to_clean, nic.ring_size
        ring_status = nic.ring["status"]
        if i + n <= size:
            ring_status[i : i + n] = 0
        else:
            ring_status[i:] = 0
            ring_status[: i + n - size] = 0
        i = (i + n) & self._mask
        self.next_to_clean = i
        nic.write_rdt((i - 1) & self._mask)
        return n

    def clean_one_by_one(self, nic: Nic, budget: int | None = None) -> int:
        """Take up to ``budget`` written-back descriptors one at a time; return how many were taken."""
        desc, desc16, offset, pool, mask = self._desc, self._desc16, self._offset, self._pool, self._mask
        deliver, deliver_checked = nic.upper.deliver, nic.upper.deliver_checked
        limit = nic.ring_size if budget is None else budget
        i = self.next_to_clean
        taken = errors = returned = 0
        gathered = self.gathered
        shift, status_at, errors_at, length_at = _DESC_SHIFT, _STATUS, _ERRORS, _LENGTH_WORD
        while taken < limit:
            o = i << shift
            status = desc[o + status_at]
            if not status & RXD_STAT_DD:
                break
            err = desc[o + errors_at]
            start = offset[i]
            if gathered or not status & RXD_STAT_EOP:
                gathered.append(bytes(pool[start : start + desc16[(o >> 1) + length_at]]))
                if status & RXD_STAT_EOP:
                    if err & RXD_ERR_FRAME:
                        errors += 1
                    else:
                        checked = status & RXD_STAT_TCPCS and not status & RXD_STAT_IXSM and not err & _CSUM_ERRORS
                        (deliver_checked if checked else deliver)(b"".join(gathered))
                    gathered.clear()
            elif err & RXD_ERR_FRAME:
                errors += 1
            elif status & RXD_STAT_TCPCS and not status & RXD_STAT_IXSM and not err & _CSUM_ERRORS:
                deliver_checked(bytes(pool[start : start + desc16[(o >> 1) + length_at]]))
            else:
                deliver(bytes(pool[start : start + desc16[(o >> 1) + length_at]]))
            desc[o + status_at] = 0
            i = (i + 1) & mask
            taken += 1
            if taken - returned == RX_BUFFER_WRITE:
                nic.write_rdt((i - 1) & mask)
                returned = taken
        if taken:
            self.rx_errors += errors
            self.next_to_clean = i
            if taken != returned:
                nic.write_rdt((i - 1) & mask)
        return taken

    def close(self, nic: Nic) -> None:
        nic.disable_interrupts(RX_CAUSES)
