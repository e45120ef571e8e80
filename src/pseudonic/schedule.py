"""When each packet is due: the per-packet table the device engine runs.

Deadlines are absolute -- packet i is due at t0 + due_ns[i] on
CLOCK_MONOTONIC -- so a late packet never delays the ones after it (the
accumulating error of relative sleeps is a known tcpreplay bug). A periodic
schedule is one case; any timeline (bursts, Poisson, a capture's own gaps,
a recorded run) is another array of the same shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError
from .layout import SLOT, SLOT_ERRORS_MASK


def periodic(count: int, interval_ns: int, frame: int = 0) -> np.ndarray[Any, Any]:
    """``count`` packets, ``interval_ns`` apart (0: back to back), all of frame ``frame``."""
    slots = np.zeros(count, dtype=SLOT)
    slots["due_ns"] = np.arange(count, dtype=np.uint64) * np.uint64(interval_ns)
    slots["frame"] = frame
    return slots


def from_offsets(due_ns: Any, frames: Any = 0, errors: Any = 0) -> np.ndarray[Any, Any]:
    """A schedule from deadlines (ns after t0, non-decreasing), frame indices and descriptor error bits."""
    due = np.asarray(due_ns, dtype=np.int64)
    if due.ndim != 1 or due.size == 0:
        raise ConfigError("schedule: give a non-empty list of deadlines")
    if (due < 0).any() or (np.diff(due) < 0).any():
        raise ConfigError("schedule: deadlines must be >= 0 ns and non-decreasing")
    err = np.broadcast_to(np.asarray(errors, dtype=np.int64), due.shape)
    if ((err < 0) | (err > SLOT_ERRORS_MASK)).any():
        raise ConfigError(f"schedule: descriptor error bits must be 0..{SLOT_ERRORS_MASK}")
    slots = np.zeros(due.size, dtype=SLOT)
    slots["due_ns"] = due.astype(np.uint64)
    slots["frame"] = np.broadcast_to(np.asarray(frames, dtype=np.int64), due.shape)
    slots["flags"] = err
    return slots


def interval_of(slots: np.ndarray[Any, Any]) -> int | None:
    """The interval if the schedule is periodic, else None."""
    due = slots["due_ns"].astype(np.int64)
    if due.size < 2:
        return None
    d = np.diff(due)
    return int(d[0]) if (d == d[0]).all() else None
