"""What the driver transmitted, judged from the transmitter's records (pure: no I/O).

The host hands the driver's transmit entry frames 0, 1, 2, ... of the run's transmit order, each
stamped with its number and the time it was handed (``hosts/tx_feed.py``, ``pnic_chost.c``). The
device takes them off the driver's transmit ring and keeps one record per frame
(``layout.TXV_RECORD``: the stamp's number, whether the frame was byte for byte the one handed,
when it was taken; ``_engine/pnic_e1000_tx.c``). From those records alone: every frame the driver
accepted must reach the wire once, in the order it was handed, intact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import analysis
from .layout import TXV_INTACT, TXV_NO_EOP, TXV_NO_FCS, TXV_RECORD

#: a record whose frame named no frame of the order
NO_SEQ = 0xFFFFFFFF


@dataclass(frozen=True)
class TransmitAccount:
    """The transmit side of a run: what was asked, handed, taken, and what went wrong with it."""

    #: frames the run had to hand the driver
    asked: int
    #: frames the driver's transmit accepted
    handed: int
    #: calls it refused because its ring was full (each frame was offered again)
    refused: int
    #: frames the device took off the ring
    taken: int
    #: of those, byte for byte a frame handed, the first time it was taken
    intact: int
    #: frames handed that the device never took
    lost: int
    #: frames taken more than once (the extra takes)
    duplicated: int
    #: frames taken after a frame handed later
    reordered: int
    #: frames taken that were not the frame they name (or named none)
    corrupted: int
    #: frames whose descriptors ran out without EOP
    unfinished: int
    #: frames sent without CMD.IFCS (no FCS on the wire)
    no_fcs: int
    #: good octets the device counted (GOTC)
    octets: int
    #: octets over the span from the first frame handed to the last taken, in Gbps
    throughput_gbps: float
    #: TCTL.EN was set when the run ended
    transmitter_on: bool = True
    #: per frame taken intact: taken - handed (ns), summarised
    latency_ns: dict[str, Any] = field(default_factory=dict)
    #: the first frames lost, duplicated, reordered or corrupted, for the summary
    first: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def account(
    records: np.ndarray[Any, Any], asked: int, handed: int, refused: int, octets: int, transmitter_on: bool = True
) -> TransmitAccount:
    """Judge the transmitter's records against the order the frames were handed in."""
    if records.dtype != TXV_RECORD:
        raise TypeError("records must be layout.TXV_RECORD")
    seq = records["seq"].astype(np.int64)
    flags = records["flags"]
    unfinished = int(np.count_nonzero(flags & TXV_NO_EOP))
    named = (seq != NO_SEQ) & (seq < handed) & ((flags & TXV_NO_EOP) == 0)
    intact_flag = (flags & TXV_INTACT) != 0
    # The first take of each frame counts; a later take of it is a duplicate.
    _, first_take = np.unique(np.where(named, seq, -1), return_index=True)
    first_take = first_take[named[first_take]] if first_take.size else first_take
    is_first = np.zeros(len(records), bool)
    is_first[first_take] = True
    duplicated = np.flatnonzero(named & ~is_first)
    corrupted = np.flatnonzero(((flags & TXV_NO_EOP) == 0) & (~named | (is_first & ~intact_flag)))
    # Out of order: a first take whose number is below one taken before it.
    firsts = np.flatnonzero(is_first)
    order = seq[firsts]
    before = np.maximum.accumulate(order) if order.size else order
    late = firsts[1:][order[1:] < before[:-1]] if order.size > 1 else np.zeros(0, np.int64)
    seen = np.zeros(handed, bool)
    seen[seq[firsts]] = True
    lost = np.flatnonzero(~seen)
    good = is_first & intact_flag
    first = {}
    for what, where, values in (
        ("lost", lost, lost),
        ("duplicated", duplicated, seq[duplicated]),
        ("reordered", late, seq[late]),
        ("corrupted", corrupted, seq[corrupted]),
    ):
        if where.size:
            first[what] = int(values[0])
    taken_ns = records["taken_ns"].astype(np.int64)
    handed_ns = records["handed_ns"].astype(np.int64)
    stamped = good & (handed_ns > 0)
    span = (int(handed_ns[stamped].min()), int(taken_ns.max())) if stamped.any() else (0, 0)
    return TransmitAccount(
        asked=asked,
        handed=handed,
        refused=refused,
        taken=len(records) - unfinished,
        intact=int(np.count_nonzero(good)),
        lost=int(lost.size),
        duplicated=int(duplicated.size),
        reordered=int(late.size),
        corrupted=int(corrupted.size),
        unfinished=unfinished,
        no_fcs=int(np.count_nonzero(flags & TXV_NO_FCS)),
        octets=octets,
        throughput_gbps=analysis.throughput_gbps(octets, *span),
        transmitter_on=transmitter_on,
        latency_ns=analysis.summarize(taken_ns[stamped] - handed_ns[stamped]),
        first=first,
    )


__all__ = ["NO_SEQ", "TransmitAccount", "account"]
