"""What every node process does first: pin itself, tie its life to the controller's.

Nodes are processes, not threads (DESIGN.md section 2): like the paper's
separate OS nodes, a driver that crashes or hangs must not take the device
node, its records or the controller down.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

PR_SET_PDEATHSIG = 1


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


def become_node(core: int, parent_pid: int) -> None:
    """Pin to ``core``; die with the controller; leave Ctrl-C to the controller."""
    os.sched_setaffinity(0, {core})
    # The controller turns Ctrl-C into an orderly stop of both nodes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the controller died before prctl took effect
        os._exit(1)
