"""A long run's pieces, sans-IO: the streaming histogram, the fold, the record rings, the verifier, the
repeated plan -- each against the whole-array version it stands in for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment
from pseudonic import _engine, analysis
from pseudonic.frames import FrameSet
from pseudonic.layout import IRQ_EDGE, LATE_CATCHUP, TX_STORED, SegmentView, segment_size
from pseudonic.line import Line
from pseudonic.plan import Plan
from pseudonic.stream import SUB_BUCKETS, Deviation, Fold, Histogram, Reader, bucket_low, bucket_of
from pseudonic.upper import STREAM_WINDOW, StreamVerifyLayer, _count

# -- the histogram ------------------------------------------------------------------------------


@given(st.lists(st.integers(0, 2**62), min_size=1, max_size=200))
def test_every_value_lies_in_its_bucket_and_a_bucket_is_at_most_a_128th_of_its_values(values: list[int]) -> None:
    v = np.array(values, dtype=np.int64)
    b = bucket_of(v)
    low = bucket_low(b)
    width = np.int64(1) << np.maximum(b // SUB_BUCKETS - 1, 0)
    assert (low <= v).all() and (v < low + width).all()
    assert (width <= np.maximum(low // SUB_BUCKETS, 1)).all()


def test_buckets_follow_the_values_order() -> None:
    b = bucket_of(np.arange(0, 1 << 20, dtype=np.int64))
    assert (np.diff(b) >= 0).all()
    assert b[:256].tolist() == list(range(256))  # exact below 2 * SUB_BUCKETS


def test_the_c_count_buckets_as_bucket_of_does() -> None:
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.integers(-(2**40), 2**40, 50_000), [0, -1, 1, 255, 256, -256, 2**62]]).astype(np.int64)
    h = Histogram()
    h.add(v)
    pos = np.bincount(bucket_of(v[v >= 0]), minlength=len(h.pos))
    neg = np.bincount(bucket_of(-v[v < 0]), minlength=len(h.neg))
    assert (h.pos == pos).all() and (h.neg == neg).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.5, 3.0), st.integers(-5000, 0))
def test_a_summary_has_summarizes_keys_exact_extremes_and_percentiles_within_a_bucket(
    seed: int, sigma: float, offset: int
) -> None:
    x = (np.random.default_rng(seed).lognormal(7, sigma, 20_000) + offset).astype(np.int64)
    h = Histogram()
    for part in np.array_split(x, 7):  # folded stretch by stretch
        h.add(part)
    got, want = h.summary(), analysis.summarize(x)
    assert got.keys() == want.keys()
    assert (got["min"], got["max"], got["n"]) == (want["min"], want["max"], want["n"])
    assert got["mean"] == pytest.approx(want["mean"])
    for q in ("p50", "p99"):
        rank = {"p50": 50, "p99": 99}[q]
        lower = float(np.percentile(x, rank, method="lower"))
        value = got[q]
        assert value is not None
        assert abs(float(value) - lower) <= max(abs(lower) / SUB_BUCKETS, 1.0) + 0.5


def test_an_empty_histogram_summarizes_as_no_samples() -> None:
    assert Histogram().summary() == analysis.summarize(np.zeros(0))


# -- the fold -----------------------------------------------------------------------------------


def test_deviations_folded_in_stretches_count_as_the_whole_array_does() -> None:
    rng = np.random.default_rng(5)
    planned = np.cumsum(rng.integers(0, 4000, 30_000))
    actual = planned + rng.integers(-300, 300, planned.size) + (rng.random(planned.size) < 0.01) * 20_000
    d = Deviation()
    for a, p in zip(np.array_split(actual, 11), np.array_split(planned, 11), strict=True):
        d.add(a, p)
    got, want = d.result(), analysis.interval_deviation(actual, planned)
    for key in ("within_6_25pct", "outliers", "over_1us", "n", "min", "max"):
        assert got[key] == want[key], key
    assert got["mean"] == pytest.approx(want["mean"])


def _records(view: SegmentView, plan: Plan, total: int, period_ns: int) -> None:
    _engine.write_rdt(view.buffer, view.ring_size - 1)
    _engine.device_run(view.buffer, plan.slots, plan.frames.table, plan.frames.blob, 20_000, 0, Line.make("spin").mode,
                       -1, 0, 0, IRQ_EDGE, 0, LATE_CATCHUP, b"", 0, 0, 1, total, period_ns)  # fmt: skip


def _ring_segment(capacity: int, ring_size: int = 64) -> SegmentView:
    view = SegmentView.create(bytearray(segment_size(ring_size, 2048, capacity)), ring_size, 2048, capacity)
    view.header["records_mask"][0] = capacity - 1
    return view


def test_a_repeated_plan_sends_its_pass_again_each_period_later() -> None:
    one = Plan.periodic(700, 7, 60)
    plan = one.repeated(300, 7 * 700 + 50)  # each pass 50 ns later than the pace alone
    view = plain_segment(ring_size=512, capacity=512)
    _records(view, plan, plan.entries, plan.period_ns)
    tx = view.tx[:300]
    t0 = int(view.header["t0_ns"][0])
    assert int(view.dev["sent"][0]) == 300
    # catch-up keeps the absolute schedule: every kept deadline is the plan's
    assert (tx["due_ns"].astype(np.int64) - t0 == plan.planned_ns(np.arange(300))).all()


def test_records_past_a_ring_go_round_it_and_a_lapped_reader_counts_what_it_lost() -> None:
    plan = Plan.periodic(0, 100, 60, allow_back_to_back=True)
    view = _ring_segment(1024)
    _records(view, plan, 5000, 0)
    assert int(view.dev["sent"][0]) == 5000
    fold = Fold(plan)
    reader = Reader(view, fold, lambda: int(view.header["t0_ns"][0]))
    reader.read(final=True)
    # the writer is 5000 ahead: all but the last 1024 - 1024/8 were (or may have been) written over
    assert fold.lost_records["packets"] == 5000 - 1024 + 128
    read = view.tx[np.arange(5000 - 1024 + 128, 5000) & 1023]
    assert fold.send_time.n == fold.stored == int(np.count_nonzero(read["flags"] & TX_STORED))
    assert fold.device.hist.n == 1024 - 128 - 1  # intervals between the records read


def test_a_reader_that_keeps_up_folds_every_record() -> None:
    plan = Plan.periodic(0, 64, 60, allow_back_to_back=True)
    view = _ring_segment(4096)
    fold = Fold(plan)
    reader = Reader(view, fold, lambda: int(view.header["t0_ns"][0]))
    _records(view, plan, 3000, 0)
    reader.read(final=True)
    assert fold.lost_records["packets"] == 0
    assert fold.device_stalls.result()["max_ns"] >= 0 and fold.device.hist.n == 2999


# -- the verifier -------------------------------------------------------------------------------


def _stamped(frames: FrameSet, frame_of: np.ndarray[Any, Any], seq: int) -> bytes:
    f = bytearray(frames.templates[int(frame_of[seq % len(frame_of)])])
    row = frames.table[int(frame_of[seq % len(frame_of)])]
    _engine.stamp_frame(f, int(row["stamp_off"]), int(row["csum_off"]), seq, 12345 + seq)
    return bytes(f)


FRAMES = FrameSet.of([FrameSet.generated(60).templates[0], FrameSet.generated(1500).templates[0]], stamped=True)
FRAME_OF = np.array([0, 1, 1], dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 199), max_size=300))
def test_the_verifier_counts_as_the_verify_layer_does_within_its_window(order: list[int]) -> None:
    layer = StreamVerifyLayer(FRAMES, FRAME_OF, 200)
    for seq in order:
        layer.deliver(_stamped(FRAMES, FRAME_OF, seq))
    got = layer.report(FRAMES, np.zeros(0), np.zeros(0))
    want = _count(np.array(order, dtype=np.int64), 200, verified=True)
    assert (got.delivered, got.received, got.duplicated, got.reordered, got.corrupted) == (
        want.delivered, want.received, want.duplicated, want.reordered, want.corrupted,
    )  # fmt: skip


def test_a_frame_changed_anywhere_but_its_stamp_is_corrupted_and_explained() -> None:
    layer = StreamVerifyLayer(FRAMES, FRAME_OF, 10)
    good = _stamped(FRAMES, FRAME_OF, 4)
    layer.deliver(good[:-1] + bytes([good[-1] ^ 1]))  # the last payload byte
    layer.deliver(good[:40] + bytes([good[40] ^ 1]) + good[41:])  # the UDP checksum
    layer.deliver(good[:-4])  # short
    layer.deliver(_stamped(FRAMES, FRAME_OF, 10))  # a sequence number never sent
    layer.deliver(good)
    got = layer.report(FRAMES, np.zeros(0), np.zeros(0))
    assert (got.delivered, got.received, got.corrupted) == (5, 1, 4)
    assert got.corruption[0] == "delivery 0 differs from packet 4 from byte 1499"
    assert "4 bytes short of packet 4" in got.corruption[2]


def test_a_delivery_behind_the_window_is_stale_and_fails_as_a_duplicate() -> None:
    layer = StreamVerifyLayer(FRAMES, FRAME_OF, STREAM_WINDOW + 10)
    layer.deliver(_stamped(FRAMES, FRAME_OF, 0))
    layer.deliver(_stamped(FRAMES, FRAME_OF, STREAM_WINDOW + 5))
    layer.deliver(_stamped(FRAMES, FRAME_OF, 0))  # the window has passed it
    got = layer.report(FRAMES, np.zeros(0), np.zeros(0))
    assert (got.received, got.duplicated) == (2, 1)
    assert "more than 1048576 packets after their turn" in got.corruption[0]


def test_a_burst_is_checked_in_order_with_what_came_before() -> None:
    layer = StreamVerifyLayer(FRAMES, FRAME_OF, 10)
    layer.deliver(_stamped(FRAMES, FRAME_OF, 0))
    burst = [_stamped(FRAMES, FRAME_OF, s) for s in (1, 2, 3)]
    blob = np.frombuffer(b"".join(burst), np.uint8)
    lengths = np.array([len(b) for b in burst], dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.uint64)
    layer.deliver_many(blob, offsets, lengths)
    got = layer.report(FRAMES, np.zeros(0), np.zeros(0))
    assert (got.delivered, got.received, got.reordered) == (4, 4, 0)
    assert layer.count() == 4
