"""Kept deliveries as a few buffers (pseudonic.frame_list): the same frames as a list of bytes, in order, whatever
the parts they lie in, and the same frames after crossing a pipe in pieces."""

from __future__ import annotations

import itertools
import pickle
import threading
from multiprocessing import Pipe

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pseudonic import frame_list
from pseudonic.frame_list import FrameList, recv_frames, send_frames
from pseudonic.frames import FrameSet
from pseudonic.upper import VerifyLayer

frames_st = st.lists(st.binary(min_size=0, max_size=40), max_size=30)


def split(frames: list[bytes], cuts: list[int]) -> FrameList:
    """``frames`` in parts cut before the frames at ``cuts`` (each part whole frames)."""
    at = sorted({c % (len(frames) + 1) for c in cuts} | {0, len(frames)})
    parts = [b"".join(frames[a:b]) for a, b in itertools.pairwise(at)]
    return FrameList(parts, [len(f) for f in frames])


@given(frames_st, st.lists(st.integers(0, 60), max_size=6))
def test_a_frame_list_is_its_frames_in_order_however_they_are_cut(frames: list[bytes], cuts: list[int]) -> None:
    kept = split(frames, cuts)
    assert len(kept) == len(frames) and list(kept) == frames and kept == frames
    assert [kept[i] for i in range(len(frames))] == frames == [kept[i - len(frames)] for i in range(len(frames))]
    assert kept.nbytes == sum(map(len, frames))
    assert pickle.loads(pickle.dumps(kept)) == frames
    if frames:
        assert kept[1:] == frames[1:] and kept[::2] == frames[::2]


@given(frames_st)
def test_a_frame_list_differs_from_other_frames(frames: list[bytes]) -> None:
    kept = FrameList.of(frames)
    assert kept != [*frames, b"x"]
    if frames and frames[-1]:
        assert kept != [*frames[:-1], frames[-1][:-1]]


def test_an_index_past_the_end_and_lengths_that_do_not_fill_the_parts_are_refused() -> None:
    kept = FrameList([b"abcde"], [2, 3])
    with pytest.raises(IndexError):
        kept[2]
    with pytest.raises(ValueError, match="2 frames of 4 B in all, but parts of 5 B"):
        FrameList([b"abcde"], [2, 2])
    with pytest.raises(ValueError, match="0 or more"):
        FrameList([b"abc"], [4, -1])


def _across_a_pipe(kept: FrameList) -> FrameList:
    """``kept`` sent by one thread, read by this one: a pipe holds less than the frames, as between the nodes."""
    mine, theirs = Pipe()
    sender = threading.Thread(target=send_frames, args=(theirs, kept))
    sender.start()
    try:
        return recv_frames(mine)
    finally:
        sender.join()
        mine.close()
        theirs.close()


@settings(max_examples=30)
@given(frames_st, st.lists(st.integers(0, 60), max_size=6), st.integers(1, 50))
def test_frames_cross_the_pipe_whole_in_any_pieces(frames: list[bytes], cuts: list[int], piece: int) -> None:
    saved, frame_list.PIECE = frame_list.PIECE, piece
    try:
        got = _across_a_pipe(split(frames, cuts))
    finally:
        frame_list.PIECE = saved
    assert got == frames and len(got.parts) == 1


def test_a_megabyte_of_frames_crosses_as_it_lies() -> None:
    frames = [bytes([i % 251]) * (60 + i % 1455) for i in range(1500)]
    got = _across_a_pipe(FrameList.of(frames))
    assert got == frames and got.lengths.tolist() == [len(f) for f in frames]


one_frame = st.binary(min_size=1, max_size=30)


@given(st.lists(st.one_of(one_frame, st.lists(one_frame, min_size=1, max_size=5)), max_size=12))
def test_the_verify_layer_keeps_single_deliveries_and_bursts_in_the_order_delivered(
    deliveries: list[bytes | list[bytes]],
) -> None:
    layer = VerifyLayer(keep_times=True)
    expected: list[bytes] = []
    for d in deliveries:
        if isinstance(d, bytes):
            layer.deliver(d)
            expected.append(d)
            continue
        pool = np.frombuffer(b"".join(d), np.uint8)
        ends = np.cumsum([len(f) for f in d])
        layer.deliver_many(pool, ends - [len(f) for f in d], np.array([len(f) for f in d]))
        expected += d
    assert layer.kept() == expected
    frames = FrameSet.of([b"\x00" * 60], stamped=False)
    assert layer.report(frames, np.zeros(0, dtype=[("frame", "<u4")]), np.zeros(0, np.uint32)).frames == expected
