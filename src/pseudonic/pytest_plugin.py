"""pytest integration: the ``pnic`` fixture, for testing a driver in a project's own suite.

Installed with pseudonic (entry point ``pytest11``), so any test can ask for it::

    def test_my_driver_takes_everything(pnic):
        r = pnic.run("10us", 2000, 1500, driver="mydriver.py:MyDriver")
        assert r.received == r.stored   # device drops (MPC) are the pace's, not a bug

    def test_my_driver_conforms(pnic):
        pnic.assert_conforms("mydriver.py:MyDriver", irq="signal")

``pnic.run`` fails the test when the run's verdict fails (pass ``max_missed``
to make device drops count too), with the run's own summary as the message.
The fixture fails the test if a run left a shared-memory segment or any
process behind -- a node, or anything a driver forked.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest

from . import segment
from .node import descendants
from .result import RunResult


def report_text(result: RunResult) -> str:
    """The run's summary and verdict as ``pseudonic run`` prints them, as plain text."""
    from rich.console import Console

    from .cli import render

    buf = io.StringIO()
    render(result, Console(file=buf, width=120, no_color=True, highlight=False))
    return buf.getvalue()


class PseudoNic:
    """What the ``pnic`` fixture gives a test: runs, and the conformance suite as an assertion."""

    def __init__(self) -> None:
        self.results: list[RunResult] = []

    def run(self, *args: Any, **kwargs: Any) -> RunResult:
        """:func:`pseudonic.run`; a run whose verdict fails fails the test with the run's own report."""
        from .controller import run

        result = run(*args, **kwargs)
        self.results.append(result)
        if not result.passed:
            pytest.fail("pseudonic run failed its verdict:\n" + report_text(result), pytrace=False)
        return result

    def assert_conforms(
        self, driver: str | type, *, irq: str = "spin", device: str = "e1000", profile: str | None = None
    ) -> None:
        """Run ``pseudonic check-driver``'s cases (``device``'s, or ``profile``'s); fail the test naming every case
        that failed. A case skipped (no transmit entry point) is not a failure."""
        from .conformance import check_driver

        results = check_driver(driver, irq=irq, device=device, profile=profile)
        failed = [f"{c.name}: {c.detail}" for c in results if not (c.passed or c.skipped)]
        if failed:
            pytest.fail("driver does not conform:\n  " + "\n  ".join(failed), pytrace=False)


@pytest.fixture
def pnic() -> Iterator[PseudoNic]:
    """A pseudo-NIC for this test; nothing of its runs may outlive it."""
    procs = set(descendants(os.getpid()))
    before = set(segment.accountable({os.getpid(), *procs}))
    yield PseudoNic()
    left = set(segment.accountable({os.getpid(), *descendants(os.getpid())})) - before
    assert not left, f"a run left shared-memory segments behind: {sorted(left)}"
    assert multiprocessing.active_children() == [], "a run left a node process behind"
    extra = sorted(set(descendants(os.getpid())) - procs)
    assert not extra, f"a run left processes behind (a driver's children?): pids {extra}"
