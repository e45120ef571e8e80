"""The host of a C driver: a library exporting ``_engine/pseudonic.h``'s entry points.

The whole loop runs in C (:func:`pseudonic._engine.cdriver_loop`): no Python runs per packet. On
the signal line ``pnic_driver_interrupt`` runs inside the signal handler itself. The store and
null upper layers are in C too; the host turns what they kept into the report. A C driver that
crashes kills only its node: the controller reports the signal, the handler run, the last packet.
"""

from __future__ import annotations

import faulthandler
import mmap
from typing import Any

import numpy as np

from .. import _engine
from ..layout import MODEL_VIRTIO_NET
from ..loading import CDriver
from ..models.virtio_net import features_refusal
from ..node import disturbance, record_disturbance
from ..upper import NullLayer, StreamVerifyLayer, VerifyLayer, make_upper
from .host_plan import DriverFailed, HostPlan, Reporter


def _anonymous(nbytes: int) -> mmap.mmap:
    """Memory populated now, so that no page fault lands in the measured loop."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return mmap.mmap(-1, max(nbytes, 1), flags=flags)


def host_c(plan: HostPlan, driver: CDriver) -> Reporter:
    """Open the driver and run its loop in C; return what verifies and reports its deliveries."""
    conn, seg, view, frames, slots, line = plan.conn, plan.seg, plan.view, plan.frames, plan.slots, plan.line
    upper_name, keep_frames, napi_budget = plan.upper, plan.keep_frames, plan.napi_budget
    # A crash of the C driver is the run's report (signal, handler run, last packet): no Python
    # fault dump on stderr as well (pytest, for one, turns faulthandler on in every process it forks).
    faulthandler.disable()
    store = upper_name == "verify" and not plan.total
    # The store layer keeps one frame per packet sent: a correct driver delivers no more.
    arena = _anonymous(len(slots) * max(frames.sizes)) if store else None
    lengths = np.zeros(len(slots), dtype=np.uint32) if store else None
    # Delivery times, stamped in C as each delivery is kept; populated now, like the arena.
    stamps = _anonymous(len(slots) * 8) if store and keep_frames else None
    handle = _engine.cdriver_new(
        seg, driver.open, driver.interrupt, driver.close, driver.idle, napi_budget, arena, lengths, stamps
    )
    verifier = StreamVerifyLayer(frames, slots["frame"], plan.total) if plan.total and upper_name == "verify" else None
    if verifier is not None:
        _engine.cdriver_verify(handle, verifier.verifier)  # each delivery checked as it comes, in C
    if plan.tx_order is not None:
        if not driver.transmit:
            conn.send(("load-error", f"driver {driver.name!r} exports no pnic_driver_transmit: a run with --transmit "
                                     "hands it frames to send (see pseudonic.h)"))  # fmt: skip
            raise DriverFailed
        _engine.cdriver_transmit(handle, driver.transmit, frames.table.tobytes(), frames.blob,
                                 plan.tx_order.astype("<u4").tobytes())  # fmt: skip
    rc = _engine.cdriver_open(handle)
    if rc != 0:
        conn.send(("error", {"kind": "driver open failed", "stage": "open", "handler_run": None,
                             "message": f"pnic_driver_open returned {rc}"}))  # fmt: skip
        raise DriverFailed
    if view.model == MODEL_VIRTIO_NET and (
        why := features_refusal(int(view.drv["features"][0]), int(view.header["offered"][0]))
    ):
        conn.send(("load-error", why))
        raise DriverFailed
    _engine.prefault(seg)
    conn.send(("ready", None))
    before = disturbance()
    runs = _engine.cdriver_loop(handle, line.mode, line.fd, line.signo, line.busy_poll_ns)
    record_disturbance(view.drv, before)
    # virtio-net's queue as the driver's handling left it: its close may turn interrupts off
    queue = view.queue_state() if view.model == MODEL_VIRTIO_NET else None
    _engine.cdriver_close(handle)
    view.drv["handled"][0] = runs

    def report() -> dict[str, Any]:
        stats = _engine.cdriver_stats(handle)
        if verifier is not None:
            return {"deliveries": verifier.report(frames, slots, slots["flags"]), "rx_errors": stats["rx_errors"],
                    "queue": queue, "tx": None}  # fmt: skip
        upper = make_upper(upper_name)
        if isinstance(upper, VerifyLayer) and arena is not None and lengths is not None:
            # The arena as it is, not copies: a run at the verify limit must not need its memory twice.
            upper.adopt(memoryview(arena), lengths[: stats["delivered"]])
            upper.checked.extend(np.flatnonzero(np.frombuffer(stats["checked"], np.uint8)).tolist())
        elif isinstance(upper, NullLayer):
            upper.delivered = stats["delivered"]
        sent = int(view.dev["sent"][0])
        deliveries = upper.report(
            frames, slots[:sent], view.tx["flags"][:sent].copy(), poisoned=bool(view.header["sanitize"][0])
        )
        if stamps is not None:
            # The arena as it is, for the pipe (pseudonic.frame_list): only when asked.
            deliveries.frames = upper.kept() if isinstance(upper, VerifyLayer) else None
            deliveries.delivered_ns = np.frombuffer(stamps, np.uint64, stats["delivered"]).astype(np.int64)
        # Deliveries past what the store layer could keep are unaccounted for: count them against the driver.
        deliveries.corrupted += stats["overflow"]
        deliveries.delivered += stats["overflow"]
        tx = {"handed": stats["tx_handed"], "refused": stats["tx_refused"]} if plan.tx_order is not None else None
        return {"deliveries": deliveries, "rx_errors": stats["rx_errors"], "queue": queue, "tx": tx}

    return report
