"""Drivers written against the register window, end to end: the FCS kept and taken off, errors counted by the
statistics registers, ICS, and writes to registers the model does not have."""

from __future__ import annotations

import pseudonic
from conftest import needs_two_cores
from drivers.window_e1000 import KeepsFcs, WindowE1000
from pseudonic.conformance import check_driver


@needs_two_cores
def test_a_driver_that_keeps_the_fcs_and_counts_by_the_statistics_passes_every_case() -> None:
    results = check_driver(WindowE1000, wait_for_cores=True)
    assert [r.name for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
def test_a_frame_delivered_with_its_fcs_is_named_so() -> None:
    r = pseudonic.run(driver=KeepsFcs, count=50, interval="40us", wait_for_cores=True)
    assert r.corrupted == 50 and not r.verdict.passed
    assert r.register_window["rctl"] & pseudonic.layout.RCTL_SECRC == 0
    assert "with its FCS still on" in r.corruption[0] and "length -= 4" in r.corruption[0]


class WritesTransmitRegisters(WindowE1000):
    def open(self, nic: pseudonic.nic.Nic) -> None:
        super().open(nic)
        nic.write_reg(0x3818, 0)  # TDT: there is no transmit ring in the model


@needs_two_cores
def test_writes_to_registers_the_model_lacks_are_reported_and_fail_a_sanitized_run() -> None:
    plain = pseudonic.run(driver=WritesTransmitRegisters, count=20, interval="40us", wait_for_cores=True)
    assert plain.verdict.passed and plain.register_window["unmodelled_writes"] == 1
    assert plain.register_window["first_unmodelled"] == 0x3818
    assert any(f.code == "unmodelled-register" and not f.fails for f in plain.verdict.findings)
    sanitized = pseudonic.run(driver=WritesTransmitRegisters, count=20, interval="40us", sanitize=True,
                              wait_for_cores=True)  # fmt: skip
    assert not sanitized.verdict.passed and "0x3818" in str(sanitized.verdict.reasons[0])
