"""A run's claim on its two cores: one run per core, machine-wide, for the run's whole life.

Two runs on the same cores measure each other, not the driver (66 % each, or
15 handler runs for 1000 interrupts), and both would exit 0. So a run holds
an exclusive ``flock`` on one lock file per core; the kernel drops it when the
holder dies, however it dies, so a killed run never leaves a core claimed.
The file says who holds it (pid and command line) for the refusal message.
Claims nest within one process (``bench`` and ``check-driver`` claim once
for all their runs; each run's own claim is then already held).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import CoresBusyError

#: Where the lock files live: the system's lock directory, shared by every user, else the temp directory.
LOCK_DIRS = (Path("/run/lock"), Path(tempfile.gettempdir()))

_held: dict[int, tuple[int, int]] = {}  # core -> (fd, depth), for this process


def lock_dir() -> Path:
    for d in LOCK_DIRS:
        if d.is_dir() and os.access(d, os.W_OK):
            return d
    return LOCK_DIRS[-1]


def lock_path(core: int) -> Path:
    return lock_dir() / f"pseudonic-core-{core}.lock"


def holder(core: int) -> str:
    """Who holds ``core``, as its lock file says ("pid 1234: pseudonic run ..."), or "" if unknown."""
    try:
        return lock_path(core).read_text().strip()
    except OSError:
        return ""


def _open(core: int) -> int:
    path = lock_path(core)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # another user's file: lock it all the same
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)  # so that another user's run can claim the core after us
    return fd


def _describe_self() -> str:
    return f"pid {os.getpid()}: " + " ".join(["pseudonic" if a.endswith("__main__.py") else a for a in sys.argv])[:200]


@contextlib.contextmanager
def claim(cores: Iterable[int], *, wait: bool = False) -> Iterator[None]:
    """Hold ``cores`` until the block ends; raise CoresBusyError if another run holds one (or wait for it)."""
    taken: list[int] = []
    try:
        for core in sorted(set(cores)):
            if core in _held:
                fd, depth = _held[core]
                _held[core] = (fd, depth + 1)
                taken.append(core)
                continue
            fd = _open(core)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                who = holder(core) or "a process that did not say who it is"
                raise CoresBusyError(
                    f"core {core} is in use by another pseudonic run ({who}): two runs on one core measure each "
                    "other; wait for it to end, pick other cores (--device-core/--driver-core), or pass --wait"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, (_describe_self() + "\n").encode(), 0)
            _held[core] = (fd, 1)
            taken.append(core)
        yield
    finally:
        for core in taken:
            fd, depth = _held[core]
            if depth > 1:
                _held[core] = (fd, depth - 1)
            else:
                del _held[core]
                os.close(fd)  # the lock goes with the last descriptor of this open file (nodes have exited)
