"""What every node process does first: pin itself, tie its life to the controller's.

Nodes are processes, not threads (DESIGN.md section 2): like the paper's
separate OS nodes, a driver that crashes or hangs must not take the device
node, its records or the controller down.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import faulthandler
import os
import resource
import signal
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
#: prctl: the thread's name (comm), as ps and top show it
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
#: The signals that stop a run in order (the controller exits 128 + the signal's number); a node
#: takes the default action for TERM and HUP (it ends, and the controller reports which signal
#: ended it) and leaves INT to the controller.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (whoever owns it): what stale segments and namespaces are told by."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def available_cores() -> list[int]:
    """Cores this process may run on."""
    return sorted(os.sched_getaffinity(0))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def become_node(core: int, parent_pid: int, name: str = "") -> None:
    """Pin to ``core``; die with the controller; take no handler of the controller's; keep what it forks.

    A node is forked from the controller, so it starts with the controller's Python signal
    handlers: SIGTERM would raise KeyboardInterrupt inside a node (a traceback from pseudonic's
    own code) or wait until a C loop returns. A node takes TERM and HUP by their default action
    instead, and leaves Ctrl-C (INT) to the controller, which stops both nodes in order.
    """
    os.sched_setaffinity(0, {core})
    # A driver's crash is the run's report (signal, handler run, last packet), not a Python fault
    # dump on stderr as well (pytest, for one, turns faulthandler on in every process it forks).
    faulthandler.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signo in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the controller died before prctl took effect
        os._exit(1)
    # The node's own process group, so that the controller can end whatever the driver forks
    # even after the node is gone; and a subreaper, so that orphans of the driver's children
    # stay in the node's tree instead of moving to init.
    os.setpgid(0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if name:  # what ps and top show (15 bytes at most)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def run_delay_ns() -> int:
    """How long this thread has waited for a core while runnable, in all (the kernel's schedstat
    run_delay): what the machine took from a node. 0 where the kernel does not keep it."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def disturbance() -> dict[str, int]:
    """What the machine has taken from this thread so far: time waiting for a core while runnable
    (``run_delay_ns``), minor page faults (``minflt``), involuntary context switches (``nivcsw``)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return {"run_delay_ns": run_delay_ns(), "minflt": usage.ru_minflt, "nivcsw": usage.ru_nivcsw}


def record_disturbance(regs: Any, before: dict[str, int], after: dict[str, int] | None = None) -> None:
    """Write what the machine took from this node from ``before`` to ``after`` (now) into its registers,
    and whether it ran SCHED_FIFO (--rt)."""
    for key, value in (after or disturbance()).items():
        regs[key][0] = value - before[key]
    regs["rt"][0] = int(os.sched_getscheduler(0) == os.SCHED_FIFO)


def children(pid: int) -> list[int]:
    """The live children of ``pid``, from /proc (a thread or the process may end while we read)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def end_descendants() -> None:
    """Kill and reap every process this node's driver left (each run ends with nothing of it alive)."""
    for _ in range(2):  # a child may fork while we look: look again once they are stopped
        pids = descendants(os.getpid())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)


def end_group(pgid: int) -> None:
    """Kill what is left of a node's process group (what its driver forked), whether or not the node lives."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
