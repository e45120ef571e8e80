"""The driver API: what a driver under test is given, and what it must provide.

A driver is a class with ``open(nic)``, ``interrupt(nic)`` and
``close(nic)``, built with no arguments in the driver node. ``nic`` gives
typed access to the pseudo-NIC as a driver sees a real one: registers, the
receive descriptor ring as a numpy structured array (``RX_DESC``), the
receive buffers, and the upper layer to deliver socket buffers to.

Ordering: descriptors are read through numpy; on x86 (TSO) a load of
``status`` with DD set is never reordered after the loads of ``length`` and
of the buffer that follow it. ``write_rdt`` is a release store, so every
descriptor cleared before it is seen cleared by the device.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import _engine
from .layout import REGISTERS, SegmentView
from .upper import UpperLayer


class _Device:
    """What a driver is given whatever the device: its segment, its upper layer, its NAPI budget, the buffers."""

    def __init__(self, view: SegmentView, upper: UpperLayer, napi_budget: int = 0) -> None:
        self.view = view
        self.upper = upper
        #: 0: take everything per interrupt; else poll NAPI-style, this many descriptors at a time.
        self.napi_budget = napi_budget
        self.ring_size = view.ring_size
        self.buf_size = view.buf_size
        #: every receive buffer, flat; a descriptor's buffer is at its address minus ``buf_off``.
        self.pool: np.ndarray[Any, Any] = view.pool
        self.buf_off = view.buf_off
        self._seg = view.buffer

    @property
    def mpc(self) -> int:
        """Missed packets: dropped by the device for want of a free descriptor (or available chain)."""
        return int(self.view.dev["mpc"][0])

    def at(self, bus: int, length: int) -> memoryview:
        """``length`` bytes at the bus address ``bus`` (a descriptor's address: the pool, or DMA memory), as a
        driver maps what the device wrote."""
        h = self.view.header[0]
        if not 0 <= bus <= bus + length <= int(h["total_size"]):
            raise ValueError(f"bus address {bus:#x} + {length} lies outside the segment")
        return memoryview(self.view.buffer)[bus : bus + length]


#: The most descriptors one rx_burst returns.
BURST_MAX = 256


class Burst:
    """What :meth:`Nic.rx_burst` found: per written-back descriptor, in ring order, its buffer's bus address,
    length, status and errors (the first ``n`` entries of each array are this burst's)."""

    def __init__(self) -> None:
        self.addr = np.zeros(BURST_MAX, np.uint64)
        self.length = np.zeros(BURST_MAX, np.uint32)
        self.status = np.zeros(BURST_MAX, np.uint8)
        self.errors = np.zeros(BURST_MAX, np.uint8)


class Nic(_Device):
    """The pseudo-NIC as the driver under test sees it."""

    def __init__(self, view: SegmentView, upper: UpperLayer, napi_budget: int = 0) -> None:
        super().__init__(view, upper, napi_budget)
        #: the receive descriptor ring, ``layout.RX_DESC`` records (8254x SDM 3.2.3).
        self.ring: np.ndarray[Any, Any] = view.ring
        #: the arrays rx_burst fills
        self.burst = Burst()
        self._ring_bytes = self.ring.view(np.uint8).reshape(-1).data

    def rx_burst(self, start: int, max_n: int, ring: np.ndarray[Any, Any] | None = None) -> int:
        """Up to ``max_n`` (at most BURST_MAX) written-back descriptors from ``start`` of ``ring`` (the prepared
        ring, or one of the driver's own), as DPDK's ``rx_burst``: the run of descriptors with DD set, read
        with acquire; their buffer addresses, lengths, status and errors in :attr:`burst`. Returns how many.
        The descriptors stay as they are: clear their status and hand them back (RDT) when done."""
        size = self.ring_size if ring is None else len(ring)
        if not 0 <= start < size or max_n < 0:
            raise ValueError(
                f"rx_burst: start {start} and most {max_n}: give a descriptor of the ring of {size} (0..{size - 1}) "
                "and a count of 0 or more"
            )
        raw = self._ring_bytes if ring is None else ring.view(np.uint8).reshape(-1).data
        b = self.burst
        return _engine.rx_burst(raw, start, min(max_n, BURST_MAX), b.addr, b.length, b.status, b.errors)

    # -- the register window (8254x SDM 13.4) -----------------------------------------------
    def read_reg(self, offset: int) -> int:
        """Read the register at ``offset`` (``layout.REGISTERS`` names them), with its hardware semantics: ICR and
        the statistics clear on read, STATUS has the link up; one the model does not have reads 0."""
        return int(_engine.reg_read(self._seg, offset))

    def write_reg(self, offset: int, value: int) -> None:
        """Write the register at ``offset``: ICR clears the 1s written, ICS sets causes (the device raises for
        them), RDT hands descriptors over; a write to a register the model does not have is counted."""
        _engine.reg_write(self._seg, offset, value)

    def dma_alloc(self, size: int, align: int = 64) -> tuple[memoryview, int]:
        """``size`` bytes of DMA memory aligned to ``align``, and the address the device understands (an offset,
        as ``buffer_addr`` is): fresh buffers to refill descriptors with. Never freed -- keep a free list.
        :class:`MemoryError` when there is not that much left."""
        bus = _engine.dma_alloc(self._seg, size, align)
        if bus < 0:
            h = self.view.header[0]
            raise MemoryError(
                f"DMA memory: {size} bytes aligned to {align} do not fit; {int(self.view.drv['dma_used'][0])} of "
                f"{int(h['dma_size'])} bytes are handed out (align must be a power of two)"
            )
        return memoryview(self.view.buffer)[bus : bus + size], bus

    def dma_array(self, count: int, dtype: Any, align: int = 128) -> tuple[np.ndarray[Any, Any], int]:
        """``count`` records of ``dtype`` (``layout.RX_DESC``, ``layout.TX_DESC``) in fresh DMA memory, zeroed, and
        their bus address: a descriptor ring of the driver's own, to program in RDBAL/RDLEN or TDBAL/TDLEN."""
        dt = np.dtype(dtype)
        mem, bus = self.dma_alloc(count * dt.itemsize, align)
        array = np.frombuffer(mem, dtype=dt, count=count)
        array.view(np.uint8)[:] = 0
        return array, bus

    # -- the transmit ring (8254x SDM 3.3, 13.4.33-40) ------------------------------------------
    def write_tdt(self, value: int) -> None:
        """Hand transmit descriptors up to ``value - 1`` to the device (SDM 13.4.40); under ``--sanitize`` the
        hand-over is checked first."""
        _engine.reg_write(self._seg, REGISTERS["TDT"], value)

    @property
    def tdh(self) -> int:
        """The transmitter's head. A driver reads DD in its descriptors, not this; it is here for tests."""
        return int(self.view.dev["tdh"][0])

    # -- registers with hardware semantics -------------------------------------------------
    def read_icr(self) -> int:
        """Read ICR; reading clears it (SDM 13.4.17). Each read is counted (ICR reads per handler run)."""
        return int(_engine.read_icr(self._seg))

    def write_rdt(self, value: int) -> None:
        """Hand descriptors up to ``value - 1`` to the device (SDM 13.4.29); under ``--sanitize`` the hand-over
        is checked and the buffers handed back are poisoned first (``_engine/pnic_sanitize.c``)."""
        _engine.write_rdt(self._seg, value)

    @property
    def rdt(self) -> int:
        return int(self.view.drv["rdt"][0])

    @property
    def rdh(self) -> int:
        """The device's head. A real driver does not poll it; it is here for tests and debugging."""
        return int(self.view.dev["rdh"][0])

    @property
    def ims(self) -> int:
        return int(self.view.drv["ims"][0])

    def enable_interrupts(self, causes: int) -> None:
        """Write IMS: unmask ``causes``; one already pending in ICR raises the line at once (SDM 13.4.20)."""
        _engine.write_mask(self._seg, "ims", causes)

    def disable_interrupts(self, causes: int) -> None:
        """Write IMC: mask ``causes`` (they still set ICR, they raise nothing; SDM 13.4.21)."""
        _engine.write_mask(self._seg, "imc", causes)

    @property
    def itr(self) -> int:
        """ITR: the minimum interval between interrupts, in 256 ns units (0: no moderation)."""
        return int(self.view.drv["itr"][0])

    def write_itr(self, units: int) -> None:
        """Write ITR (SDM 13.4.18), 0..65535 units of 256 ns."""
        _engine.write_mask(self._seg, "itr", units)

    @property
    def rxcsum(self) -> int:
        """RXCSUM: which checksum offloads are on (``layout.RXCSUM_IPOFL | RXCSUM_TUOFL``; both, until written)."""
        return int(self.view.drv["rxcsum"][0])

    def write_rxcsum(self, value: int) -> None:
        """Write RXCSUM: turn the IPv4 (IPOFL) and TCP/UDP (TUOFL) checksum offloads on or off."""
        _engine.write_mask(self._seg, "rxcsum", value)

    # -- statistics registers (SDM 13.6; MPC is every device's) ----------------------------
    @property
    def gprc(self) -> int:
        return int(self.view.dev["gprc"][0])

    @property
    def gorc(self) -> int:
        return int(self.view.dev["gorc"][0])

    def buffer(self, index: int) -> memoryview:
        """The receive buffer descriptor ``index`` points at."""
        return memoryview(self.view.buffer_of(index).data)


@runtime_checkable
class Driver(Protocol):
    """What the driver node calls. ``interrupt`` runs once per interrupt taken.

    A driver that transmits also has ``transmit(nic, frame) -> bool``: queue ``frame`` (bytes, valid
    only during the call: copy it) on its transmit ring and return True, or False if the ring is
    full -- the host offers the frame again once the transmitter has moved, or after the next
    interrupt. A run with ``--transmit N`` hands it N frames, one after the other.
    """

    def open(self, nic: Nic) -> None: ...

    def interrupt(self, nic: Nic) -> None: ...

    def close(self, nic: Nic) -> None: ...


class VirtioNic(_Device):
    """virtio-net's receive queue as the driver under test sees it (VIRTIO 1.1 2.6, 5.1.6).

    The split virtqueue's three parts are numpy views: ``desc`` (``layout.VQ_DESC`` records), the
    available ring the driver writes (``avail_flags``, ``avail_idx``, ``avail_ring``, ``used_event``,
    each a small array: write ``[0]`` or slices), the used ring the device writes (``used_flags``,
    ``used_idx``, ``used_ring`` of ``{id, len}``, ``avail_event``). Buffer ``i`` lies at
    ``buf_off + i * buf_stride`` in the segment (``pool[i * buf_stride:]``), ``buf_size`` bytes for
    the frame plus room for the 12-byte ``virtio_net_hdr`` before it. Ordering as for :class:`Nic`:
    entries are written through numpy, and :meth:`publish_avail` is the release store.
    """

    model = "virtio-net"

    def __init__(self, view: SegmentView, upper: UpperLayer, napi_budget: int = 0) -> None:
        super().__init__(view, upper, napi_budget)  # ring_size: the queue's size; indices run free over 16 bits
        self.buf_stride = view.buf_stride
        self.desc: np.ndarray[Any, Any] = view.desc
        self.avail_flags, self.avail_idx = view.avail_flags, view.avail_idx
        self.avail_ring, self.used_event = view.avail_ring, view.used_event
        self.used_flags, self.used_idx = view.used_flags, view.used_idx
        self.used_ring, self.avail_event = view.used_ring, view.avail_event
        #: the feature bits the device offers (``layout.VIRTIO_OFFERED``)
        self.offered = int(view.header["offered"][0])

    @property
    def features(self) -> int:
        return int(self.view.drv["features"][0])

    def accept_features(self, features: int) -> None:
        """Feature negotiation (3.1.1), in ``open``: accept a subset of :attr:`offered`. A bit the device does
        not offer fails the open; VIRTIO_F_VERSION_1 is required."""
        self.view.drv["features"][0] = features

    def publish_avail(self, idx: int) -> None:
        """Publish ``avail.idx`` (2.6.13.3), a release store; under ``--sanitize`` the new entries are checked and
        their buffers poisoned first."""
        _engine.publish_avail(self._seg, idx & 0xFFFF)

    @staticmethod
    def mb() -> None:
        """A full memory barrier (Linux's virtio_mb): a store before a load of the device's index."""
        _engine.mb()

    def notify(self) -> None:
        """The available buffer notification (2.6.10), counted; the device polls while it has buffers."""
        self.view.drv["notifies"][0] += 1

    def buffer(self, index: int) -> memoryview:
        """Buffer ``index`` of the pool (header room included): what descriptor ``index`` points at after setup."""
        start = index * self.buf_stride
        return memoryview(self.pool[start : start + self.buf_stride].data)
