"""Real-time scheduling of the nodes (``--rt``): SCHED_FIFO, locked memory, isolated cores.

A node spins on its own core; under the default policy (SCHED_OTHER) any other runnable task
the kernel puts on that core takes turns with it, and a page fault in the middle of a run costs
microseconds. With ``--rt`` each node, once pinned, becomes SCHED_FIFO (it runs until it blocks
or something of higher priority wants the core; man sched(7)) and locks its memory
(mlockall(MCL_CURRENT | MCL_FUTURE), man mlockall(2)), so that no page is faulted in or out
during the run.

What that does not buy, and what this module reports instead of hiding:

- the timer tick and other tasks still visit a core that is not isolated (``isolation``):
  isolcpus= keeps tasks off it, nohz_full= stops the tick while one task runs, rcu_nocbs= moves
  RCU callbacks away (Documentation/admin-guide/kernel-parameters.txt, Documentation/timers/no_hz.rst);
- real-time throttling may stop a SCHED_FIFO spinner for part of every period
  (``rt_throttle_note``; Documentation/scheduler/sched-rt-group.rst);
- a hypervisor still steals time from a vCPU (pseudonic.machine.CoreMeter measures it).

Rules: ``check_rt`` changes nothing lasting; ``become_rt`` is all or nothing (a node is either
SCHED_FIFO with its memory locked, or as it was); every refusal is one line saying what to change.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from pathlib import Path
from typing import Any

from . import machine
from .errors import ConfigError, RealtimeError
from .node import _libc

#: SCHED_FIFO priority of both nodes. The kernel runs its threaded interrupt handlers at SCHED_FIFO
#: 50 (kernel/irq/manage.c, setup_irq_thread() -> sched_set_fifo(), MAX_RT_PRIO / 2; on a PREEMPT_RT
#: kernel that is every device interrupt): a node above them that spins would keep the interrupts
#: routed to its core from ever being handled. 40 stays below them and leaves 41-49 free for
#: whatever a user wants to preempt the nodes.
RT_PRIORITY = 40

PROC_SELF_STATUS = Path("/proc/self/status")

#: capability bits (include/uapi/linux/capability.h)
CAP_IPC_LOCK = 14
CAP_SYS_NICE = 23

#: mlockall flags: 1 and 2 on most architectures, 0x2000 and 0x4000 on alpha, powerpc and sparc
#: (arch/*/include/uapi/asm/mman.h); Python's os module has no mlockall.
if platform.machine().startswith(("ppc", "powerpc", "sparc", "alpha")):
    MCL_CURRENT, MCL_FUTURE = 0x2000, 0x4000
else:
    MCL_CURRENT, MCL_FUTURE = 1, 2

_MIB = 1 << 20


def _status_field(name: str) -> str | None:
    try:
        text = PROC_SELF_STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


def _has_capability(bit: int) -> bool:
    """Whether this process holds ``bit`` in its effective set (as root without /proc: assumed held)."""
    value = _status_field("CapEff")
    if value is None:
        return os.geteuid() == 0
    try:
        return bool(int(value, 16) >> bit & 1)
    except ValueError:
        return os.geteuid() == 0


def _check_priority(priority: int) -> None:
    low, high = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not low <= priority <= high:
        raise ConfigError(f"real-time priority {priority} is out of range: give {low} to {high}")


def _fifo_refusal(priority: int) -> str:
    """Why SCHED_FIFO at ``priority`` was refused (EPERM), and what to change (man sched(7), "Privileges")."""
    if _has_capability(CAP_SYS_NICE):
        # Privileged and still refused: with CONFIG_RT_GROUP_SCHED a cgroup whose cpu.rt_runtime_us is 0
        # (the default for a new group) may hold no RT task (sched-rt-group.rst, section 2.3).
        return (
            "SCHED_FIFO is not permitted although this process has CAP_SYS_NICE: its cgroup gives real-time "
            "tasks no runtime (cpu.rt_runtime_us is 0; Documentation/scheduler/sched-rt-group.rst): give the "
            "cgroup RT runtime or run outside it"
        )
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return (
        f"SCHED_FIFO at priority {priority} is not permitted (rtprio limit {soft}): run as root, or give the "
        f"user an rtprio limit of at least {priority} (ulimit -r {priority} / limits.conf) or CAP_SYS_NICE"
    )


def _mlock_refusal() -> str | None:
    """Why mlockall(MCL_CURRENT | MCL_FUTURE) will not do, or None when it will.

    Without CAP_IPC_LOCK, the kernel refuses MCL_CURRENT when the process maps more than
    RLIMIT_MEMLOCK (mm/mlock.c), and under MCL_FUTURE every later mapping past the limit fails:
    a node would die on its next allocation. So only CAP_IPC_LOCK or an unlimited limit will do.
    """
    if _has_capability(CAP_IPC_LOCK):
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = _status_field("VmSize")
    maps = f", and this process maps {int(mapped.split()[0]) * 1024 / _MIB:.0f} MiB" if mapped else ""
    return (
        f"mlockall is not permitted beyond the memlock limit of {soft / _MIB:.1f} MiB{maps} (every later mapping "
        "would count too): run as root, or raise the limit (ulimit -l unlimited / limits.conf memlock) or give "
        "CAP_IPC_LOCK"
    )


def _restore(policy: int, param: Any) -> None:
    try:
        os.sched_setscheduler(0, policy, param)
    except OSError as exc:  # going back down to the old policy is always permitted; this is not expected
        raise RealtimeError(f"could not restore the scheduling policy {policy}: {exc.strerror}") from None


def check_rt(priority: int = RT_PRIORITY) -> str | None:
    """None when this process may make itself SCHED_FIFO at ``priority`` and lock its memory; else a one-line
    reason that says what to change.

    SCHED_FIFO is tried for real (capabilities, rtprio limits and cgroups all have a say) on the calling
    thread and the old policy put back at once; mlockall is judged from CAP_IPC_LOCK and RLIMIT_MEMLOCK,
    not tried, since trying would fault in the whole process. A child forked afterwards (a node) inherits
    the same rights.
    """
    if not hasattr(os, "sched_setscheduler"):
        return "SCHED_FIFO is not available on this platform (Linux only)"
    _check_priority(priority)
    reasons = []
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    if policy & ~os.SCHED_RESET_ON_FORK != os.SCHED_FIFO or param.sched_priority < priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except PermissionError:
            reasons.append(_fifo_refusal(priority))
        except OSError as exc:
            reasons.append(f"SCHED_FIFO at priority {priority} failed: {exc.strerror}")
        else:
            _restore(policy, param)
    mlock = _mlock_refusal()
    if mlock is not None:
        reasons.append(mlock)
    return "; and ".join(reasons) or None


def become_rt(priority: int = RT_PRIORITY) -> None:
    """Make the calling thread SCHED_FIFO at ``priority`` and lock all its memory, now and future.

    For a node to call after pinning itself (pseudonic.node.become_node): SCHED_FIFO on a core of its
    own. All or nothing: when mlockall fails the old policy is put back before RealtimeError is raised,
    so that a caller going on without real time (``--rt=try``) goes on exactly as before.
    """
    if not hasattr(os, "sched_setscheduler"):
        raise RealtimeError("SCHED_FIFO is not available on this platform (Linux only)")
    _check_priority(priority)
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        raise RealtimeError(_fifo_refusal(priority)) from None
    except OSError as exc:
        raise RealtimeError(f"SCHED_FIFO at priority {priority} failed: {exc.strerror}") from None
    if _libc().mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        _restore(policy, param)
        raise RealtimeError(_mlock_refusal() or f"mlockall(MCL_CURRENT | MCL_FUTURE) failed: {os.strerror(err)}")


def _not_isolated(isolated: bool | None) -> str:
    return "is not isolated" if isolated is False else "may not be isolated (the kernel does not say)"


def isolation(core: int) -> dict[str, Any]:
    """Whether ``core`` is kept apart for a node: {"core", "isolated", "nohz_full", "advice"}.

    ``isolated``: in isolcpus= (/sys/devices/system/cpu/isolated), so the scheduler puts no other task
    there; ``nohz_full``: in nohz_full=, so the timer tick stops while one task runs there. Each is None
    when the kernel does not say (nohz_full exists only with CONFIG_NO_HZ_FULL). ``advice`` is one line
    saying what to boot with, None when the core is both. Cores isolated by a cgroup v2 cpuset partition
    instead are not listed by the kernel there, and show as not isolated.
    """
    isolated_list, tickless_list = machine.isolated_cores(), machine.nohz_full_cores()
    isolated = core in isolated_list if isolated_list is not None else None
    tickless = core in tickless_list if tickless_list is not None else None
    advice: str | None = None
    if tickless is None:  # drivers/base/cpu.c lists nohz_full only under CONFIG_NO_HZ_FULL
        if not isolated:
            advice = (
                f"core {core} {_not_isolated(isolated)}: boot with isolcpus={core} rcu_nocbs={core} so that other "
                "tasks keep off it (the timer tick stays: this kernel has no nohz_full, CONFIG_NO_HZ_FULL)"
            )
        else:
            advice = (
                f"core {core} is isolated but takes the timer tick: this kernel has no nohz_full (CONFIG_NO_HZ_FULL)"
            )
    elif not isolated:
        advice = (
            f"core {core} {_not_isolated(isolated)}: boot with isolcpus={core} nohz_full={core} rcu_nocbs={core} "
            "so that other tasks and the timer tick keep off it"
        )
    elif not tickless:
        advice = (
            f"core {core} is isolated but takes the timer tick: boot with nohz_full={core} rcu_nocbs={core} as well"
        )
    return {"core": core, "isolated": isolated, "nohz_full": tickless, "advice": advice}


#: Linux 6.12 replaced RT throttling by the fair deadline server unless CONFIG_RT_GROUP_SCHED
#: (commit 5f6bd380c7bd, "sched/rt: Remove default bandwidth control")
_FAIR_SERVER_KERNEL = (6, 12)


def rt_throttle_note(duration_ns: int) -> str | None:
    """A one-line note when RT throttling may stop a SCHED_FIFO node that spins through a run of
    ``duration_ns``; None when it cannot.

    The rule (Documentation/scheduler/sched-rt-group.rst, kernel/sched/rt.c): on each CPU, RT tasks may
    run sched_rt_runtime_us of every sched_rt_period_us; once they have, they are stopped until the period
    ends, and the budget is renewed at each period boundary, which a run does not choose. So a spinner
    whose run lasts d, with runtime r below the period:

    - d <= r: never throttled (its core's budget is not shared with another RT task there);
    - r < d <= 2r: throttled or not depending on where the period boundaries fall;
    - d > 2r: throttled at least once (if the first boundary comes more than r into the run, the first
      period throttles it; if within r, more than r of the run is left, and the next period, longer
      than r, holds more than r of it).

    No throttling at all when runtime is -1 or not below the period, nor on Linux 6.12 and later built
    without CONFIG_RT_GROUP_SCHED: there the fair deadline server instead gives normal tasks waiting on
    the core up to 50 ms of each second (/sys/kernel/debug/sched/fair_server), which isolation() keeps
    away. Kernels before 5.10 share runtime between CPUs (RT_RUNTIME_SHARE) and may throttle later.
    Turning throttling off lets a spinner starve whatever else must run on its core, per-CPU kernel
    threads included (RCU stall warnings): isolate the core first.
    """
    runtime, period = machine.rt_bandwidth()
    if runtime is None or period is None:
        return (
            "RT throttling is unknown (kernel.sched_rt_runtime_us cannot be read): a SCHED_FIFO node may be "
            "stopped for part of every period"
        )
    if runtime < 0 or runtime >= period:
        return None
    kernel = machine.kernel_version()
    group_sched = machine.rt_group_sched()
    if kernel is not None and kernel >= _FAIR_SERVER_KERNEL and group_sched is False:
        return None
    runtime_ns = runtime * 1000
    if duration_ns <= runtime_ns:
        return None
    settings = f"kernel.sched_rt_runtime_us={runtime} of sched_rt_period_us={period}"
    fix = "sysctl -w kernel.sched_rt_runtime_us=-1 turns it off (Documentation/scheduler/sched-rt-group.rst)"
    # 6.12 and later throttle only with CONFIG_RT_GROUP_SCHED, which nothing here could confirm or deny
    unsure = kernel is not None and kernel >= _FAIR_SERVER_KERNEL and group_sched is None
    on = "on (if this kernel has CONFIG_RT_GROUP_SCHED)" if unsure else "on"
    if runtime == 0:
        return (
            f"RT throttling is {on} and gives real-time tasks no time ({settings}): a SCHED_FIFO node is stopped "
            f"from the start; {fix}"
        )
    verb = "will" if duration_ns > 2 * runtime_ns and not unsure else "may"
    return (
        f"RT throttling is {on} ({settings}): a SCHED_FIFO node spinning through this {duration_ns / 1e9:.3g} s run "
        f"{verb} be stopped for {(period - runtime) / 1000:g} ms once it has run {runtime / 1000:g} ms of a "
        f"{period / 1000:g} ms period; {fix}"
    )
