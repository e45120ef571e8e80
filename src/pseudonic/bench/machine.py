"""What the benchmarks ran on, and how much of the CPU the hypervisor took while they ran.

Every number a benchmark reports depends on the machine, and on a shared VM most of all: a
vCPU that the host deschedules loses time the guest cannot see except as *steal* in
/proc/stat. So a report states the CPU, the cores it could use, whether it is virtualised
(and how that is known), and the steal share during the run, next to the results.

Nothing here raises on a machine that lacks a file: an unknown is reported as unknown.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
PROC_STAT = Path("/proc/stat")
SYS_VENDOR = Path("/sys/class/dmi/id/sys_vendor")

#: DMI vendor strings that name a hypervisor, lower case
_VM_VENDORS = {
    "qemu": "qemu",
    "kvm": "kvm",
    "microsoft corporation": "microsoft",
    "vmware, inc.": "vmware",
    "xen": "xen",
    "innotek gmbh": "oracle",
    "amazon ec2": "amazon",
    "google": "google",
    "parallels software international inc.": "parallels",
    "bochs": "bochs",
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _cpuinfo_field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def _detect_virt(kind: str) -> str | None:
    """``systemd-detect-virt --vm`` or ``--container``'s answer ("none" when it finds none), None if it cannot say."""
    exe = shutil.which("systemd-detect-virt")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, kind], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    # it exits 1 and prints "none" when it finds no virtualisation
    answer = proc.stdout.strip()
    return answer or None


def machine_info() -> dict[str, Any]:
    """Describe this machine: CPU, cores, kernel, Python, host, and whether (and how we know) it is virtualised.

    ``virtualised`` is True or False when some source says so, None when none does;
    ``virt_evidence`` lists what each source said; ``hypervisor`` names it when known;
    ``container`` names the container runtime we run in, if any (a container is not a VM).
    """
    cpuinfo = _read(CPUINFO)
    cpu_model = _cpuinfo_field(cpuinfo, "model name") if cpuinfo else None
    flags = (_cpuinfo_field(cpuinfo, "flags") or "").split() if cpuinfo else []
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0

    evidence: dict[str, str] = {}
    virtualised: bool | None = None
    hypervisor: str | None = None

    if cpuinfo is not None:
        has_flag = "hypervisor" in flags
        evidence["cpu_flag"] = "hypervisor flag set" if has_flag else "no hypervisor flag"
        virtualised = has_flag

    detected = _detect_virt("--vm")
    if detected is not None:
        evidence["systemd-detect-virt --vm"] = detected
        if detected == "none":
            # it may miss a hypervisor the CPU flag shows; a flag already set stays set
            virtualised = bool(virtualised)
        else:
            virtualised = True
            hypervisor = detected
    container = _detect_virt("--container")
    if container is not None:
        evidence["systemd-detect-virt --container"] = container

    vendor_text = _read(SYS_VENDOR)
    if vendor_text is not None:
        vendor = vendor_text.strip()
        evidence["dmi_sys_vendor"] = vendor
        named = _VM_VENDORS.get(vendor.lower())
        if named is not None:
            virtualised = True
            if hypervisor is None:
                hypervisor = named

    return {
        "cpu_model": cpu_model or platform.processor() or None,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "virtualised": virtualised,
        "hypervisor": hypervisor,
        "container": container if container not in (None, "none") else None,
        "virt_evidence": evidence,
    }


def _read_cpu_jiffies() -> list[int] | None:
    """The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal [guest guest_nice]."""
    text = _read(PROC_STAT)
    if text is None:
        return None
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                return [int(v) for v in fields[1:]]
            except ValueError:
                return None
    return None


_STEAL = 7  # index of steal in the cpu line's values
_GUEST = 8  # guest and guest_nice are already counted in user and nice


class StealMeter:
    """Measure the share of CPU time the hypervisor stole across all CPUs during a ``with`` block.

    >>> with StealMeter() as meter:
    ...     run_benchmark()
    >>> meter.result()  # {"steal_pct": 0.4, "seconds": 12.1, "available": True}

    The counters tick in jiffies (usually 10 ms), so a span of well under a second gives a coarse
    share; ``available`` is False where /proc/stat cannot be read or has no steal column.
    """

    def __init__(self) -> None:
        self._start: list[int] | None = None
        self._end: list[int] | None = None
        self._t0: float | None = None
        self._t1: float | None = None

    def __enter__(self) -> StealMeter:
        self._start = _read_cpu_jiffies()
        self._end = None
        self._t0 = time.monotonic()
        self._t1 = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._t1 = time.monotonic()
        self._end = _read_cpu_jiffies()

    def result(self) -> dict[str, Any]:
        """``steal_pct`` (None when unavailable), ``seconds`` of the span, ``available``; before exit, up to now."""
        if self._t0 is None:
            raise RuntimeError("StealMeter.result() before the with block was entered")
        t1 = self._t1 if self._t1 is not None else time.monotonic()
        end = self._end if self._t1 is not None else _read_cpu_jiffies()
        seconds = t1 - self._t0
        start = self._start
        if start is None or end is None or len(start) <= _STEAL or len(end) <= _STEAL:
            return {"steal_pct": None, "seconds": seconds, "available": False}
        delta = [b - a for a, b in zip(start[:_GUEST], end[:_GUEST], strict=False)]
        total = sum(delta)
        steal_pct = 100.0 * delta[_STEAL] / total if total > 0 else 0.0
        return {"steal_pct": steal_pct, "seconds": seconds, "available": True, "jiffies": total}
