"""What a host is given for one run, the same for a Python driver as for a C one.

A host opens a fresh instance of the driver on the run's segment, says ``("ready", None)`` on
the connection, takes interrupts on the run's line until the device has finished and none is
pending, and closes the driver. It returns its :data:`Reporter`: verifying what the driver
delivered is pseudonic's own work, kept apart so that a failure there is never the driver's (the
node says ``("verifying", None)`` before it, and the driver's timeout no longer runs).

With ``keep_frames`` (and the verify layer), the report's deliveries also carry every frame as
delivered and when it was delivered (CLOCK_MONOTONIC ns, stamped as the driver hands it up), for
a capture of the deliveries.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..frames import FrameSet
from ..layout import SegmentView
from ..line import Line

#: What a host returns: verify the deliveries and give the report the node sends to the controller.
Reporter = Callable[[], dict[str, Any]]


class DriverFailed(Exception):
    """The driver under test failed; its report has been sent to the controller."""


@dataclass(frozen=True)
class NodeRun:
    """One run for a loaded driver node, as the controller sends it: the segment by name, and what its hosts need."""

    segment: str
    upper: str
    frames: FrameSet
    slots: np.ndarray[Any, Any]
    line: Line
    napi_budget: int
    #: the report's Deliveries carries ``frames`` and ``delivered_ns`` (verify layer only)
    keep_frames: bool = False
    #: host the run SCHED_FIFO with memory locked (--rt); the node goes back to SCHED_OTHER after it
    rt: bool = False
    #: e1000: the frames to hand the driver's transmit entry, in order (indices into ``frames``); None: none
    tx_order: np.ndarray[Any, Any] | None = None
    #: a long run (--records summary|none): its entries, ``slots`` being one pass of them; deliveries are
    #: checked as they come (upper.StreamVerifyLayer, pnic_verify.c). 0: a run that keeps everything
    total: int = 0


@dataclass(frozen=True, eq=False, kw_only=True)
class HostPlan(NodeRun):
    """One run as a host sees it: the run, its segment mapped, and where to report."""

    #: to the controller: ("ready", None) once the driver is open, ("error", why) if it fails
    conn: Connection
    seg: mmap.mmap
    view: SegmentView

    @classmethod
    def of(cls, run: NodeRun, conn: Connection, seg: mmap.mmap, view: SegmentView) -> HostPlan:
        return cls(**{f.name: getattr(run, f.name) for f in fields(run)}, conn=conn, seg=seg, view=view)
