"""The driver node's life: load the driver under test once, then host one run after another.

The node pins itself and loads the driver (:mod:`pseudonic.loading`: driver code runs here, never
in the controller). For each run the controller sends it a :class:`NodeRun`; the node maps the
run's segment, hands the run to the host for the driver's kind (:mod:`.python_host`,
:mod:`.c_host`) as a :class:`~.host_plan.HostPlan`, reports to the controller through a pipe, and
unmaps the segment. A driver that fails ends the node; the device node and the controller carry
on. Processes the driver forks end with its run.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import resource
from multiprocessing.connection import Connection

from ..errors import DriverLoadError, RealtimeError
from ..frame_list import send_frames
from ..layout import MODELS, SegmentView
from ..loading import CDriver, check_driver_class, driver_model, driver_name, driver_transmits, load_driver, spec_of
from ..loading.spec import REFERENCE_DRIVERS
from ..node import become_node, end_descendants
from ..realtime import become_rt
from ..segment import Segment
from .c_host import host_c
from .host_plan import DriverFailed, HostPlan, NodeRun
from .python_host import host_python


def driver_node(conn: Connection, core: int, parent_pid: int, spec: str | type) -> None:
    """The driver node's life: load the driver once (here, never in the controller), then host runs.

    Like a kernel module, the driver is loaded once and probed for every run: each run gets a
    fresh driver object (``Driver()``, or ``pnic_driver_open`` again) on its own segment. The
    node serves runs until the controller says ``quit`` or goes away; a driver that fails ends
    the node (the next run loads the driver again, in a new node).
    """
    become_node(core, parent_pid, "pnic-driver")
    try:
        name = spec_of(spec)
        if spec in ("c", *REFERENCE_DRIVERS):
            # The reference drivers: one per device model, the run's device picks.
            drivers = {model: load_driver(name, model) for model in MODELS}
        else:
            one = load_driver(name) if isinstance(spec, str) else check_driver_class(spec, name)
            drivers = {driver_model(one): one}
    except DriverLoadError as exc:
        conn.send(("load-error", str(exc)))
        return
    first = next(iter(drivers.values()))
    # What the driver can do, for a check that runs the cases it applies to (transmit: e1000's).
    can = {"transmit": driver_transmits(drivers.get("e1000", first))}
    conn.send(("loaded", driver_name(first, name), can))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "run":
            return
        try:
            _serve(conn, drivers, name, msg[1])
        finally:
            end_descendants()  # whatever the driver forked ends with its run


def _serve(conn: Connection, drivers: dict[str, CDriver | type], name: str, run: NodeRun) -> None:
    """Host one run on its segment, then unmap it: a node serves many runs and must not keep their memory."""
    segment = Segment.attach(run.segment)
    policy = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        assert segment.map is not None
        if run.rt:
            with contextlib.suppress(RealtimeError):  # the result says so (drv.rt)
                become_rt()
        device = next(m for m, number in MODELS.items() if number == SegmentView(segment.map).model)
        driver = drivers.get(device)
        if driver is None:
            # Refused at open, as a PCI driver whose id table lacks the device is never probed.
            (built,) = drivers
            conn.send(("load-error", f"driver {name!r} is built for {built}, but the device is {device}: "
                                     f"run it with --device {built}"))  # fmt: skip
            return
        _host_run(conn, driver, run, segment.map)
    finally:
        # A session's next run may not ask for --rt (memory stays locked: MCL_FUTURE is for the node's life).
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, *policy)
        gc.collect()  # views held in cycles (a driver that keeps its nic) would pin the mapping
        segment.close()


def _host_run(conn: Connection, driver: CDriver | type, run: NodeRun, seg: mmap.mmap) -> None:
    """Host one run and report it; a driver failure ends the node (SystemExit)."""
    # Until the host takes the line, a raise is ignored: the device may raise as soon as it hears "ready",
    # and the host looks at the doorbell first.
    run.line.ignore()
    view = SegmentView(seg)
    plan = HostPlan.of(run, conn, seg, view)
    try:
        host = host_c(plan, driver) if isinstance(driver, CDriver) else host_python(plan, driver)
    except DriverFailed:
        raise SystemExit(1) from None
    # The driver is through: what follows is pseudonic's own work, which the driver's timeout does not cover.
    conn.send(("verifying", None))
    try:
        report = host()
    except BaseException as exc:
        # pseudonic's own work after the driver finished (verifying what it delivered) failed:
        # say so as pseudonic's failure, never as the driver's.
        conn.send(("error", {"kind": "pseudonic error", "stage": "verify", "handler_run": None,
                             "message": f"{type(exc).__name__}: {exc} (verifying the deliveries)"}))  # fmt: skip
        raise SystemExit(1) from None
    # the node's peak memory so far (a long run reports it: bounded, whatever the run's length)
    report["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kept frames follow the report as the buffers they lie in, not pickled (pseudonic.frame_list).
    deliveries = report.get("deliveries")
    kept = deliveries.frames if deliveries is not None else None
    if deliveries is not None:
        deliveries.frames = None
    report["frames_follow"] = kept is not None
    conn.send(("done", report))
    if kept is not None:
        send_frames(conn, kept)
    view.release()
