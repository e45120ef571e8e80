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
from .layout import SegmentView
from .upper import UpperLayer


class Nic:
    """The pseudo-NIC as the driver under test sees it."""

    def __init__(self, view: SegmentView, upper: UpperLayer, napi_budget: int = 0) -> None:
        self.view = view
        self.upper = upper
        #: 0: take everything per interrupt; else poll NAPI-style, this many descriptors at a time.
        self.napi_budget = napi_budget
        self.ring_size = view.ring_size
        self.buf_size = view.buf_size
        #: the receive descriptor ring, ``layout.RX_DESC`` records (8254x SDM 3.2.3).
        self.ring: np.ndarray[Any, Any] = view.ring
        #: every receive buffer, flat; descriptor i's buffer is at ``buffer_addr[i] - buf_off``.
        self.pool: np.ndarray[Any, Any] = view.pool
        self.buf_off = view.buf_off
        self._seg = view.buffer

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

    # -- statistics registers (SDM 13.6) ---------------------------------------------------
    @property
    def mpc(self) -> int:
        """Missed packets: dropped by the device for want of a free descriptor."""
        return int(self.view.dev["mpc"][0])

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
    """What the driver node calls. ``interrupt`` runs once per interrupt taken."""

    def open(self, nic: Nic) -> None: ...

    def interrupt(self, nic: Nic) -> None: ...

    def close(self, nic: Nic) -> None: ...
