"""Packets due back to back are raised for in batches, as a NIC writes descriptors back in groups (SDM 13.4.29
WTHRESH) and moderates its interrupts: the device's send loop on a plain segment, no driver (sans-IO)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment, run_device
from pseudonic import _engine
from pseudonic.frames import FrameSet
from pseudonic.layout import ICR_RXT0, RXD_STAT_DD, SLOT_SPURIOUS, TX_RAISED, TX_STORED, SegmentView
from pseudonic.plan import Plan
from pseudonic.schedule import from_offsets, periodic


def ready(ring: int = 64) -> SegmentView:
    view = plain_segment(ring_size=ring, capacity=ring)
    _engine.write_rdt(view.buffer, ring - 1)
    _engine.write_mask(view.buffer, "ims", ICR_RXT0)
    return view


def plan_of(slots: np.ndarray[Any, Any]) -> Plan:
    return Plan.make(slots, FrameSet.generated(64), {"kind": "schedule"})


@pytest.mark.parametrize(("batch", "raises"), [(1, 12), (4, 3), (5, 3), (16, 1)])
def test_packets_due_at_once_raise_once_a_batch(batch: int, raises: int) -> None:
    view = ready()
    tx = run_device(view, plan_of(periodic(12, 0)), batch=batch)
    assert int(view.line["doorbell"][0]) == raises
    assert (tx["flags"] & (TX_STORED | TX_RAISED) == TX_STORED | TX_RAISED).all()
    # Each packet's own send time; the batch's raise time for all its packets.
    start, end = tx["start_ns"].astype(np.int64), tx["end_ns"].astype(np.int64)
    assert (np.diff(start) >= 0).all() and (end >= start).all()
    groups = [list(range(k, min(k + batch, 12))) for k in range(0, 12, batch)]
    assert [sorted(set(end[g].tolist())) for g in groups] == [[int(end[g[-1]])] for g in groups]
    # Every descriptor written back, and counted, by the end.
    ring = view.ring
    assert (ring["status"][:12] & RXD_STAT_DD).all() and int(view.dev["written"][0]) == 12


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([0, 0, 0, 200, 2_000, 20_000]), min_size=2, max_size=40), st.integers(1, 8))
def test_a_raise_waits_for_the_next_only_when_that_was_due_before_this_began(gaps: list[int], batch: int) -> None:
    view = ready()
    due = np.cumsum([0, *gaps])
    tx = run_device(view, plan_of(from_offsets(due.tolist())), batch=batch)
    t0 = int(view.header["t0_ns"][0])
    start, end = tx["start_ns"].astype(np.int64), tx["end_ns"].astype(np.int64)
    together = np.flatnonzero(end[:-1] == end[1:])
    assert (t0 + due[together + 1] <= start[together]).all()
    # no batch longer than asked
    run = 1
    for same in (end[:-1] == end[1:]).tolist():
        run = run + 1 if same else 1
        assert run <= batch
    assert int(view.line["doorbell"][0]) == len(tx) - together.size


def test_a_faults_entry_is_never_batched() -> None:
    view = ready()
    slots = periodic(9, 0)
    slots["flags"][4] |= SLOT_SPURIOUS
    tx = run_device(view, plan_of(slots), batch=8)
    end = tx["end_ns"].astype(np.int64)
    # 0..3 wait for 3, whose next (the spurious raise) is not batched; 4 raises alone; 5..8 after it
    assert end[3] != end[4] != end[5] and len(set(end[:4].tolist())) == 1 and len(set(end[5:].tolist())) == 1
    assert int(view.line["doorbell"][0]) == 3
