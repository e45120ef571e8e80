"""pytest integration: the ``pnic`` fixture, for testing a driver in a project's own suite.

Installed with pseudonic (entry point ``pytest11``), so any test can ask for it::

    def test_my_driver_takes_everything(pnic):
        r = pnic.run("10us", 2000, 1500, driver="mydriver.py:MyDriver")
        assert r.received == r.sent

    def test_my_driver_conforms(pnic):
        pnic.assert_conforms("mydriver.py:MyDriver", irq="signal")

The fixture fails the test if a run left a shared-memory segment or a node
process behind, and its messages say what was measured, not just that an
assertion failed.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest

from . import segment
from .result import RunResult


class PseudoNic:
    """What the ``pnic`` fixture gives a test: runs, and the conformance suite as an assertion."""

    def __init__(self) -> None:
        self.results: list[RunResult] = []

    def run(self, *args: Any, **kwargs: Any) -> RunResult:
        """:func:`pseudonic.run`; a run whose driver failed fails the test with the run's own report."""
        from .controller import run

        result = run(*args, **kwargs)
        self.results.append(result)
        if result.error is not None:
            pytest.fail(f"the driver failed: {result.error}", pytrace=False)
        return result

    def assert_conforms(self, driver: str | type, *, irq: str = "spin") -> None:
        """Run ``pseudonic check-driver``'s cases; fail the test naming every case that failed."""
        from .conformance import check_driver

        failed = [f"{c.name}: {c.detail}" for c in check_driver(driver, irq=irq) if not c.passed]
        if failed:
            pytest.fail("driver does not conform:\n  " + "\n  ".join(failed), pytrace=False)


@pytest.fixture
def pnic() -> Iterator[PseudoNic]:
    """A pseudo-NIC for this test; nothing of its runs may outlive it."""
    before = set(segment.existing())
    yield PseudoNic()
    left = set(segment.existing()) - before
    assert not left, f"a run left shared-memory segments behind: {sorted(left)}"
    assert multiprocessing.active_children() == [], "a run left a node process behind"
