"""What the device can do at all: the shortest interval between its sends at a frame size, measured now.

A plan that asks for frames closer together than the device can write them at all cannot be run
as asked: the device would fall behind from the first frame and every interval would be its own,
not the plan's. Such a plan is refused naming the limit, measured here: the shortest gap of the
device's send loop over a back-to-back burst on a plain segment in this process, with no driver --
nothing takes the device's lines away, so a real run is slower still; only a plan faster than the
fastest the device did is refused.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from . import _engine, schedule
from .errors import ConfigError
from .frames import FrameSet
from .layout import (
    BUFFER_SIZES,
    IRQ_EDGE,
    LATE_CATCHUP,
    LINE_SPIN,
    MODELS,
    TX_STORED,
    VIRTQ_DESC_F_WRITE,
    SegmentView,
    segment_size,
)
from .units import format_ns

if TYPE_CHECKING:
    from .plan import Plan

#: Frames in the burst the limit is measured over, and the ring they are written into (none dropped).
BURST = 512
#: Plans paced slower than this are not checked: no device is that slow.
CHECKED_BELOW_NS = 10_000


@cache
def device_limit_ns(size: int, device: str = "e1000", batch: int = 1) -> int:
    """The shortest gap between the device's sends of ``size``-byte frames back to back, ns (no driver), raising
    once every ``batch`` packets as a run with that --batch does: the fastest it can go here at all, whatever
    stalled it meanwhile."""
    model = MODELS[device]
    buf = next(b for b in BUFFER_SIZES if b >= min(size, BUFFER_SIZES[-1]))
    ring = 2 * BURST
    view = SegmentView.create(bytearray(segment_size(ring, buf, BURST, model)), ring, buf, BURST, model)
    frames = FrameSet.generated(size)
    slots = schedule.periodic(BURST, 0)
    if size > buf:
        slots["parts"] = -(-size // buf)
    if model == MODELS["e1000"]:
        _engine.write_rdt(view.buffer, ring - 1)
    else:  # virtio-net: every buffer available
        view.desc["len"] = buf
        view.desc["flags"] = VIRTQ_DESC_F_WRITE
        view.avail_ring[:] = np.arange(ring)
        view.avail_idx[0] = ring
        view.drv["features"][0] = int(view.header["offered"][0])
    _engine.device_run(view.buffer, slots, frames.table, frames.blob, 20_000, 0, LINE_SPIN, -1, 0, 0, IRQ_EDGE, 0,
                       LATE_CATCHUP, b"", 0, 0, batch)  # fmt: skip
    sent = int(view.dev["sent"][0])
    tx = view.tx[:sent]
    start = tx["start_ns"].astype(np.int64)
    stored = (tx["flags"] & TX_STORED) != 0
    gaps = np.diff(start)[stored[1:] & stored[:-1]]
    view.release()
    return int(gaps.min()) if gaps.size else 0


#: Past this many sizes in a plan, its frames are counted at SIZE_GRID's sizes: a limit is measured per size.
MANY_SIZES = 16
#: The sizes a many-sized plan is measured at; a frame counts at the largest not above it, which the device
#: sends no slower than the frame itself -- so a mix is refused only when too fast even so.
SIZE_GRID = (60, 128, 256, 512, 1024, 1514, 2048, 4096, 8192, 16384)


def check_pace(plan: Plan, device: str = "e1000", batch: int = 1) -> None:
    """Refuse a plan paced faster than the device can send its frames at all, naming the limit
    (:class:`ConfigError`): an interval or a rate asking a frame sooner, on average over its sizes, than the
    device sends them back to back at ``batch``, or bursts asking more frames a period than it sends in one.

    Only a pace the user asked for is checked: a plan handed over whole (a hunt's drawn phases, a replay)
    runs as it is, the device catching up where it cannot keep the pace. Poisson arrivals and offsets
    given one by one are the user's own times, and are not checked either.
    """
    kind, due = plan.origin.get("kind"), plan.slots["due_ns"].astype(np.int64)
    if kind not in ("periodic", "rate", "burst") or len(due) < 2:
        return
    sizes = real = np.asarray(plan.frames.table["length"], dtype=np.int64)[plan.slots["frame"]]
    one = int(real.min()) == int(real.max())
    rounded = np.unique(sizes).size > MANY_SIZES
    if rounded:  # a capture's hundreds of sizes: each frame counted at a measured size not above it
        grid = np.array(SIZE_GRID, dtype=np.int64)
        sizes = grid[np.searchsorted(grid, sizes, side="right") - 1]
    each = {int(n): device_limit_ns(int(n), device, batch) for n in np.unique(sizes)}
    if kind == "burst":
        burst, every = int(plan.origin["burst"]), int(plan.origin["every_ns"])
        if plan.entries <= burst:
            return  # one burst: back to back by design, no period to keep
        gap = every / burst
        asked = f"bursts of {burst} every {format_ns(every)} (a frame every {gap:.3g} ns on average, "
        remedy = "give a longer --every or a smaller --burst"
    else:
        gap = float(due[-1] - due[0]) / (len(due) - 1)
        asked = f"a frame every {gap:.3g} ns" + ("" if one else " on average") + " ("
        remedy = "give an interval of at least that, or send frames back to back in bursts (--burst N --every T)"
    if not 0 < gap < CHECKED_BELOW_NS:
        return
    limit = float(np.mean([each[int(n)] for n in sizes]))
    if gap >= limit:
        return
    what = f"at {real[0]} B" if one else f"of {real.min()}..{real.max()} B frames"
    fastest = (f"its fastest here is {limit:.0f} ns a frame back to back at this size" if one else
               f"its fastest here is {limit:.0f} ns a frame back to back on average over these sizes ("
               + ", ".join(f"{n} B: {ns} ns" for n, ns in sorted(each.items()))
               + ("; each frame counted at the largest of these not above it" if rounded else "") + ")")  # fmt: skip
    raise ConfigError(
        f"{asked}{1e3 / gap:.2f} Mpps) {what} is faster than the device can send at all: {fastest} and --batch "
        f"{batch} ({1e3 / limit:.2f} Mpps, measured now with no driver; a run is slower): {remedy}"
    )


__all__ = ["CHECKED_BELOW_NS", "check_pace", "device_limit_ns"]
