"""Driver loading: from a spec on the command line to a driver, only ever in a child process.

A driver's module runs code when it is imported, and a C library's
constructors run when it is opened: an ``os._exit(0)`` there, an endless
loop, a segfault or an ``exit(0)`` in a constructor must not end or hang the
controller -- least of all with exit status 0, which reads as a pass. So the
controller never imports, opens or runs driver code: the driver node loads
the driver itself (:func:`load_driver`), and :func:`probe` checks a spec in a
throw-away child under a timeout before a suite of runs (``check-driver``).
Whatever goes wrong while loading is a :class:`DriverLoadError` (exit 2).

Specs: ``python`` and ``c`` (the reference drivers), ``module:Class``,
``path/to/driver.py[:Class]``, ``path/to/libdriver.so``.
"""

from __future__ import annotations

import faulthandler
import importlib
import importlib.util
import inspect
import multiprocessing as mp
import os
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from ..errors import DriverLoadError
from .library import CDriver, check_library, looks_like_library, reference_library

DRIVER_METHODS = ("open", "interrupt", "close")
#: the reference drivers, per device model: ``python`` and ``c`` name the one of the run's device
REFERENCE_DRIVERS = {
    "python": {"e1000": "pseudonic.drivers.e1000:E1000", "virtio-net": "pseudonic.drivers.virtio_net:VirtioNet"},
}
#: How long loading a driver may take (an import, a library's constructors) unless the caller says otherwise.
LOAD_TIMEOUT_S = 10.0


def check_driver_class(obj: Any, spec: str) -> type:
    if not inspect.isclass(obj):
        raise DriverLoadError(f"driver {spec!r} is not a class: a driver is a class with open, interrupt and close")
    missing = [m for m in DRIVER_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise DriverLoadError(
            f"driver {spec!r} lacks {', '.join(f'{m}(nic)' for m in missing)}: "
            "a driver needs open(nic), interrupt(nic) and close(nic)"
        )
    return obj


def check_spec(spec: str) -> None:
    """What can be checked without running driver code: the file exists, a library is a whole ELF file."""
    if spec in ("c", "python") or spec in REFERENCE_DRIVERS:
        return
    if looks_like_library(spec):
        check_library(Path(spec))
        return
    target = spec.rpartition(":")[0] or spec
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if path.is_dir():
            raise DriverLoadError(f"driver file {target!r} is a directory; give a .py file")
        if not path.is_file():
            raise DriverLoadError(f"driver file {target!r} does not exist")


def driver_model(driver: type | CDriver) -> str:
    """The device model a driver is built for: a C library's pnic_driver_model, a class's ``model``
    attribute (``"e1000"`` or ``"virtio-net"``); e1000 when it does not say."""
    return str(getattr(driver, "model", None) or "e1000")


def load_driver(spec: str, device: str = "e1000") -> type | CDriver:
    """Import or open the driver ``spec`` names (``python`` and ``c``: the reference driver of ``device``).
    Runs driver code: call it in a node or a probe, never in the controller."""
    if spec == "c":
        return CDriver.load(str(reference_library(device)), "c")
    check_spec(spec)
    if looks_like_library(spec):
        return CDriver.load(spec)
    spec = REFERENCE_DRIVERS[spec][device] if spec in REFERENCE_DRIVERS else spec
    target, sep, attr = spec.rpartition(":")
    if not sep:
        target, attr = spec, ""
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
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
    except SystemExit as exc:
        raise DriverLoadError(f"driver {spec!r} called sys.exit({exc.code!r}) while being imported") from None
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
        near = "" if found else _closest_miss(module)
        raise DriverLoadError(
            f"driver {spec!r}: {'no' if not found else 'more than one'} class with open, interrupt and close"
            f"{near}; name it as module:Class or file.py:Class"
        )
    return found[0]


def _closest_miss(module: Any) -> str:
    """ ", and Class lacks interrupt(nic)" for the module's class that has most of the driver methods."""
    classes = [o for o in vars(module).values() if inspect.isclass(o) and o.__module__ == module.__name__]
    scored = [(sum(callable(getattr(c, m, None)) for m in DRIVER_METHODS), c) for c in classes]
    scored = [(n, c) for n, c in scored if n]
    if not scored:
        return ""
    _, best = max(scored, key=lambda nc: nc[0])
    missing = [f"{m}(nic)" for m in DRIVER_METHODS if not callable(getattr(best, m, None))]
    return f" ({best.__name__} lacks {', '.join(missing)})"


def driver_transmits(driver: type | CDriver) -> bool:
    """Whether a driver has a transmit entry point (a C library's pnic_driver_transmit, a class's ``transmit``)."""
    if isinstance(driver, CDriver):
        return driver.transmit != 0
    return callable(getattr(driver, "transmit", None))


def driver_name(driver: type | CDriver, spec: str) -> str:
    return str(getattr(driver, "name", None) or spec)


def spec_of(driver: str | type) -> str:
    return driver if isinstance(driver, str) else f"{driver.__module__}:{driver.__qualname__}"


def ended_while_loading(spec: str, exitcode: int | None, timeout: float) -> DriverLoadError:
    """The error for a child that died or hung while it loaded ``spec``."""
    if exitcode is None:
        return DriverLoadError(
            f"driver {spec!r} did not finish loading within {timeout:g} s (an endless loop at import or in a "
            "constructor?); raise --driver-timeout if it needs longer"
        )
    if exitcode < 0:
        how = f"was killed by {signal.Signals(-exitcode).name}"
    else:
        how = f"ended the process with exit status {exitcode}"
    return DriverLoadError(f"driver {spec!r} {how} while being loaded (its import or its library's constructors)")


def _probe_child(conn: Any, spec: str) -> None:
    faulthandler.disable()  # a crash while loading is reported in one line, not as a fault dump
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        driver = load_driver(spec)
    except DriverLoadError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ok", driver_name(driver, spec)))
    conn.close()
    os._exit(0)  # leave without running the driver module's atexit handlers or finalizers


def probe(spec: str, timeout: float = LOAD_TIMEOUT_S) -> str:
    """Load ``spec`` in a throw-away child under ``timeout``; return the driver's name or raise DriverLoadError."""
    check_spec(spec)
    ctx = mp.get_context("fork")
    recv_end, send_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_probe_child, args=(send_end, spec), name="pseudonic-probe", daemon=True)
    child.start()
    send_end.close()
    try:
        if wait([recv_end, child.sentinel], timeout=timeout) and recv_end.poll():
            try:
                kind, text = recv_end.recv()
            except EOFError:
                kind, text = "died", ""
            if kind == "ok":
                return str(text)
            if kind == "error":
                raise DriverLoadError(text)
        child.join(0.5 if child.is_alive() else None)
        raise ended_while_loading(spec, child.exitcode, timeout)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        recv_end.close()
