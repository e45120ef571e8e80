"""The driver node, and loading the driver under test.

The driver node pins itself, builds the driver, calls ``open(nic)``, then
takes interrupts until the device has finished and none is pending, calls
``close(nic)``, lets the upper layer verify what was delivered, and reports
to the controller through a pipe. How an interrupt reaches it is the line:

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

A C driver (:mod:`pseudonic.cdriver`) runs its whole loop in C. An
exception in a Python driver ends the node with a report of where and why;
a C driver that crashes kills only its node. Either way the device node and
the controller carry on.
"""

from __future__ import annotations

import faulthandler
import importlib
import importlib.util
import inspect
import mmap
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from . import _engine
from .cdriver import CDriver, looks_like_library, reference_library
from .errors import DriverLoadError
from .frames import FrameSet
from .layout import DEV_DONE, LINE_EVENTFD, LINE_SIGNAL, LINE_SPIN, SegmentView
from .nic import Nic
from .node import become_node
from .upper import NullLayer, VerifyLayer, make_upper, warm_heap

DRIVER_METHODS = ("open", "interrupt", "close")
REFERENCE_DRIVERS = {"python": "pseudonic.drivers.e1000:E1000"}


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


def check_driver_class(obj: Any, spec: str) -> type:
    if not inspect.isclass(obj):
        raise DriverLoadError(f"driver {spec!r} is not a class: a driver is a class with open, interrupt and close")
    missing = [m for m in DRIVER_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise DriverLoadError(
            f"driver {spec!r} lacks {', '.join(missing)}: a driver needs open(nic), interrupt(nic) and close(nic)"
        )
    return obj


def load_driver(spec: str) -> type | CDriver:
    """A driver from ``python``, ``c``, ``module:Class``, ``path/to/file.py[:Class]`` or ``path/to/lib.so``."""
    if spec == "c":
        return CDriver.load(str(reference_library()), "c")
    if looks_like_library(spec):
        return CDriver.load(spec)
    spec = REFERENCE_DRIVERS.get(spec, spec)
    target, sep, attr = spec.rpartition(":")
    if not sep:
        target, attr = spec, ""
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            if not path.is_file():
                raise DriverLoadError(f"driver file {target!r} does not exist")
            modspec = importlib.util.spec_from_file_location(f"pseudonic_user_driver_{path.stem}", path)
            if modspec is None or modspec.loader is None:
                raise DriverLoadError(f"driver file {target!r} cannot be imported as Python")
            module = importlib.util.module_from_spec(modspec)
            sys.modules[modspec.name] = module
            modspec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except DriverLoadError:
        raise
    except Exception as exc:
        raise DriverLoadError(
            f"driver {spec!r} cannot be imported ({type(exc).__name__}: {exc}); "
            "give python, c, module:Class, path/to/driver.py[:Class] or path/to/libdriver.so"
        ) from exc
    if attr:
        if not hasattr(module, attr):
            raise DriverLoadError(f"driver module {target!r} has no {attr!r}")
        return check_driver_class(getattr(module, attr), spec)
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and obj.__module__ == module.__name__
        and all(callable(getattr(obj, m, None)) for m in DRIVER_METHODS)
    ]
    if len(found) != 1:
        raise DriverLoadError(
            f"driver {spec!r}: {'no' if not found else 'more than one'} class with open, interrupt and close; "
            "name it as module:Class or file.py:Class"
        )
    return found[0]


def driver_name(cls: type | CDriver, spec: str) -> str:
    return str(getattr(cls, "name", None) or spec)


def describe_failure(exc: BaseException, stage: str, handler_runs: int, doorbell: int) -> dict[str, Any]:
    """Where and why a driver failed, for the summary."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
    return {
        "kind": "driver exception",
        "stage": stage,
        "exception": type(exc).__name__,
        "message": str(exc),
        "where": where,
        "handler_run": handler_runs,
        "interrupt": doorbell,
    }


def driver_node(
    conn: Connection,
    seg: mmap.mmap,
    core: int,
    parent_pid: int,
    driver: type | CDriver,
    upper_name: str,
    frames: FrameSet,
    slots: np.ndarray[Any, Any],
    line: Line,
    napi_budget: int,
) -> None:
    become_node(core, parent_pid)
    view = SegmentView(seg)
    if isinstance(driver, CDriver):
        report = _host_c_driver(conn, seg, view, driver, upper_name, frames, slots, line, napi_budget)
    else:
        report = _host_python_driver(conn, seg, view, driver, upper_name, frames, slots, line, napi_budget)
    conn.send(("done", report))


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
) -> dict[str, Any]:
    nic = Nic(view, make_upper(upper_name), napi_budget)
    if isinstance(nic.upper, VerifyLayer):
        warm_heap(len(slots), max(frames.sizes))
    stage, runs, seen = "open", 0, 0
    try:
        driver = factory()
        driver.open(nic)
        _engine.prefault(seg)
        conn.send(("ready", None))
        stage = "interrupt"
        handler = driver.interrupt
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
                        _engine.record_exit(seg, runs)
                        runs += 1
                finally:
                    busy = False

            signal.signal(line.signo, on_signal)
            try:
                idle = getattr(driver, "idle", None)
                state, doorbell, stop = view.line["state"], view.line["doorbell"], view.ctl["stop"]
                while True:
                    if idle is None:
                        if not _engine.idle_wait(seg, seen, line.signo):
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
                    _engine.wait_irq_eventfd(seg, seen, runs, line.fd)
                    if line.mode == LINE_EVENTFD
                    else wait(seg, seen, runs)
                )
                if db == 0:
                    break
                seen = db
                handler(nic)
                _engine.record_exit(seg, runs)
                runs += 1
        stage = "close"
        driver.close(nic)
    except BaseException as exc:
        view.drv["handled"][0] = runs
        conn.send(("error", describe_failure(exc, stage, runs, seen)))
        raise SystemExit(1) from None
    view.drv["handled"][0] = runs
    sent = int(view.dev["sent"][0])
    verdict = nic.upper.report(frames, slots[:sent], view.tx["flags"][:sent].copy())
    return {"verdict": verdict, "rx_errors": int(getattr(driver, "rx_errors", 0))}


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
) -> dict[str, Any]:
    # A crash of the C driver is the run's report (signal, handler run, last packet): no Python
    # fault dump on stderr as well (pytest, for one, turns faulthandler on in every process it forks).
    faulthandler.disable()
    store = upper_name == "verify"
    # The store layer keeps one frame per packet sent: a correct driver delivers no more.
    arena = _anonymous(len(slots) * max(frames.sizes)) if store else None
    lengths = np.zeros(len(slots), dtype=np.uint32) if store else None
    handle = _engine.cdriver_new(
        seg, driver.open, driver.interrupt, driver.close, driver.idle, napi_budget, arena, lengths
    )
    rc = _engine.cdriver_open(handle)
    if rc != 0:
        conn.send(("error", {"kind": "driver open failed", "stage": "open", "handler_run": 0,
                             "message": f"pnic_driver_open returned {rc}"}))  # fmt: skip
        raise SystemExit(1)
    _engine.prefault(seg)
    conn.send(("ready", None))
    runs = _engine.cdriver_loop(handle, line.mode, line.fd, line.signo)
    _engine.cdriver_close(handle)
    view.drv["handled"][0] = runs
    stats = _engine.cdriver_stats(handle)
    upper = make_upper(upper_name)
    if isinstance(upper, VerifyLayer) and arena is not None and lengths is not None:
        ends = np.cumsum(lengths[: stats["delivered"]], dtype=np.int64)
        starts = ends - lengths[: stats["delivered"]]
        upper.skbs.extend(arena[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True))
    elif isinstance(upper, NullLayer):
        upper.delivered = stats["delivered"]
    sent = int(view.dev["sent"][0])
    verdict = upper.report(frames, slots[:sent], view.tx["flags"][:sent].copy())
    # Deliveries past what the store layer could keep are unaccounted for: count them against the driver.
    verdict.corrupted += stats["overflow"]
    verdict.delivered += stats["overflow"]
    return {"verdict": verdict, "rx_errors": stats["rx_errors"]}
