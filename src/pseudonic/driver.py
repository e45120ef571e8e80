"""The driver node: the process that hosts the driver under test.

The driver node pins itself and loads the driver once (:mod:`pseudonic.loading`:
driver code runs here, never in the controller). For each run the controller
sends it (a :class:`NodeRun`), it maps the run's segment, builds the driver,
calls ``open(nic)``, takes interrupts until the device has finished and none
is pending, calls ``close(nic)``, lets the upper layer verify what was
delivered, reports to the controller through a pipe, and unmaps the segment. How an interrupt reaches it is the line:

- ``spin``: the engine spins on the doorbell with the GIL released, stamps
  the handler entry, and the node calls ``interrupt(nic)``;
- ``eventfd``: the same, asleep in ``read`` on an eventfd the device writes
  (how VFIO hands MSI-X to user-space drivers);
- ``signal``: the device sends a real-time signal to the node's thread. For
  a Python driver, only CPython's own C handler runs in signal context (it
  notes the signal); ``interrupt(nic)`` runs in the main thread at the next
  bytecode boundary -- preempting the driver's ``idle(nic)``, if it has one,
  between any two bytecodes, but never in the middle of a C call. For a C
  driver ``pnic_driver_interrupt`` runs inside the signal handler itself.

A C driver (:mod:`pseudonic.loading.library`) runs its whole loop in C. An
exception in a Python driver ends the node with a report of where and why;
a C driver that crashes kills only its node. Either way the device node and
the controller carry on. Processes the driver forks end with its run.

With ``keep_frames`` (and the verify layer), the report's deliveries also
carry every frame as delivered and when it was delivered (CLOCK_MONOTONIC
ns, stamped as the driver hands it up), for a capture of the deliveries.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import mmap
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import numpy as np

from . import _engine
from .errors import DriverLoadError, RealtimeError
from .frames import FrameSet
from .layout import DEV_DONE, LINE_EVENTFD, LINE_SIGNAL, SegmentView
from .line import Line
from .loading import CDriver, check_driver_class, driver_name, load_driver, spec_of
from .nic import Nic
from .node import become_node, disturbance, end_descendants, record_disturbance
from .realtime import become_rt
from .segment import Segment
from .upper import NullLayer, VerifyLayer, make_upper, warm_heap


def describe_failure(exc: BaseException, stage: str, handler_runs: int, doorbell: int) -> dict[str, Any]:
    """Where and why a driver failed, for the summary. Handler runs are numbered from 1, as for C drivers."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
    return {
        "kind": "driver exception",
        "stage": stage,
        "exception": type(exc).__name__,
        "message": str(exc),
        "where": where,
        "handler_run": handler_runs + 1 if stage == "interrupt" else None,
        "interrupt": doorbell,
    }


class DriverFailed(Exception):
    """The driver under test failed; its report has been sent to the controller."""


@dataclass(frozen=True)
class NodeRun:
    """One run for a loaded driver node: the segment by name, and what its hosts need."""

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


def driver_node(conn: Connection, core: int, parent_pid: int, spec: str | type) -> None:
    """The driver node's life: load the driver once (here, never in the controller), then host runs.

    Like a kernel module, the driver is loaded once and probed for every run: each run gets a
    fresh driver object (``Driver()``, or ``pnic_driver_open`` again) on its own segment. The
    node serves runs until the controller says ``quit`` or goes away; a driver that fails ends
    the node (the next run loads the driver again, in a new node).
    """
    become_node(core, parent_pid)
    try:
        name = spec_of(spec)
        driver = load_driver(spec) if isinstance(spec, str) else check_driver_class(spec, name)
    except DriverLoadError as exc:
        conn.send(("load-error", str(exc)))
        return
    conn.send(("loaded", driver_name(driver, name)))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "run":
            return
        try:
            _serve(conn, driver, msg[1])
        finally:
            end_descendants()  # whatever the driver forked ends with its run


def _serve(conn: Connection, driver: CDriver | type, run: NodeRun) -> None:
    """Host one run on its segment, then unmap it: a node serves many runs and must not keep their memory."""
    segment = Segment.attach(run.segment)
    policy = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        assert segment.map is not None
        if run.rt:
            with contextlib.suppress(RealtimeError):  # the result says so (drv.rt)
                become_rt()
        _host_run(conn, driver, run, segment.map)
    finally:
        # A session's next run may not ask for --rt (memory stays locked: MCL_FUTURE is for the node's life).
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, *policy)
        gc.collect()  # views held in cycles (a driver that keeps its nic) would pin the mapping
        segment.close()


def _host_run(conn: Connection, driver: CDriver | type, run: NodeRun, seg: mmap.mmap) -> None:
    """Host one run and report it; a driver failure ends the node (SystemExit)."""
    if run.line.mode == LINE_SIGNAL:
        # Until the host installs its handler the line's signal is ignored, not fatal (a real-time signal's
        # default): the device may raise as soon as it hears "ready", and the host looks at the doorbell first.
        signal.signal(run.line.signo, signal.SIG_IGN)
    view = SegmentView(seg)
    args = (conn, seg, view, driver, run.upper, run.frames, run.slots, run.line, run.napi_budget, run.keep_frames)
    try:
        host = _host_c_driver(*args) if isinstance(driver, CDriver) else _host_python_driver(*args)  # type: ignore[arg-type]
    except DriverFailed:
        raise SystemExit(1) from None
    try:
        report = host()
    except BaseException as exc:
        # pseudonic's own work after the driver finished (verifying what it delivered) failed:
        # say so as pseudonic's failure, never as the driver's.
        conn.send(("error", {"kind": "pseudonic error", "stage": "verify", "handler_run": None,
                             "message": f"{type(exc).__name__}: {exc} (verifying the deliveries)"}))  # fmt: skip
        raise SystemExit(1) from None
    conn.send(("done", report))
    view.release()


def _host_python_driver(
    conn: Connection,
    seg: mmap.mmap,
    view: SegmentView,
    factory: type,
    upper_name: str,
    frames: FrameSet,
    slots: np.ndarray[Any, Any],
    line: Line,
    napi_budget: int,
    keep_frames: bool = False,
) -> Callable[[], dict[str, Any]]:
    """Run the driver; return what verifies and reports its deliveries (pseudonic's part, kept apart)."""
    nic = Nic(view, make_upper(upper_name, keep_times=keep_frames), napi_budget)
    if isinstance(nic.upper, VerifyLayer):
        warm_heap(len(slots), max(frames.sizes))
    stage, runs, seen = "open", 0, 0
    try:
        driver = factory()
        driver.open(nic)
        _engine.prefault(seg)
        conn.send(("ready", None))
        before = disturbance()
        stage = "interrupt"
        handler = driver.interrupt
        count = nic.upper.count
        if line.mode == LINE_SIGNAL:
            busy = False

            def on_signal(signo: int, frame: FrameType | None) -> None:
                # CPython may run this handler again, nested, at any bytecode of the running one; a
                # real line is not re-entered, so a nested call returns and the running handler takes
                # what it announced -- it looks at the doorbell again before it returns.
                nonlocal seen, runs, busy
                if busy:
                    return
                busy = True
                try:
                    while db := _engine.take_irq(seg, seen, runs):
                        seen = db
                        handler(nic)
                        _engine.record_exit(seg, runs, seen, count())
                        runs += 1
                finally:
                    busy = False

            signal.signal(line.signo, on_signal)
            try:
                idle = getattr(driver, "idle", None)
                state, doorbell, stop = view.line["state"], view.line["doorbell"], view.ctl["stop"]
                while True:
                    if idle is None:
                        if not _engine.idle_wait(seg, seen, line.signo, line.busy_poll_ns):
                            break
                    elif stop[0] or (state[0] >= DEV_DONE and doorbell[0] == seen):
                        break
                    else:
                        idle(nic)
                    # CPython folds signals that arrive together into one call of the handler; one
                    # that came between the handler's last look and its return is taken here.
                    on_signal(line.signo, None)
            finally:
                # Late kicks must neither run a failed driver again nor kill the node (a real-time
                # signal's default action is to terminate).
                signal.signal(line.signo, signal.SIG_IGN)
        else:
            wait = _engine.wait_irq
            while True:
                db = (
                    _engine.wait_irq_eventfd(seg, seen, runs, line.fd, line.busy_poll_ns)
                    if line.mode == LINE_EVENTFD
                    else wait(seg, seen, runs)
                )
                if db == 0:
                    break
                seen = db
                handler(nic)
                _engine.record_exit(seg, runs, seen, count())
                runs += 1
        record_disturbance(view.drv, before)
        stage = "close"
        driver.close(nic)
    except BaseException as exc:
        view.drv["handled"][0] = runs
        conn.send(("error", describe_failure(exc, stage, runs, seen)))
        raise DriverFailed from None
    view.drv["handled"][0] = runs
    rx_errors = getattr(driver, "rx_errors", None)

    def report() -> dict[str, Any]:
        sent = int(view.dev["sent"][0])
        deliveries = nic.upper.report(
            frames, slots[:sent], view.tx["flags"][:sent].copy(), poisoned=bool(view.header["sanitize"][0])
        )
        return {"deliveries": deliveries, "rx_errors": None if rx_errors is None else int(rx_errors)}

    return report


def _anonymous(nbytes: int) -> mmap.mmap:
    """Memory populated now, so that no page fault lands in the measured loop."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return mmap.mmap(-1, max(nbytes, 1), flags=flags)


def _host_c_driver(
    conn: Connection,
    seg: mmap.mmap,
    view: SegmentView,
    driver: CDriver,
    upper_name: str,
    frames: FrameSet,
    slots: np.ndarray[Any, Any],
    line: Line,
    napi_budget: int,
    keep_frames: bool = False,
) -> Callable[[], dict[str, Any]]:
    # A crash of the C driver is the run's report (signal, handler run, last packet): no Python
    # fault dump on stderr as well (pytest, for one, turns faulthandler on in every process it forks).
    faulthandler.disable()
    store = upper_name == "verify"
    # The store layer keeps one frame per packet sent: a correct driver delivers no more.
    arena = _anonymous(len(slots) * max(frames.sizes)) if store else None
    lengths = np.zeros(len(slots), dtype=np.uint32) if store else None
    # Delivery times, stamped in C as each delivery is kept; populated now, like the arena.
    stamps = _anonymous(len(slots) * 8) if store and keep_frames else None
    handle = _engine.cdriver_new(
        seg, driver.open, driver.interrupt, driver.close, driver.idle, napi_budget, arena, lengths, stamps
    )
    rc = _engine.cdriver_open(handle)
    if rc != 0:
        conn.send(("error", {"kind": "driver open failed", "stage": "open", "handler_run": None,
                             "message": f"pnic_driver_open returned {rc}"}))  # fmt: skip
        raise DriverFailed
    _engine.prefault(seg)
    conn.send(("ready", None))
    before = disturbance()
    runs = _engine.cdriver_loop(handle, line.mode, line.fd, line.signo, line.busy_poll_ns)
    record_disturbance(view.drv, before)
    _engine.cdriver_close(handle)
    view.drv["handled"][0] = runs

    def report() -> dict[str, Any]:
        stats = _engine.cdriver_stats(handle)
        upper = make_upper(upper_name)
        if isinstance(upper, VerifyLayer) and arena is not None and lengths is not None:
            ends = np.cumsum(lengths[: stats["delivered"]], dtype=np.int64)
            starts = ends - lengths[: stats["delivered"]]
            # Views into the arena, not copies: a run at the verify limit must not need its memory twice.
            whole = memoryview(arena)
            upper.skbs.extend(whole[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
            upper.checked.extend(np.flatnonzero(np.frombuffer(stats["checked"], np.uint8)).tolist())
        elif isinstance(upper, NullLayer):
            upper.delivered = stats["delivered"]
        sent = int(view.dev["sent"][0])
        deliveries = upper.report(
            frames, slots[:sent], view.tx["flags"][:sent].copy(), poisoned=bool(view.header["sanitize"][0])
        )
        if stamps is not None:
            # Copies, for the pipe: only when asked (the verify layer itself reads views into the arena).
            deliveries.frames = [bytes(skb) for skb in upper.skbs] if isinstance(upper, VerifyLayer) else None
            deliveries.delivered_ns = np.frombuffer(stamps, np.uint64, stats["delivered"]).astype(np.int64)
        # Deliveries past what the store layer could keep are unaccounted for: count them against the driver.
        deliveries.corrupted += stats["overflow"]
        deliveries.delivered += stats["overflow"]
        return {"deliveries": deliveries, "rx_errors": stats["rx_errors"]}

    return report
