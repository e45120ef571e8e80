"""Figures from a run's records. Nothing is dropped: every sample counts.

Interval precision follows the paper's E2: the interval between successive
interrupt-handler entries on the driver node, against the interval the
schedule asked for between the packets that raised them. Each node's spin
loop notes its longest gap between two clock reads (hwlatdetect style); a
gap over ``STALL_NS`` is the machine taking the core away, and the result
counts them so that a deviation can be told apart from one the tool made
(:mod:`pseudonic.timing` names the cause of each).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The paper's E2 band: all intervals within +-6.25 % of 38 us.
PRECISION_BAND = 0.0625
#: A gap this long between two clock reads of a spinning loop is a stall of the machine (hwlatdetect's default).
STALL_NS = 10_000


def summarize(values: np.ndarray[Any, Any]) -> dict[str, float | int | None]:
    """min, mean, p50, p99, max of ``values`` (ns), all samples kept."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"min": None, "mean": None, "p50": None, "p99": None, "max": None, "n": 0}
    return {
        "min": int(v.min()),
        "mean": float(v.mean()),
        "p50": float(np.percentile(v, 50)),
        "p99": float(np.percentile(v, 99)),
        "max": int(v.max()),
        "n": int(v.size),
    }


def woken_by(
    irqs: np.ndarray[Any, Any], raises: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Which raise woke each handler run: the one that rang the doorbell it saw.

    Returns a mask of the runs whose raise is on record, and for those runs the raise's index.
    """
    woke = irqs["doorbell"].astype(np.int64) - 1
    known = (woke >= 0) & (woke < len(raises))
    return known, woke[known]


def woken_packet(irqs: np.ndarray[Any, Any], raises: np.ndarray[Any, Any], deliveries: int) -> np.ndarray[Any, Any]:
    """Per delivery: the schedule entry whose raise woke the handler run that made it (-1: not known).

    Each handler run's record holds the deliveries made when it returned, so delivery k was made by the
    first run that returned with more than k.
    """
    out = np.full(deliveries, -1, dtype=np.int64)
    if not len(irqs) or not deliveries:
        return out
    known, raise_of = woken_by(irqs, raises)
    packet = np.full(len(irqs), -1, dtype=np.int64)
    packet[known] = raises["packet"][raise_of].astype(np.int64)
    run = np.searchsorted(irqs["delivered"].astype(np.int64), np.arange(deliveries), side="right")
    inside = run < len(irqs)
    out[inside] = packet[run[inside]]
    return out


def handler_entries(
    irqs: np.ndarray[Any, Any], raises: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per handler run whose raise is on record: its entry time, and the packet that raised the doorbell it saw."""
    known, raise_of = woken_by(irqs, raises)
    return irqs["entry_ns"][known], raises["packet"][raise_of].astype(np.int64)


def interval_deviation(actual_ns: np.ndarray[Any, Any], due_ns: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Deviation of successive intervals of ``actual_ns`` from those of ``due_ns``."""
    actual = np.diff(np.asarray(actual_ns, dtype=np.int64))
    expected = np.diff(np.asarray(due_ns, dtype=np.int64))
    dev = actual - expected
    out: dict[str, Any] = summarize(dev)
    paced = expected > 0
    if dev.size == 0 or not paced.any():
        out.update(within_6_25pct=None, outliers=None, over_1us=None)
        return out
    inside = np.abs(dev[paced]) <= PRECISION_BAND * expected[paced]
    out["within_6_25pct"] = float(inside.mean())
    out["outliers"] = int((~inside).sum())
    out["over_1us"] = int((np.abs(dev) > 1000).sum())
    return out


def stalls(gaps_ns: np.ndarray[Any, Any]) -> dict[str, int]:
    g = np.asarray(gaps_ns, dtype=np.int64)
    return {"over_10us": int((g > STALL_NS).sum()), "max_ns": int(g.max()) if g.size else 0}


def throughput_gbps(received_bytes: int, start_ns: int, end_ns: int) -> float:
    """The paper's E3b: bytes taken over the time the sends took, in Gbit/s."""
    span = end_ns - start_ns
    return 8.0 * received_bytes / span if span > 0 else 0.0


def throughput_mpps(received_packets: int, start_ns: int, end_ns: int) -> float:
    """Packets taken over the same span as :func:`throughput_gbps`, in millions a second (Mpps).

    The figure driver authors ask for first (DPDK, ixy, MoonGen print it before Gbps): at small
    frames the per-packet cost, not the bytes, sets the limit. Packets per ns are Gpps, so x 1000.
    """
    span = end_ns - start_ns
    return 1000.0 * received_packets / span if span > 0 else 0.0


def mpps_at(gbps: float, frame_bytes: float) -> float | None:
    """The packet rate (Mpps) that ``gbps`` is at frames of ``frame_bytes``: Gbps / (8 x bytes) is Gpps.

    Exact where every frame has that size (a periodic plan of one size); a mean frame size gives the
    mean rate. None where there is no frame size to divide by (nothing was counted).
    """
    if frame_bytes <= 0:
        return None
    return 1000.0 * gbps / (8.0 * frame_bytes)
