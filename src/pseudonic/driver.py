"""The driver node, and loading the driver under test.

The driver node pins itself, builds the driver, calls ``open(nic)``, then
takes interrupts: the engine spins on the line with the GIL released,
stamps the handler entry, and the node calls ``interrupt(nic)``. When the
device has finished and no interrupt is pending it calls ``close(nic)``,
lets the upper layer verify what was delivered, and reports to the
controller through a pipe. An exception in the driver ends the node with a
report of where and why; the device node and the controller carry on.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import mmap
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from . import _engine
from .errors import DriverLoadError
from .frames import FrameSet
from .layout import SegmentView
from .nic import Nic
from .node import become_node
from .upper import make_upper

DRIVER_METHODS = ("open", "interrupt", "close")
REFERENCE_DRIVERS = {"python": "pseudonic.drivers.e1000:E1000"}


def check_driver_class(obj: Any, spec: str) -> type:
    if not inspect.isclass(obj):
        raise DriverLoadError(f"driver {spec!r} is not a class: a driver is a class with open, interrupt and close")
    missing = [m for m in DRIVER_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise DriverLoadError(
            f"driver {spec!r} lacks {', '.join(missing)}: a driver needs open(nic), interrupt(nic) and close(nic)"
        )
    return obj


def load_driver(spec: str) -> type:
    """A driver class from ``python``, ``module:Class``, or ``path/to/file.py[:Class]``."""
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
            "give python, module:Class or path/to/driver.py[:Class]"
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


def driver_name(cls: type, spec: str) -> str:
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
    factory: Callable[[], Any],
    upper_name: str,
    frames: FrameSet,
    slots: np.ndarray[Any, Any],
) -> None:
    become_node(core, parent_pid)
    view = SegmentView(seg)
    nic = Nic(view, make_upper(upper_name))
    stage, runs, seen = "open", 0, 0
    try:
        driver = factory()
        driver.open(nic)
        _engine.prefault(seg)
        conn.send(("ready", None))
        stage = "interrupt"
        wait, now = _engine.wait_irq, _engine.now_ns
        exit_ns, capacity = view.irqs["exit_ns"], view.capacity
        handler = driver.interrupt
        while True:
            db = wait(seg, seen, runs)
            if db == 0:
                break
            seen = db
            handler(nic)
            if runs < capacity:
                exit_ns[runs] = now()
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
    conn.send(("done", {"verdict": verdict, "rx_errors": int(getattr(driver, "rx_errors", 0))}))
