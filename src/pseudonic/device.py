"""The device node: a process pinned to its own core running the C send loop.

The whole schedule runs inside one call into the engine with the GIL
released; no Python runs per packet. The node ends when the schedule is
done or the controller sets the stop flag.
"""

from __future__ import annotations

import contextlib
import mmap
import resource
from typing import Any

import numpy as np

from . import _engine
from .errors import RealtimeError
from .frames import FrameSet
from .layout import SegmentView
from .line import Line
from .node import become_node, disturbance, record_disturbance
from .realtime import become_rt

#: t0 lies this far after the call, so packet 0 is not late for the set-up.
DEFAULT_LEAD_NS = 200_000
#: After the schedule, how long a raise held back by IMS waits for the driver to unmask.
DRAIN_NS = 100_000_000
#: Level line: raises in a row with no new packet and no ICR read before the device stops the run.
#: A handler that never reads ICR is re-entered at once, so this is reached in milliseconds.
STORM_LIMIT = 1000


def device_node(
    seg: mmap.mmap,
    core: int,
    parent_pid: int,
    slots: np.ndarray[Any, Any],
    frames: FrameSet,
    lead_ns: int,
    line: Line,
    driver_pid: int,
    irq_mode: int,
    late: int,
    rt: bool = False,
    tx_order: np.ndarray[Any, Any] | None = None,
    loopback: bool = False,
    tx_rate_bps: int = 0,
    batch: int = 1,
    total: int = 0,
    period_ns: int = 0,
) -> None:
    """The device's node: the send loop on ``core``. ``total`` entries (0: one per slot), each pass of ``slots``
    ``period_ns`` after the one before: a run of any length from one pass of its plan."""
    become_node(core, parent_pid, "pnic-device")
    if rt:
        # Permitted when the run began (controller); if the kernel says no now, the run goes on
        # without it, and the result says so (dev.rt).
        with contextlib.suppress(RealtimeError):
            become_rt()
    # The shared segment is not mapped in a forked child until touched: fault it in before the
    # count begins (device_run does so again, for callers that did not), so that the faults counted
    # are those of the schedule.
    _engine.prefault(seg)
    before = disturbance()
    _engine.device_run(
        seg,
        slots,
        frames.table,
        frames.blob,
        lead_ns,
        DRAIN_NS,
        line.mode,
        line.fd,
        driver_pid,
        line.signo,
        irq_mode,
        STORM_LIMIT,
        late,
        # e1000's transmitter: the frames the driver is handed, in order, to check what it takes against
        (tx_order if tx_order is not None else np.zeros(0, np.uint32)).astype("<u4").tobytes(),
        int(loopback),
        tx_rate_bps,
        batch,
        total,
        period_ns,
    )
    after = disturbance()  # before the view's own allocations fault pages in
    view = SegmentView(seg)
    record_disturbance(view.dev, before, after)
    view.dev["maxrss_kib"][0] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    view.release()
