"""A plan faster than the device can send at all is refused naming the device's measured limit."""

from __future__ import annotations

import pytest

import pseudonic
from conftest import needs_two_cores
from pseudonic.cli import main
from pseudonic.config import DEFAULT_BATCH
from pseudonic.errors import ConfigError
from pseudonic.limits import check_pace, device_limit_ns


@pytest.mark.parametrize("device", ["e1000", "virtio-net"])
def test_the_device_limit_is_measured_and_grows_with_the_frame(device: str) -> None:
    small, large = device_limit_ns(60, device), device_limit_ns(16384, device)
    assert 0 < small < large  # copying 16 KiB takes longer than 60 B on any machine


def test_a_plan_faster_than_the_device_can_send_is_refused_naming_its_limit() -> None:
    # measured once a process: the run (at the default batch) is refused by this same figure
    limit = device_limit_ns(60, "e1000", DEFAULT_BATCH)
    with pytest.raises(ConfigError, match=rf"fastest here is {limit} ns a frame back to back at this size"):
        pseudonic.run(interval=max(1, limit // 2), count=10, size=60)


@needs_two_cores
def test_a_plan_handed_over_whole_runs_as_it_is_the_device_catching_up() -> None:
    # A hunt's drawn phase or a replay: not the user's rate, so not refused; the device sends back to back.
    limit = device_limit_ns(9000, "e1000")
    plan = pseudonic.Plan.periodic(max(1, limit // 3), 50, 9000)
    result = pseudonic.run(plan=plan, driver="c", buffer_size=16384)
    assert result.sent == 50
    assert result.passed, result.verdict


@pytest.mark.parametrize(
    "options",
    [["--interval", "1ns", "--size", "60"], ["--rate", "100Gbps", "--size", "60"], ["--interval", "1ns", "--count",
                                                                                       "2000000", "--size", "60"]],
    ids=["interval", "rate", "a long run"],
)  # fmt: skip
def test_the_cli_refuses_a_pace_faster_than_the_device_naming_its_limit(
    options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's own traffic options are the user's pace, as run(interval=...) is: refused in one line."""
    limit = device_limit_ns(60, "e1000", DEFAULT_BATCH)
    assert main(["run", *options]) == 2
    err = capsys.readouterr().err
    assert f"fastest here is {limit} ns a frame back to back at this size and --batch {DEFAULT_BATCH}" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def _plan(**traffic: object) -> pseudonic.Plan:
    from pseudonic.traffic import build_plan

    return build_plan(**traffic)  # type: ignore[arg-type]


def test_a_mix_is_refused_on_its_average_naming_each_sizes_limit() -> None:
    each = {n: device_limit_ns(n, "e1000", DEFAULT_BATCH) for n in (64, 594, 1518)}
    mean = (7 * each[64] + 4 * each[594] + each[1518]) / 12  # the simple IMIX's 7:4:1
    with pytest.raises(ConfigError) as e:
        check_pace(_plan(imix=True, rate="200Mpps", count=120), "e1000", DEFAULT_BATCH)
    assert f"its fastest here is {mean:.0f} ns a frame back to back on average over these sizes" in str(e.value)
    assert all(f"{n} B: {ns} ns" in str(e.value) for n, ns in each.items())
    # the same mix at a pace the device keeps on average (slower than its slowest size) runs
    check_pace(_plan(imix=True, interval=f"{max(each.values()) + 1}ns", count=120), "e1000", DEFAULT_BATCH)


def test_bursts_asking_more_a_period_than_the_device_sends_are_refused_but_one_burst_is_not() -> None:
    limit = device_limit_ns(1500, "e1000", DEFAULT_BATCH)
    every = 16 * limit // 2  # 16 frames in half the time the device needs for them
    with pytest.raises(ConfigError, match=r"bursts of 16 every .*: give a longer --every or a smaller --burst"):
        check_pace(_plan(burst=16, every=f"{every}ns", count=64, size="1500"), "e1000", DEFAULT_BATCH)
    check_pace(_plan(burst=16, every=f"{every}ns", count=16, size="1500"), "e1000", DEFAULT_BATCH)  # one burst
    check_pace(_plan(burst=16, every=f"{32 * limit}ns", count=64, size="1500"), "e1000", DEFAULT_BATCH)


def test_poisson_arrivals_are_the_users_own_times_and_are_not_refused() -> None:
    check_pace(_plan(poisson=True, rate="1000Mpps", count=100, seed=1), "e1000", DEFAULT_BATCH)


def test_a_plan_of_many_sizes_counts_each_frame_at_a_measured_size_not_above_it() -> None:
    """A capture's hundreds of sizes are not each measured: a frame counts at the largest of a few measured sizes
    not above it, which the device sends no slower -- so what is refused is too fast even so."""
    from pseudonic.limits import MANY_SIZES, SIZE_GRID

    frames = [bytes(60 + 7 * i) for i in range(MANY_SIZES * 4)]
    with pytest.raises(ConfigError) as e:
        check_pace(_plan(frames=frames, interval="1ns", count=2 * len(frames)), "e1000", DEFAULT_BATCH)
    message = str(e.value)
    assert "each frame counted at the largest of these not above it" in message
    listed = [int(part.split(" B:")[0]) for part in message.split("sizes (")[1].split(";")[0].split(", ")]
    assert listed and set(listed) <= set(SIZE_GRID) and max(listed) <= 60 + 7 * (len(frames) - 1)
