"""Profiles: xv6's network lab as a setting (--profile xv6-lab) for run and check-driver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import needs_two_cores
from pseudonic.cli import main
from pseudonic.conformance import XV6_CASE_NAMES, check_driver
from pseudonic.errors import ConfigError
from pseudonic.profiles import PROFILES, profile


def test_the_xv6_lab_profile_is_what_the_lab_uses() -> None:
    p = profile("xv6-lab").run
    assert (p["ring_size"], p["buffer_size"], p["irq_mode"]) == (16, 2048, "level")
    assert p["transmit"] and p["size"] == 60


def test_an_unknown_profile_names_the_ones_there_are() -> None:
    with pytest.raises(ConfigError, match="xv6-lab"):
        profile("linux")
    assert set(PROFILES) == {"xv6-lab"}


@needs_two_cores
def test_run_with_the_profile_takes_its_setting_and_what_the_user_gives_wins(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["run", "--profile", "xv6-lab", "--wait", "-q", "--json", str(out)]) == 0
    cfg = json.loads(out.read_text())["config"]
    assert (cfg["ring_size"], cfg["buffer_size"], cfg["irq_mode"], cfg["transmit"], cfg["count"], cfg["size"]) == (
        16, 2048, "level", 100, 100, 60
    )  # fmt: skip
    assert main(["run", "--profile", "xv6-lab", "--ring-size", "32", "--count", "20", "--rate", "20kpps",
                 "--wait", "-q", "--json", str(out)]) == 0  # fmt: skip
    cfg = json.loads(out.read_text())["config"]
    assert (cfg["ring_size"], cfg["count"], cfg["interval_ns"], cfg["buffer_size"]) == (32, 20, 50_000, 2048)


@needs_two_cores
@pytest.mark.parametrize("driver", ["python", "c"])
def test_the_reference_drivers_pass_the_xv6_lab_cases(driver: str) -> None:
    results = check_driver(driver, profile="xv6-lab", wait_for_cores=True)
    assert tuple(r.name for r in results) == XV6_CASE_NAMES
    assert [r.name for r in results if not r.passed] == [], [r.detail for r in results if not r.passed]


def test_the_xv6_lab_profile_is_e1000s() -> None:
    with pytest.raises(ConfigError, match="e1000"):
        check_driver("python", profile="xv6-lab", device="virtio-net")
