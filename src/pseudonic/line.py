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

    @classmethod
    def make(cls, name: str, fd: int = -1) -> Line:
        if name == "eventfd":
            return cls(name, LINE_EVENTFD, fd=fd)
        if name == "signal":
            return cls(name, LINE_SIGNAL, signo=int(signal.SIGRTMIN))
        return cls(name, LINE_SPIN)
