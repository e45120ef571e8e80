"""What a run ran on, and what the machine did to the run's cores while it ran.

Every number pseudonic reports depends on the machine, and on a shared VM most of all: a vCPU
that the host deschedules loses time the guest cannot see except as *steal* in /proc/stat; a
core that is not isolated shares itself with other tasks and takes the timer tick; a SCHED_FIFO
spinner is throttled by the kernel unless real-time throttling is off. So a result states the
CPU, its frequency governor, the kernel, the isolated cores, whether the machine is virtualised
(and how that is known), and, for the run's own cores, steal time and interrupts during the run.

Rules:

- Nothing here raises on a machine that lacks a file: an unknown is reported as unknown (None),
  never guessed. A VM without cpufreq has no governor (None), not "performance".
- What cannot change within a process (CPU model and flags, what ``systemd-detect-virt`` says,
  the DMI vendor) is read once per process: a run must not pay a subprocess. What can change
  (governor, frequency, isolated cores, RT throttling, affinity) is read fresh each time; those
  are a few small sysfs/procfs reads.
- The paths are module-level constants so that tests can point them at sample files.
"""

from __future__ import annotations

import functools
import gzip
import os
import platform
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from .config import parse_cpu_list

CPUINFO = Path("/proc/cpuinfo")
PROC_STAT = Path("/proc/stat")
PROC_INTERRUPTS = Path("/proc/interrupts")
SYS_VENDOR = Path("/sys/class/dmi/id/sys_vendor")
#: cpuN/cpufreq/ below it exists only where a cpufreq driver is loaded (not on most VMs)
SYS_CPU = Path("/sys/devices/system/cpu")
#: cores removed from the scheduler's load balancing by the isolcpus= boot parameter
#: (Documentation/admin-guide/kernel-parameters.txt, "isolcpus"); empty when none are
ISOLATED = Path("/sys/devices/system/cpu/isolated")
#: cores that run without the periodic tick while they have one task (nohz_full=,
#: Documentation/timers/no_hz.rst); the file exists only in kernels built with CONFIG_NO_HZ_FULL
NOHZ_FULL = Path("/sys/devices/system/cpu/nohz_full")
#: real-time throttling (Documentation/scheduler/sched-rt-group.rst): of every period, RT tasks on
#: a CPU may run for runtime µs; -1 turns throttling off
RT_RUNTIME = Path("/proc/sys/kernel/sched_rt_runtime_us")
RT_PERIOD = Path("/proc/sys/kernel/sched_rt_period_us")
#: present only where the kernel has CONFIG_RT_GROUP_SCHED and the cgroup v1 cpu controller is mounted
CGROUP_V1_RT_RUNTIME = Path("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")
#: where a kernel's build configuration may be found (the second is Debian/Fedora's)
KERNEL_CONFIGS = (Path("/proc/config.gz"), Path("/boot") / f"config-{platform.release()}")

#: /proc/stat counts in USER_HZ ticks ("jiffies" to user space, proc(5)), usually 100 a second
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
JIFFY_NS = 1_000_000_000 // USER_HZ

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


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _cpuinfo_field(text: str, name: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


@functools.cache
def _detect_virt(kind: str) -> str | None:
    """``systemd-detect-virt --vm`` or ``--container``'s answer ("none" when it finds none), None if it cannot say.

    Cached: whether this process runs in a VM or a container does not change while it runs.
    """
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


@functools.cache
def _static_files(cpuinfo_path: Path, vendor_path: Path) -> tuple[str | None, bool | None, str | None]:
    """CPU model, whether the CPU shows the hypervisor flag, DMI vendor: fixed for the life of the process.

    Keyed by the paths, so that a test pointing the constants elsewhere reads its own files.
    """
    cpuinfo = _read(cpuinfo_path)
    model = _cpuinfo_field(cpuinfo, "model name") if cpuinfo else None
    flag = "hypervisor" in (_cpuinfo_field(cpuinfo, "flags") or "").split() if cpuinfo is not None else None
    vendor = _read(vendor_path)
    return model, flag, vendor.strip() if vendor is not None else None


def _core_dirs() -> list[tuple[int, Path]]:
    found = []
    try:
        for entry in SYS_CPU.iterdir():
            name = entry.name
            if name.startswith("cpu") and name[3:].isdigit():
                found.append((int(name[3:]), entry))
    except OSError:
        return []
    return sorted(found)


def governors() -> dict[str, str] | None:
    """Each core's cpufreq scaling governor ("performance", "powersave", "schedutil", …), keyed by core
    number as a string (as JSON keeps it); None where the machine exposes no cpufreq at all, as most
    VMs do: the host then sets the frequency and the guest cannot know how."""
    found: dict[str, str] = {}
    for core, path in _core_dirs():
        text = _read(path / "cpufreq" / "scaling_governor")
        if text is not None:
            found[str(core)] = text.strip()
    return found or None


def cpu_mhz() -> tuple[dict[str, float] | None, str | None]:
    """Each core's current frequency in MHz and where it came from ("cpufreq" or "cpuinfo"), or (None, None).

    cpufreq's scaling_cur_freq is preferred; /proc/cpuinfo's "cpu MHz" is the fallback, and on a
    VM it is usually the nominal (TSC) frequency the hypervisor reports, not what the host runs at.
    """
    found: dict[str, float] = {}
    for core, path in _core_dirs():
        khz = _read_int(path / "cpufreq" / "scaling_cur_freq")
        if khz is not None:
            found[str(core)] = khz / 1000.0
    if found:
        return found, "cpufreq"
    text = _read(CPUINFO)
    if text is None:
        return None, None
    processor: int | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        try:
            if key == "processor":
                processor = int(value)
            elif key == "cpu MHz" and processor is not None:
                found[str(processor)] = float(value)
        except ValueError:
            continue
    return (found, "cpuinfo") if found else (None, None)


def _cpu_list_file(path: Path) -> list[int] | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return parse_cpu_list(text)
    except ValueError:
        return None


def isolated_cores() -> list[int] | None:
    """Cores isolated with isolcpus= (empty when none are); None when the kernel does not say."""
    return _cpu_list_file(ISOLATED)


def nohz_full_cores() -> list[int] | None:
    """Cores running tickless with nohz_full= (empty when none are); None when the kernel lacks NO_HZ_FULL."""
    return _cpu_list_file(NOHZ_FULL)


def rt_bandwidth() -> tuple[int | None, int | None]:
    """(sched_rt_runtime_us, sched_rt_period_us): RT tasks on a CPU may run runtime µs of every period
    µs, and are throttled for the rest (runtime -1: never); None where unreadable."""
    return _read_int(RT_RUNTIME), _read_int(RT_PERIOD)


def kernel_version() -> tuple[int, int] | None:
    """(major, minor) of the running kernel, None where the release does not start with them."""
    match = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(match[1]), int(match[2])) if match else None


@functools.cache
def _rt_group_sched(cgroup_file: Path, configs: tuple[Path, ...]) -> bool | None:
    if cgroup_file.exists():
        return True
    for path in configs:
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
        except (OSError, EOFError):
            continue
        return re.search(r"^CONFIG_RT_GROUP_SCHED=y$", text, re.MULTILINE) is not None
    return None


def rt_group_sched() -> bool | None:
    """Whether the kernel was built with CONFIG_RT_GROUP_SCHED (None when neither cgroup v1 nor a kernel
    config says). Since Linux 6.12 it decides whether sched_rt_runtime_us throttles RT tasks at all.

    Read once per process (keyed by the paths): a kernel's build configuration does not change while it runs.
    """
    return _rt_group_sched(CGROUP_V1_RT_RUNTIME, KERNEL_CONFIGS)


def machine_info() -> dict[str, Any]:
    """Describe this machine: CPU, frequency, cores, isolation, RT throttling, kernel, and whether (and how we
    know) it is virtualised.

    - ``virtualised`` is True or False when some source says so, None when none does; ``virt_evidence``
      lists what each source said; ``hypervisor`` names it when known; ``container`` names the
      container runtime we run in, if any (a container is not a VM).
    - ``governor``: {core: governor} (core numbers as strings), None when there is no cpufreq (the
      frequency is then not ours to know: a VM's host sets it).
    - ``cpu_mhz``: {core: MHz}, with ``cpu_mhz_source`` "cpufreq" or "cpuinfo" (on a VM the nominal
      frequency), None when neither says.
    - ``isolated_cores``, ``nohz_full_cores``: lists of cores, None when the kernel does not say
      (nohz_full is absent from kernels built without CONFIG_NO_HZ_FULL).
    - ``rt_runtime_us``, ``rt_period_us``: RT throttling; runtime -1 means off. ``rt_group_sched``:
      whether the kernel has CONFIG_RT_GROUP_SCHED, without which Linux 6.12 and later do not throttle
      RT tasks by these (pseudonic.realtime.rt_throttle_note states the rule).
    """
    model, hypervisor_flag, vendor = _static_files(CPUINFO, SYS_VENDOR)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0

    evidence: dict[str, str] = {}
    virtualised: bool | None = None
    hypervisor: str | None = None

    if hypervisor_flag is not None:
        evidence["cpu_flag"] = "hypervisor flag set" if hypervisor_flag else "no hypervisor flag"
        virtualised = hypervisor_flag

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

    if vendor is not None:
        evidence["dmi_sys_vendor"] = vendor
        named = _VM_VENDORS.get(vendor.lower())
        if named is not None:
            virtualised = True
            if hypervisor is None:
                hypervisor = named

    mhz, mhz_source = cpu_mhz()
    rt_runtime, rt_period = rt_bandwidth()
    return {
        "cpu_model": model or platform.processor() or None,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "virtualised": virtualised,
        "hypervisor": hypervisor,
        "container": container if container not in (None, "none") else None,
        "virt_evidence": evidence,
        "governor": governors(),
        "cpu_mhz": mhz,
        "cpu_mhz_source": mhz_source,
        "isolated_cores": isolated_cores(),
        "nohz_full_cores": nohz_full_cores(),
        "rt_runtime_us": rt_runtime,
        "rt_period_us": rt_period,
        "rt_group_sched": rt_group_sched(),
    }


# ---------------------------------------------------------------------------- /proc/stat

_STEAL = 7  # index of steal in a cpu line's values: user nice system idle iowait irq softirq steal
_GUEST = 8  # guest and guest_nice are already counted in user and nice (proc(5))


def parse_proc_stat(text: str) -> dict[str, list[int]]:
    """The ``cpu`` lines of /proc/stat by name ("cpu" for all CPUs, "cpu0", "cpu1", …) -> their jiffies.

    Values: user nice system idle iowait irq softirq steal guest guest_nice; older kernels and
    some other systems stop earlier (steal came with 2.6.11). A line that does not parse is left out.
    """
    found: dict[str, list[int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            if found:
                break  # the cpu lines come first; the rest (intr, ctxt, …) is long and not ours
            continue
        name, *values = line.split()
        try:
            found[name] = [int(v) for v in values]
        except ValueError:
            continue
    return found


def _read_cpu_jiffies() -> list[int] | None:
    """The aggregate "cpu" line of /proc/stat."""
    text = _read(PROC_STAT)
    return parse_proc_stat(text).get("cpu") if text is not None else None


Sample = TypeVar("Sample")


class _Span(Generic[Sample]):
    """A ``with`` block's span: a sample of the counters on entry and on exit, and the time between."""

    _start: Sample  # set on entry
    _end: Sample  # set on exit

    def __init__(self) -> None:
        self._t0: int | None = None
        self._t1: int | None = None

    def _sample(self) -> Sample:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._start = self._sample()
        self._t0 = time.monotonic_ns()
        self._t1 = None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # _t1 only once _end exists: a signal during the sample leaves the block's end unmeasured, not half set
        t1 = time.monotonic_ns()
        self._end = self._sample()
        self._t1 = t1

    def _span(self) -> tuple[Sample, Sample, int]:
        """The samples at the start and the end (now, before the block has ended), and the ns between."""
        if self._t0 is None:
            raise RuntimeError(f"{type(self).__name__}.result() before the with block was entered")
        if self._t1 is not None:
            return self._start, self._end, self._t1 - self._t0
        return self._start, self._sample(), time.monotonic_ns() - self._t0


class StealMeter(_Span[list[int] | None]):
    """Measure the share of CPU time the hypervisor stole across all CPUs during a ``with`` block.

    >>> with StealMeter() as meter:
    ...     run_benchmark()
    >>> meter.result()  # {"steal_pct": 0.4, "seconds": 12.1, "available": True}

    The counters tick in jiffies (usually 10 ms), so a span of well under a second gives a coarse
    share; ``available`` is False where /proc/stat cannot be read or has no steal column.
    For the run's own cores, and interrupts as well, see CoreMeter.
    """

    def _sample(self) -> list[int] | None:
        return _read_cpu_jiffies()

    def result(self) -> dict[str, Any]:
        """``steal_pct`` (None when unavailable), ``seconds`` of the span, ``available``; before exit, up to now."""
        start, end, span_ns = self._span()
        seconds = span_ns / 1e9
        if start is None or end is None or len(start) <= _STEAL or len(end) <= _STEAL:
            return {"steal_pct": None, "seconds": seconds, "available": False}
        delta = [b - a for a, b in zip(start[:_GUEST], end[:_GUEST], strict=False)]
        total = sum(delta)
        steal_pct = 100.0 * delta[_STEAL] / total if total > 0 else 0.0
        return {"steal_pct": steal_pct, "seconds": seconds, "available": True, "jiffies": total}


# ---------------------------------------------------------------------------- /proc/interrupts

#: x86 prints these two rows with one system-wide count, not one per CPU (arch/x86/kernel/irq.c)
_GLOBAL_ROWS = frozenset({"ERR", "MIS"})
#: the action names follow the chip, hwirq and trigger, after a run of spaces (kernel/irq/proc.c)
_WIDE_GAP = re.compile(r"\s{2,}")


def parse_interrupts(text: str, cores: list[int]) -> dict[int, dict[str, int]]:
    """/proc/interrupts -> {core: {source: count}} for ``cores`` (those that have a column), counts as read.

    The header names each column's CPU (offline CPUs have none). A source is the row's mnemonic for
    the architecture's own interrupts (x86: LOC local timer, RES rescheduling IPIs, CAL function-call
    IPIs, TLB shootdowns, …), and "<device name> (IRQ <n>)" for a numbered device interrupt. Rows
    with a single system-wide count (x86 ERR, MIS) are no core's.
    """
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].split()
    column = {}
    for index, cpu in enumerate(header):
        if cpu.startswith("CPU") and cpu[3:].isdigit() and int(cpu[3:]) in cores:
            column[int(cpu[3:])] = index
    found: dict[int, dict[str, int]] = {core: {} for core in column}
    if not column:
        return found
    width = len(header)
    for line in lines[1:]:
        # name:, one count per column, then the description left in one piece
        parts = line.split(None, width + 1)
        if len(parts) < width + 1 or not parts[0].endswith(":"):
            continue
        name = parts[0][:-1]
        if name in _GLOBAL_ROWS:
            continue
        if name.isdigit():
            described = _WIDE_GAP.split(parts[width + 1].strip()) if len(parts) > width + 1 else []
            source = f"{described[-1]} (IRQ {name})" if described else f"IRQ {name}"
        else:
            source = name
        for core, index in column.items():
            count = parts[1 + index]
            if count.isdigit():
                found[core][source] = found[core].get(source, 0) + int(count)
    return found


# ---------------------------------------------------------------------------- per-core meter


_CoreSample = tuple[dict[str, list[int]], dict[int, dict[str, int]]]


class CoreMeter(_Span[_CoreSample]):
    """What the machine did to ``cores`` during a ``with`` block: steal time and interrupts, per core.

    >>> with CoreMeter([0, 1]) as meter:
    ...     run()
    >>> meter.result()
    {"span_ns": 2000000000, "jiffy_ns": 10000000,
     "cores": {1: {"steal_ns": 20000000, "steal_share": 0.01,
                   "interrupts": {"LOC": 2001, "CAL": 3}, "interrupts_total": 2004}, 0: {...}}}

    Steal comes from the ``cpuN`` lines of /proc/stat, which count in USER_HZ jiffies (usually 100
    a second, ``jiffy_ns``, whatever the kernel's own HZ; proc(5)): the kernel adds up steal in ns,
    but each reading is cut down to whole jiffies, so ``steal_ns`` is off by up to a jiffy either way
    and a span of a few jiffies gives a coarse figure. ``steal_share`` is the core's steal over all of its
    jiffies in the span (None when the span saw none). ``steal_ns`` and ``steal_share`` are None where
    /proc/stat has no steal column, and every field of a core is None where the file has no line or
    column for it (an offline core). ``interrupts`` lists only sources that fired.

    Two small procfs reads on entry and two on exit (no subprocess), so the meter can wrap a run.
    """

    def __init__(self, cores: Iterable[int]) -> None:
        super().__init__()
        self.cores = sorted(set(cores))

    def _sample(self) -> _CoreSample:
        stat = _read(PROC_STAT)
        interrupts = _read(PROC_INTERRUPTS)
        return (
            parse_proc_stat(stat) if stat is not None else {},
            parse_interrupts(interrupts, self.cores) if interrupts is not None else {},
        )

    def result(self) -> dict[str, Any]:
        """{"span_ns", "jiffy_ns", "cores": {core: {"steal_ns", "steal_share", "interrupts", "interrupts_total"}}};
        before the block has ended, up to now."""
        (stat0, irq0), (stat1, irq1), span_ns = self._span()
        cores: dict[int, dict[str, Any]] = {}
        for core in self.cores:
            entry: dict[str, Any] = {
                "steal_ns": None,
                "steal_share": None,
                "interrupts": None,
                "interrupts_total": None,
            }
            a, b = stat0.get(f"cpu{core}"), stat1.get(f"cpu{core}")
            if a is not None and b is not None and len(a) > _STEAL and len(b) > _STEAL:
                delta = [y - x for x, y in zip(a[:_GUEST], b[:_GUEST], strict=False)]
                total = sum(delta)
                entry["steal_ns"] = delta[_STEAL] * JIFFY_NS
                entry["steal_share"] = delta[_STEAL] / total if total > 0 else None
            if core in irq0 and core in irq1:
                before = irq0[core]
                fired = {src: n - before.get(src, 0) for src, n in irq1[core].items()}
                # a counter that went down (an IRQ freed and another allocated under its number) is not a count
                fired = {src: n for src, n in fired.items() if n > 0}
                entry["interrupts"] = fired
                entry["interrupts_total"] = sum(fired.values())
            cores[core] = entry
        return {"span_ns": span_ns, "jiffy_ns": JIFFY_NS, "cores": cores}
