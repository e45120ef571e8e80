"""What the driver transmitted, judged from the transmitter's records alone (pseudonic.transmit, sans-IO)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pseudonic.layout import TXV_INTACT, TXV_NO_EOP, TXV_NO_FCS, TXV_RECORD, TXV_STAMPED
from pseudonic.transmit import NO_SEQ, account

GOOD = TXV_STAMPED | TXV_INTACT


def records(seqs: list[int], flags: list[int] | None = None) -> np.ndarray:
    """One record per frame taken, in the order taken: handed at 1000 * (seq + 1) ns, taken 500 ns later."""
    r = np.zeros(len(seqs), TXV_RECORD)
    r["seq"] = seqs
    r["flags"] = flags if flags is not None else [GOOD] * len(seqs)
    r["length"] = 1500
    r["handed_ns"] = [1000 * (s + 1) if s != NO_SEQ else 0 for s in seqs]
    r["taken_ns"] = r["handed_ns"] + 500
    return r


def test_every_frame_once_in_order_intact_is_clean() -> None:
    a = account(records(list(range(10))), asked=10, handed=10, refused=0, octets=15000)
    assert (a.taken, a.intact, a.lost, a.duplicated, a.reordered, a.corrupted) == (10, 10, 0, 0, 0, 0)
    assert a.latency_ns["p50"] == 500 and a.first == {}


def test_a_frame_never_taken_is_lost_and_named() -> None:
    a = account(records([0, 1, 3, 4]), asked=5, handed=5, refused=0, octets=0)
    assert a.lost == 1 and a.first["lost"] == 2 and a.duplicated == a.reordered == a.corrupted == 0


def test_a_frame_taken_twice_is_one_duplicate() -> None:
    a = account(records([0, 1, 1, 2]), asked=3, handed=3, refused=0, octets=0)
    assert a.duplicated == 1 and a.first["duplicated"] == 1 and a.lost == 0 and a.intact == 3


def test_a_frame_taken_after_a_later_one_is_reordered() -> None:
    a = account(records([0, 2, 1, 3]), asked=4, handed=4, refused=0, octets=0)
    assert a.reordered == 1 and a.first["reordered"] == 1 and a.lost == 0


def test_a_frame_that_is_not_the_one_it_names_is_corrupted_not_intact() -> None:
    a = account(records([0, 1, 2], [GOOD, TXV_STAMPED, GOOD]), asked=3, handed=3, refused=0, octets=0)
    assert a.corrupted == 1 and a.intact == 2 and a.first["corrupted"] == 1


def test_a_frame_that_names_no_frame_is_corrupted() -> None:
    a = account(records([0, NO_SEQ, 1], [GOOD, 0, GOOD]), asked=2, handed=2, refused=0, octets=0)
    assert a.corrupted == 1 and a.lost == 0 and a.taken == 3


def test_a_frame_never_finished_is_counted_apart() -> None:
    a = account(records([0, NO_SEQ], [GOOD, TXV_NO_EOP]), asked=2, handed=2, refused=0, octets=0)
    assert a.unfinished == 1 and a.taken == 1 and a.lost == 1 and a.corrupted == 0


def test_frames_without_an_fcs_are_counted() -> None:
    a = account(records([0, 1], [GOOD | TXV_NO_FCS, GOOD]), asked=2, handed=2, refused=0, octets=0)
    assert a.no_fcs == 1


def test_only_the_frames_handed_are_owed() -> None:
    a = account(records([0, 1]), asked=5, handed=2, refused=7, octets=0)
    assert a.lost == 0 and a.asked == 5 and a.refused == 7


@given(st.lists(st.integers(0, 30), max_size=60), st.integers(0, 31))
def test_every_frame_handed_is_taken_or_lost_and_every_take_is_counted_once(seqs: list[int], handed: int) -> None:
    """The accounts add up, whatever the driver did: each frame handed is taken (first time) or lost; each
    record is a first take, a duplicate, or a frame that names none of those handed."""
    a = account(records(seqs), asked=handed, handed=handed, refused=0, octets=0)
    firsts = {s for s in seqs if s < handed}
    assert a.lost == handed - len(firsts)
    assert a.duplicated == sum(1 for s in seqs if s < handed) - len(firsts)
    assert a.corrupted == sum(1 for s in seqs if s >= handed)
    assert a.intact == len(firsts)
    order = [s for i, s in enumerate(seqs) if s < handed and s not in seqs[:i]]
    assert a.reordered == sum(1 for i, s in enumerate(order) if i and s < max(order[:i]))
