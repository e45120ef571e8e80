"""The e1000 register window (8254x SDM 13.4): each register's hardware semantics, on a plain segment (sans-IO).

What a driver written against the datasheet does by offset -- ``regs[E1000_ICR] = 0xffffffff``,
``er32(GPRC)`` -- behaves as on the part: read-to-clear and write-1-to-clear ICR, ICS raising,
statistics that clear on read, RCTL.SECRC choosing whether the FCS stays with the frame.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from conftest import plain_segment, run_device
from pseudonic import _engine
from pseudonic.frames import STAMP_OFF
from pseudonic.layout import (
    FCS,
    ICR_RXO,
    ICR_RXT0,
    MAX_STANDARD_FRAME,
    RCTL_BSEX,
    RCTL_BSIZE_SHIFT,
    RCTL_DEFAULT,
    RCTL_EN,
    RCTL_LPE,
    RCTL_SECRC,
    REGISTERS,
    RXD_ERR_CE,
    RXD_ERR_RXE,
    RXD_STAT_EOP,
    STATUS_FD,
    STATUS_LU,
    STATUS_SPEED_1000,
    TX_DISCARDED,
    TX_REFUSED,
    TX_RX_OFF,
    TX_STORED,
    SegmentView,
)
from pseudonic.plan import Plan
from pseudonic.schedule import periodic

R = REGISTERS


def read(view: SegmentView, name: str) -> int:
    return _engine.reg_read(view.buffer, R[name])


def write(view: SegmentView, name: str, value: int) -> None:
    _engine.reg_write(view.buffer, R[name], value)


def frames_plan(frames: list[bytes], flags: list[int] | None = None) -> Plan:
    slots = periodic(len(frames), 1_000)
    slots["frame"] = np.arange(len(frames))
    if flags is not None:
        slots["flags"] = flags
    return Plan.custom(slots, frames, 60)


FRAMES = [bytes((31 * k + n) & 0xFF for k in range(n)) for n in (60, 300, 1500)]


def test_the_offsets_are_the_datasheets() -> None:
    assert (R["CTRL"], R["STATUS"], R["ICR"], R["ICS"], R["IMS"], R["IMC"], R["RCTL"]) == (
        0x0, 0x8, 0xC0, 0xC8, 0xD0, 0xD8, 0x100)  # fmt: skip
    assert (R["RDBAL"], R["RDLEN"], R["RDH"], R["RDT"], R["MPC"], R["GPRC"], R["GORCL"], R["RXCSUM"]) == (
        0x2800, 0x2808, 0x2810, 0x2818, 0x4010, 0x4074, 0x4088, 0x5000)  # fmt: skip


def test_status_says_the_link_is_up_at_1000_full_duplex_and_rctl_starts_receiving_with_the_fcs_stripped() -> None:
    view = plain_segment()
    assert read(view, "STATUS") == STATUS_FD | STATUS_LU | STATUS_SPEED_1000
    assert read(view, "RCTL") == RCTL_DEFAULT and RCTL_DEFAULT & RCTL_SECRC
    write(view, "CTRL", 0x1234)
    assert read(view, "CTRL") == 0x1234


def test_icr_clears_on_read_and_where_ones_are_written() -> None:
    view = plain_segment()
    view.dev["icr"][0] = ICR_RXT0 | ICR_RXO
    write(view, "ICR", ICR_RXO)  # write 1s to clear: only RXO goes
    assert int(view.dev["icr"][0]) == ICR_RXT0
    assert read(view, "ICR") == ICR_RXT0 and read(view, "ICR") == 0
    write(view, "ICR", 0xFFFFFFFF)  # xv6's acknowledgement, on an empty ICR
    assert int(view.dev["icr"][0]) == 0


def test_ims_imc_itr_rdt_and_rxcsum_go_where_the_named_functions_put_them() -> None:
    view = plain_segment()
    write(view, "IMS", ICR_RXT0 | ICR_RXO)
    write(view, "IMC", ICR_RXO)
    assert read(view, "IMS") == ICR_RXT0 == int(view.drv["ims"][0])
    write(view, "ITR", 40)
    write(view, "RDT", 5)
    write(view, "RXCSUM", 0)
    assert (read(view, "ITR"), read(view, "RDT"), read(view, "RXCSUM")) == (40, 5, 0)
    assert int(view.drv["rdt"][0]) == 5


def test_ics_sets_causes_the_device_raises_for() -> None:
    view = plain_segment()
    write(view, "IMS", ICR_RXT0 | ICR_RXO)
    write(view, "RDT", 7)
    write(view, "ICS", ICR_RXO)  # before the schedule starts: the device takes it while it waits for packet 0
    run_device(view, frames_plan(FRAMES[:1]))
    assert int(view.line["doorbell"][0]) == 2  # the ICS raise, then the packet's
    assert int(view.raises["icr"][0]) & ICR_RXO and int(view.drv["ics"][0]) == 0


def test_the_statistics_count_and_clear_on_read() -> None:
    view = plain_segment(ring_size=8)
    write(view, "RDT", 4)  # four descriptors for six frames: two missed
    plan = frames_plan(FRAMES + FRAMES, flags=[RXD_ERR_CE, 0, 0, RXD_ERR_RXE, 0, 0])
    run_device(view, plan)
    sizes = [len(f) for f in FRAMES + FRAMES][:4]
    assert (read(view, "GPRC"), read(view, "MPC"), read(view, "CRCERRS"), read(view, "RXERRC")) == (2, 2, 1, 1)
    assert (read(view, "GPRC"), read(view, "MPC"), read(view, "CRCERRS"), read(view, "RXERRC")) == (0, 0, 0, 0)
    good = sizes[1] + sizes[2]
    assert read(view, "GORCL") == good and read(view, "GORCH") == 0
    assert read(view, "GORCL") == 0 and read(view, "GORCH") == 0


@pytest.mark.parametrize("size", [60, 1500, 2048 - FCS + 1])
def test_with_secrc_clear_the_frame_keeps_its_fcs_counted_in_its_length(size: int) -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    write(view, "RCTL", RCTL_DEFAULT & ~RCTL_SECRC)
    write(view, "RDT", 7)
    frame = bytes((7 * k + 3) & 0xFF for k in range(size))
    run_device(view, frames_plan([frame]))
    parts = 1 if size + FCS <= 2048 else 2  # the FCS may take a descriptor of its own
    got = b"".join(bytes(view.buffer_of(i)[: int(view.ring["length"][i])]) for i in range(parts))
    assert got == frame + zlib.crc32(frame).to_bytes(4, "little")
    assert [bool(view.ring["status"][i] & RXD_STAT_EOP) for i in range(parts)] == [False] * (parts - 1) + [True]


def test_with_secrc_set_the_frame_comes_without_it() -> None:
    view = plain_segment()
    write(view, "RDT", 7)
    run_device(view, frames_plan(FRAMES[2:]))
    assert bytes(view.buffer_of(0)[: int(view.ring["length"][0])]) == FRAMES[2]


def test_the_window_is_e1000s() -> None:
    view = SegmentView.create(bytearray(_engine.layout(8, 2048, 4, _engine.MODEL_VIRTIO_NET)["total_size"]), 8, 2048,
                              4, _engine.MODEL_VIRTIO_NET)  # fmt: skip
    with pytest.raises(_engine.EngineError):
        _engine.reg_read(view.buffer, R["STATUS"])


def test_rctl_starts_with_the_pools_buffer_size_and_long_packets_on() -> None:
    for size, bsize in ((2048, 0), (1024, 1 << RCTL_BSIZE_SHIFT), (16384, RCTL_BSEX | 1 << RCTL_BSIZE_SHIFT),
                        (4096, RCTL_BSEX | 3 << RCTL_BSIZE_SHIFT)):  # fmt: skip
        view = plain_segment(buf_size=size)
        assert read(view, "RCTL") == RCTL_DEFAULT | bsize and RCTL_DEFAULT & RCTL_LPE


def test_a_smaller_bsize_makes_a_frame_span_descriptors_eop_on_the_last() -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    write(view, "RCTL", RCTL_DEFAULT | 1 << RCTL_BSIZE_SHIFT)  # 1024-byte buffers
    write(view, "RDT", 7)
    run_device(view, frames_plan([FRAMES[2]]))  # 1500 B: two descriptors
    assert [int(view.ring["length"][i]) for i in range(2)] == [750, 750]
    assert [bool(view.ring["status"][i] & RXD_STAT_EOP) for i in range(3)] == [False, True, False]


def test_without_lpe_a_long_frame_is_discarded_and_counted_in_roc() -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    write(view, "RCTL", RCTL_DEFAULT & ~RCTL_LPE)
    write(view, "RDT", 7)
    tx = run_device(view, frames_plan([bytes(MAX_STANDARD_FRAME), bytes(MAX_STANDARD_FRAME + 1)]))
    assert [int(f) & (TX_STORED | TX_DISCARDED) for f in tx["flags"]] == [TX_STORED, TX_DISCARDED]
    assert read(view, "ROC") == 1 and read(view, "ROC") == 0 and read(view, "MPC") == 0


@pytest.mark.parametrize("size", [60, 1500, 9000, 16384 - FCS])
def test_a_stamped_frames_fcs_is_its_crc_whatever_its_length(size: int) -> None:
    # Generated frames carry a sequence number and a send time, patched in at the send: the FCS follows them.
    view = plain_segment(ring_size=8, buf_size=16384)
    write(view, "RCTL", read(view, "RCTL") & ~RCTL_SECRC)  # BSIZE/BSEX kept: 16 KiB buffers
    write(view, "RDT", 7)
    run_device(view, Plan.periodic("2us", 5, size, buffer_size=16384))
    for i in range(5):
        got = bytes(view.buffer_of(i)[: int(view.ring["length"][i])])
        frame, fcs = got[:-FCS], got[-FCS:]
        assert len(frame) == size and fcs == zlib.crc32(frame).to_bytes(4, "little")
        assert int.from_bytes(frame[STAMP_OFF : STAMP_OFF + 4], "big") == i  # the stamp is there: the FCS covered it


def test_dma_memory_is_handed_out_aligned_until_it_runs_out() -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    h = view.header[0]
    first = _engine.dma_alloc(view.buffer, 100, 64)
    second = _engine.dma_alloc(view.buffer, 2048, 4096)
    assert first == int(h["dma_off"]) and second % 4096 == 0 and second >= first + 100
    assert _engine.dma_alloc(view.buffer, int(h["dma_size"]), 64) == -1  # no longer fits
    assert _engine.dma_alloc(view.buffer, 64, 3) == -1  # not a power of two
    assert int(h["dma_size"]) >= 8 * 2048 + 4096 * 16  # another pool's worth, and a ring of 4096


def test_the_device_writes_into_a_dma_buffer_a_descriptor_points_at_and_the_sanitizer_takes_it() -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    view.header["sanitize"][0] = 1
    bus = _engine.dma_alloc(view.buffer, 2048, 64)
    view.ring["buffer_addr"][0] = bus
    write(view, "RDT", 7)  # through the sanitizer: the DMA buffer is handed over, and poisoned
    run_device(view, frames_plan(FRAMES[1:2]))
    mem = np.frombuffer(view.buffer, np.uint8)
    assert int(view.ring["length"][0]) == len(FRAMES[1]) and bytes(mem[bus : bus + len(FRAMES[1])]) == FRAMES[1]
    assert int(view.san["count"][0].sum()) == 0
    view.ring["status"][0] = 0
    view.ring["buffer_addr"][1] = int(view.header["total_size"][0])  # outside the pool and the DMA memory
    write(view, "RDT", 1)  # hands back descriptors 7 and 0
    write(view, "RDT", 2)
    assert int(view.san["count"][0][_engine.SAN_BUF_OUTSIDE]) == 1


def test_dma_memory_not_handed_out_and_the_guard_past_the_pool_are_outside() -> None:
    view = plain_segment(ring_size=8, buf_size=2048)
    view.header["sanitize"][0] = 1
    pool_end = view.buf_off + 8 * 2048
    view.ring["buffer_addr"][0] = pool_end  # run past the pool (an index off by one)
    view.ring["buffer_addr"][1] = int(view.header["dma_off"][0])  # DMA memory, but none was handed out
    write(view, "RDT", 2)
    assert int(view.san["count"][0][_engine.SAN_BUF_OUTSIDE]) == 2
    _engine.dma_alloc(view.buffer, 2048, 64)  # now descriptor 1's buffer is the driver's
    tx = run_device(view, frames_plan(FRAMES[:2]))
    assert [int(f) & TX_REFUSED for f in tx["flags"]] == [TX_REFUSED, 0]  # the device writes only the second


def test_with_the_receiver_off_frames_are_ignored() -> None:
    view = plain_segment()
    write(view, "RCTL", RCTL_DEFAULT & ~RCTL_EN)
    write(view, "RDT", 7)
    tx = run_device(view, frames_plan(FRAMES[:2]))
    assert [int(f) for f in tx["flags"]] == [TX_RX_OFF] * 2 and int(view.dev["rx_off"][0]) == 2
    assert read(view, "GPRC") == 0 and read(view, "MPC") == 0 and int(view.dev["rdh"][0]) == 0
