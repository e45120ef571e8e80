"""Shared fixtures: every test must leave no segment and no node process behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pseudonic import _engine, segment
from pseudonic.bench.baseline import our_namespaces
from pseudonic.layout import IRQ_EDGE, LATE_CATCHUP, TX_RAISED, SegmentView, segment_size
from pseudonic.line import Line
from pseudonic.node import descendants
from pseudonic.plan import Plan


def leftover_segments() -> list[str]:
    """Segments that are ours to account for: all but those of another live process tree.

    A second test session on the same machine (a developer's, while this one runs) makes and
    removes its own segments; a segment whose creator is dead, or is this session or one of its
    children, is this session's business.
    """
    return segment.accountable({os.getpid(), *descendants(os.getpid())})


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    before, namespaces = leftover_segments(), our_namespaces()
    yield
    assert leftover_segments() == before, "a run left a shared-memory segment behind"
    assert our_namespaces() == namespaces, "a run left a network namespace behind"
    assert multiprocessing.active_children() == [], "a run left a node process behind"


@pytest.fixture
def pseudonic_cli() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -m pseudonic ARGS``; one still running when the test ends (it failed before
    reaping it) is stopped as a user would, with SIGTERM, so it cannot hold the cores or leave its
    segment behind for the tests after it."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-m", "pseudonic", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


def raised_with_the_next(tx: np.ndarray[Any, Any]) -> int:
    """Packets whose raise waited for the next packet's: overdue packets go back to back, and the device raises
    once for a batch of them (``_engine/pnic_send.c``); each record of a batch has the batch's raise time."""
    raised = (tx["flags"] & TX_RAISED) != 0
    end = tx["end_ns"].astype(np.int64)
    return int(np.count_nonzero(raised[:-1] & raised[1:] & (end[:-1] == end[1:])))


needs_two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="a run needs two cores: one for each node"
)


def run_undisturbed(**kwargs: Any) -> Any:
    """``pseudonic.run(**kwargs)``, run again (at most 3 times more) while the device dropped frames in a run
    the machine disturbed: a node kept from its core longer than check-driver's DISTURBED_NS, as
    check-driver does. Drops with no such evidence are returned as they are, for the test to judge."""
    import pseudonic
    from pseudonic.conformance import DISTURBED_NS, DISTURBED_RERUNS, disturbed_ns

    r = pseudonic.run(**kwargs)
    for _ in range(DISTURBED_RERUNS):
        if not (r.missed and disturbed_ns(r) > DISTURBED_NS):
            break
        r = pseudonic.run(**kwargs)
    return r


def plain_segment(ring_size: int = 8, buf_size: int = 2048, capacity: int = 64) -> SegmentView:
    """A segment on a plain bytearray: the ring rules without processes or clocks (sans-IO)."""
    return SegmentView.create(bytearray(segment_size(ring_size, buf_size, capacity)), ring_size, buf_size, capacity)


def run_device(
    view: SegmentView, plan: Plan, irq_mode: int = IRQ_EDGE, late: int = LATE_CATCHUP, batch: int = 1
) -> np.ndarray[Any, Any]:
    """The device's send loop over ``plan``, in this process, on ``view`` (no driver: raises pile up); its
    per-packet records."""
    _engine.device_run(view.buffer, plan.slots, plan.frames.table, plan.frames.blob, 20_000, 0,
                       Line.make("spin").mode, -1, 0, 0, irq_mode, 0, late, b"", 0, 0, batch)  # fmt: skip
    return view.tx[: int(view.dev["sent"][0])].copy()


DRIVERS_DIR = Path(__file__).parent / "drivers"
