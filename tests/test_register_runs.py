"""Drivers written against the register window, end to end: the FCS kept and taken off, errors counted by the
statistics registers, ICS, and writes to registers the model does not have."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import pseudonic
from conftest import needs_two_cores, raised_with_the_next
from drivers.window_e1000 import KeepsFcs, RefillsE1000, WindowE1000
from pseudonic.conformance import check_driver
from pseudonic.layout import REGISTERS as R
from pseudonic.loading import include_dir


@needs_two_cores
def test_a_driver_that_keeps_the_fcs_and_counts_by_the_statistics_passes_every_case() -> None:
    results = check_driver(WindowE1000, wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]
    # It has no transmit entry point: the transmit cases say so, and are not counted as passed.
    skipped = [r for r in results if r.skipped]
    assert [r.name for r in skipped] == ["transmit", "transmit ring full", "transmit and receive"]
    assert all("no transmit entry point" in r.detail and not r.passed for r in skipped)


@needs_two_cores
def test_a_frame_delivered_with_its_fcs_is_named_so() -> None:
    r = pseudonic.run(driver=KeepsFcs, count=50, interval="40us", wait_for_cores=True)
    assert r.corrupted == 50 and not r.verdict.passed
    assert r.register_window["rctl"] & pseudonic.layout.RCTL_SECRC == 0
    assert "with its FCS still on" in r.corruption[0] and "length -= 4" in r.corruption[0]


class WritesUnmodelledRegister(WindowE1000):
    def open(self, nic: pseudonic.nic.Nic) -> None:
        super().open(nic)
        nic.write_reg(0x0018, 0)  # CTRL_EXT: not in the model


@needs_two_cores
def test_writes_to_registers_the_model_lacks_are_reported_and_fail_a_sanitized_run() -> None:
    plain = pseudonic.run(driver=WritesUnmodelledRegister, count=20, interval="40us", wait_for_cores=True)
    assert plain.verdict.passed and plain.register_window["unmodelled_writes"] == 1
    assert plain.register_window["first_unmodelled"] == 0x0018
    assert any(f.code == "unmodelled-register" and not f.fails for f in plain.verdict.findings)
    sanitized = pseudonic.run(driver=WritesUnmodelledRegister, count=20, interval="40us", sanitize=True,
                              wait_for_cores=True)  # fmt: skip
    assert not sanitized.verdict.passed and "0x0018" in str(sanitized.verdict.reasons[0])


EXAMPLE = Path(__file__).parent.parent / "examples" / "c_driver" / "e1000_window.c"
CC = shutil.which("cc")


def build(source: Path | str, tmp_path: Path) -> Path:
    assert CC is not None
    if isinstance(source, str):
        (tmp_path / "snippet.c").write_text(source)
        source = tmp_path / "snippet.c"
    out = tmp_path / "libdriver.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include_dir()}", str(source),
                    "-o", str(out)], check=True, capture_output=True, text=True)  # fmt: skip
    return out


@pytest.mark.skipif(CC is None, reason="needs a C compiler (cc)")
@needs_two_cores
def test_the_production_style_c_example_uses_only_the_compat_header_and_passes_every_case(tmp_path: Path) -> None:
    assert '#include "pnic_e1000_compat.h"' in EXAMPLE.read_text() and "pnic_icr_read" not in EXAMPLE.read_text()
    results = check_driver(str(build(EXAMPLE, tmp_path)), wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


@pytest.mark.skipif(CC is None, reason="needs a C compiler (cc)")
@needs_two_cores
def test_intel_style_register_macros_compile_with_one_definition(tmp_path: Path) -> None:
    # Shared-code style: a hw struct of the driver's own, and one macro to give its nic.
    lib = build(
        """
        #include <stdint.h>
        struct my_hw { struct pnic_nic *nic; uint32_t status; };
        #define PNIC_HW_NIC(hw) ((hw)->nic)
        #include "pnic_e1000_compat.h"
        const uint32_t pnic_driver_abi = PNIC_DRIVER_ABI;
        static struct my_hw hw;
        int pnic_driver_open(struct pnic_nic *nic) {
            hw.nic = nic;
            hw.status = E1000_READ_REG(&hw, E1000_STATUS);
            E1000_WRITE_REG(&hw, E1000_IMS, E1000_IMS_RXT0);
            E1000_WRITE_REG(&hw, E1000_RDT, E1000_READ_REG(&hw, E1000_RDLEN) / 16 - 1);
            return hw.status & E1000_STATUS_LU ? 0 : -1;
        }
        void pnic_driver_interrupt(struct pnic_nic *nic) { (void)nic; E1000_WRITE_REG(&hw, E1000_ICR, 0xffffffffu); }
        void pnic_driver_close(struct pnic_nic *nic) { (void)nic; }
        """,
        tmp_path,
    )
    r = pseudonic.run(driver=str(lib), count=20, interval="40us", wait_for_cores=True)
    # it opens (STATUS says the link is up) and acknowledges by writing ICR; it never takes a frame
    assert r.error is None and r.interrupts == 20 - raised_with_the_next(r.tx) and r.received == 0
    assert int(r.registers["icr"]) == 0 and r.registers["ims"] == pseudonic.layout.ICR_RXT0


@needs_two_cores
def test_long_frames_a_driver_did_not_enable_are_discarded_and_fail_the_run_saying_why() -> None:
    r = pseudonic.run(driver=WindowE1000, count=20, size=3000, interval="40us", wait_for_cores=True)  # LPE clear
    assert r.stored == 0 and r.register_window["discarded_long"] == 20 and not r.verdict.passed
    assert any(f.code == "long-discarded" and "RCTL.LPE is clear" in str(f) for f in r.verdict.findings)


@needs_two_cores
def test_a_driver_that_refills_with_fresh_dma_buffers_passes_every_case() -> None:
    results = check_driver(RefillsE1000, wait_for_cores=True)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]
    r = pseudonic.run(driver=RefillsE1000, count=600, interval="20us", sanitize=True, wait_for_cores=True)
    assert r.verdict.passed and r.received == 600 and r.ring_violations == {}


class ForgetsToEnable(WindowE1000):
    """Writes RCTL whole without EN (a classic of the teaching labs): the receiver stays off."""

    def open(self, nic: pseudonic.nic.Nic) -> None:
        super().open(nic)
        nic.write_reg(R["RCTL"], pseudonic.layout.RCTL_BAM | pseudonic.layout.RCTL_SECRC)


@needs_two_cores
def test_a_driver_that_leaves_the_receiver_off_is_told_so() -> None:
    r = pseudonic.run(driver=ForgetsToEnable, count=30, interval="40us", wait_for_cores=True)
    assert r.stored == 0 and r.register_window["receiver_off"] == 30 and not r.verdict.passed
    assert [f.code for f in r.verdict.findings if f.fails] == ["receiver-off"]
