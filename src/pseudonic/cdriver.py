"""Drivers written in C: finding, checking and describing a driver library.

A C driver is a shared library exporting the entry points of
``_engine/pseudonic.h`` (``pseudonic include-dir`` prints where that header
is). It is checked in the controller, before any node starts, so that a
library that is missing, is not a shared library, is built for another
architecture, lacks an entry point or was built against another ABI is a
usage error with one clear line. The driver node calls it from C
(:func:`pseudonic._engine.cdriver_loop`); no Python runs per packet.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import platform
from dataclasses import dataclass
from pathlib import Path

from . import _engine
from .errors import DriverLoadError

ENTRY_POINTS = ("pnic_driver_open", "pnic_driver_interrupt", "pnic_driver_close")
OPTIONAL_ENTRY_POINTS = ("pnic_driver_idle",)
#: ELF e_machine of the architectures we build for.
_ELF_MACHINES = {"x86_64": 62, "aarch64": 183, "i686": 3, "armv7l": 40, "riscv64": 243, "ppc64le": 21, "s390x": 22}


def include_dir() -> Path:
    """Where ``pseudonic.h`` and ``pnic_layout.h`` are, for ``cc -I``."""
    return Path(__file__).parent / "_engine"


def reference_library() -> Path:
    """The reference C driver the package build made (``--driver c``)."""
    here = Path(__file__).parent / "drivers"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_e1000_c{suffix}"
        if path.is_file():
            return path
    raise DriverLoadError(f"the reference C driver is not built in {here}: reinstall pseudonic (pip install .)")


def looks_like_library(spec: str) -> bool:
    name = Path(spec).name
    return name.endswith(".so") or ".so." in name


def _check_elf(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        raise DriverLoadError(f"driver {str(path)!r} is not a shared library (no ELF header); build it with cc -shared")
    if head[16] != 3:  # ET_DYN
        raise DriverLoadError(f"driver {str(path)!r} is an ELF file but not a shared library; build it with -shared")
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    expected = _ELF_MACHINES.get(platform.machine())
    if expected is not None and machine != expected:
        raise DriverLoadError(
            f"driver {str(path)!r} is built for another architecture (ELF machine {machine}); "
            f"this machine is {platform.machine()}: rebuild it here"
        )


@dataclass(frozen=True)
class CDriver:
    """A checked C driver library: its path, its name, and its entry points' addresses."""

    path: Path
    name: str
    open: int
    interrupt: int
    close: int
    idle: int  # 0 when the driver has no idle entry point

    @classmethod
    def load(cls, spec: str, default_name: str | None = None) -> CDriver:
        path = Path(spec)
        if not path.is_file():
            raise DriverLoadError(f"driver library {spec!r} does not exist")
        _check_elf(path)
        try:
            lib = ctypes.CDLL(str(path.resolve()))
        except OSError as exc:
            raise DriverLoadError(f"driver library {spec!r} cannot be loaded: {exc}") from None
        missing = [name for name in ENTRY_POINTS if not hasattr(lib, name)]
        if missing:
            raise DriverLoadError(
                f"driver library {spec!r} lacks {', '.join(missing)}: a C driver exports "
                f"{', '.join(ENTRY_POINTS)} (see pseudonic.h)"
            )
        try:
            abi = ctypes.c_uint32.in_dll(lib, "pnic_driver_abi").value
        except ValueError:
            raise DriverLoadError(
                f"driver library {spec!r} lacks pnic_driver_abi: define "
                "const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI; (see pseudonic.h)"
            ) from None
        if abi != _engine.DRIVER_ABI:
            raise DriverLoadError(
                f"driver library {spec!r} was built against driver ABI {abi}; this pseudonic has ABI "
                f"{_engine.DRIVER_ABI}: rebuild it with this pseudonic's headers"
            )
        try:
            # an array of char: read from its address up to the NUL
            name = ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(lib, "pnic_driver_name")))[:64]
        except ValueError:
            name = b""
        label = name.decode(errors="replace") if name else (default_name or path.name)

        def address(symbol: str) -> int:
            return ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value or 0

        (idle_name,) = OPTIONAL_ENTRY_POINTS
        idle = address(idle_name) if hasattr(lib, idle_name) else 0
        # The library stays loaded for the life of the process (ctypes never unloads it), so
        # the addresses stay valid in the driver node, which is forked from this process.
        return cls(path, label, address(ENTRY_POINTS[0]), address(ENTRY_POINTS[1]), address(ENTRY_POINTS[2]), idle)
