"""The named shared-memory segment of one run: create, map, remove.

Named ``pseudonic-<controller pid>-<token>`` under /dev/shm so that a
segment can always be traced to the run that made it. The controller removes
it at the end of every run (finally); if the controller itself is killed
with SIGKILL, the next run's :func:`sweep_stale` removes segments whose
controller no longer exists.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
from pathlib import Path

from .node import pid_alive

SHM_DIR = Path("/dev/shm")
PREFIX = "pseudonic-"


def existing() -> list[str]:
    """The names of the pseudonic segments that exist now, whoever made them."""
    return sorted(p.name for p in SHM_DIR.glob(PREFIX + "*")) if SHM_DIR.is_dir() else []


def sweep_stale() -> list[str]:
    """Remove segments left by controllers that no longer run; return their names."""
    removed: list[str] = []
    for name in existing():
        entry = SHM_DIR / name
        parts = name.split("-")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        if not pid_alive(int(parts[1])):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry.name)
    return removed


class Segment:
    """One named shared-memory segment, mapped read-write.

    Children forked after :meth:`create` inherit the mapping; other
    processes may :meth:`attach` by name while the run lasts.
    """

    def __init__(self, name: str, fd: int, size: int, owner: bool) -> None:
        self.name = name
        self.size = size
        self.owner = owner
        try:
            self.map: mmap.mmap | None = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)

    @property
    def path(self) -> Path:
        return SHM_DIR / self.name

    @classmethod
    def create(cls, size: int) -> Segment:
        if not SHM_DIR.is_dir():
            raise OSError("/dev/shm is not available: pseudonic needs POSIX shared memory")
        sweep_stale()
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(SHM_DIR / name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            os.unlink(SHM_DIR / name)
            raise
        try:
            return cls(name, fd, size, owner=True)
        except BaseException:
            os.unlink(SHM_DIR / name)
            raise

    @classmethod
    def attach(cls, name: str) -> Segment:
        fd = os.open(SHM_DIR / name, os.O_RDWR)
        size = os.fstat(fd).st_size
        return cls(name, fd, size, owner=False)

    def close(self) -> None:
        """Unmap; the owner also removes the name. Safe to call twice."""
        if self.map is not None:
            # If a numpy view still exports the buffer, the mapping goes with the
            # process; the name is removed below all the same.
            with contextlib.suppress(BufferError):
                self.map.close()
            self.map = None
        if self.owner:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.owner = False

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
