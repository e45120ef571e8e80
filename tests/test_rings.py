"""Rings the driver places itself, and the transmit ring, on a plain segment (sans-IO).

A real driver allocates its descriptor rings, programs RDBAL/RDBAH/RDLEN (TDBAL/TDBAH/TDLEN) and enables
them with RCTL.EN (TCTL.EN) (8254x SDM 14.4, 14.5). The device takes a ring when it is enabled; a ring has
any multiple of 8 descriptors, so its indices wrap at its count, not at a power of two; a ring the device
cannot use stops it, naming the register and the value. The transmitter takes legacy descriptors from TDH
up to TDT, writes DD back where RS asks, and checks each frame against the one the host handed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import plain_segment
from pseudonic import _engine
from pseudonic.capture import transmitted_capture
from pseudonic.frames import FrameSet
from pseudonic.layout import (
    CTRL_RST,
    FAULTS,
    FCS,
    ICR_TXDW,
    ICR_TXQE,
    LINE_SPIN,
    MAX_RING,
    RCTL_EN,
    REGISTERS,
    RX_DESC,
    SAN_KINDS,
    TCTL_EN,
    TX_DESC,
    TXD_CMD_DEXT,
    TXD_CMD_EOP,
    TXD_CMD_IFCS,
    TXD_CMD_RS,
    TXD_STAT_DD,
    TXV_INTACT,
    TXV_NO_FCS,
    TXV_STAMPED,
    SegmentView,
    segment_size,
)
from pseudonic.nic import Nic
from pseudonic.result import fault_message
from pseudonic.schedule import periodic
from pseudonic.upper import NullLayer

R = REGISTERS
RING_NAMES = {v: k for k, v in {**SAN_KINDS}.items()}


def write(view: SegmentView, name: str, value: int) -> None:
    _engine.reg_write(view.buffer, R[name], value)


def read(view: SegmentView, name: str) -> int:
    return _engine.reg_read(view.buffer, R[name])


def nic_of(view: SegmentView) -> Nic:
    return Nic(view, NullLayer())


def own_ring(view: SegmentView, count: int, buf: int = 2048) -> tuple[np.ndarray[Any, Any], int]:
    """A receive ring of ``count`` descriptors and a buffer each, in DMA memory; programmed, not yet enabled."""
    nic = nic_of(view)
    ring, bus = nic.dma_array(count, RX_DESC)
    _, buffers = nic.dma_alloc(count * buf, 4096)
    ring["buffer_addr"] = buffers + np.arange(count, dtype=np.uint64) * buf
    write(view, "RCTL", 0)
    write(view, "RDBAL", bus & 0xFFFFFFFF)
    write(view, "RDBAH", bus >> 32)
    write(view, "RDLEN", count * RX_DESC.itemsize)
    write(view, "RDH", 0)
    write(view, "RDT", 0)
    return ring, bus


FRAME = bytes(range(256)) * 4  # 1024 bytes


def receive(view: SegmentView, seq: int = 0) -> int:
    return _engine.receive(view.buffer, FRAME, 0, 0, seq, 0, 0)


# -- the register window's ring registers ---------------------------------------------------------------


def test_the_prepared_ring_is_what_rdbal_and_rdlen_read_until_the_driver_programs_its_own() -> None:
    view = plain_segment(ring_size=16)
    base = read(view, "RDBAH") << 32 | read(view, "RDBAL")
    assert base == int(view.header["ring_off"][0]) and read(view, "RDLEN") == 16 * RX_DESC.itemsize
    write(view, "RDLEN", 24 * RX_DESC.itemsize)
    write(view, "TDBAL", 0x1234)
    assert (read(view, "RDLEN"), read(view, "TDBAL")) == (24 * RX_DESC.itemsize, 0x1234)  # stored, read back
    assert int(view.drv["unmodelled"][0]) == 0


def test_set_up_registers_that_change_nothing_are_taken_and_others_are_counted() -> None:
    view = plain_segment()
    for offset in (R["MTA"], R["MTA"] + 4 * 127, R["RADV"], R["TADV"], R["FCAL"], R["VET"]):
        _engine.reg_write(view.buffer, offset, 1)
    assert int(view.drv["unmodelled"][0]) == 0
    _engine.reg_write(view.buffer, 0x0018, 1)  # CTRL_EXT: not in the model
    assert int(view.drv["unmodelled"][0]) == 1 and int(view.drv["unmodelled_first"][0]) == 0x0018
    assert _engine.reg_read(view.buffer, 0x0018) == 0  # a register the model does not have reads 0
    write(view, "RAL0", 0x12005452)
    assert read(view, "RAL0") == 0x12005452


def test_ctrl_rst_turns_receive_off_masks_interrupts_and_forgets_the_ring() -> None:
    view = plain_segment()
    write(view, "IMS", 0x80)
    write(view, "CTRL", CTRL_RST)
    assert (read(view, "RCTL"), read(view, "IMS"), read(view, "RDLEN"), read(view, "TCTL")) == (0, 0, 0, 0)
    assert read(view, "CTRL") & CTRL_RST == 0  # the bit clears itself
    assert receive(view) == -1 and int(view.dev["rx_off"][0]) == 1  # the receiver is off


# -- a ring the driver places ---------------------------------------------------------------------------


def test_a_programmed_ring_is_taken_only_when_rctl_enables_it() -> None:
    view = plain_segment(ring_size=16)
    ring, bus = own_ring(view, 24)
    write(view, "RCTL", RCTL_EN)
    write(view, "RDT", 23)
    assert receive(view) == 0
    assert int(view.dev["ring_base"][0]) == bus and int(view.dev["ring_count"][0]) == 24
    # RCTL.SECRC clear: the frame keeps its FCS, counted in the length
    assert ring["length"][0] == len(FRAME) + FCS
    assert bytes(nic_of(view).at(int(ring["buffer_addr"][0]), 4)) == FRAME[:4]


def test_a_ring_programmed_while_the_receiver_runs_is_not_taken_until_rctl_is_written() -> None:
    view = plain_segment(ring_size=16)
    nic = nic_of(view)
    _, bus = nic.dma_array(24, RX_DESC)
    write(view, "RDT", 15)
    write(view, "RDBAL", bus)
    write(view, "RDLEN", 24 * RX_DESC.itemsize)
    assert receive(view) == 0 and int(view.dev["ring_count"][0]) == 16  # still the prepared ring


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 25).map(lambda k: 8 * k), st.integers(1, 3))
def test_indices_wrap_at_the_rings_count_whatever_multiple_of_eight_it_is(count: int, laps: int) -> None:
    """One by one, round the ring ``laps`` times: frame k lands in descriptor k mod count, RDH wraps there, and a
    ring with every descriptor but one handed over holds count - 1 frames, then drops."""
    view = plain_segment(ring_size=8, capacity=8)
    ring, _ = own_ring(view, count)
    write(view, "RCTL", RCTL_EN)
    for k in range(laps * count):
        write(view, "RDT", (k + 1) % count)  # hand over the next descriptor only
        assert receive(view, k) == k % count
        assert int(view.dev["rdh"][0]) == (k + 1) % count
        ring["status"][k % count] = 0
    write(view, "RDT", (laps * count - 1) % count)  # every descriptor but one
    stored = [receive(view, k) for k in range(count)]
    assert stored[: count - 1] == [(laps * count + k) % count for k in range(count - 1)] and stored[-1] == -1


def rdlen_fault(view: SegmentView) -> None:
    own_ring(view, 24)
    write(view, "RDLEN", 100)


def no_ring(view: SegmentView) -> None:
    write(view, "CTRL", CTRL_RST)


def too_many(view: SegmentView) -> None:
    own_ring(view, 24)
    write(view, "RDLEN", (MAX_RING + 8) * RX_DESC.itemsize)


def unaligned(view: SegmentView) -> None:
    _, bus = own_ring(view, 24)
    write(view, "RDBAL", bus + 8)


def outside(view: SegmentView) -> None:
    _, bus = own_ring(view, 24)
    write(view, "RDBAL", bus + (1 << 20))  # DMA memory exists there, but was never handed out


def head_past(view: SegmentView) -> None:
    own_ring(view, 24)
    write(view, "RDH", 24)


@pytest.mark.parametrize(
    ("program", "register", "value"),
    [
        (rdlen_fault, "RDLEN", "0x64"),
        (no_ring, "RDLEN", None),
        (too_many, "RDLEN", hex((MAX_RING + 8) * 16)),
        (unaligned, "RDBAL/RDBAH", None),
        (outside, "RDBAL/RDBAH", None),
        (head_past, "RDH", "0x18"),
    ],
)
def test_a_ring_the_device_cannot_use_stops_it_naming_the_register_and_the_value(
    program: Any, register: str, value: str | None
) -> None:
    view = plain_segment(ring_size=16)
    program(view)
    write(view, "RCTL", RCTL_EN)
    assert receive(view) == -1
    fault = int(view.dev["fault"][0])
    assert FAULTS[fault][0] == register
    message = fault_message(fault, int(view.dev["fault_value"][0]))
    assert (register in message or "RCTL.EN" in message) and (value is None or value in message)


def test_under_the_sanitizer_a_ring_the_device_cannot_use_is_a_finding_when_it_is_enabled() -> None:
    view = plain_segment(ring_size=16)
    view.header["sanitize"][0] = 1
    rdlen_fault(view)
    write(view, "RCTL", RCTL_EN)
    assert int(view.san["count"][0][RING_NAMES["ring-invalid"]]) == 1


def test_under_the_sanitizer_a_new_ring_is_checked_from_its_head() -> None:
    """RDT written while the receiver was off hands descriptors over only when RCTL.EN does: they are checked
    then -- here one with DD still set."""
    view = plain_segment(ring_size=16)
    view.header["sanitize"][0] = 1
    ring, _ = own_ring(view, 24)
    ring["status"][3] = 1
    write(view, "RDT", 23)
    write(view, "RCTL", RCTL_EN)
    san = view.san["count"][0]
    assert int(san[RING_NAMES["dd-still-set"]]) == 1 and int(san[RING_NAMES["rdt-outside-ring"]]) == 0


# -- the transmit ring ----------------------------------------------------------------------------------


def tx_segment(tx_capacity: int = 64) -> SegmentView:
    return SegmentView.create(bytearray(segment_size(8, 2048, 8, tx_capacity=tx_capacity)), 8, 2048, 8,
                              tx_capacity=tx_capacity)  # fmt: skip


def tx_ring(view: SegmentView, count: int = 16) -> tuple[np.ndarray[Any, Any], memoryview]:
    nic = nic_of(view)
    ring, bus = nic.dma_array(count, TX_DESC)
    bufs, buf_bus = nic.dma_alloc(count * 2048, 4096)
    ring["buffer_addr"] = buf_bus + np.arange(count, dtype=np.uint64) * 2048
    write(view, "TDBAL", bus)
    write(view, "TDLEN", count * TX_DESC.itemsize)
    write(view, "TDH", 0)
    write(view, "TDT", 0)
    write(view, "TCTL", TCTL_EN)
    return ring, bufs


GENERATED = FrameSet.generated(1000)


def stamped(seq: int, handed_ns: int = 1000) -> bytes:
    frame = bytearray(GENERATED.templates[0])
    t = GENERATED.table[0]
    _engine.stamp_frame(frame, int(t["stamp_off"]), int(t["csum_off"]), seq, handed_ns)
    return bytes(frame)


def queue(ring: np.ndarray[Any, Any], bufs: memoryview, i: int, frame: bytes, cmd: int) -> None:
    bufs[i * 2048 : i * 2048 + len(frame)] = frame
    ring["length"][i], ring["cmd"][i], ring["status"][i] = len(frame), cmd, 0


def transmit_all(view: SegmentView, ntx: int, drain_ns: int = 50_000_000) -> np.ndarray[Any, Any]:
    """The device over a one-frame receive plan, its transmitter taking what is queued; its transmit records."""
    view.drv["tx_done"][0] = 1
    view.drv["tx_handed"][0] = ntx
    _engine.device_run(view.buffer, periodic(1, 1000), GENERATED.table, GENERATED.blob, 20_000, drain_ns,
                       LINE_SPIN, -1, 0, 0, 0, 0, 0, np.zeros(ntx, "<u4").tobytes(), 0, 0)  # fmt: skip
    return view.txv[: int(view.dev["tx_taken"][0])].copy()


def test_the_transmitter_takes_every_queued_frame_in_order_writes_dd_where_rs_asks_and_counts() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    for k in range(10):
        queue(ring, bufs, k, stamped(k), TXD_CMD_EOP | TXD_CMD_IFCS | (TXD_CMD_RS if k % 2 else 0))
    write(view, "TDT", 10)
    rec = transmit_all(view, 10)
    assert rec["seq"].tolist() == list(range(10))
    assert (rec["flags"] & (TXV_STAMPED | TXV_INTACT) == TXV_STAMPED | TXV_INTACT).all()
    assert rec["handed_ns"].tolist() == [1000] * 10
    assert [bool(s & TXD_STAT_DD) for s in ring["status"][:10]] == [k % 2 == 1 for k in range(10)]
    assert int(view.dev["tdh"][0]) == 10 and read(view, "TDH") == 10
    assert (read(view, "GPTC"), read(view, "GOTCL"), read(view, "GOTCH")) == (10, 10 * len(stamped(0)), 0)
    assert int(view.dev["icr"][0]) & (ICR_TXDW | ICR_TXQE) == ICR_TXDW | ICR_TXQE


def test_the_transmitted_capture_is_byte_for_byte_what_the_driver_queued_and_leaves_out_what_was_not() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    queued = [stamped(k, 1000 + k) for k in range(6)]
    bad = bytearray(queued[4])
    bad[-1] ^= 1
    for k, frame in enumerate(queued):
        queue(ring, bufs, k, bytes(bad) if k == 4 else frame, TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS)
    write(view, "TDT", 6)
    rec = transmit_all(view, 6)
    capture, left_out = transmitted_capture(GENERATED, np.zeros(6, np.uint32), rec, clock_offset_ns=5)
    assert capture.frames == queued[:4] + queued[5:] and left_out == 1
    assert capture.stamps_ns.tolist() == [int(t) + 5 for t in np.delete(rec["taken_ns"], 4)]


def test_a_frame_over_several_descriptors_is_gathered_up_to_eop_across_the_wrap() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view, 8)
    write(view, "TCTL", 0)
    write(view, "TDH", 6)
    write(view, "TDT", 6)
    write(view, "TCTL", TCTL_EN)
    frame = stamped(0)
    parts = [frame[:300], frame[300:700], frame[700:]]
    for k, (i, part) in enumerate(zip((6, 7, 0), parts, strict=True)):
        queue(ring, bufs, i, part, TXD_CMD_IFCS | TXD_CMD_RS | (TXD_CMD_EOP if k == 2 else 0))
    write(view, "TDT", 1)
    rec = transmit_all(view, 1)
    assert rec["seq"].tolist() == [0] and rec["descs"].tolist() == [3] and rec["first"].tolist() == [6]
    assert rec["flags"][0] & TXV_INTACT and int(view.dev["tdh"][0]) == 1


def test_a_frame_that_is_not_the_one_handed_is_recorded_as_not_intact() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    bad = bytearray(stamped(0))
    bad[-1] ^= 0xFF
    queue(ring, bufs, 0, bytes(bad), TXD_CMD_EOP | TXD_CMD_RS)
    write(view, "TDT", 1)
    rec = transmit_all(view, 1)
    assert rec["seq"].tolist() == [0] and rec["flags"][0] & TXV_STAMPED and not rec["flags"][0] & TXV_INTACT
    assert rec["flags"][0] & TXV_NO_FCS  # IFCS was not asked for either


def test_a_transmit_buffer_outside_the_pool_and_dma_memory_stops_the_device_naming_it() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    queue(ring, bufs, 0, stamped(0), TXD_CMD_EOP | TXD_CMD_RS)
    ring["buffer_addr"][0] = 0x7FFF0000
    write(view, "TDT", 1)
    assert transmit_all(view, 1).size == 0
    message = fault_message(int(view.dev["fault"][0]), int(view.dev["fault_value"][0]))
    assert "buffer_addr = 0x7fff0000" in message


def test_a_context_or_extended_descriptor_stops_the_device_saying_it_is_not_modelled() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    queue(ring, bufs, 0, stamped(0), TXD_CMD_EOP | TXD_CMD_RS | TXD_CMD_DEXT)
    write(view, "TDT", 1)
    assert transmit_all(view, 1).size == 0
    message = fault_message(int(view.dev["fault"][0]), int(view.dev["fault_value"][0]))
    assert "CMD.DEXT" in message and "not modelled" in message


def test_under_the_sanitizer_tdt_past_the_ring_or_over_what_the_device_owns_is_a_finding() -> None:
    view = tx_segment()
    view.header["sanitize"][0] = 1
    tx_ring(view, 8)
    write(view, "TDT", 7)  # seven of eight: legal
    assert not view.san["count"][0].any()
    write(view, "TDT", 0)  # the eighth: TDT == TDH, the ring reads empty
    assert int(view.san["count"][0][RING_NAMES["tdt-over-device-owned"]]) == 1
    write(view, "TDT", 8)
    assert int(view.san["count"][0][RING_NAMES["tdt-outside-ring"]]) == 1


def test_a_transmitter_off_takes_nothing_and_ignores_the_ring_until_enabled() -> None:
    view = tx_segment()
    ring, bufs = tx_ring(view)
    write(view, "TCTL", 0)
    queue(ring, bufs, 0, stamped(0), TXD_CMD_EOP | TXD_CMD_RS)
    write(view, "TDT", 1)
    assert transmit_all(view, 1, drain_ns=1_000_000).size == 0 and int(view.dev["tdh"][0]) == 0
