"""The Python view of the segment matches the C header, field by field."""

from __future__ import annotations

import pytest

from pseudonic import _engine
from pseudonic.layout import DTYPES, SegmentView, segment_size

C_STRUCTS = _engine.structs()


def test_every_c_struct_has_a_view() -> None:
    assert set(DTYPES) == set(C_STRUCTS)


@pytest.mark.parametrize("name", sorted(C_STRUCTS))
def test_sizes_and_offsets_match_the_header(name: str) -> None:
    c = dict(C_STRUCTS[name])
    dtype = DTYPES[name]
    assert dtype.itemsize == c.pop("size")
    py = {field: dtype.fields[field][1] for field in dtype.names}
    assert py == c


def test_region_offsets_come_from_the_engine() -> None:
    regions = _engine.layout(256, 16384, 1000)
    view = SegmentView.create(bytearray(regions["total_size"]), 256, 16384, 1000)
    h = view.header[0]
    for region, field in [("dev_regs", "dev_regs_off"), ("irq_line", "irq_line_off"), ("drv_regs", "drv_regs_off"),
                          ("ctl", "ctl_off"), ("ring", "ring_off"), ("buffers", "buf_off"),
                          ("tx_records", "tx_rec_off"), ("raise_records", "raise_rec_off"),
                          ("irq_records", "irq_rec_off")]:  # fmt: skip
        assert int(h[field]) == regions[region]


def test_what_each_side_writes_lies_on_its_own_line_pair() -> None:
    # 128 bytes, not 64: the adjacent-line prefetcher moves lines in pairs.
    r = _engine.layout(256, 2048, 10)
    blocks = [r["dev_regs"], r["irq_line"], r["drv_regs"], r["drv_regs"] + 128, r["ctl"]]
    assert all(off % 128 == 0 for off in blocks)
    assert len({off // 128 for off in blocks}) == 5


def test_regions_are_page_aligned_and_in_order() -> None:
    r = _engine.layout(64, 4096, 100)
    order = ["ring", "buffers", "tx_records", "raise_records", "irq_records"]
    offs = [r[k] for k in order]
    assert all(o % 4096 == 0 for o in offs)
    assert offs == sorted(offs)
    assert r["buffers"] - r["ring"] >= 64 * 16
    assert r["tx_records"] - r["buffers"] >= 64 * 4096
    assert r["total_size"] == segment_size(64, 4096, 100)


def test_descriptors_point_at_their_own_buffers() -> None:
    view = SegmentView.create(bytearray(segment_size(16, 2048, 4)), 16, 2048, 4)
    addrs = view.ring["buffer_addr"].astype(int)
    assert list(addrs - view.buf_off) == [i * 2048 for i in range(16)]


def test_a_foreign_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="pseudonic segment"):
        SegmentView(bytearray(4096))
    with pytest.raises(_engine.EngineError):
        _engine.read_icr(bytearray(4096))


def test_e1000_facts_come_from_the_engine() -> None:
    from pseudonic import config, layout

    # Stated once in pnic_layout.h; the Python side only reads them.
    assert layout.BUFFER_SIZES == _engine.BUFFER_SIZES == (256, 512, 1024, 2048, 4096, 8192, 16384)
    assert config.ITR_UNIT_NS == layout.ITR_UNIT_NS == _engine.ITR_UNIT_NS == 256
    assert config.MAX_ITR_NS == 0xFFFF * 256
    assert layout.LINE_PAIR == _engine.LINE_PAIR == 128
    assert layout.IRQ_LINE.itemsize == layout.CTL.itemsize == _engine.LINE_PAIR
    # The device's registers: what moves per frame, then its rings and transmitter; the driver's: what moves
    # per handler run, then the mask and the rarely written, then the rings as programmed.
    assert layout.DEV_REGS.itemsize == 2 * _engine.LINE_PAIR
    assert layout.DRV_REGS.itemsize == 3 * _engine.LINE_PAIR
    assert C_STRUCTS["dev_regs"]["ring_base"] == _engine.LINE_PAIR
    assert C_STRUCTS["drv_regs"]["rdba"] == 2 * _engine.LINE_PAIR
    assert C_STRUCTS["drv_regs"]["ims"] == _engine.LINE_PAIR


def test_virtio_nets_rings_lie_on_pages_of_their_own_and_its_buffers_have_room_for_the_header() -> None:
    # What the driver writes (avail) and what the device writes (used) apart; each buffer a line-aligned slot.
    for size in (1, 256, 32768):
        r = _engine.layout(size, 2048, 10, _engine.MODEL_VIRTIO_NET)
        assert r["ring"] < r["avail"] < r["used"] < r["buffers"]
        assert all(r[k] % 4096 == 0 for k in ("avail", "used", "buffers"))
        assert r["avail"] - r["ring"] >= 16 * size  # the descriptor table
        assert r["used"] - r["avail"] >= 2 * (size + 3)  # flags, idx, ring[size], used_event
        assert r["buffers"] - r["used"] >= 4 + 8 * size + 2  # flags, idx, ring[size] of {id, len}, avail_event
        assert r["buf_stride"] == 2048 + _engine.VIRTIO_HDR_ROOM and r["buf_stride"] % 64 == 0
    # buffers of a page or more get a page of room: the frame after the header can start on a page, as e1000's
    assert _engine.layout(8, 16384, 1, _engine.MODEL_VIRTIO_NET)["buf_stride"] == 16384 + 4096
    assert _engine.layout(8, 4096, 1, _engine.MODEL_VIRTIO_NET)["buf_stride"] == 4096 + 4096
    e1000 = _engine.layout(256, 2048, 10)
    assert e1000["avail"] == e1000["used"] == 0 and e1000["buf_stride"] == 2048


def test_a_virtio_segment_is_refused_a_queue_past_32768() -> None:
    with pytest.raises(_engine.EngineError, match="argument out of range"):
        _engine.segment_init(bytearray(1 << 20), 65536, 256, 1, _engine.MODEL_VIRTIO_NET)
    view = SegmentView.create(bytearray(segment_size(8, 256, 1, _engine.MODEL_VIRTIO_NET)), 8, 256, 1,
                              _engine.MODEL_VIRTIO_NET)  # fmt: skip
    assert view.model == _engine.MODEL_VIRTIO_NET and len(view.avail_ring) == len(view.used_ring) == 8
    assert int(view.header["offered"][0]) == _engine.VIRTIO_OFFERED
