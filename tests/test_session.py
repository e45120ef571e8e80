"""A session loads its driver once, as a kernel loads a module, and opens it afresh for every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DRIVERS_DIR, needs_two_cores
from pseudonic.conformance import CASE_NAMES, check_driver
from pseudonic.controller import Session
from pseudonic.errors import ConfigError, DriverLoadError

COUNTED = f"{DRIVERS_DIR / 'counted.py'}:CountedE1000"


@pytest.fixture
def loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the counted driver notes each of its loads in (the node forked from us inherits the variable)."""
    path = tmp_path / "loads"
    path.write_text("")
    monkeypatch.setenv("PSEUDONIC_TEST_LOADS", str(path))
    return path


def _loads(path: Path) -> list[str]:
    return path.read_text().split()


@needs_two_cores
def test_runs_of_a_session_share_one_load_and_one_node(loads: Path) -> None:
    with Session(COUNTED, wait_for_cores=True) as s:
        results = [s.run("30us", 200, irq=irq) for irq in ("spin", "eventfd", "signal", "spin")]
    assert [r.passed for r in results] == [True] * 4
    assert [r.received for r in results] == [200] * 4
    assert len(_loads(loads)) == 1 and s.loads == 1
    assert {r.config["driver"] for r in results} == {"counted"}


@needs_two_cores
def test_a_driver_that_fails_a_run_is_loaded_again_for_the_next() -> None:
    raising = f"{DRIVERS_DIR / 'misbehaving.py'}:RaisingE1000"
    # 1000 packets: ten handler runs even when a stall of the machine lets the driver take many in one
    with Session(raising, wait_for_cores=True) as s:
        first = s.run("30us", 1000)
        second = s.run("30us", 1000)
    assert first.error is not None and first.error["exception"] == "ZeroDivisionError"
    assert second.error is not None and s.loads == 2


@needs_two_cores
def test_check_driver_loads_the_driver_once_for_all_its_cases(loads: Path) -> None:
    results = check_driver(COUNTED, wait_for_cores=True)
    assert [c.name for c in results] == list(CASE_NAMES)
    assert all(c.passed for c in results), [c.detail for c in results if not c.passed]
    assert len(_loads(loads)) == 1


def test_a_driver_that_cannot_load_fails_before_any_case(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no such hardware')\n")
    with pytest.raises(DriverLoadError, match="no such hardware"):
        check_driver(str(broken), wait_for_cores=True)


def test_a_session_runs_only_while_open() -> None:
    s = Session("python")
    with pytest.raises(ConfigError, match="not open"):
        s.run("30us", 10)
