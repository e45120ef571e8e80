"""What a host is given for one run, the same for a Python driver as for a C one.

A host opens a fresh instance of the driver on the run's segment, says ``("ready", None)`` on
the connection, takes interrupts on the run's line until the device has finished and none is
pending, and closes the driver. It returns its :data:`Reporter`: verifying what the driver
delivered is pseudonic's own work, kept apart so that a failure there is never the driver's.

With ``keep_frames`` (and the verify layer), the report's deliveries also carry every frame as
delivered and when it was delivered (CLOCK_MONOTONIC ns, stamped as the driver hands it up), for
a capture of the deliveries.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, eq=False)
class HostPlan:
    """One run as a host sees it: the mapped segment, what the driver delivers to, and where to report."""

    #: to the controller: ("ready", None) once the driver is open, ("error", why) if it fails
    conn: Connection
    seg: mmap.mmap
    view: SegmentView
    #: the upper layer's name (verify, null)
    upper: str
    frames: FrameSet
    slots: np.ndarray[Any, Any]
    line: Line
    napi_budget: int
    #: the report's Deliveries carries ``frames`` and ``delivered_ns`` (verify layer only)
    keep_frames: bool = False
