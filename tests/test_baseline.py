"""The kernel baseline: a real measurement over a veth pair, and teardown whatever goes wrong."""

from __future__ import annotations

import os
import subprocess

import pytest

from pseudonic.bench import baseline
from pseudonic.bench.search import Point

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the kernel baseline needs root: it creates network namespaces and a veth pair"
)


def ours() -> list[str]:
    """This process's namespaces, and any veth of ours left in the root namespace."""
    from pyroute2 import IPRoute

    mine = [n for n in baseline.our_namespaces() if n.startswith(f"{baseline.NETNS_PREFIX}{os.getpid()}-")]
    with IPRoute() as ipr:
        links = [link.get("ifname") for link in ipr.get_links()]
    return mine + [name for name in links if name and name.startswith("pnb")]


@pytest.fixture
def usable() -> None:
    reason = baseline.baseline_available()
    if reason is not None:
        pytest.skip(reason)
    assert ours() == []


def test_not_root_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in (baseline.baseline_available() or "")
    assert set(baseline.measure_baseline(count=10)) == {"skipped"}


def test_cpu_mask() -> None:
    assert [baseline._cpu_mask(c) for c in (0, 1, 5, 31, 32, 40)] == [
        "1",
        "2",
        "20",
        "80000000",
        "1,00000000",
        "100,00000000",
    ]


@needs_root
def test_quick_measurement(usable: None) -> None:
    seen: list[tuple[int, Point]] = []
    result = baseline.measure_baseline(count=500, intervals=[20_000, 5_000], progress=lambda i, p: seen.append((i, p)))
    assert "skipped" not in result, result
    assert [i for i, _ in seen] == [0, 1]
    assert [p["interval_ns"] for p in result["points"]] == [5_000, 20_000]
    for p in result["points"]:
        assert 0.0 <= p["success_rate"] <= 1.0
        assert p["gbps"] >= 0.0
    assert result["size"] == 1500 and result["count"] == 500
    assert "1500 B" in result["method"] and "1472" in result["method"]
    assert isinstance(result["note"], str)
    if result["min_full_success_interval_ns"] is not None:
        assert result["gbps"] > 0 and result["pps"] > 0
        assert result["achieved_interval_ns"] >= result["min_full_success_interval_ns"] * 0.9
    assert ours() == []


@needs_root
def test_teardown_when_the_measurement_raises(usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> baseline._Shot:
        assert len(ours()) == 2, "both namespaces exist while measuring"
        raise RuntimeError("measurement failed")

    monkeypatch.setattr(baseline, "_measure_once", broken)
    with pytest.raises(RuntimeError, match="measurement failed"):
        baseline.measure_baseline(count=10, intervals=[10_000])
    assert ours() == []


@needs_root
def test_teardown_when_a_child_dies(usable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def dying_sender(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(baseline, "_sender", dying_sender)
    with pytest.raises(RuntimeError, match=r"baseline-sender died \(exit code 3\)"):
        baseline.measure_baseline(count=10, intervals=[10_000])
    assert ours() == []


@needs_root
def test_sweep_removes_only_dead_owners(usable: None) -> None:
    from pyroute2 import netns

    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = f"{baseline.NETNS_PREFIX}{gone.pid}-abcdef-rx"
    live = f"{baseline.NETNS_PREFIX}{os.getpid()}-abcdef-rx"
    netns.create(stale)
    netns.create(live)
    try:
        removed = baseline.sweep_stale_namespaces()
        assert stale in removed and live not in removed
        assert live in netns.listnetns() and stale not in netns.listnetns()
    finally:
        for name in (stale, live):
            if name in netns.listnetns():
                netns.remove(name)
    assert ours() == []
