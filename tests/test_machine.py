"""pseudonic.machine: what a run ran on, and what the machine did to the run's cores.

Parsers are tested on sample kernel texts written to tmp files (the module's paths are constants
for that); the meter, on this machine, for the cores asked and no others.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pseudonic import machine

# A 3-CPU /proc/stat: cpu2 has no steal column (an old kernel's line), the rest does.
PROC_STAT = """\
cpu  300 3 150 3000 30 0 9 60 0 0
cpu0 100 1 50 1000 10 0 3 20 0 0
cpu1 100 1 50 1000 10 0 3 40 0 0
cpu2 100 1 50 1000 10 0 3
intr 123456 0 0 9
ctxt 999
"""

# /proc/interrupts with CPU1 offline (no column), per-CPU rows, a device row, and system-wide rows.
PROC_INTERRUPTS = """\
           CPU0       CPU2       CPU3
  0:         44          0          0   IO-APIC   2-edge      timer
 24:          1          0        700  IO-APIC   5-edge      ACPI:Ged
 36:          0     301420          0  PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 47:          3          4          5  PCI-MSI 524288-edge      ehci_hcd:usb1, uhci_hcd:usb2
NMI:          0          0          0   Non-maskable interrupts
LOC:    2116353    2446717       1000   Local timer interrupts
RES:     204390     543427          7   Rescheduling interrupts
CAL:     889017    6947525          0   Function call interrupts
TLB:     192743     146483          0   TLB shootdowns
ERR:          9
MIS:          0
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def no_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every path of the module at files that do not exist; return the folder to create them in."""
    for name in ("CPUINFO", "PROC_STAT", "PROC_INTERRUPTS", "SYS_VENDOR", "ISOLATED", "NOHZ_FULL", "RT_RUNTIME",
                 "RT_PERIOD", "CGROUP_V1_RT_RUNTIME"):  # fmt: skip
        monkeypatch.setattr(machine, name, tmp_path / f"absent-{name.lower()}")
    monkeypatch.setattr(machine, "SYS_CPU", tmp_path / "absent-sys-cpu")
    monkeypatch.setattr(machine, "KERNEL_CONFIGS", (tmp_path / "absent-config.gz",))
    monkeypatch.setattr(machine, "_detect_virt", lambda kind: None)
    return tmp_path


# ---------------------------------------------------------------------------- /proc/stat


def test_parse_proc_stat_reads_every_cpu_line_and_stops_after_them() -> None:
    lines = machine.parse_proc_stat(PROC_STAT)
    assert set(lines) == {"cpu", "cpu0", "cpu1", "cpu2"}
    assert lines["cpu1"] == [100, 1, 50, 1000, 10, 0, 3, 40, 0, 0]
    assert lines["cpu2"] == [100, 1, 50, 1000, 10, 0, 3]  # no steal column: kept as it is


def test_parse_proc_stat_of_nothing() -> None:
    assert machine.parse_proc_stat("") == {}


# ---------------------------------------------------------------------------- /proc/interrupts


def test_parse_interrupts_takes_each_cores_own_column() -> None:
    counts = machine.parse_interrupts(PROC_INTERRUPTS, [0, 3])
    assert set(counts) == {0, 3}
    assert counts[3]["LOC"] == 1000 and counts[3]["RES"] == 7 and counts[3]["CAL"] == 0
    assert counts[0]["LOC"] == 2116353 and counts[0]["TLB"] == 192743


def test_parse_interrupts_names_device_interrupts_by_their_action() -> None:
    counts = machine.parse_interrupts(PROC_INTERRUPTS, [2, 3])
    assert counts[3]["ACPI:Ged (IRQ 24)"] == 700
    assert counts[2]["virtio1-req.0 (IRQ 36)"] == 301420
    assert counts[2]["timer (IRQ 0)"] == 0
    assert counts[3]["ehci_hcd:usb1, uhci_hcd:usb2 (IRQ 47)"] == 5  # shared line: every action named


def test_parse_interrupts_leaves_out_system_wide_rows_and_cores_without_a_column() -> None:
    counts = machine.parse_interrupts(PROC_INTERRUPTS, [1, 2])
    assert set(counts) == {2}  # CPU1 is offline: /proc/interrupts has no column for it
    assert "ERR" not in counts[2] and "MIS" not in counts[2]


def test_parse_interrupts_of_one_cpu_keeps_err_out() -> None:
    text = "           CPU0\nLOC:        5   Local timer interrupts\nERR:          9\n"
    assert machine.parse_interrupts(text, [0]) == {0: {"LOC": 5}}


# ---------------------------------------------------------------------------- CoreMeter


def test_core_meter_measures_steal_and_interrupts_per_core(no_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = write(no_machine / "stat", PROC_STAT)
    interrupts = write(no_machine / "interrupts", PROC_INTERRUPTS)
    monkeypatch.setattr(machine, "PROC_STAT", stat)
    monkeypatch.setattr(machine, "PROC_INTERRUPTS", interrupts)
    with machine.CoreMeter([0, 2]) as meter:
        # cpu0: 100 jiffies pass, 25 of them stolen; cpu2 (no steal column) runs 100 jiffies
        stat.write_text(
            PROC_STAT.replace("cpu0 100 1 50 1000 10 0 3 20 0 0", "cpu0 150 1 50 1025 10 0 3 45 0 0").replace(
                "cpu2 100 1 50 1000 10 0 3", "cpu2 200 1 50 1000 10 0 3"
            )
        )
        # cpu0: 250 local timer ticks, 2 function-call IPIs; cpu2: the virtio device fired 80 times
        interrupts.write_text(
            PROC_INTERRUPTS.replace("2116353", "2116603").replace("889017", "889019").replace("301420", "301500")
        )
    r = meter.result()
    assert set(r["cores"]) == {0, 2}
    core0, core2 = r["cores"][0], r["cores"][2]
    assert core0["steal_ns"] == 25 * machine.JIFFY_NS
    assert core0["steal_share"] == pytest.approx(0.25)
    assert core0["interrupts"] == {"LOC": 250, "CAL": 2}  # only sources that fired
    assert core0["interrupts_total"] == 252
    assert core2["steal_ns"] is None and core2["steal_share"] is None  # no steal column: unknown, not 0
    assert core2["interrupts"] == {"virtio1-req.0 (IRQ 36)": 80}
    assert r["span_ns"] >= 0 and r["jiffy_ns"] == machine.JIFFY_NS
    assert meter.result() == r  # after the block the result is fixed


def test_core_meter_reports_a_core_the_files_do_not_list_as_unknown(no_machine: Path) -> None:
    with machine.CoreMeter([5]) as meter:
        pass
    assert meter.result()["cores"] == {
        5: {"steal_ns": None, "steal_share": None, "interrupts": None, "interrupts_total": None}
    }


def test_core_meter_share_of_a_span_without_a_jiffy_is_unknown(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "PROC_STAT", write(no_machine / "stat", PROC_STAT))
    with machine.CoreMeter([1]) as meter:
        pass  # the file does not change: no jiffy passed
    core = meter.result()["cores"][1]
    assert core["steal_ns"] == 0 and core["steal_share"] is None


def test_core_meter_on_this_machine_returns_exactly_the_cores_asked() -> None:
    asked = sorted(os.sched_getaffinity(0))[:2]
    with machine.CoreMeter(asked) as meter:
        sum(range(100_000))
    r = meter.result()
    assert sorted(r["cores"]) == asked
    for core in asked:
        entry = r["cores"][core]
        assert set(entry) == {"steal_ns", "steal_share", "interrupts", "interrupts_total"}
        if entry["interrupts"] is not None:
            assert all(n > 0 for n in entry["interrupts"].values())
            assert entry["interrupts_total"] == sum(entry["interrupts"].values())
        if entry["steal_ns"] is not None:
            assert entry["steal_ns"] >= 0
    assert r["span_ns"] > 0


def test_a_signal_during_the_meters_last_sample_leaves_its_result_measured_up_to_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second Ctrl-C lands while the block's end is sampled: the run's partial result still reads the meter.
    meter = machine.CoreMeter(sorted(os.sched_getaffinity(0))[:1])
    with pytest.raises(KeyboardInterrupt), meter:
        monkeypatch.setattr(meter, "_sample", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.undo()
    assert meter.result()["span_ns"] > 0


def test_core_meter_result_before_enter() -> None:
    with pytest.raises(RuntimeError):
        machine.CoreMeter([0]).result()


# ---------------------------------------------------------------------------- machine_info


def sys_cpu(root: Path, governors: dict[int, str | None], khz: int = 2_400_000) -> Path:
    """A /sys/devices/system/cpu with a cpufreq folder for the cores given a governor."""
    for core, governor in governors.items():
        cpu = root / f"cpu{core}"
        cpu.mkdir(parents=True)
        if governor is not None:
            (cpu / "cpufreq").mkdir()
            write(cpu / "cpufreq" / "scaling_governor", governor + "\n")
            write(cpu / "cpufreq" / "scaling_cur_freq", f"{khz}\n")
    (root / "cpufreq").mkdir(exist_ok=True)  # the top-level folder exists even without a driver
    return root


def test_machine_info_on_a_machine_with_no_files_says_unknown(no_machine: Path) -> None:
    info = machine.machine_info()
    for key in ("governor", "cpu_mhz", "cpu_mhz_source", "isolated_cores", "nohz_full_cores", "rt_runtime_us",
                "rt_period_us", "rt_group_sched", "virtualised", "hypervisor"):  # fmt: skip
        assert info[key] is None, key
    assert info["virt_evidence"] == {}


def test_machine_info_reads_governors_and_frequency_from_cpufreq(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "SYS_CPU", sys_cpu(no_machine / "cpu", {0: "performance", 1: "powersave"}))
    info = machine.machine_info()
    assert info["governor"] == {"0": "performance", "1": "powersave"}
    assert info["cpu_mhz"] == {"0": 2400.0, "1": 2400.0} and info["cpu_mhz_source"] == "cpufreq"


def test_machine_info_without_cpufreq_has_no_governor_and_reads_cpuinfo(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "SYS_CPU", sys_cpu(no_machine / "cpu", {0: None, 1: None}))
    cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2299.998\n\nprocessor\t: 1\ncpu MHz\t\t: 2100.5\n\n"
    monkeypatch.setattr(machine, "CPUINFO", write(no_machine / "cpuinfo", cpuinfo))
    info = machine.machine_info()
    assert info["governor"] is None  # no cpufreq: the host sets the frequency, not guessed
    assert info["cpu_mhz"] == {"0": 2299.998, "1": 2100.5} and info["cpu_mhz_source"] == "cpuinfo"


def test_machine_info_reads_isolation_and_rt_throttling(no_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "ISOLATED", write(no_machine / "isolated", "1-2,5\n"))
    monkeypatch.setattr(machine, "NOHZ_FULL", write(no_machine / "nohz_full", "1\n"))
    monkeypatch.setattr(machine, "RT_RUNTIME", write(no_machine / "rt_runtime", "950000\n"))
    monkeypatch.setattr(machine, "RT_PERIOD", write(no_machine / "rt_period", "1000000\n"))
    info = machine.machine_info()
    assert info["isolated_cores"] == [1, 2, 5] and info["nohz_full_cores"] == [1]
    assert info["rt_runtime_us"] == 950000 and info["rt_period_us"] == 1000000


def test_machine_info_reads_what_can_change_fresh_each_time(no_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated = write(no_machine / "isolated", "\n")  # the kernel writes an empty line when none is
    monkeypatch.setattr(machine, "ISOLATED", isolated)
    assert machine.machine_info()["isolated_cores"] == []
    isolated.write_text("3\n")
    assert machine.machine_info()["isolated_cores"] == [3]


def test_rt_group_sched_from_cgroup_v1_or_the_kernel_config(no_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = no_machine / "config.gz"
    config.write_bytes(gzip.compress(b"CONFIG_CPU_ISOLATION=y\n# CONFIG_RT_GROUP_SCHED is not set\n"))
    monkeypatch.setattr(machine, "KERNEL_CONFIGS", (config,))
    assert machine.rt_group_sched() is False
    plain = write(no_machine / "config-6.12.0", "CONFIG_RT_GROUP_SCHED=y\n")
    monkeypatch.setattr(machine, "KERNEL_CONFIGS", (no_machine / "absent.gz", plain))
    assert machine.rt_group_sched() is True
    monkeypatch.setattr(machine, "CGROUP_V1_RT_RUNTIME", write(no_machine / "cpu.rt_runtime_us", "950000\n"))
    monkeypatch.setattr(machine, "KERNEL_CONFIGS", ())
    assert machine.rt_group_sched() is True


def test_machine_info_runs_systemd_detect_virt_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    machine._detect_virt.cache_clear()
    monkeypatch.setattr(machine.subprocess, "run", counting_run)
    try:
        first = machine.machine_info()
        asked = len(calls)
        second = machine.machine_info()
    finally:
        machine._detect_virt.cache_clear()  # no answer of the counting run stays behind
    assert len(calls) == asked <= 2  # --vm and --container, the first time only
    assert first["virtualised"] == second["virtualised"] and first["virt_evidence"] == second["virt_evidence"]


def test_machine_info_describes_this_machine() -> None:
    info = machine.machine_info()
    assert info["rt_runtime_us"] is None or info["rt_runtime_us"] >= -1
    assert info["isolated_cores"] is None or all(isinstance(c, int) for c in info["isolated_cores"])
    if info["governor"] is not None:
        assert all(isinstance(g, str) and g for g in info["governor"].values())
