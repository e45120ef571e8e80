"""Interrupt lines: how the device node reaches the driver node (DESIGN.md section 2).

- ``spin``: a doorbell in shared memory the driver core watches (the paper's IPI, lowest latency);
- ``eventfd``: the device writes an eventfd the driver node blocks on (how VFIO delivers MSI-X);
- ``signal``: a real-time signal to the driver node's thread (truly asynchronous). The line is one
  pending bit, as an interrupt controller's is: the device signals again only once the node has
  answered (``carry`` in ``_engine/pnic_device.c``).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from .layout import LINE_EVENTFD, LINE_SIGNAL, LINE_SPIN


@dataclass(frozen=True)
class Line:
    """How the device reaches the driver node: ``mode`` is a LINE_* constant."""

    name: str
    mode: int
    fd: int = -1  # the eventfd, inherited by both nodes across fork
    signo: int = 0
    #: eventfd and signal: the driver node spins on the doorbell this long before it sleeps (Linux's
    #: busy_poll), since waking a sleeping core costs microseconds; 0 sleeps at once
    busy_poll_ns: int = 0

    @classmethod
    def make(cls, name: str, fd: int = -1, busy_poll_ns: int = 0) -> Line:
        if name == "eventfd":
            return cls(name, LINE_EVENTFD, fd=fd, busy_poll_ns=busy_poll_ns)
        if name == "signal":
            return cls(name, LINE_SIGNAL, signo=int(signal.SIGRTMIN), busy_poll_ns=busy_poll_ns)
        return cls(name, LINE_SPIN)

    @property
    def sleeps(self) -> bool:
        """The driver node sleeps between interrupts (for longer than its busy poll, if any)."""
        return self.mode != LINE_SPIN
