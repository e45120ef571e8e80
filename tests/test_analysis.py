"""Figures from records: precision, summaries, which raise woke which run (causes: test_timing.py)."""

from __future__ import annotations

import numpy as np

from pseudonic.analysis import interval_deviation, mpps_at, summarize, throughput_gbps, throughput_mpps, woken_packet
from pseudonic.layout import IRQ_RECORD, RAISE_RECORD

INTERVAL = 38_000


def test_a_perfect_run_is_all_within_the_band() -> None:
    due = np.arange(10, dtype=np.int64) * INTERVAL
    d = interval_deviation(due + 210, due)
    assert d["within_6_25pct"] == 1.0 and d["outliers"] == 0 and d["max"] == 0


def test_summaries_keep_every_sample() -> None:
    s = summarize(np.array([1, 2, 3, 1_000_000]))
    assert s["max"] == 1_000_000 and s["n"] == 4 and s["min"] == 1


def test_each_delivery_is_put_down_to_the_raise_that_woke_the_run_that_made_it() -> None:
    raises = np.zeros(3, RAISE_RECORD)
    raises["packet"] = [0, 4, 9]
    irqs = np.zeros(3, IRQ_RECORD)
    irqs["doorbell"] = [1, 3, 0]  # the second run saw the doorbell at 3 (raise 2); the third has no raise on record
    irqs["delivered"] = [2, 2, 5]  # the first run made deliveries 0-1, the second none, the third 2-4
    assert woken_packet(irqs, raises, 6).tolist() == [0, 0, -1, -1, -1, -1]
    irqs["doorbell"][2] = 2
    assert woken_packet(irqs, raises, 5).tolist() == [0, 0, 4, 4, 4]


def test_mpps_is_the_packets_taken_over_the_span_the_gbps_uses() -> None:
    # 5000 packets of 64 B taken over 2 ms: 2.5 million a second, 1.28 Gbit/s
    start, end = 7_000_000_000, 7_002_000_000
    assert throughput_mpps(5000, start, end) == 2.5
    assert throughput_gbps(5000 * 64, start, end) == 1.28
    assert mpps_at(throughput_gbps(5000 * 64, start, end), 64) == 2.5  # the same rate, from the Gbps and the size


def test_no_span_no_rate_and_no_size_no_packet_rate() -> None:
    assert throughput_mpps(10, 5, 5) == 0.0 and throughput_mpps(10, 9, 5) == 0.0 and throughput_mpps(0, 0, 100) == 0.0
    assert mpps_at(6.3, 0) is None
    assert mpps_at(6.3, 1500) == 0.525  # the paper's 1.5 KB figure, as packets
