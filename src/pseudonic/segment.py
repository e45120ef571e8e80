"""The named shared-memory segment of one run: create, map, remove.

Named ``pseudonic-<controller pid>-<token>`` under /dev/shm so that a
segment can always be traced to the run that made it. The controller removes
it at the end of every run (finally); if the controller itself is killed
with SIGKILL, the next run's :func:`sweep_stale` removes segments whose
controller no longer exists.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import resource
import secrets
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from .errors import MachineLimitError
from .node import pid_alive

SHM_DIR = Path("/dev/shm")
PREFIX = "pseudonic-"

# At most 7 digits: Linux caps kernel.pid_max at 4194304, and a longer "pid" in a name made by
# anyone else must not reach os.kill, which refuses numbers past a C int.
_NAME = re.compile(re.escape(PREFIX) + r"([0-9]{1,7})-[^-]+")
_MIB = 1 << 20


class StaleSegmentWarning(UserWarning):
    """A stale-looking entry in /dev/shm was left where it is: not ours, or not removable."""


# Once per process: the entries stay until someone removes them, so every later run would repeat it.
_warned = False


def existing() -> list[str]:
    """The names of the pseudonic segments that exist now, whoever made them."""
    return sorted(p.name for p in SHM_DIR.glob(PREFIX + "*")) if SHM_DIR.is_dir() else []


def accountable(mine: set[int]) -> list[str]:
    """Segments that are the business of the process tree ``mine`` (pids): all but those another live
    process made -- a second run or test session on the machine makes and removes its own."""

    def someone_elses(name: str) -> bool:
        try:
            creator = int(name.split("-")[1])
        except (IndexError, ValueError):
            return False
        return creator not in mine and pid_alive(creator)

    return [name for name in existing() if not someone_elses(name)]


def sweep_stale() -> list[str]:
    """Remove segments left by controllers that no longer run; return their names. Never raises.

    Only this user's regular files are removed. Whatever else looks stale (another user's
    segment, a directory of that name, a file that cannot be unlinked) stays, with one warning
    per process: any local user can put such entries in /dev/shm, and no run may depend on them.
    """
    global _warned
    removed: list[str] = []
    left: list[str] = []
    try:
        names = existing()
    except OSError:
        # Unreadable now (no descriptor left, say): sweeping waits for a later run; creating
        # the segment reports the cause itself if it persists.
        names = []
    for name in names:
        match = _NAME.fullmatch(name)
        if match is None or pid_alive(int(match[1])):
            continue
        entry = SHM_DIR / name
        try:
            st = entry.lstat()
            if not stat.S_ISREG(st.st_mode):
                left.append(f"{name} (not a regular file)")
            elif st.st_uid != os.geteuid():
                left.append(f"{name} (owned by uid {st.st_uid})")
            else:
                entry.unlink()
                removed.append(name)
        except FileNotFoundError:
            continue  # its owner or another run's sweep was first
        except OSError as exc:
            left.append(f"{name} ({exc.strerror or exc})")
    if left and not _warned:
        _warned = True
        warnings.warn(
            f"stale entries left in {SHM_DIR}, not this run's to remove: {', '.join(left)};"
            " remove them by hand if no run uses them",
            StaleSegmentWarning,
            stacklevel=2,
        )
    return removed


def _mib(nbytes: int) -> str:
    return f"{nbytes / _MIB:.1f} MiB"


def _limit_message(exc: OSError, size: int) -> str | None:
    """One line naming what the machine lacks and what to change; None if the machine is not to blame."""
    if exc.errno == errno.ENOSPC:
        fs = os.statvfs(SHM_DIR)
        if fs.f_favail == 0:
            return (
                f"no inodes left in {SHM_DIR} (all {fs.f_files} in use): remove files there"
                f" or remount it with more (mount -o remount,nr_inodes=N {SHM_DIR})"
            )
        return (
            f"not enough space in {SHM_DIR}: the run needs {_mib(size)}, {_mib(fs.f_bavail * fs.f_frsize)} free;"
            f" free some there or remount it larger (mount -o remount,size=N {SHM_DIR})"
        )
    if exc.errno == errno.EROFS:
        return f"{SHM_DIR} is read-only: the run needs to create its segment there; remount it read-write"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"no permission to create files in {SHM_DIR}: the run needs to create its segment there;"
            " make it writable by this user (mode 1777, as /dev/shm usually is)"
        )
    if exc.errno == errno.EMFILE:
        return f"too many open files: raise ulimit -n (now {resource.getrlimit(resource.RLIMIT_NOFILE)[0]})"
    if exc.errno == errno.ENFILE:
        return "too many open files on this machine (fs.file-max reached): close some or raise fs.file-max"
    return None


@contextlib.contextmanager
def _machine_limits(size: int) -> Iterator[None]:
    """Turn an error the machine is to blame for into a :class:`MachineLimitError` (one line, exit 2)."""
    try:
        yield
    except OSError as exc:
        msg = _limit_message(exc, size)
        if msg is None:
            raise
        raise MachineLimitError(msg) from exc


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
            raise MachineLimitError(f"{SHM_DIR} is not available: pseudonic needs POSIX shared memory (a tmpfs there)")
        sweep_stale()
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        path = SHM_DIR / name
        with _machine_limits(size):
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                try:
                    os.ftruncate(fd, size)
                    # Reserve every page now: on a full /dev/shm a sparse segment lets whichever
                    # process first touches a missing page die of SIGBUS, with no message.
                    os.posix_fallocate(fd, 0, size)
                except BaseException:
                    os.close(fd)
                    raise
                seg = cls(name, fd, size, owner=True)
            except BaseException:
                # Removed before the message is made, so the free space it reports is not ours.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                raise
        return seg

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
