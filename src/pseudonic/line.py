"""Interrupt lines: how the device node reaches the driver node (DESIGN.md section 2).

- ``spin``: a doorbell in shared memory the driver core watches (the paper's IPI, lowest latency);
- ``eventfd``: the device writes an eventfd the driver node blocks on (how VFIO delivers MSI-X);
- ``signal``: a real-time signal to the driver node's thread (truly asynchronous). The line is one
  pending bit, as an interrupt controller's is: the device signals again only once the node has
  answered (``carry`` in ``_engine/pnic_send.c``).

The device node raises a line in C (``_engine/pnic_send.c``); the driver node waits on it in C
(``_engine/pnic_wait.c``, and the C host's loop in ``_engine/pnic_chost.c``). What Python does with a
line is here: the kernel objects a session's lines need (:class:`Lines`), the controller's own raise,
which wakes a sleeping driver node so that it sees the stop flag (:meth:`Line.kick`), and a node's
shield against a raise no host takes yet (:meth:`Line.ignore`).
"""

from __future__ import annotations

import contextlib
import os
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

    def ignore(self) -> None:
        """From now on a raise of this line that no host takes is ignored, not fatal (a real-time signal's
        default action ends the process)."""
        if self.mode == LINE_SIGNAL:
            signal.signal(self.signo, signal.SIG_IGN)

    def kick(self, pid: int | None) -> None:
        """Raise the line from outside the device: the driver node ``pid`` (None: none to signal) wakes.

        The eventfd is written whether or not a node waits on it: the count a node kept for the
        session's next run finds there costs it one empty wake-up, the doorbell being unchanged.
        """
        if self.mode == LINE_EVENTFD:
            os.eventfd_write(self.fd, 1)
        elif self.mode == LINE_SIGNAL and pid is not None:
            with contextlib.suppress(ProcessLookupError):  # the node ended meanwhile: nothing to wake
                os.kill(pid, self.signo)


class Lines:
    """The kernel objects behind a session's lines, opened once for all its runs.

    The eventfd is made before any node forks, so that every node of every run inherits it.
    """

    def __init__(self) -> None:
        self.efd = -1

    @property
    def is_open(self) -> bool:
        return self.efd >= 0

    def open(self) -> None:
        self.efd = os.eventfd(0, os.EFD_CLOEXEC)

    def close(self) -> None:
        if self.efd >= 0:
            os.close(self.efd)
            self.efd = -1

    def line(self, name: str, busy_poll_ns: int = 0) -> Line:
        """The line ``name`` (spin, eventfd, signal) over this session's objects."""
        return Line.make(name, self.efd, busy_poll_ns)
