"""The pnic fixture, as a project using pseudonic in its own suite would use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DRIVERS_DIR, needs_two_cores
from pseudonic.pytest_plugin import PseudoNic

pytestmark = needs_two_cores
EXAMPLE_DIR = Path(__file__).parent.parent / "examples" / "python_driver"


def test_the_fixture_runs_and_keeps_the_results(pnic: PseudoNic) -> None:
    r = pnic.run("20us", 200, 1500, driver="c")
    assert r.received == r.sent == 200
    assert pnic.results == [r]


def test_a_conforming_driver_passes(pnic: PseudoNic) -> None:
    pnic.assert_conforms("python")


def test_a_driver_that_fails_fails_the_test_with_its_report(pnic: PseudoNic) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        pnic.run("38us", 100, 1500, driver=str(DRIVERS_DIR / "misbehaving.py:RaisingE1000"))
    message = str(failed.value)
    assert "verdict: FAIL: driver exception" in message and "lost / duplicated" in message, "the run's own report"
    assert "RunResult(" not in message


def test_a_driver_that_duplicates_fails_the_test_though_it_never_raised(pnic: PseudoNic) -> None:
    with pytest.raises(pytest.fail.Exception, match="delivered more than once"):
        pnic.run("20us", 600, 1500, driver=str(DRIVERS_DIR / "misbehaving.py:DuplicatingE1000"))


def test_the_readme_example_passes_as_written_with_the_shipped_example_driver(
    pnic: PseudoNic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLE_DIR)
    r = pnic.run("2us", 5000, 1500, driver="mydriver.py:MyDriver", irq="eventfd")
    assert r.received == r.stored and r.interrupts <= r.sent


def test_a_nonconforming_driver_fails_naming_the_case(pnic: PseudoNic) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"fault ce: .* misdelivered of"):
        pnic.assert_conforms(str(DRIVERS_DIR / "broken.py:DeliversErrorsE1000"))


def test_a_case_skipped_for_want_of_transmit_is_no_failure_and_the_device_is_passed_on(
    pnic: PseudoNic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receive-only driver conforms when every case that applies passes; the transmit cases are skipped."""
    from pseudonic import conformance
    from pseudonic.conformance import CaseResult

    asked: dict[str, object] = {}

    def check_driver(driver: str, **kwargs: object) -> list[CaseResult]:
        asked.update(kwargs)
        return [CaseResult("delivery", True, "1000/1000", 0.1),
                CaseResult("transmit", False, "skipped: no transmit entry point", 0.0, skipped=True)]  # fmt: skip

    monkeypatch.setattr(conformance, "check_driver", check_driver)
    pnic.assert_conforms("rx_only.py:RxOnly", device="virtio-net")
    assert asked == {"irq": "spin", "device": "virtio-net", "profile": None}
