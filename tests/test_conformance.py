"""The conformance suite (pseudonic check-driver), the driver examples, and loading C drivers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import pseudonic
from conftest import needs_two_cores
from drivers.broken import DeliversErrorsE1000, NoSpuriousE1000
from pseudonic.conformance import CASE_NAMES, CaseResult, check_driver
from pseudonic.loading import include_dir, reference_library

EXAMPLES = Path(__file__).parent.parent / "examples"
CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="needs a C compiler (cc)")


def compile_driver(source: str | Path, tmp_path: Path, name: str = "libdriver.so") -> Path:
    """``source`` (a path, or C text) built as a driver library with warnings as errors."""
    assert CC is not None
    if isinstance(source, str):
        path = tmp_path / (name.removesuffix(".so") + ".c")
        path.write_text(source)
        source = path
    out = tmp_path / name
    cmd = [CC, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include_dir()}", str(source), "-o"]
    subprocess.run([*cmd, str(out)], check=True, capture_output=True, text=True)
    return out


def by_name(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {r.name: r for r in results}


# -- the reference drivers pass; broken ones fail the case they break ------------------------------


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_the_reference_drivers_pass_every_case(driver: str) -> None:
    seen: list[str] = []
    results = check_driver(driver, progress=lambda r: seen.append(r.name), wait_for_cores=True)
    assert [r.name for r in results] == seen == list(CASE_NAMES)
    assert [r.name for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]
    assert all(r.detail and r.seconds > 0 for r in results)
    assert {"transmit", "transmit ring full", "transmit and receive"} <= set(seen)  # they transmit: all cases ran


@needs_two_cores
def test_a_driver_that_does_not_tolerate_spurious_interrupts_fails_that_case() -> None:
    results = by_name(check_driver(NoSpuriousE1000, wait_for_cores=True))
    spurious = results["fault spurious"]
    assert not spurious.passed
    assert spurious.detail.startswith("driver exception: RuntimeError: interrupt with ICR")
    assert "Traceback" not in spurious.detail
    # (it may fail other cases too: a handler run that takes a batch leaves the next interrupt nothing)


@needs_two_cores
def test_a_driver_that_delivers_error_descriptors_fails_that_case() -> None:
    results = by_name(check_driver(DeliversErrorsE1000, wait_for_cores=True))
    for kind in ("rxe", "ce", "se", "seq", "cxe"):
        case = results[f"fault {kind}"]
        injected = case.detail.split("misdelivered of ")[1].split()[0]
        assert not case.passed and f"{injected} misdelivered of {injected} injected {kind} faults" in case.detail
        # every anomaly, not only the first: the frames delivered, and the drops not counted
        assert "delivered although their descriptor had an error bit" in case.detail
        assert f"rx_errors is 0, but {injected} frames carried frame errors" in case.detail
    assert results["delivery"].passed and results["fault spurious"].passed
    # It forgets IPE too, so a frame whose checksum the device found bad goes up as checked.
    assert "misdelivered of" in results["fault ipe"].detail and not results["fault ipe"].passed


def test_a_driver_that_cannot_be_loaded_stops_the_check_before_any_case() -> None:
    seen: list[CaseResult] = []
    with pytest.raises(pseudonic.DriverLoadError, match="does not exist"):
        check_driver("no/such/driver.py", progress=seen.append)
    with pytest.raises(pseudonic.ConfigError, match="interrupt line 'irq9'"):
        check_driver("python", irq="irq9", progress=seen.append)
    assert seen == []


# -- the examples ----------------------------------------------------------------------------------


@needs_cc
@needs_two_cores
def test_the_example_c_driver_compiles_without_warnings_and_passes(tmp_path: Path) -> None:
    lib = compile_driver(EXAMPLES / "c_driver" / "mydriver.c", tmp_path, "libmydriver.so")
    results = check_driver(str(lib), wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
def test_the_example_python_driver_passes() -> None:
    results = check_driver(f"{EXAMPLES / 'python_driver' / 'mydriver.py'}:MyDriver", wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


# -- C drivers: bad libraries are refused with one clear line ------------------------------------------


def test_a_missing_library_is_refused(tmp_path: Path) -> None:
    with pytest.raises(pseudonic.DriverLoadError, match="does not exist"):
        pseudonic.run(driver=str(tmp_path / "libnothere.so"))


def test_a_text_file_named_like_a_library_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "x.so"
    fake.write_text("not a library\n")
    with pytest.raises(pseudonic.DriverLoadError, match="is not a shared library"):
        pseudonic.run(driver=str(fake))


@needs_cc
def test_a_library_without_the_entry_points_is_refused(tmp_path: Path) -> None:
    lib = compile_driver("int not_a_driver(void) { return 0; }\n", tmp_path, "libempty.so")
    with pytest.raises(pseudonic.DriverLoadError, match="lacks pnic_driver_open, pnic_driver_interrupt"):
        pseudonic.run(driver=str(lib))


def test_a_library_for_another_architecture_is_refused(tmp_path: Path) -> None:
    image = bytearray(reference_library().read_bytes())
    machine = int.from_bytes(image[18:20], "little")
    image[18:20] = (183 if machine != 183 else 62).to_bytes(2, "little")  # aarch64, or x86_64 on aarch64
    foreign = tmp_path / "libforeign.so"
    foreign.write_bytes(bytes(image))
    with pytest.raises(pseudonic.DriverLoadError, match="built for another architecture"):
        pseudonic.run(driver=str(foreign))


# -- C drivers: a crash kills only the driver node ---------------------------------------------------

CRASHING_DRIVER = r"""
#include <stddef.h>
#include <stdint.h>

#include "pseudonic.h"

const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
static unsigned runs;
static int *volatile nowhere = NULL; /* volatile: the compiler cannot see it is NULL and trap instead */

int pnic_driver_open(struct pnic_nic *nic)
{
    runs = 0;
    pnic_rdt_write(nic, nic->ring_size - 1);
    pnic_ims_write(nic->drv, PNIC_ICR_RXT0);
    return 0;
}

void pnic_driver_interrupt(struct pnic_nic *nic)
{
    (void)nic;
    if (++runs == 5)
        *nowhere = 1;
}

void pnic_driver_close(struct pnic_nic *nic)
{
    (void)nic;
}
"""


@needs_cc
@needs_two_cores
def test_a_c_driver_that_segfaults_is_reported_and_nothing_is_left_behind(tmp_path: Path) -> None:
    lib = compile_driver(CRASHING_DRIVER, tmp_path, "libcrash.so")
    r = pseudonic.run("50us", 100, 1500, driver=str(lib))
    assert r.error is not None and not r.ok
    assert r.error["kind"] == "driver crashed"
    assert "SIGSEGV" in r.error["message"]
    assert isinstance(r.error["last_packet"], int)
    # the conftest's autouse fixture checks that no segment and no node process is left


# -- a run the machine disturbed is not judged --------------------------------------------------------


class _Disturbed:
    """A session whose runs come back with these waits for a core (ns) and these verdicts, in turn."""

    def __init__(self, runs: list[tuple[int, bool]], seen_as: str = "run_delay_ns") -> None:
        self.runs = list(runs)
        self.made = 0
        self.seen_as = seen_as  # how the node saw the wait: the kernel's run delay, or a gap in its spinning

    def run(self, **kwargs: object) -> SimpleNamespace:
        waited, good = self.runs[self.made]
        self.made += 1
        stalls = {"device": {"run_delay_ns": 0, "max_ns": 0}, "driver": {"run_delay_ns": 0, "max_ns": 0}}
        stalls["driver"][self.seen_as] = waited
        return SimpleNamespace(error=None, verdict=None, stalls=stalls, good=good)


def _case() -> Any:
    from pseudonic.conformance import _Case

    return _Case("stub", dict, lambda r: None if r.good else "2 frames short", lambda r: "all there")


@pytest.mark.parametrize("seen_as", ["run_delay_ns", "max_ns"], ids=["kernel run delay", "host: a spin gap"])
def test_a_run_the_machine_disturbed_is_run_again_and_not_judged(seen_as: str) -> None:
    """Kept from its core by the guest's scheduler (run delay) or by the host (the vCPU descheduled: the guest
    sees no run delay, only a gap in the node's own spinning), the run is not the driver's doing."""
    from pseudonic.conformance import DISTURBED_NS, _run_case

    session = _Disturbed([(DISTURBED_NS + 1, False), (0, True)], seen_as)
    result = _run_case(_case(), session, "spin")  # type: ignore[arg-type]
    assert result.passed and session.made == 2 and "1 run(s) the machine disturbed not judged" in result.detail


def test_a_spin_gap_at_the_limit_is_judged() -> None:
    from pseudonic.conformance import ATTEMPTS, DISTURBED_NS, _run_case

    session = _Disturbed([(DISTURBED_NS, False)] * ATTEMPTS, "max_ns")
    assert not _run_case(_case(), session, "spin").passed and session.made == ATTEMPTS  # type: ignore[arg-type]


def test_a_driver_that_fails_undisturbed_runs_fails_and_disturbed_reruns_are_bounded() -> None:
    from pseudonic.conformance import ATTEMPTS, DISTURBED_NS, DISTURBED_RERUNS, _run_case

    session = _Disturbed([(0, False)] * ATTEMPTS)
    assert not _run_case(_case(), session, "spin").passed and session.made == ATTEMPTS  # type: ignore[arg-type]
    always = _Disturbed([(DISTURBED_NS * 10, False)] * (DISTURBED_RERUNS + ATTEMPTS))
    result = _run_case(_case(), always, "spin")  # type: ignore[arg-type]
    assert not result.passed and always.made == DISTURBED_RERUNS + ATTEMPTS
    assert "the machine kept a node from its core" in result.detail
