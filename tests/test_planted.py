"""Issue 10: every bug class, planted in a copy of a reference driver, is caught -- by check-driver, and by one
sanitized run with a fault plan that targets it.

The Python drivers are :mod:`drivers.planted` (the reference path in steps, one step changed each). The C ones
are ``drivers/e1000.c`` with one planted change: text replaced, the replaced text asserted found as often as
stated, built with warnings as errors. Each run waits for its cores (other test sessions share them).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

import pseudonic
from conftest import needs_two_cores
from drivers.planted import BUGS, C_PLANTS, RUN, Bug, SteppedE1000, build_c, not_caught
from pseudonic.conformance import CASE_NAMES, check_driver

CC = shutil.which("cc")


@pytest.fixture(scope="module")
def c_driver(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Bug], str]:
    """The C driver with a bug planted, built once per bug for the module."""
    if CC is None:
        pytest.skip("needs a C compiler (cc) to build the planted C drivers")
    built: dict[int, str] = {}
    where = tmp_path_factory.mktemp("planted")

    def get(bug: Bug) -> str:
        if bug.number not in built:
            built[bug.number] = str(build_c(bug, where / f"libplanted{bug.number}.so", CC))
        return built[bug.number]

    return get


def driver_for(lang: str, bug: Bug, c_driver: Callable[[Bug], str]) -> str | type:
    return bug.python if lang == "python" else c_driver(bug)


PARAMS = [
    pytest.param(lang, bug, id=f"{lang}-{bug.number}-{bug.name.replace(' ', '-')}")
    for bug in BUGS
    for lang in ("python", "c")
    if lang == "python" or bug.number in C_PLANTS
]


def test_every_bug_class_is_planted_in_python_and_names_real_cases() -> None:
    assert [b.number for b in BUGS] == list(range(1, 14))
    assert len({b.python for b in BUGS}) == len(BUGS) and all(b.python is not SteppedE1000 for b in BUGS)
    assert all(name in CASE_NAMES for b in BUGS for name in b.cases)


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c", SteppedE1000], ids=["python", "c", "stepped"])
def test_the_reference_drivers_pass_every_check_driver_case(driver: str | type) -> None:
    """The references -- and the stepwise copy the Python bugs are planted in -- pass: what a planted driver
    fails is its bug's doing."""
    results = check_driver(driver, wait_for_cores=True)
    assert [r.name for r in results] == list(CASE_NAMES)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
@pytest.mark.parametrize(("lang", "bug"), PARAMS)
def test_check_driver_catches_the_planted_bug(lang: str, bug: Bug, c_driver: Callable[[Bug], str]) -> None:
    results = check_driver(driver_for(lang, bug, c_driver), wait_for_cores=True)
    assert not_caught(bug, results) == [], {r.name: r.detail for r in results if r.name in bug.cases}
    assert not any("Traceback" in r.detail for r in results)


@needs_two_cores
@pytest.mark.parametrize(("lang", "bug"), PARAMS)
def test_a_sanitized_run_with_a_targeted_fault_plan_catches_it(
    lang: str, bug: Bug, c_driver: Callable[[Bug], str]
) -> None:
    r = pseudonic.run(driver=driver_for(lang, bug, c_driver), sanitize=True, wait_for_cores=True, **RUN, **bug.run)
    assert r.verdict is not None and not r.passed
    codes = {f.code for f in r.verdict.reasons}
    assert set(bug.codes) <= codes, (r.verdict.line(), r.faults, r.ring_violations)
    if bug.also is not None:
        assert bug.also(r), (r.verdict.line(), r.faults, r.ring_violations, r.error)
