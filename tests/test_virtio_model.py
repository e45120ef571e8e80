"""virtio-net receive queue rules (VIRTIO 1.1 §2.6, §5.1.6), sans-IO: the device and a correct driver on one buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_device
from pseudonic import _engine
from pseudonic.layout import SAN_KINDS, SegmentView, segment_size
from pseudonic.models import virtio_net as v
from pseudonic.plan import Plan
from pseudonic.schedule import periodic

FEATURES_ALL = v.OFFERED
NO_MERGE = v.OFFERED & ~(1 << v.VIRTIO_NET_F_MRG_RXBUF)
NO_EVENT_IDX = v.OFFERED & ~(1 << v.VIRTIO_RING_F_EVENT_IDX)


def queue(size: int = 8, buf_size: int = 2048, features: int = FEATURES_ALL, start: int = 0) -> tuple[Any, Any]:
    """A device and a set-up driver sharing one buffer; both counters begin at ``start`` (to test the 16-bit wrap)."""
    layout = v.QueueLayout.of(size)
    buf = bytearray(layout.total + size * buf_size)
    vq = v.Virtqueue(buf, layout)
    mem = np.frombuffer(buf, np.uint8)
    drv = v.DriverRx(vq, mem, buf_size, base=layout.total, features=features)
    drv.setup()
    if start:
        vq.avail_idx[0] = (start + size) & 0xFFFF
        vq.used_idx[0] = start
        vq.used_event[0] = start
        for k in range(size):
            vq.avail_ring[(start + k) % size] = k
        drv.last_used = drv.notified_avail = start
    dev = v.DeviceRx(vq, mem, features, last_avail=start, signalled_used=start)
    return dev, drv


def frame(i: int, n: int = 1500) -> bytes:
    return bytes([i & 0xFF]) * n


@pytest.mark.parametrize(
    ("event", "new", "old", "fires"),
    [(0, 1, 0, True), (5, 6, 5, True), (5, 5, 4, False), (5, 9, 2, True), (5, 4, 2, False), (65535, 0, 65535, True),
     (10, 10, 10, False)],
)  # fmt: skip
def test_need_event_fires_once_the_index_passes_the_event(event: int, new: int, old: int, fires: bool) -> None:
    assert v.need_event(event, new, old) is fires


@pytest.mark.parametrize("size", [0, 3, 65536, 32769, -8])
def test_a_queue_size_must_be_a_power_of_two_up_to_32768(size: int) -> None:
    with pytest.raises(ValueError, match=r"power of two 1\.\.32768"):
        v.QueueLayout.of(size)


def test_the_layout_keeps_the_specs_alignments() -> None:
    lay = v.QueueLayout.of(256)
    assert lay.desc % 16 == 0 and lay.avail % 2 == 0 and lay.used % 4 == 0
    assert lay.avail == 256 * 16 and lay.used >= lay.avail + 2 * 256 + 6


def test_the_whole_ring_then_a_drop_then_room_again() -> None:
    dev, drv = queue(8)
    assert all(dev.receive(frame(i)) for i in range(8))
    assert not dev.receive(frame(8)) and dev.counts.dropped == 1  # every chain used, none available
    assert drv.take() == [frame(i) for i in range(8)]
    assert dev.receive(frame(9)) and drv.take() == [frame(9)]


@pytest.mark.parametrize("start", [0, 65530])
def test_one_by_one_across_the_wrap(start: int) -> None:
    dev, drv = queue(4, start=start)
    for i in range(40):
        assert dev.receive(frame(i, 60 + i))
        assert drv.take() == [frame(i, 60 + i)]
    assert int(dev.vq.used_idx[0]) == (start + 40) & 0xFFFF


def test_a_frame_over_several_buffers_says_how_many_in_its_header() -> None:
    dev, drv = queue(8, buf_size=1024)
    big = bytes(range(256)) * 12  # 3072 B + the 12 B header: 4 buffers of 1024
    assert dev.receive(big)
    first = int(dev.vq.used_ring[0]["id"])
    hdr = dev.memory[drv.base + first * 1024 : drv.base + first * 1024 + 12].view(v.NET_HDR)[0]
    assert int(hdr["num_buffers"]) == 4 and int(dev.vq.used_idx[0]) == 4
    assert [int(e["len"]) for e in dev.vq.used_ring[:4]] == [1024, 1024, 1024, 12 + 3072 - 3 * 1024]
    assert drv.take() == [big]


def test_without_mergeable_buffers_a_short_buffer_is_refused_and_counted() -> None:
    dev, drv = queue(8, buf_size=1024, features=NO_MERGE)
    assert not dev.receive(bytes(2000))
    assert dev.counts.too_small == 1 and int(dev.vq.used_ring[0]["len"]) == 0
    assert drv.take() == [] and int(dev.vq.avail_idx[0]) == 9  # the driver gave the chain back


def test_a_chain_the_device_may_not_write_is_refused() -> None:
    dev, _ = queue(8)
    dev.vq.desc[0]["flags"] = 0  # no WRITE: a buffer for the device to read, in a receive queue
    assert not dev.receive(frame(1)) and dev.counts.bad_chain == 1


def test_event_idx_interrupts_once_until_the_driver_moves_used_event() -> None:
    dev, drv = queue(8)
    dev.receive(frame(0))
    assert dev.should_interrupt()  # used_event 0: the first used entry
    dev.receive(frame(1))
    assert not dev.should_interrupt()  # the driver has not taken anything: it asked for nothing more
    drv.take()  # used_event = 2: interrupt me when used.idx passes 2
    dev.receive(frame(2))
    assert dev.should_interrupt()


def test_without_event_idx_no_interrupt_is_the_drivers_flag() -> None:
    dev, _ = queue(8, features=NO_EVENT_IDX)
    dev.vq.avail_flags[0] = v.VIRTQ_AVAIL_F_NO_INTERRUPT
    dev.receive(frame(0))
    assert not dev.should_interrupt()
    dev.vq.avail_flags[0] = 0
    dev.receive(frame(1))
    assert dev.should_interrupt()


def test_event_idx_notification_follows_the_devices_avail_event() -> None:
    dev, drv = queue(4)
    for i in range(4):
        dev.receive(frame(i))
    drv.take()  # four chains made available again: the device asked to hear past its last_avail (4)
    assert drv.should_notify()
    assert not drv.should_notify()  # nothing new since


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5000), st.booleans()), min_size=1, max_size=60),
    st.sampled_from([0, 65500]),
    st.sampled_from([FEATURES_ALL, NO_EVENT_IDX]),
)
def test_every_frame_the_device_takes_is_delivered_once_in_order_intact(
    steps: list[tuple[int, bool]], start: int, features: int
) -> None:
    dev, drv = queue(8, buf_size=1024, features=features, start=start)
    sent, got = [], []
    for i, (size, take) in enumerate(steps):
        f = bytes([(i + k) & 0xFF for k in range(size)])
        if dev.receive(f):
            sent.append(f)
        if take:
            got += drv.take()
    got += drv.take()
    assert got == sent
    assert dev.counts.received == len(sent) and dev.counts.bad_chain == 0 and dev.counts.too_small == 0


def sanitized(size: int = 8, **kw: Any) -> tuple[Any, Any]:
    dev, drv = queue(size, **kw)
    dev.sanitize = True
    return dev, drv


def test_a_correct_driver_breaks_no_ownership_rule() -> None:
    dev, drv = sanitized(4, start=65530)
    for i in range(30):
        dev.receive(frame(i))
        drv.take()
    assert dev.counts.violations == {}


def test_a_buffer_made_available_again_before_it_was_used_is_caught() -> None:
    dev, _ = sanitized(8)
    dev.receive(frame(0))  # the device now owns heads 1..7 (available, not used)
    vq = dev.vq
    vq.avail_ring[int(vq.avail_idx[0]) % 8] = 3  # head 3 given again while the device holds it
    vq.avail_idx[0] += 1
    dev.receive(frame(1))
    assert dev.counts.violations == {"buffer-reused": 1}


def test_an_avail_index_past_the_ring_is_caught() -> None:
    dev, _ = sanitized(8)
    dev.vq.avail_idx[0] = 20  # 20 entries published over a ring of 8
    dev.receive(frame(0))
    assert dev.counts.violations == {"avail-overrun": 1}


def test_a_head_past_the_table_is_caught() -> None:
    dev, _ = sanitized(8)
    dev.receive(frame(0))
    vq = dev.vq
    vq.avail_ring[int(vq.avail_idx[0]) % 8] = 99
    vq.avail_idx[0] += 1
    dev.receive(frame(1))
    assert dev.counts.violations.get("head-outside") == 1


# -- the C model (pnic_virtio.c) agrees with these rules --------------------------------------------


def test_the_c_model_uses_what_the_rules_say_and_drops_what_they_drop() -> None:
    """The C device over a plan, no driver taking anything, beside DeviceRx on a copy of the same queue:
    the same used entries, the same bytes in each buffer, the same drops once the queue is used up."""
    n, buf = 8, 2048
    view = SegmentView.create(bytearray(segment_size(n, buf, 16, _engine.MODEL_VIRTIO_NET)), n, buf, 16,
                              _engine.MODEL_VIRTIO_NET)  # fmt: skip
    h = view.header[0]
    stride, lead = view.buf_stride, _engine.VIRTIO_HDR_ROOM - v.NET_HDR_SIZE
    view.desc["addr"] = view.buf_off + lead + np.arange(n, dtype=np.uint64) * stride
    view.desc["len"] = buf + v.NET_HDR_SIZE
    view.desc["flags"] = v.VIRTQ_DESC_F_WRITE
    view.avail_ring[:] = np.arange(n)[::-1]  # any order of heads: the device follows the ring
    view.avail_idx[0] = n
    view.drv["features"][0] = v.OFFERED
    twin = np.frombuffer(bytearray(view.buffer), np.uint8)  # the queue as set up, before the device runs
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, int(size), dtype=np.uint8).tobytes() for size in rng.integers(60, 1501, 12)]
    slots = periodic(len(frames), 2_000)
    slots["frame"] = np.arange(len(frames))
    run_device(view, Plan.custom(slots, frames, 60))

    layout = v.QueueLayout(n, int(h["ring_off"]), int(h["avail_off"]), int(h["used_off"]), 0)
    rules = v.DeviceRx(v.Virtqueue(twin.data, layout), twin, v.OFFERED)
    took = [rules.receive(f) for f in frames]
    assert took == [True] * n + [False] * (len(frames) - n) and rules.counts.dropped == int(view.dev["mpc"][0])
    assert int(view.used_idx[0]) == int(rules.vq.used_idx[0]) == n
    assert view.used_ring.tolist() == rules.vq.used_ring.tolist()
    mem = np.frombuffer(view.buffer, np.uint8)
    for head, length in view.used_ring.tolist():
        at = int(view.desc["addr"][head])
        assert bytes(mem[at : at + length]) == bytes(twin[at : at + length])


# -- the sanitizer at each publication of avail.idx (pnic_sanitize.c), on a plain segment ---------------


def sanitized_queue(n: int = 8, buf: int = 256) -> SegmentView:
    view = SegmentView.create(bytearray(segment_size(n, buf, 4, _engine.MODEL_VIRTIO_NET)), n, buf, 4,
                              _engine.MODEL_VIRTIO_NET)  # fmt: skip
    view.header["sanitize"][0] = 1
    view.desc["addr"] = view.buf_off + np.arange(n, dtype=np.uint64) * view.buf_stride
    view.desc["len"] = buf
    view.desc["flags"] = v.VIRTQ_DESC_F_WRITE
    return view


def found(view: SegmentView) -> dict[str, int]:
    counts = view.san["count"][0]
    return {name: int(counts[k]) for k, name in SAN_KINDS.items() if counts[k]}


def use(view: SegmentView, heads: list[int]) -> None:
    """What the device does: {head, len} into the used ring, then used.idx past them."""
    at = int(view.used_idx[0])
    for k, head in enumerate(heads):
        view.used_ring[(at + k) % len(view.used_ring)] = (head, 0)
    view.used_idx[0] = (at + len(heads)) & 0xFFFF


def test_a_whole_queue_made_available_is_clean_and_poisoned() -> None:
    view = sanitized_queue()
    view.avail_ring[:] = np.arange(8)
    _engine.publish_avail(view.buffer, 8)
    assert found(view) == {} and int(view.avail_idx[0]) == 8
    pool = np.frombuffer(view.buffer, np.uint8)[view.buf_off :]
    assert pool[:4].view("<u4")[0] == _engine.POISON  # read before the device used it: poison, every time


def test_a_chain_made_available_again_before_it_was_used_is_reused() -> None:
    view = sanitized_queue()
    view.avail_ring[:4] = [0, 1, 2, 3]
    _engine.publish_avail(view.buffer, 4)
    use(view, [0])  # the device used chain 0: it is the driver's again
    view.avail_ring[4:6] = [0, 1]  # 0 is fine, 1 the device still owns
    _engine.publish_avail(view.buffer, 6)
    assert found(view) == {"buffer-reused": 1}
    assert int(view.san["first"][0][_engine.SAN_AVAIL_REUSED]["descriptor"]) == 1


def test_heads_past_the_table_chains_the_device_may_not_write_and_overruns_are_named() -> None:
    view = sanitized_queue()
    view.desc["flags"][3] = 0  # no WRITE
    view.avail_ring[:3] = [9, 3, 2]
    _engine.publish_avail(view.buffer, 3)
    assert found(view) == {"head-outside": 1, "not-writable": 1}
    _engine.publish_avail(view.buffer, 3 + 9)  # nine more than the queue holds beside the three not used
    assert found(view)["avail-overrun"] == 1


def test_the_sanitizer_follows_the_indices_across_the_16_bit_wrap() -> None:
    view = sanitized_queue(n=4)
    idx = 0
    for _ in range(65_536 // 4 + 3):  # make available, use, again: past 65535
        view.avail_ring[:] = np.arange(4)
        idx = (idx + 4) & 0xFFFF
        _engine.publish_avail(view.buffer, idx)
        use(view, [0, 1, 2, 3])
    assert found(view) == {} and int(view.avail_idx[0]) == idx == 12
