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
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import _engine
from ..errors import DriverLoadError

ENTRY_POINTS = ("pnic_driver_open", "pnic_driver_interrupt", "pnic_driver_close")
OPTIONAL_ENTRY_POINTS = ("pnic_driver_idle", "pnic_driver_transmit")
#: ELF e_machine, as pyelftools names it, of the architectures we build for (platform.machine()).
_ELF_MACHINES = {
    "x86_64": "EM_X86_64",
    "aarch64": "EM_AARCH64",
    "i686": "EM_386",
    "armv7l": "EM_ARM",
    "riscv64": "EM_RISCV",
    "ppc64le": "EM_PPC64",
    "s390x": "EM_S390",
}
_ELF_MAGIC = b"\x7fELF"
_EI_NIDENT = 16
#: EI_CLASS -> word size, and the ELF header's size for each.
_ELF_CLASS_BITS = {1: 32, 2: 64}
_ELF_HEADER_SIZE = {32: 52, 64: 64}


def include_dir() -> Path:
    """Where ``pseudonic.h`` and ``pnic_layout.h`` are, for ``cc -I``."""
    return Path(__file__).parent.parent / "_engine"


#: the reference C driver of each device model, as the package build names it
REFERENCE_LIBRARIES = {"e1000": "_e1000_c", "virtio-net": "_virtio_net_c"}
#: pnic_driver_model's values (pnic_layout.h, PNIC_MODEL_*) by the models' names
MODEL_NAMES = {_engine.MODEL_E1000: "e1000", _engine.MODEL_VIRTIO_NET: "virtio-net"}
#: ABI 3 and 4 grew struct pnic_nic at its end only: a driver built for ABI 2 (e1000) or 3 runs unchanged
COMPATIBLE_ABIS = (2, 3, _engine.DRIVER_ABI)
#: virtio-net came with ABI 3
VIRTIO_ABI = 3


def reference_library(device: str = "e1000") -> Path:
    """The reference C driver of ``device`` the package build made (``--driver c``)."""
    here = Path(__file__).parent.parent / "drivers"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"{REFERENCE_LIBRARIES[device]}{suffix}"
        if path.is_file():
            return path
    raise DriverLoadError(f"the reference C driver is not built in {here}: reinstall pseudonic (pip install .)")


def looks_like_library(spec: str) -> bool:
    name = Path(spec).name
    return name.endswith(".so") or ".so." in name


def _refuse(label: str, why: str) -> DriverLoadError:
    return DriverLoadError(f"driver {label!r} {why}")


def _check_file(path: Path, label: str) -> None:
    if path.is_symlink() and not path.exists():
        raise _refuse(label, f"is a symbolic link to {os.readlink(path)!r}, which does not exist")
    if path.is_dir():
        raise _refuse(label, "is a directory: give the path of a .so file")
    if not path.exists():
        raise _refuse(label, "does not exist")
    # Opening a FIFO or a device would block or read something that is no library.
    if not path.is_file():
        raise _refuse(label, "is not a regular file: give the path of a .so file")


def _check_elf(f: BinaryIO, size: int, label: str) -> None:
    ident = f.read(_EI_NIDENT)
    if not (ident.startswith(_ELF_MAGIC) or _ELF_MAGIC.startswith(ident)):
        raise _refuse(label, "is not a shared library (no ELF header); build it with cc -shared")
    bits = _ELF_CLASS_BITS.get(ident[4]) if len(ident) > 4 else None
    header = _ELF_HEADER_SIZE[bits or 64]
    if size < header:
        of = f"a {bits}-bit ELF header" if bits else "an ELF header"
        raise _refuse(label, f"is not a complete ELF file ({size} bytes; {of} alone is {header} bytes): rebuild it")
    try:
        elf = ELFFile(f)
        if elf["e_type"] != "ET_DYN":
            raise _refuse(label, "is an ELF file but not a shared library; build it with -shared")
        machine = elf["e_machine"]
        expected = _ELF_MACHINES.get(platform.machine())
        if expected is not None and machine != expected:
            raise _refuse(
                label,
                f"is built for another architecture ({elf.get_machine_arch()}, {machine}); "
                f"this machine is {platform.machine()}: rebuild it here",
            )
        # The dynamic loader maps each PT_LOAD segment whole; a page past the end of the file
        # faults with SIGBUS when touched, which kills this process instead of raising. The
        # section header table is what a linker writes last, so a cut file loses it first.
        tables = [elf["e_phoff"] + elf["e_phnum"] * elf["e_phentsize"]]
        if elf["e_shoff"]:
            tables.append(elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"])
        need = max(tables)
        # pyelftools reads sections to describe some segments: only once both tables are whole.
        if need <= size:
            need = max([need, *(seg["p_offset"] + seg["p_filesz"] for seg in elf.iter_segments("PT_LOAD"))])
    except ELFError as exc:
        raise _refuse(label, f"is a damaged ELF file ({exc}): rebuild it") from None
    if need > size:
        raise _refuse(label, f"is truncated ({size} bytes, its headers need {need}): rebuild it")


def check_library(path: str | os.PathLike[str]) -> None:
    """Refuse, with one line, a driver library that cannot be loaded safely; load nothing.

    Everything here reads the file without mapping it, so a process may call it and
    leave the loading (:meth:`CDriver.load`) to another.
    """
    label = os.fspath(path)
    file = Path(path)
    _check_file(file, label)
    try:
        with file.open("rb") as f:
            _check_elf(f, os.fstat(f.fileno()).st_size, label)
    except OSError as exc:
        raise _refuse(label, f"cannot be read: {exc.strerror}") from None


@dataclass(frozen=True)
class CDriver:
    """A checked C driver library: its path, its name, and its entry points' addresses."""

    path: Path
    name: str
    open: int
    interrupt: int
    close: int
    idle: int  # 0 when the driver has no idle entry point
    #: the device model it drives (pnic_driver_model; e1000 when the library does not say)
    model: str = "e1000"
    #: pnic_driver_transmit's address; 0 when the driver has no transmit entry point
    transmit: int = 0

    @classmethod
    def load(cls, spec: str, default_name: str | None = None) -> CDriver:
        check_library(spec)
        path = Path(spec)
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
        if abi not in COMPATIBLE_ABIS:
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

        idle_name, transmit_name = OPTIONAL_ENTRY_POINTS
        idle = address(idle_name) if hasattr(lib, idle_name) else 0
        transmit = address(transmit_name) if hasattr(lib, transmit_name) else 0
        try:
            number = ctypes.c_uint32.in_dll(lib, "pnic_driver_model").value
        except ValueError:
            number = _engine.MODEL_E1000
        if number not in MODEL_NAMES:
            raise DriverLoadError(
                f"driver library {spec!r} says pnic_driver_model = {number}, which is no device model: give "
                "PNIC_MODEL_E1000 or PNIC_MODEL_VIRTIO_NET (see pnic_layout.h)"
            )
        model = MODEL_NAMES[number]
        if model != "e1000" and abi < VIRTIO_ABI:
            raise DriverLoadError(
                f"driver library {spec!r} drives {model} but was built against driver ABI {abi}; {model} needs "
                f"ABI {VIRTIO_ABI} or later: rebuild it with this pseudonic's headers"
            )
        # The library stays loaded for the life of the process (ctypes never unloads it), so
        # the addresses stay valid in the driver node, which is forked from this process.
        return cls(
            path,
            label,
            address(ENTRY_POINTS[0]),
            address(ENTRY_POINTS[1]),
            address(ENTRY_POINTS[2]),
            idle,
            model,
            transmit if abi >= _engine.DRIVER_ABI else 0,
        )
