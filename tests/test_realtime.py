"""pseudonic.realtime: SCHED_FIFO and locked memory for the nodes, isolated cores, RT throttling.

Anything that changes this process's scheduling or locks its memory runs in a forked child that
reports back through a pipe and is reaped before the test ends; the tests' own process keeps its
policy. Refusals are provoked by a child that gives up its rights (uid nobody, low rlimits).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pseudonic import machine, realtime
from pseudonic.errors import ConfigError, RealtimeError

NOBODY = 65534
MEMLOCK_SMALL = 64 * 1024

#: root with CAP_SYS_NICE and CAP_IPC_LOCK (a container's root may lack them)
ROOT = os.geteuid() == 0 and all(realtime._has_capability(c) for c in (realtime.CAP_SYS_NICE, realtime.CAP_IPC_LOCK))
needs_root = pytest.mark.skipif(
    not ROOT,
    reason="needs root with CAP_SYS_NICE and CAP_IPC_LOCK: SCHED_FIFO, mlockall, a uid change and dropping a "
    "capability are not permitted otherwise",
)


def in_child(body: Callable[[], Any]) -> Any:
    """Run ``body`` in a forked child and return what it returned (JSON); the child is reaped here.

    A child that raised re-raises here as AssertionError with its traceback.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running any of pytest's exit handlers
        os.close(read_fd)
        code = 0
        try:
            payload = json.dumps({"ok": body()})
        except BaseException:
            payload, code = json.dumps({"error": traceback.format_exc()}), 1
        with os.fdopen(write_fd, "w") as out:
            out.write(payload)
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as report:
        text = report.read()
    _, status = os.waitpid(pid, 0)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: nothing of the child is left behind
    answer = json.loads(text)
    assert "error" not in answer, answer.get("error")
    assert os.waitstatus_to_exitcode(status) == 0
    return answer["ok"]


def become_nobody() -> None:
    """In a child: give up the right to SCHED_FIFO, as a user without an rtprio limit.

    The limit is lowered, never raised: root in a container may lack CAP_SYS_RESOURCE.
    """
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)  # every uid non-zero: the kernel clears the effective capabilities


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def lose_memory_locking() -> None:
    """In a child: keep SCHED_FIFO (CAP_SYS_NICE), lose CAP_IPC_LOCK, and lock at most 64 KiB (capget(2))."""
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (MEMLOCK_SMALL, MEMLOCK_SMALL))
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    assert libc.capget(ctypes.byref(header), data) == 0, os.strerror(ctypes.get_errno())
    word, bit = divmod(realtime.CAP_IPC_LOCK, 32)
    data[word].effective &= ~(1 << bit)
    data[word].permitted &= ~(1 << bit)
    assert libc.capset(ctypes.byref(header), data) == 0, os.strerror(ctypes.get_errno())


def policy() -> list[int]:
    return [os.sched_getscheduler(0), os.sched_getparam(0).sched_priority]


def locked_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError("/proc/self/status has no VmLck")


# ---------------------------------------------------------------------------- the priority


def test_rt_priority_stays_below_the_kernels_threaded_interrupt_handlers() -> None:
    assert os.sched_get_priority_min(os.SCHED_FIFO) <= realtime.RT_PRIORITY < 50


def test_a_priority_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        realtime.check_rt(0)
    with pytest.raises(ConfigError, match="out of range"):
        realtime.become_rt(100)


# ---------------------------------------------------------------------------- check_rt


@needs_root
def test_check_rt_as_root_permits() -> None:
    assert realtime.check_rt() is None


def test_check_rt_changes_nothing_lasting() -> None:
    before = policy()
    realtime.check_rt()
    assert policy() == before


@needs_root
def test_check_rt_refused_says_what_to_do() -> None:
    def body() -> str | None:
        become_nobody()
        return realtime.check_rt()

    reason = in_child(body)
    assert reason.startswith(f"SCHED_FIFO at priority {realtime.RT_PRIORITY} is not permitted (rtprio limit 0)")
    assert f"ulimit -r {realtime.RT_PRIORITY}" in reason and "CAP_SYS_NICE" in reason and "root" in reason
    assert "\n" not in reason


@needs_root
def test_check_rt_refuses_mlockall_under_a_memlock_limit() -> None:
    def body() -> str | None:
        lose_memory_locking()
        return realtime.check_rt()

    reason = in_child(body)
    assert reason.startswith("mlockall is not permitted beyond the memlock limit of 0.1 MiB")
    assert "ulimit -l unlimited" in reason and "CAP_IPC_LOCK" in reason and "\n" not in reason


# ---------------------------------------------------------------------------- become_rt


@needs_root
def test_become_rt_makes_the_caller_sched_fifo_with_its_memory_locked() -> None:
    def body() -> dict[str, Any]:
        realtime.become_rt()
        return {"policy": policy(), "locked_kib": locked_kib()}

    after = in_child(body)
    assert after["policy"] == [os.SCHED_FIFO, realtime.RT_PRIORITY]
    assert after["locked_kib"] > 0
    assert os.sched_getscheduler(0) != os.SCHED_FIFO  # the tests' own process is as it was


@needs_root
def test_become_rt_refused_raises_one_line_and_changes_nothing() -> None:
    def body() -> dict[str, Any]:
        become_nobody()
        before = policy()
        try:
            realtime.become_rt()
        except RealtimeError as exc:
            return {"message": str(exc), "same": policy() == before, "locked_kib": locked_kib()}
        raise AssertionError("become_rt did not refuse")

    refused = in_child(body)
    assert refused["message"].startswith("SCHED_FIFO at priority")
    assert "\n" not in refused["message"]
    assert refused["same"] and refused["locked_kib"] == 0


@needs_root
def test_become_rt_is_all_or_nothing_when_mlockall_fails() -> None:
    def body() -> dict[str, Any]:
        lose_memory_locking()  # SCHED_FIFO would succeed, mlockall cannot
        before = policy()
        try:
            realtime.become_rt()
        except RealtimeError as exc:
            return {"message": str(exc), "same": policy() == before}
        raise AssertionError("become_rt did not refuse")

    refused = in_child(body)
    assert refused["message"].startswith("mlockall is not permitted")
    assert refused["same"]  # SCHED_FIFO was taken back


# ---------------------------------------------------------------------------- isolation


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None, str | None], None]:
    """Write the kernel's isolated and nohz_full lists (None: the file is absent)."""

    def write(isolated: str | None, nohz_full: str | None) -> None:
        for name, text in (("ISOLATED", isolated), ("NOHZ_FULL", nohz_full)):
            path = tmp_path / name.lower()
            path.unlink(missing_ok=True)
            if text is not None:
                path.write_text(text + "\n")
            monkeypatch.setattr(machine, name, path)

    return write


def test_an_isolated_tickless_core_needs_no_advice(sysfs: Callable[[str | None, str | None], None]) -> None:
    sysfs("1-3", "1-3")
    assert realtime.isolation(2) == {"core": 2, "isolated": True, "nohz_full": True, "advice": None}


def test_a_shared_core_is_told_what_to_boot_with(sysfs: Callable[[str | None, str | None], None]) -> None:
    sysfs("", "")
    assert realtime.isolation(1) == {
        "core": 1,
        "isolated": False,
        "nohz_full": False,
        "advice": "core 1 is not isolated: boot with isolcpus=1 nohz_full=1 rcu_nocbs=1 so that other tasks and "
        "the timer tick keep off it",
    }


def test_an_isolated_core_with_the_tick_is_told_about_nohz_full(
    sysfs: Callable[[str | None, str | None], None],
) -> None:
    sysfs("1", "")
    advice = realtime.isolation(1)["advice"]
    assert advice == "core 1 is isolated but takes the timer tick: boot with nohz_full=1 rcu_nocbs=1 as well"


def test_a_kernel_without_nohz_full_is_named(sysfs: Callable[[str | None, str | None], None]) -> None:
    sysfs("", None)
    found = realtime.isolation(0)
    assert found["nohz_full"] is None and found["isolated"] is False
    assert "isolcpus=0" in found["advice"] and "CONFIG_NO_HZ_FULL" in found["advice"]
    assert "nohz_full=0" not in found["advice"]  # not advice this kernel cannot follow


def test_isolation_the_kernel_does_not_state_is_unknown(sysfs: Callable[[str | None, str | None], None]) -> None:
    sysfs(None, "")
    found = realtime.isolation(0)
    assert found["isolated"] is None and "may not be isolated" in found["advice"]


# ---------------------------------------------------------------------------- RT throttling

MS = 1_000_000  # ns


@pytest.fixture
def throttling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set sched_rt_runtime_us / sched_rt_period_us (None: unreadable), the kernel version, RT_GROUP_SCHED."""

    def set_(
        runtime: int | None,
        period: int | None = 1_000_000,
        kernel: tuple[int, int] = (5, 15),
        group: bool | None = True,
    ) -> None:
        for name, value in (("RT_RUNTIME", runtime), ("RT_PERIOD", period)):
            path = tmp_path / name.lower()
            path.unlink(missing_ok=True)
            if value is not None:
                path.write_text(f"{value}\n")
            monkeypatch.setattr(machine, name, path)
        monkeypatch.setattr(machine, "kernel_version", lambda: kernel)
        monkeypatch.setattr(machine, "rt_group_sched", lambda: group)

    return set_


def test_no_note_when_throttling_is_off(throttling: Callable[..., None]) -> None:
    throttling(-1)
    assert realtime.rt_throttle_note(3_600_000 * MS) is None
    throttling(1_000_000)  # runtime equal to the period: RT may use all of it
    assert realtime.rt_throttle_note(3_600_000 * MS) is None


def test_a_run_no_longer_than_the_runtime_is_never_throttled(throttling: Callable[..., None]) -> None:
    throttling(950_000)
    assert realtime.rt_throttle_note(500 * MS) is None
    assert realtime.rt_throttle_note(950 * MS) is None


def test_a_run_up_to_twice_the_runtime_may_be_throttled(throttling: Callable[..., None]) -> None:
    throttling(950_000)
    note = realtime.rt_throttle_note(1500 * MS)
    assert note is not None and "1.5 s run may be stopped for 50 ms" in note
    assert "kernel.sched_rt_runtime_us=950000 of sched_rt_period_us=1000000" in note
    assert "sysctl -w kernel.sched_rt_runtime_us=-1" in note and "\n" not in note
    assert " may " in (realtime.rt_throttle_note(1900 * MS) or "")


def test_a_run_longer_than_twice_the_runtime_will_be_throttled(throttling: Callable[..., None]) -> None:
    throttling(950_000)
    assert "will be stopped for 50 ms once it has run 950 ms of a 1000 ms period" in (
        realtime.rt_throttle_note(1901 * MS) or ""
    )


def test_no_runtime_at_all(throttling: Callable[..., None]) -> None:
    throttling(0)
    assert "no time" in (realtime.rt_throttle_note(1 * MS) or "")


def test_since_6_12_only_rt_group_sched_throttles(throttling: Callable[..., None]) -> None:
    throttling(950_000, kernel=(6, 12), group=False)
    assert realtime.rt_throttle_note(10_000 * MS) is None  # the fair server instead, not RT throttling
    throttling(950_000, kernel=(6, 18), group=True)
    assert " will " in (realtime.rt_throttle_note(10_000 * MS) or "")
    throttling(950_000, kernel=(6, 12), group=None)
    note = realtime.rt_throttle_note(10_000 * MS) or ""
    assert "if this kernel has CONFIG_RT_GROUP_SCHED" in note and " may " in note


def test_unreadable_throttling_is_said_to_be_unknown(throttling: Callable[..., None]) -> None:
    throttling(None, None)
    assert "unknown" in (realtime.rt_throttle_note(1 * MS) or "")
