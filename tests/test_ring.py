"""Ring rules of the e1000 receive model, on plain buffers (sans-IO).

The device owns descriptors RDH..RDT-1; RDH == RDT means it owns none, and a
packet arriving then is dropped, counted in MPC, and flagged with ICR.RXO.
The driver takes descriptors with DD set and hands them back by moving RDT.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment
from pseudonic import _engine
from pseudonic.drivers.e1000 import E1000
from pseudonic.frames import STAMP_OFF, UDP_CSUM_OFF, generated_frame, ipv4_udp_ok, ones_sum, read_stamp
from pseudonic.layout import (
    ICR_RXDMT0,
    ICR_RXO,
    ICR_RXT0,
    RXD_ERR_CE,
    RXD_STAT_DD,
    RXD_STAT_EOP,
    SegmentView,
)
from pseudonic.nic import Nic
from pseudonic.upper import VerifyLayer

FRAME = generated_frame(128)


def receive(view: SegmentView, seq: int = 0, frame: bytes = FRAME, errors: int = 0) -> int:
    return int(_engine.receive(view.buffer, frame, STAMP_OFF, UDP_CSUM_OFF, seq, 1000 + seq, errors))


def regs(view: SegmentView) -> tuple[int, int, int]:
    return int(view.dev["rdh"][0]), int(view.drv["rdt"][0]), int(view.dev["mpc"][0])


def test_a_fresh_ring_gives_the_device_nothing_so_it_drops() -> None:
    view = plain_segment()
    assert receive(view) == -1
    assert regs(view) == (0, 0, 1)
    assert _engine.read_icr(view.buffer) & ICR_RXO


def test_whole_ring_fills_to_n_minus_one_then_drops() -> None:
    view = plain_segment(ring_size=8)
    _engine.write_rdt(view.buffer, 7)
    assert [receive(view, i) for i in range(7)] == list(range(7))
    assert regs(view) == (7, 7, 0)
    assert receive(view, 7) == -1, "RDH == RDT: the device owns no descriptor"
    assert int(view.dev["mpc"][0]) == 1
    assert all(view.ring["status"][:7] == RXD_STAT_DD | RXD_STAT_EOP)
    assert view.ring["status"][7] == 0


def test_written_back_descriptor_holds_the_stamped_frame() -> None:
    view = plain_segment()
    _engine.write_rdt(view.buffer, 1)
    assert receive(view, seq=41) == 0
    d = view.ring[0]
    assert int(d["length"]) == len(FRAME) and int(d["errors"]) == 0
    data = bytes(view.buffer_of(0)[: len(FRAME)])
    assert read_stamp(data) == (41, 1041)
    assert ipv4_udp_ok(data), "the patched UDP checksum must still be valid"
    assert int(view.dev["gprc"][0]) == 1 and int(view.dev["gorc"][0]) == len(FRAME)


def test_error_bits_reach_the_descriptor_and_are_not_good_packets() -> None:
    view = plain_segment()
    _engine.write_rdt(view.buffer, 1)
    receive(view, errors=RXD_ERR_CE)
    assert int(view.ring["errors"][0]) == RXD_ERR_CE
    assert int(view.dev["gprc"][0]) == 0


def test_icr_is_read_to_clear() -> None:
    view = plain_segment()
    _engine.write_rdt(view.buffer, 3)
    receive(view)
    assert _engine.read_icr(view.buffer) == ICR_RXT0
    assert _engine.read_icr(view.buffer) == 0


def test_rxdmt0_when_free_descriptors_fall_to_half_the_ring() -> None:
    view = plain_segment(ring_size=8)
    _engine.write_rdt(view.buffer, 7)
    causes = []
    for i in range(7):
        receive(view, i)
        causes.append(_engine.read_icr(view.buffer))
    assert [bool(c & ICR_RXDMT0) for c in causes] == [False, False, True, False, False, False, False]


def test_masked_causes_raise_nothing_until_unmasked() -> None:
    view = plain_segment()
    _engine.write_rdt(view.buffer, 3)
    receive(view)
    raised, _ = _engine.raise_irq(view.buffer, 0)
    assert not raised and int(view.line["doorbell"][0]) == 0
    view.drv["ims"][0] = ICR_RXT0
    raised, when = _engine.raise_irq(view.buffer, 0)
    assert raised and int(view.line["doorbell"][0]) == 1
    assert int(view.raises["raised_ns"][0]) == when


def nic_with_reference_driver(view: SegmentView) -> tuple[Nic, E1000, VerifyLayer]:
    upper = VerifyLayer()
    nic = Nic(view, upper)
    drv = E1000()
    drv.open(nic)
    return nic, drv, upper


def test_reference_driver_opens_by_giving_all_but_one_descriptor() -> None:
    view = plain_segment(ring_size=16)
    nic, _, _ = nic_with_reference_driver(view)
    assert nic.rdt == 15
    assert nic.ims & ICR_RXT0


def test_one_at_a_time_across_the_wrap() -> None:
    view = plain_segment(ring_size=8)
    nic, drv, upper = nic_with_reference_driver(view)
    slots = []
    for seq in range(3 * 8 + 3):
        slots.append(receive(view, seq))
        drv.interrupt(nic)
    assert slots == [i % 8 for i in range(27)]
    assert int(view.dev["mpc"][0]) == 0
    assert [read_stamp(s)[0] for s in upper.skbs] == list(range(27))  # type: ignore[index]
    assert drv.next_to_clean == 27 % 8 and nic.rdt == (27 - 1) % 8
    assert not (view.ring["status"] & RXD_STAT_DD).any(), "every taken descriptor is cleared"


def test_a_batch_across_the_wrap_is_taken_in_one_interrupt() -> None:
    view = plain_segment(ring_size=8)
    nic, drv, upper = nic_with_reference_driver(view)
    for seq in range(5):
        receive(view, seq)
    drv.interrupt(nic)
    for seq in range(5, 12):  # slots 5, 6, 7, 0, 1, 2, 3: wraps
        assert receive(view, seq) == seq % 8
    assert receive(view, 12) == -1, "7 outstanding descriptors: the ring is full"
    drv.interrupt(nic)
    assert [read_stamp(s)[0] for s in upper.skbs] == list(range(12))  # type: ignore[index]
    assert receive(view, 13) == 4


def test_driver_drops_and_counts_descriptors_with_errors() -> None:
    view = plain_segment()
    nic, drv, upper = nic_with_reference_driver(view)
    receive(view, 0)
    receive(view, 1, errors=RXD_ERR_CE)
    receive(view, 2)
    drv.interrupt(nic)
    assert drv.rx_errors == 1
    assert [read_stamp(s)[0] for s in upper.skbs] == [0, 2]  # type: ignore[index]


def test_spurious_interrupt_is_tolerated() -> None:
    view = plain_segment()
    nic, drv, upper = nic_with_reference_driver(view)
    drv.interrupt(nic)
    assert upper.skbs == [] and nic.rdt == 7


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.one_of(st.just(-1), st.integers(0, 8)), min_size=1, max_size=80))
def test_ownership_model(ops: list[int]) -> None:
    """Random arrivals (-1) and driver clean-ups of k descriptors against the ownership rule."""
    n = 8
    view = plain_segment(ring_size=n)
    nic, drv, upper = nic_with_reference_driver(view)
    seq = drops = 0
    for op in ops:
        rdh, rdt, _ = regs(view)
        owned = (rdt - rdh) % n
        if op == -1:
            slot = receive(view, seq)
            seq += 1
            if owned == 0:
                assert slot == -1
                drops += 1
            else:
                assert slot == rdh
        else:
            drv.clean_rx(nic, budget=op)
        rdh, rdt, mpc = regs(view)
        assert mpc == drops
        assert 0 <= (rdt - rdh) % n <= n - 1
    drv.clean_rx(nic)
    got = [read_stamp(s)[0] for s in upper.skbs]  # type: ignore[index]
    assert len(got) == seq - drops and got == sorted(got)


@settings(max_examples=150, deadline=None)
@given(size=st.integers(60, 2048), seq=st.integers(0, 2**32 - 1), ts=st.integers(0, 2**64 - 1))
def test_any_size_stamp_keeps_checksums_valid(size: int, seq: int, ts: int) -> None:
    view = plain_segment(buf_size=2048)
    _engine.write_rdt(view.buffer, 1)
    frame = generated_frame(size)
    _engine.receive(view.buffer, frame, STAMP_OFF, UDP_CSUM_OFF, seq, ts, 0)
    data = bytes(view.buffer_of(0)[:size])
    assert read_stamp(data) == (seq, ts)
    assert ipv4_udp_ok(data)
    assert data[STAMP_OFF + 12 :] == frame[STAMP_OFF + 12 :]
    # the packet checksum the descriptor carries (from byte 14, RXCSUM.PCSS) is the stamped frame's
    assert int(view.ring["csum"][0]) == ones_sum(data[14:])
