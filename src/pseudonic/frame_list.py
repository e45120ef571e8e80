"""Many frames as a few buffers: what a run keeps of its deliveries, and how it crosses from node to controller.

A run asked to keep what the driver delivered (``keep_frames``, ``--pcap-out-received``) may keep a million
frames. As a list of ``bytes`` that is a million objects, copied once to make them, once into the pipe's
pickle and once out of it: several times the frames' own size in each process. A :class:`FrameList` is the
frames back to back in the buffers they were kept in (a burst's copy, a C driver's arena) and each one's
length; the driver node writes those buffers into the pipe as they are, a bounded piece at a time
(:func:`send_frames`), and the controller reads them into one buffer (:func:`recv_frames`): the frames'
size once on each side, plus one piece (and in the node, a copy of the frames a Python driver delivered
one at a time, joined into pieces). Indexing gives each frame as ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, overload

import numpy as np

#: The largest piece written into the pipe at once: the reader holds one piece twice while it copies it in.
PIECE = 16 << 20


class FrameList(Sequence[bytes]):
    """Frames back to back in ``parts`` (each holds whole frames), ``lengths`` giving each frame's size."""

    __hash__ = None  # type: ignore[assignment]  # compares by content, as a list does

    def __init__(self, parts: Sequence[Any], lengths: Any) -> None:
        self.parts = [memoryview(p).cast("B") for p in parts]
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if self.lengths.size and int(self.lengths.min()) < 0:
            raise ValueError("a frame's length must be 0 or more")
        #: where each frame ends, counting the parts as one run of bytes
        self._ends = np.cumsum(self.lengths)
        sizes = [p.nbytes for p in self.parts]
        self._part_ends = np.cumsum(np.array(sizes, dtype=np.int64))
        total = int(self._part_ends[-1]) if sizes else 0
        if (int(self._ends[-1]) if self.lengths.size else 0) != total:
            raise ValueError(
                f"{self.lengths.size} frames of {int(self.lengths.sum())} B in all, but parts of {total} B"
            )

    @classmethod
    def of(cls, frames: Iterable[bytes | bytearray | memoryview]) -> FrameList:
        """Frames as they are, copied into one buffer."""
        kept = [bytes(f) for f in frames]
        return cls([b"".join(kept)], [len(f) for f in kept])

    @property
    def nbytes(self) -> int:
        return int(self._ends[-1]) if self.lengths.size else 0

    def __len__(self) -> int:
        return int(self.lengths.size)

    def _frame(self, i: int) -> bytes:
        end = int(self._ends[i])
        start = end - int(self.lengths[i])
        if start == end:
            return b""
        p = int(np.searchsorted(self._part_ends, start, side="right"))  # the part the frame lies in: whole, in one
        base = int(self._part_ends[p]) - self.parts[p].nbytes
        return bytes(self.parts[p][start - base : end - base])

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> FrameList: ...
    def __getitem__(self, i: int | slice) -> bytes | FrameList:
        if isinstance(i, slice):
            return FrameList.of(self._frame(k) for k in range(*i.indices(len(self))))
        n = len(self)
        k = int(i)
        if not -n <= k < n:
            raise IndexError(f"frame {k} of {n}")
        return self._frame(k % n)

    def __iter__(self) -> Iterator[bytes]:
        lengths = self.lengths.tolist()
        k, n = 0, len(lengths)
        for part in self.parts:
            at, size = 0, part.nbytes
            while k < n and at + lengths[k] <= size:
                yield bytes(part[at : at + lengths[k]])
                at += lengths[k]
                k += 1
        yield from (b"" for _ in range(k, n))  # only frames of no bytes can be left

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes, bytearray)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __repr__(self) -> str:
        return f"FrameList({len(self)} frames, {self.nbytes} B)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrameList, ([b"".join(self.parts)], self.lengths))


def send_frames(conn: Connection, frames: FrameList) -> None:
    """Write ``frames`` into ``conn`` as they lie, in pieces of at most PIECE bytes (no copy of a part is made)."""
    pieces = [part[a : a + PIECE] for part in frames.parts for a in range(0, part.nbytes, PIECE)]
    conn.send((frames.lengths, [p.nbytes for p in pieces]))
    for p in pieces:
        conn.send_bytes(p)


def recv_frames(conn: Connection) -> FrameList:
    """What :func:`send_frames` wrote, read into one buffer."""
    lengths, sizes = conn.recv()
    blob = bytearray(sum(sizes))
    at = 0
    for size in sizes:
        got = conn.recv_bytes_into(blob, at)
        if got != size:
            raise EOFError(f"a piece of kept frames was {got} B, not {size}")
        at += size
    return FrameList([blob], lengths)
