"""The burst API a Python driver takes written-back descriptors with (nic.rx_burst, upper.deliver_many), sans-IO."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment
from pseudonic import _engine
from pseudonic.layout import RXD_STAT_DD, RXD_STAT_EOP
from pseudonic.nic import BURST_MAX, Nic
from pseudonic.upper import NullLayer, UpperLayer, VerifyLayer


def frame(k: int) -> bytes:
    return bytes([k % 251]) * (60 + k)


def received(nic: Nic, count: int, start: int = 0) -> None:
    for k in range(count):
        assert _engine.receive(nic.view.buffer, frame(start + k), 0, 0, k, 0, 0) >= 0


def burst_of(upper: UpperLayer, count: int) -> tuple[Nic, int]:
    """A ring of 8 handed to the device, ``count`` frames written back into it, and the burst of them."""
    nic = Nic(plain_segment(ring_size=8), upper)
    _engine.write_rdt(nic.view.buffer, 7)
    received(nic, count)
    return nic, nic.rx_burst(0, 8)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 7), st.integers(0, 8), st.integers(1, 12))
def test_a_burst_is_the_run_of_written_back_descriptors_from_where_it_starts(done: int, start: int, most: int) -> None:
    """Across the wrap: the first ``done`` descriptors from ``start`` are written back; the burst is those, at
    most ``most``, in ring order, with their addresses, lengths and status."""
    view = plain_segment(ring_size=8)
    nic = Nic(view, NullLayer())
    ring = nic.ring
    idx = [(start + k) % 8 for k in range(done)]
    ring["status"][idx] = RXD_STAT_DD | RXD_STAT_EOP
    ring["length"][idx] = [100 + k for k in range(done)]
    n = nic.rx_burst(start % 8, most)
    assert n == min(done, most)
    assert nic.burst.addr[:n].tolist() == ring["buffer_addr"][idx[:n]].tolist()
    assert nic.burst.length[:n].tolist() == list(range(100, 100 + n))
    assert (nic.burst.status[:n] == RXD_STAT_DD | RXD_STAT_EOP).all()
    assert int(view.dev["written"][0]) == 0  # the burst only reads the ring


def test_a_burst_is_never_longer_than_its_arrays() -> None:
    view = plain_segment(ring_size=512, capacity=8)
    nic = Nic(view, NullLayer())
    nic.ring["status"][:] = RXD_STAT_DD
    assert nic.rx_burst(0, 10_000) == BURST_MAX


def test_deliver_many_hands_up_each_frame_as_copied_out_of_its_buffer() -> None:
    upper = VerifyLayer()
    nic, n = burst_of(upper, 5)
    view = nic.view
    assert n == 5
    upper.deliver(b"before")
    upper.deliver_many(view.buffer, nic.burst.addr[:n], nic.burst.length[:n], np.array([1, 0, 1, 0, 0], bool))
    upper.deliver_checked(b"after")
    assert upper.count() == 7
    upper.settle_bursts()  # the burst's frames in their place, in the order delivered
    assert [bytes(s) for s in upper.skbs] == [b"before", *(frame(k) for k in range(5)), b"after"]
    assert upper.checked == [1, 3, 6] and upper.count() == 7
    # The socket buffers are copies: the receive buffers may be reused at once.
    nic.pool[:] = 0
    assert bytes(upper.skbs[5]) == frame(4)
    null = NullLayer()
    null.deliver_many(view.buffer, nic.burst.addr[:n], nic.burst.length[:n])
    assert null.count() == 5


def test_a_burst_from_outside_the_ring_is_refused_naming_the_ring() -> None:
    view = plain_segment(ring_size=8)
    nic = Nic(view, NullLayer())
    for start, most in ((8, 4), (-1, 4), (2**40, 1), (0, -5)):
        with pytest.raises(ValueError, match=r"ring of 8 \(0\.\.7\)"):
            nic.rx_burst(start, most)
    assert nic.rx_burst(0, 0) == 0


@pytest.mark.parametrize("layer", [VerifyLayer, NullLayer])
def test_deliver_many_takes_offsets_and_lengths_of_any_integer_type(layer: type) -> None:
    """A driver's own arrays (numpy's default int64) deliver the same frames as rx_burst's uint64/uint32."""
    upper = layer()
    nic, n = burst_of(upper, 3)
    upper.deliver_many(nic.view.buffer, nic.burst.addr[:n].astype(np.int64), nic.burst.length[:n].astype(np.int64))
    assert upper.count() == 3
    if isinstance(upper, VerifyLayer):
        upper.settle_bursts()
        assert [bytes(s) for s in upper.skbs] == [frame(k) for k in range(3)]


def test_deliver_many_refuses_frames_outside_the_buffers_or_without_a_length() -> None:
    view = plain_segment(ring_size=8)
    upper = VerifyLayer()
    size = len(view.buffer)
    with pytest.raises(ValueError, match="2 offsets but 1 lengths"):
        upper.deliver_many(view.buffer, np.array([0, 64]), np.array([60]))
    with pytest.raises(ValueError, match=rf"frame 1 at offset {size - 10}, 60 bytes long, lies outside the {size}"):
        upper.deliver_many(view.buffer, np.array([0, size - 10]), np.array([60, 60]))
    with pytest.raises(ValueError, match="frame 0 at offset -64"):
        upper.deliver_many(view.buffer, np.array([-64]), np.array([60]))
    assert upper.count() == 0  # nothing of a refused burst was delivered
