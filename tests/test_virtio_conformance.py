"""check-driver on virtio-net: the verdict's virtio findings sans-IO, the re-arm rule across the 16-bit wrap in
the model, the references passing every case, and each planted ownership bug caught (VIRTIO 1.1 2.6)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import pseudonic
from conftest import needs_two_cores
from drivers.broken_virtio import BUGS, Bug, SteppedVirtioNet, not_caught
from pseudonic.conformance import VIRTIO_CASE_NAMES, check_driver
from pseudonic.errors import ConfigError
from pseudonic.layout import VIRTIO_OFFERED, VIRTIO_RING_F_EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT
from pseudonic.models import virtio_net as v
from pseudonic.verdict import Counts, judge

NO_EVENT_IDX = VIRTIO_OFFERED & ~(1 << VIRTIO_RING_F_EVENT_IDX)

#: a clean virtio-net run as build_result counts it: every used entry taken, re-armed at used.idx
CLEAN = Counts(
    packets=1000, stored=1000, error_descriptors=0, received=1000, delivered_with_error=0, missed=0,
    duplicated=0, reordered=0, corrupted=0, rx_errors=0, verified=True, interrupts=600, handler_runs=590,
    ims=-1, rdt_written=True, device="virtio-net",
    queue={"avail_idx": 1256, "last_avail": 1000, "used_idx": 1000, "used_event": 1000, "avail_flags": 0,
           "avail_event": 0, "used_flags": 1, "features": VIRTIO_OFFERED, "notifies": 0, "quiet": 400},
)  # fmt: skip


def queue(size: int, features: int = v.OFFERED, start: int = 0) -> tuple[v.DeviceRx, v.DriverRx]:
    """The model's device and a correct driver on one buffer, both indices from ``start`` (2.6: free-running)."""
    layout = v.QueueLayout.of(size)
    buf = bytearray(layout.total + size * 2048)
    vq = v.Virtqueue(buf, layout)
    mem = np.frombuffer(buf, np.uint8)
    drv = v.DriverRx(vq, mem, 2048, base=layout.total, features=features)
    drv.setup()
    vq.avail_idx[0] = (start + size) & 0xFFFF
    vq.used_idx[0] = vq.used_event[0] = start
    vq.avail_ring[(start + np.arange(size)) % size] = np.arange(size)
    drv.last_used = drv.notified_avail = start
    return v.DeviceRx(vq, mem, features, last_avail=start, signalled_used=start), drv


def frame(i: int) -> bytes:
    return bytes([i & 0xFF]) * (60 + i)


def left_behind(n: int, **queue_: int) -> Counts:
    """CLEAN with the last ``n`` used entries never taken, the queue as ``queue_`` says."""
    return replace(CLEAN, received=CLEAN.received - n, queue={**CLEAN.queue, **queue_})


def codes(c: Counts) -> list[str]:
    return [f.code for f in judge(c).reasons]


# -- the verdict, sans-IO ---------------------------------------------------------------------------------------


def test_a_clean_virtio_run_passes() -> None:
    assert judge(CLEAN).line() == "PASS"


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"stored": 0, "received": 0, "missed": 1000, "rdt_written": False, "handler_runs": 0, "interrupts": 0},
         "avail-never-published", "never made a chain available: publish avail.idx in open"),
        ({"received": 990}, "undelivered", "used entries left in the used ring: the handler stopped early, or "
         "re-armed (used_event / NO_INTERRUPT) without looking at used.idx again (VIRTIO 1.1 2.6.7.2)"),
        ({"received": 0, "interrupts": 0, "handler_runs": 0}, "undelivered", "the driver's handler never ran"),
        ({"stored": 7, "received": 7, "missed": 993, "starved": True}, "ring-starved",
         "the driver took chains and never made them available again"),
        ({"duplicated": 40}, "duplicated", "wrapped at the queue size instead of at 2^16"),
        ({"corrupted": 5, "received": 995, "poisoned": 5}, "corrupted", "after it had made its chain available"),
        ({"corrupted": 3, "received": 997, "partial": 3}, "corrupted", "gather num_buffers used entries"),
        ({"faults": {"split": {"injected": 3, "delivered": 3, "dropped": 0, "misdelivered": 2}}}, "fault-split",
         "gather num_buffers used entries into one frame"),
        ({"ring_violations": {"buffer-reused": {"count": 4, "first": {"packet": 9, "descriptor": 3, "rdt": 12}}}},
         "ring-buffer-reused", "while the device still owned it (before its used entry was published) "
         "(first: packet 9, head 3, avail.idx 12)"),
        ({"ring_violations": {"avail-overrun": {"count": 1, "first": {"packet": 2, "descriptor": 16, "rdt": 40}}}},
         "ring-avail-overrun", "(first: packet 2, from 16, avail.idx 40)"),
        ({"ring_violations": {"not-writable": {"count": 1, "first": {"packet": None, "descriptor": 5, "rdt": 8}}}},
         "ring-not-writable", "set VIRTQ_DESC_F_WRITE"),
        ({"ring_violations": {"head-outside": {"count": 1, "first": {"packet": None, "descriptor": 300, "rdt": 8}}}},
         "ring-head-outside", "a descriptor past the table (first: descriptor 300, avail.idx 8)"),
    ],
)  # fmt: skip
def test_each_virtio_failure_names_the_queue_not_e1000s_registers(
    change: dict[str, object], code: str, says: str
) -> None:
    v_ = judge(replace(CLEAN, **change))  # type: ignore[arg-type]
    assert not v_.passed and code in [f.code for f in v_.reasons], v_.line()
    assert says in v_.line()
    for e1000 in ("RDT", "RDH", "IMS", "ICR", " DD", "descriptors with", "MPC", "next_to_clean"):
        assert e1000 not in v_.line(), (e1000, v_.line())


def test_no_interrupt_raised_is_not_a_mask_on_virtio() -> None:
    """virtio has no IMS (Counts.ims is -1): frames no interrupt announced are left behind, and said why."""
    c = left_behind(1000, quiet=1000, features=NO_EVENT_IDX, avail_flags=VIRTQ_AVAIL_F_NO_INTERRUPT)
    c = replace(c, interrupts=0, handler_runs=0)
    assert codes(c) == ["undelivered", "interrupt-suppressed"]


def test_device_drops_with_entries_waiting_are_not_a_starved_queue() -> None:
    """With used entries still waiting, an empty available ring means the chains are in the used ring: the
    driver did not hold them, it left them (undelivered, and why), so no ring-starved."""
    waiting = {**CLEAN.queue, "avail_idx": 256, "last_avail": 256, "used_idx": 256, "used_event": 0, "quiet": 255}
    c = replace(CLEAN, stored=256, received=0, missed=744, starved=True, queue=waiting)
    assert codes(c) == ["undelivered"]
    assert codes(replace(c, received=256)) == ["ring-starved"]  # every entry taken, none made available again


def test_interrupts_suppressed_and_waited_for_are_named() -> None:
    c = left_behind(40, quiet=300, features=NO_EVENT_IDX, avail_flags=VIRTQ_AVAIL_F_NO_INTERRUPT)
    v_ = judge(c)
    assert [f.code for f in v_.reasons] == ["undelivered", "interrupt-suppressed"]
    assert "VIRTQ_AVAIL_F_NO_INTERRUPT set, 40 used entries never taken and 300 announced by no interrupt" in v_.line()
    assert "clear VIRTQ_AVAIL_F_NO_INTERRUPT, then look at used.idx once more before waiting" in v_.line()


@pytest.mark.parametrize(
    "queue_",
    [
        # the flag cleared: the driver asked to be interrupted, it lost them another way
        {"quiet": 300, "features": NO_EVENT_IDX, "avail_flags": 0},
        # fewer announced by no interrupt than were left: the driver was told of some and did not take them
        {"quiet": 39, "features": NO_EVENT_IDX, "avail_flags": VIRTQ_AVAIL_F_NO_INTERRUPT},
        # with EVENT_IDX the flag means nothing to the device (2.6.7.2); used_event at the driver's last_used
        {"quiet": 300, "features": VIRTIO_OFFERED, "avail_flags": VIRTQ_AVAIL_F_NO_INTERRUPT, "used_event": 960},
    ],
)
def test_frames_left_behind_for_another_reason_are_not_blamed_on_suppression(queue_: dict[str, int]) -> None:
    assert codes(left_behind(40, **queue_)) == ["undelivered"]


@pytest.mark.parametrize(
    ("used_idx", "left", "used_event", "says"),
    [
        (1000, 1, 1000, "used_event is 1000 when the run ended, one past the first used entry the driver had not "
         "taken (999; used.idx 1000, 1 left)"),
        (1000, 1, 998, "one before the first used entry the driver had not taken (999"),
        (1000, 5, 1000, "5 past the first used entry the driver had not taken (995"),
        # across the 16-bit wrap: the driver's last_used is 65535, used_event wrapped to 0 -- one past
        (2, 3, 0, "used_event is 0 when the run ended, one past the first used entry the driver had not taken "
         "(65535; used.idx 2, 3 left)"),
    ],
)  # fmt: skip
def test_a_used_event_off_the_drivers_last_used_is_named(used_idx: int, left: int, used_event: int, says: str) -> None:
    v_ = judge(left_behind(left, used_idx=used_idx, used_event=used_event, quiet=left))
    assert [f.code for f in v_.reasons] == ["undelivered", "event-idx"]
    assert says in v_.line()
    assert "used_event must be the index of the next used entry the driver will take" in v_.line()


def test_event_idx_is_not_guessed_when_used_entries_are_not_one_per_frame() -> None:
    """With split frames (MRG_RXBUF) a frame left behind may be several used entries: where the driver stood is
    not known from the counts, so no event-idx finding; poisoned deliveries explain the frames themselves."""
    split = {"split": {"injected": 20, "delivered": 20, "dropped": 0, "misdelivered": 0}}
    assert codes(replace(left_behind(1, used_event=1000, quiet=1), faults=split)) == ["undelivered"]
    poisoned = replace(left_behind(1, used_event=1000, quiet=1), corrupted=1, poisoned=1)
    assert "event-idx" not in codes(poisoned)


# -- the re-arm rule across the 16-bit wrap, in the model (no run gets there: used.idx stays far below 65536) ------


@pytest.mark.parametrize("start", [0, 65530])
def test_rearming_at_last_used_brings_an_interrupt_for_every_lone_frame_across_the_wrap(start: int) -> None:
    dev, drv = queue(8, start=start)
    for i in range(40):  # five times round the queue, used.idx through 65535 -> 0
        assert dev.receive(frame(i))
        assert dev.should_interrupt(), i  # used_event = last_used: this very entry passes it
        assert drv.take() == [frame(i)]


@pytest.mark.parametrize("start", [0, 65535])
def test_used_event_one_past_last_used_leaves_a_lone_frame_unannounced(start: int) -> None:
    """Planted bug (c) in the model: need_event fires only when used.idx passes used_event, so used_event =
    last_used + 1 lets the entry at last_used through unannounced -- also where last_used + 1 wraps to 0."""
    dev, drv = queue(8, start=start)
    dev.vq.used_event[0] = (drv.last_used + 1) & 0xFFFF
    assert dev.receive(frame(0)) and not dev.should_interrupt()
    assert dev.receive(frame(1)) and dev.should_interrupt()  # only the next one passes it


def test_a_suppressed_interrupt_is_not_owed_when_the_flag_is_cleared() -> None:
    """Planted bug (d) in the model: without EVENT_IDX a frame used while NO_INTERRUPT was set raises nothing,
    and clearing the flag later raises nothing either -- the driver must look at used.idx itself (2.6.7.1)."""
    dev, drv = queue(8, features=NO_EVENT_IDX)
    dev.vq.avail_flags[0] = VIRTQ_AVAIL_F_NO_INTERRUPT
    assert dev.receive(frame(0)) and not dev.should_interrupt()
    dev.vq.avail_flags[0] = 0
    assert not dev.should_interrupt()
    assert drv.take() == [frame(0)]  # the look after clearing it


# -- end to end --------------------------------------------------------------------------------------------------


def test_an_unknown_device_is_a_usage_error_before_any_case() -> None:
    with pytest.raises(ConfigError, match="device 'nic9' is unknown"):
        check_driver("python", device="nic9")


C_BUILT = any((Path(pseudonic.__file__).parent / "drivers").glob("_virtio_net_c*.so"))
REFERENCES = [
    pytest.param("python", id="python"),
    pytest.param("c", id="c", marks=pytest.mark.skipif(not C_BUILT, reason="the C virtio driver is not built")),
    pytest.param(SteppedVirtioNet, id="stepped"),
]


@needs_two_cores
@pytest.mark.parametrize("driver", REFERENCES)
def test_the_reference_drivers_pass_every_virtio_case(driver: str | type) -> None:
    """The references -- and the stepwise copy the planted bugs live in -- pass: what a planted driver fails is
    its bug's doing."""
    seen: list[str] = []
    results = check_driver(driver, device="virtio-net", progress=lambda r: seen.append(r.name), wait_for_cores=True)
    assert [r.name for r in results] == seen == list(VIRTIO_CASE_NAMES)
    assert [r.name for r in results if not (r.passed or r.skipped)] == [], [r.detail for r in results if not r.passed]


@needs_two_cores
@pytest.mark.parametrize("bug", BUGS, ids=[f"{b.letter}-{b.name.replace(' ', '-')}" for b in BUGS])
def test_check_driver_catches_each_planted_virtio_bug(bug: Bug) -> None:
    assert set(bug.cases) <= set(VIRTIO_CASE_NAMES)
    results = check_driver(bug.driver, device="virtio-net", wait_for_cores=True)
    assert not_caught(bug, results) == [], {r.name: r.detail for r in results if r.name in bug.cases}
    assert not any("Traceback" in r.detail or "driver hung" in r.detail for r in results)
