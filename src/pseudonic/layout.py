"""The Python view of the shared segment.

The layout itself is defined once, in ``_engine/pnic_layout.h``; these numpy
dtypes mirror it and ``tests/test_layout.py`` checks every size and offset
against what the compiled engine reports. Constants (descriptor status and
error bits, interrupt causes) come from the engine, never restated here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _engine

# Descriptor status / error bits (8254x SDM tables 3-2, 3-3) and interrupt
# causes (table 13-66), as the C header defines them.
RXD_STAT_DD: int = _engine.RXD_STAT_DD
RXD_STAT_EOP: int = _engine.RXD_STAT_EOP
RXD_ERR_CE: int = _engine.RXD_ERR_CE
RXD_ERR_SE: int = _engine.RXD_ERR_SE
RXD_ERR_SEQ: int = _engine.RXD_ERR_SEQ
RXD_ERR_CXE: int = _engine.RXD_ERR_CXE
RXD_ERR_TCPE: int = _engine.RXD_ERR_TCPE
RXD_ERR_IPE: int = _engine.RXD_ERR_IPE
RXD_ERR_RXE: int = _engine.RXD_ERR_RXE
ICR_RXDMT0: int = _engine.ICR_RXDMT0
ICR_RXO: int = _engine.ICR_RXO
ICR_RXT0: int = _engine.ICR_RXT0
DEV_IDLE: int = _engine.DEV_IDLE
DEV_RUNNING: int = _engine.DEV_RUNNING
DEV_DONE: int = _engine.DEV_DONE
DEV_STOPPED: int = _engine.DEV_STOPPED
TX_STORED: int = _engine.TX_STORED
TX_DROPPED: int = _engine.TX_DROPPED
TX_RAISED: int = _engine.TX_RAISED
TX_SPURIOUS: int = _engine.TX_SPURIOUS
#: a descriptor whose buffer_addr was outside the pool: written back with RXE and no data
TX_REFUSED: int = _engine.TX_REFUSED
SLOT_ERRORS_MASK: int = _engine.SLOT_ERRORS_MASK
SLOT_SPURIOUS: int = _engine.SLOT_SPURIOUS
LINE_SPIN: int = _engine.LINE_SPIN
LINE_EVENTFD: int = _engine.LINE_EVENTFD
LINE_SIGNAL: int = _engine.LINE_SIGNAL
RXD_STAT_IXSM: int = _engine.RXD_STAT_IXSM
RXD_STAT_TCPCS: int = _engine.RXD_STAT_TCPCS
RXD_STAT_IPCS: int = _engine.RXD_STAT_IPCS
#: the error bits that make a frame bad (dropped and counted); IPE/TCPE only flag a checksum
RXD_ERR_FRAME: int = _engine.RXD_ERR_FRAME
RXCSUM_IPOFL: int = _engine.RXCSUM_IPOFL
RXCSUM_TUOFL: int = _engine.RXCSUM_TUOFL
#: where the descriptor's packet checksum (csum) starts: the IPv4 header
PCSS: int = _engine.PCSS
DEV_STORM: int = _engine.DEV_STORM
IRQ_EDGE: int = _engine.IRQ_EDGE
IRQ_LEVEL: int = _engine.IRQ_LEVEL
LATE_CATCHUP: int = _engine.LATE_CATCHUP
LATE_SHIFT: int = _engine.LATE_SHIFT
LATE_SLACK_NS: int = _engine.LATE_SLACK_NS
SLOT_NO_RAISE: int = _engine.SLOT_NO_RAISE
FRAME_IPV4: int = _engine.FRAME_IPV4
FRAME_L4: int = _engine.FRAME_L4
#: the longest frame a plan may carry, over as many descriptors as it takes
MAX_FRAME: int = _engine.MAX_FRAME
POISON: int = _engine.POISON
#: ring sanitizer violation kinds, by index into its counters (pnic_layout.h, PNIC_SAN_*)
SAN_KINDS: dict[int, str] = {
    _engine.SAN_RDT_OUTSIDE: "rdt-outside-ring",
    _engine.SAN_RDT_AT_HEAD: "rdt-at-head",
    _engine.SAN_RDT_OWNED: "rdt-over-device-owned",
    _engine.SAN_DD_SET: "dd-still-set",
    _engine.SAN_BUF_OUTSIDE: "buffer-outside-pool",
    _engine.SAN_BUF_SHARED: "buffer-shared",
    _engine.SAN_AVAIL_OVERRUN: "avail-overrun",
    _engine.SAN_AVAIL_REUSED: "buffer-reused",
    _engine.SAN_HEAD_OUTSIDE: "head-outside",
    _engine.SAN_NOT_WRITABLE: "not-writable",
    _engine.SAN_RING_INVALID: "ring-invalid",
    _engine.SAN_TDT_OUTSIDE: "tdt-outside-ring",
    _engine.SAN_TDT_OWNED: "tdt-over-device-owned",
    _engine.SAN_TX_BUF_OUTSIDE: "tx-buffer-outside",
}

#: the register window's offsets by the names the 8254x SDM gives them (13.4); nic.read_reg / nic.write_reg
REGISTERS: dict[str, int] = _engine.registers()
STATUS_FD: int = _engine.STATUS_FD
STATUS_LU: int = _engine.STATUS_LU
STATUS_SPEED_1000: int = _engine.STATUS_SPEED_1000
RCTL_EN: int = _engine.RCTL_EN
RCTL_LPE: int = _engine.RCTL_LPE
RCTL_BAM: int = _engine.RCTL_BAM
#: RCTL.SECRC: strip the FCS; clear, the device appends the frame's 4-byte CRC-32 and counts it in the length
RCTL_SECRC: int = _engine.RCTL_SECRC
#: RCTL as the platform leaves it: receiving, broadcast accepted, the FCS stripped
RCTL_DEFAULT: int = _engine.RCTL_DEFAULT
FCS: int = _engine.FCS
RCTL_BSEX: int = _engine.RCTL_BSEX
RCTL_BSIZE_SHIFT: int = _engine.RCTL_BSIZE_SHIFT
#: without RCTL.LPE, a frame longer than this (FCS excluded) is discarded and counted in ROC
MAX_STANDARD_FRAME: int = _engine.MAX_STANDARD_FRAME
#: a frame discarded as too long (RCTL.LPE clear), counted in ROC
TX_DISCARDED: int = _engine.TX_DISCARDED
#: a frame that arrived with the receiver off (RCTL.EN clear)
TX_RX_OFF: int = _engine.TX_RX_OFF
#: the most descriptors a ring the driver places may have (Linux's E1000_MAX_RXD/TXD)
MAX_RING: int = _engine.MAX_RING
CTRL_RST: int = _engine.CTRL_RST
TCTL_EN: int = _engine.TCTL_EN
TCTL_PSP: int = _engine.TCTL_PSP
TXD_CMD_EOP: int = _engine.TXD_CMD_EOP
TXD_CMD_IFCS: int = _engine.TXD_CMD_IFCS
TXD_CMD_RS: int = _engine.TXD_CMD_RS
TXD_CMD_DEXT: int = _engine.TXD_CMD_DEXT
TXD_STAT_DD: int = _engine.TXD_STAT_DD
#: the longest frame the transmitter takes, over all its descriptors
MAX_TX_FRAME: int = _engine.MAX_TX_FRAME
MIN_FRAME: int = _engine.MIN_FRAME
#: a transmit buffer's size in the DMA memory's budget
TX_BUFFER: int = _engine.TX_BUFFER
ICR_TXDW: int = _engine.ICR_TXDW
ICR_TXQE: int = _engine.ICR_TXQE
#: the device stopped: the driver programmed a ring or a descriptor it cannot use (dev.fault says what)
DEV_FAULT: int = _engine.DEV_FAULT
TXV_STAMPED: int = _engine.TXV_STAMPED
TXV_INTACT: int = _engine.TXV_INTACT
TXV_NO_EOP: int = _engine.TXV_NO_EOP
TXV_PADDED: int = _engine.TXV_PADDED
TXV_NO_FCS: int = _engine.TXV_NO_FCS
TXV_LOOPED: int = _engine.TXV_LOOPED
#: what stopped the device (dev.fault), by code: the register it names, and what was wrong with its value
FAULTS: dict[int, tuple[str, str]] = {
    _engine.FAULT_NO_RX_RING: ("RDLEN", "RCTL.EN was set with no receive ring programmed (RDLEN is 0)"),
    _engine.FAULT_RDLEN: ("RDLEN", "is not a multiple of 128 bytes (SDM 13.4.27: 8 descriptors of 16 bytes)"),
    _engine.FAULT_RDLEN_LARGE: ("RDLEN", f"is more than {_engine.MAX_RING} descriptors"),
    _engine.FAULT_RDBA: ("RDBAL/RDBAH", "is not 16-byte aligned, or the ring does not lie in DMA memory the driver "
                                        "was handed (pnic_dma_alloc / nic.dma_alloc)"),
    _engine.FAULT_RDH: ("RDH", "lies past the end of the receive ring"),
    _engine.FAULT_NO_TX_RING: ("TDLEN", "TCTL.EN was set with no transmit ring programmed (TDLEN is 0)"),
    _engine.FAULT_TDLEN: ("TDLEN", "is not a multiple of 128 bytes (SDM 13.4.38)"),
    _engine.FAULT_TDLEN_LARGE: ("TDLEN", f"is more than {_engine.MAX_RING} descriptors"),
    _engine.FAULT_TDBA: ("TDBAL/TDBAH", "is not 16-byte aligned, or the ring does not lie in DMA memory the driver "
                                        "was handed"),
    _engine.FAULT_TDH: ("TDH", "lies past the end of the transmit ring"),
    _engine.FAULT_TX_BUFFER: ("a transmit descriptor's buffer_addr", "lies outside the buffer pool and the DMA memory"),
    _engine.FAULT_TX_LENGTH: ("a transmitted frame's length", f"is over the {_engine.MAX_TX_FRAME}-byte limit "
                                                              "(its descriptors up to EOP, SDM 3.3.3)"),
    _engine.FAULT_TDT: ("TDT", "lies past the end of the transmit ring"),
    _engine.FAULT_TX_DEXT: ("a transmit descriptor at TDH", "has CMD.DEXT set: context and extended data "
                                                            "descriptors (checksum offload, TSO) are not modelled; "
                                                            "send legacy descriptors (SDM 3.3.3)"),
}  # fmt: skip
#: the faults that mean no ring at all was programmed (their value says nothing)
FAULTS_NO_RING: frozenset[int] = frozenset({_engine.FAULT_NO_RX_RING, _engine.FAULT_NO_TX_RING})

#: the device models a segment can hold (pnic_layout.h, PNIC_MODEL_*), by their command-line names
MODELS: dict[str, int] = {"e1000": _engine.MODEL_E1000, "virtio-net": _engine.MODEL_VIRTIO_NET}
MODEL_E1000: int = _engine.MODEL_E1000
MODEL_VIRTIO_NET: int = _engine.MODEL_VIRTIO_NET
# virtio-net (VIRTIO 1.1): feature bits, descriptor and ring flags, the header before each frame
VIRTIO_NET_F_MRG_RXBUF: int = _engine.VIRTIO_NET_F_MRG_RXBUF
VIRTIO_RING_F_EVENT_IDX: int = _engine.VIRTIO_RING_F_EVENT_IDX
VIRTIO_F_VERSION_1: int = _engine.VIRTIO_F_VERSION_1
#: the feature bits the model offers; a driver accepting any other is refused at open
VIRTIO_OFFERED: int = _engine.VIRTIO_OFFERED
VIRTQ_DESC_F_NEXT: int = _engine.VIRTQ_DESC_F_NEXT
VIRTQ_DESC_F_WRITE: int = _engine.VIRTQ_DESC_F_WRITE
VIRTQ_AVAIL_F_NO_INTERRUPT: int = _engine.VIRTQ_AVAIL_F_NO_INTERRUPT
VIRTQ_USED_F_NO_NOTIFY: int = _engine.VIRTQ_USED_F_NO_NOTIFY
VIRTIO_MAX_QUEUE: int = _engine.VIRTIO_MAX_QUEUE
VIRTIO_NET_HDR: int = _engine.VIRTIO_NET_HDR
VIRTIO_HDR_ROOM: int = _engine.VIRTIO_HDR_ROOM

#: the receive buffer sizes an 8254x can be programmed with (RCTL.BSIZE, SDM 13.4.22)
BUFFER_SIZES: tuple[int, ...] = _engine.BUFFER_SIZES
#: ITR's unit (SDM 13.4.18)
ITR_UNIT_NS: int = _engine.ITR_UNIT_NS


def _padded(fields: list[tuple[str, str]], itemsize: int) -> np.dtype[Any]:
    """Fields back to back (a field named "" is padding: it takes its room and is left out)."""
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    off = 0
    for name, f in fields:
        if name:
            names.append(name)
            formats.append(f)
            offsets.append(off)
        off += np.dtype(f).itemsize
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})


RX_DESC = _padded(
    [
        ("buffer_addr", "<u8"),
        ("length", "<u2"),
        ("csum", "<u2"),
        ("status", "u1"),
        ("errors", "u1"),
        ("special", "<u2"),
    ],
    16,
)
HEADER = _padded(
    [
        ("magic", "<u8"),
        ("version", "<u4"),
        ("ring_size", "<u4"),
        ("buf_size", "<u4"),
        ("capacity", "<u4"),
        ("total_size", "<u8"),
        ("dev_regs_off", "<u8"),
        ("irq_line_off", "<u8"),
        ("drv_regs_off", "<u8"),
        ("ctl_off", "<u8"),
        ("ring_off", "<u8"),
        ("buf_off", "<u8"),
        ("tx_rec_off", "<u8"),
        ("raise_rec_off", "<u8"),
        ("irq_rec_off", "<u8"),
        ("t0_ns", "<u8"),
        ("san_off", "<u8"),
        ("sanitize", "<u4"),
        ("model", "<u4"),
        ("buf_stride", "<u4"),
        ("records_mask", "<u4"),
        ("offered", "<u8"),
        ("avail_off", "<u8"),
        ("used_off", "<u8"),
        ("dma_off", "<u8"),
        ("dma_size", "<u8"),
        ("txv_off", "<u8"),
        ("tx_capacity", "<u4"),
    ],
    192,
)
#: the 16-byte legacy transmit descriptor (8254x SDM 3.3.3)
TX_DESC = _padded(
    [
        ("buffer_addr", "<u8"),
        ("length", "<u2"),
        ("cso", "u1"),
        ("cmd", "u1"),
        ("status", "u1"),
        ("css", "u1"),
        ("special", "<u2"),
    ],
    16,
)
#: one record per frame the transmitter took (pnic_txv_record)
TXV_RECORD = _padded(
    [
        ("taken_ns", "<u8"),
        ("handed_ns", "<u8"),
        ("seq", "<u4"),
        ("length", "<u4"),
        ("flags", "<u2"),
        ("descs", "<u2"),
        ("first", "<u4"),
    ],
    32,
)
VQ_DESC = _padded([("addr", "<u8"), ("len", "<u4"), ("flags", "<u2"), ("next", "<u2")], 16)
VQ_USED_ELEM = _padded([("id", "<u4"), ("len", "<u4")], 8)


def _ring_head(entry: Any) -> np.dtype[Any]:
    """flags, idx and then ring[] -- a flexible array of ``entry``, as the C struct ends."""
    return np.dtype(
        {"names": ["flags", "idx", "ring"], "formats": ["<u2", "<u2", (entry, (0,))], "offsets": [0, 2, 4],
         "itemsize": 4}
    )  # fmt: skip


VQ_AVAIL = _ring_head("<u2")
VQ_USED = _ring_head(VQ_USED_ELEM)
#: struct virtio_net_hdr with VIRTIO_F_VERSION_1 (VIRTIO 1.1 5.1.6): before every frame
VIRTIO_NET_HDR_T = _padded(
    [
        ("flags", "u1"),
        ("gso_type", "u1"),
        ("hdr_len", "<u2"),
        ("gso_size", "<u2"),
        ("csum_start", "<u2"),
        ("csum_offset", "<u2"),
        ("num_buffers", "<u2"),
    ],
    12,
)
#: Register blocks are a line pair each (pnic_layout.h: the adjacent-line prefetcher).
LINE_PAIR: int = _engine.LINE_PAIR
DEV_REGS = _padded(
    [
        ("rdh", "<u4"),
        ("icr", "<u4"),
        ("mpc", "<u8"),
        ("gprc", "<u8"),
        ("gorc", "<u8"),
        ("sent", "<u4"),
        ("rx_gen", "<u4"),
        ("written", "<u8"),
        ("reasserted", "<u8"),
        ("run_delay_ns", "<u8"),
        ("minflt", "<u8"),
        ("nivcsw", "<u8"),
        ("rt", "<u8"),
        ("quiet", "<u8"),
        ("crcerrs", "<u8"),
        ("rxerrc", "<u8"),
        ("roc", "<u8"),
        ("rx_off", "<u8"),
        # the second line pair: the rings the device uses, and the transmitter
        ("ring_base", "<u8"),
        ("ring_count", "<u4"),
        ("fault", "<u4"),
        ("fault_value", "<u8"),
        ("tx_base", "<u8"),
        ("tx_count", "<u4"),
        ("tdh", "<u4"),
        ("gptc", "<u8"),
        ("gotc", "<u8"),
        ("tx_taken", "<u8"),
        ("tx_descs", "<u8"),
        ("tx_off", "<u8"),
        ("tx_gen", "<u4"),
        ("", "<u4"),
        ("maxrss_kib", "<u8"),
    ],
    2 * LINE_PAIR,
)
IRQ_LINE = _padded([("doorbell", "<u8"), ("state", "<u4")], LINE_PAIR)
# The driver's registers: the first line pair (RDT and what moves per handler run) from 0, the second (IMS,
# ITR and what is written rarely) from LINE_PAIR -- see pnic_layout.h.
_DRV_FIRST = [("rdt", "<u4"), ("ready", "<u4"), ("handled", "<u8"), ("line_seen", "<u8"), ("acked", "<u8"),
              ("icr_reads", "<u8"), ("run_delay_ns", "<u8"), ("minflt", "<u8"), ("nivcsw", "<u8"), ("rt", "<u8"),
              ("waiting_since", "<u8"), ("notifies", "<u8"), ("dma_used", "<u8"), ("tdt", "<u4"), ("", "<u4"),
              ("tx_handed", "<u8"), ("tx_done", "<u8")]  # fmt: skip
_DRV_SECOND = [("ims", "<u4"), ("itr", "<u4"), ("rxcsum", "<u4"), ("rx_gen", "<u4"), ("features", "<u8"),
               ("ctrl", "<u4"), ("rctl", "<u4"), ("rdtr", "<u4"), ("ics", "<u4"), ("unmodelled", "<u8"),
               ("unmodelled_first", "<u4"),
               ("", "<u4"), ("read_mpc", "<u8"), ("read_gprc", "<u8"), ("read_gorc", "<u8"), ("read_crcerrs", "<u8"),
               ("read_rxerrc", "<u8"), ("read_roc", "<u8"), ("gorc_latched", "<u8")]  # fmt: skip
# The third: the rings as programmed, and as RCTL.EN / TCTL.EN latched them.
_DRV_THIRD = [("rdba", "<u8"), ("rdlen", "<u4"), ("rdh_set", "<u4"), ("rx_ring", "<u8"), ("rx_ringlen", "<u4"),
              ("rx_rdh", "<u4"), ("tdba", "<u8"), ("tdlen", "<u4"), ("tdh_set", "<u4"), ("tctl", "<u4"),
              ("tipg", "<u4"), ("tx_ring", "<u8"), ("tx_ringlen", "<u4"), ("tx_tdh", "<u4"), ("tx_gen", "<u4"),
              ("ral", "<u4"), ("rah", "<u4"), ("heads_set", "<u4"), ("read_gptc", "<u8"), ("read_gotc", "<u8"),
              ("gotc_latched", "<u8")]  # fmt: skip


def _at(fields: list[tuple[str, str]], base: int) -> list[tuple[str, str, int]]:
    out, off = [], base
    for name, f in fields:
        if name:
            out.append((name, f, off))
        off += np.dtype(f).itemsize
    return out


_DRV = _at(_DRV_FIRST, 0) + _at(_DRV_SECOND, LINE_PAIR) + _at(_DRV_THIRD, 2 * LINE_PAIR)
DRV_REGS: np.dtype[Any] = np.dtype(
    {"names": [n for n, _, _ in _DRV], "formats": [f for _, f, _ in _DRV], "offsets": [o for _, _, o in _DRV],
     "itemsize": 3 * LINE_PAIR}
)  # fmt: skip
CTL = _padded([("stop", "<u4")], LINE_PAIR)
SLOT = _padded(
    [("due_ns", "<u8"), ("frame", "<u4"), ("flags", "<u4"), ("parts", "<u2"), ("faults", "<u2"), ("early_ns", "<u4")],
    24,
)
FRAME = _padded(
    [
        ("data_off", "<u8"),
        ("length", "<u4"),
        ("stamp_off", "<u2"),
        ("csum_off", "<u2"),
        ("sum", "<u2"),
        ("kind", "<u2"),
        ("fcs", "<u4"),
        ("fcs_shift", "<u4"),
    ],
    32,
)
TX_RECORD = _padded(
    [
        ("start_ns", "<u8"),
        ("end_ns", "<u8"),
        ("due_ns", "<u8"),
        ("spin_gap_ns", "<u8"),
        ("slot", "<u4"),
        ("flags", "<u4"),
    ],
    40,
)
RAISE_RECORD = _padded([("raised_ns", "<u8"), ("packet", "<u4"), ("icr", "<u4")], 16)
IRQ_RECORD = _padded(
    [
        ("wait_ns", "<u8"),
        ("entry_ns", "<u8"),
        ("exit_ns", "<u8"),
        ("doorbell", "<u8"),
        ("spin_gap_ns", "<u8"),
        ("delivered", "<u8"),
    ],
    48,
)
VIOLATION = _padded([("time_ns", "<u8"), ("descriptor", "<u4"), ("rdt", "<u4")], 16)
SANITIZER = np.dtype(
    [
        ("handed", "<u8"),
        ("released", "<u8"),
        ("writes", "<u8"),
        ("spent_ns", "<u8"),
        ("first_ns", "<u8"),
        ("rx_base", "<u8"),
        ("rx_count", "<u4"),
        ("rx_head0", "<u4"),
        ("rx_written0", "<u8"),
        ("tx_base", "<u8"),
        ("tx_count", "<u4"),
        ("tx_head0", "<u4"),
        ("tx_taken0", "<u8"),
        ("tx_handed", "<u8"),
        ("tx_writes", "<u8"),
        ("count", "<u8", (len(SAN_KINDS),)),
        ("first", VIOLATION, (len(SAN_KINDS),)),
    ]
)

#: C struct name (as the engine reports it) -> numpy view of it.
DTYPES: dict[str, np.dtype[Any]] = {
    "rx_desc": RX_DESC,
    "header": HEADER,
    "dev_regs": DEV_REGS,
    "irq_line": IRQ_LINE,
    "drv_regs": DRV_REGS,
    "ctl": CTL,
    "slot": SLOT,
    "frame": FRAME,
    "tx_record": TX_RECORD,
    "raise_record": RAISE_RECORD,
    "irq_record": IRQ_RECORD,
    "violation": VIOLATION,
    "sanitizer": SANITIZER,
    "vq_desc": VQ_DESC,
    "vq_used_elem": VQ_USED_ELEM,
    "vq_avail": VQ_AVAIL,
    "vq_used": VQ_USED,
    "virtio_net_hdr": VIRTIO_NET_HDR_T,
    "tx_desc": TX_DESC,
    "txv_record": TXV_RECORD,
}


def segment_size(
    ring_size: int, buf_size: int, capacity: int, model: int = _engine.MODEL_E1000, tx_capacity: int = 0
) -> int:
    """Bytes a segment with these dimensions needs (computed by the engine)."""
    return int(_engine.layout(ring_size, buf_size, capacity, model, tx_capacity)["total_size"])


class SegmentView:
    """Typed numpy views of every region of one segment held in ``buffer``.

    ``buffer`` is any writable buffer: the shared mapping of a run, or a plain
    ``bytearray`` in sans-IO tests.
    """

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer
        raw = np.frombuffer(buffer, dtype=np.uint8)
        if len(raw) < HEADER.itemsize:
            raise ValueError("buffer is too small to hold a pseudonic segment")
        self.header = raw[: HEADER.itemsize].view(HEADER)
        h = self.header[0]
        if int(h["magic"]) != _engine.MAGIC or int(h["version"]) != _engine.LAYOUT_VERSION:
            raise ValueError("buffer does not hold a pseudonic segment of this layout version")
        self.ring_size = int(h["ring_size"])
        self.buf_size = int(h["buf_size"])
        #: PNIC_MODEL_*: the device whose receive queue the segment holds
        self.model = int(h["model"])
        #: bytes from one receive buffer to the next (virtio-net: room for its header besides buf_size)
        self.buf_stride = int(h["buf_stride"])
        self.capacity = int(h["capacity"])
        if int(h["total_size"]) > len(raw):
            raise ValueError("segment header claims more bytes than the buffer holds")

        def region(off_field: str, dtype: np.dtype[Any], n: int) -> np.ndarray[Any, Any]:
            off = int(h[off_field])
            return raw[off : off + n * dtype.itemsize].view(dtype)

        #: device registers (written by the device node only; ICR is read-to-clear).
        self.dev = region("dev_regs_off", DEV_REGS, 1)
        #: the spin interrupt line: doorbell and device state (device-written, on a line of its own).
        self.line = region("irq_line_off", IRQ_LINE, 1)
        #: driver registers (written by the driver node only).
        self.drv = region("drv_regs_off", DRV_REGS, 1)
        self.ctl = region("ctl_off", CTL, 1)
        self.ring = region("ring_off", RX_DESC, self.ring_size)
        buf_off = int(h["buf_off"])
        #: the receive buffer pool, flat; descriptor i's buffer starts at buffer_addr - buf_off.
        self.pool = raw[buf_off : buf_off + self.ring_size * self.buf_stride]
        self.buf_off = buf_off
        self.tx = region("tx_rec_off", TX_RECORD, self.capacity)
        self.raises = region("raise_rec_off", RAISE_RECORD, self.capacity)
        self.irqs = region("irq_rec_off", IRQ_RECORD, self.capacity)
        #: the ring sanitizer's counts and first findings (driver-written, at its RDT writes)
        self.san = region("san_off", SANITIZER, 1)
        #: e1000's transmitter: a record per frame it took, in the order it took them (tx_capacity of them)
        self.tx_capacity = int(h["tx_capacity"])
        self.txv = region("txv_off", TXV_RECORD, self.tx_capacity)
        if self.model == _engine.MODEL_VIRTIO_NET:
            n = self.ring_size
            avail_off, used_off = int(h["avail_off"]), int(h["used_off"])
            #: virtio-net's split virtqueue (VIRTIO 1.1 2.6): the descriptor table where e1000's ring is,
            self.desc = region("ring_off", VQ_DESC, n)
            avail = raw[avail_off : avail_off + 2 * (n + 3)].view("<u2")
            #: the available ring (driver-written): flags, idx, ring[n], used_event
            self.avail_flags, self.avail_idx = avail[0:1], avail[1:2]
            self.avail_ring, self.used_event = avail[2 : 2 + n], avail[2 + n : 3 + n]
            used = raw[used_off : used_off + 4].view("<u2")
            #: the used ring (device-written): flags, idx, ring[n] of {id, len}, avail_event
            self.used_flags, self.used_idx = used[0:1], used[1:2]
            self.used_ring = raw[used_off + 4 : used_off + 4 + 8 * n].view(VQ_USED_ELEM)
            self.avail_event = raw[used_off + 4 + 8 * n : used_off + 6 + 8 * n].view("<u2")

    @classmethod
    def create(
        cls,
        buffer: Any,
        ring_size: int,
        buf_size: int,
        capacity: int,
        model: int = _engine.MODEL_E1000,
        tx_capacity: int = 0,
    ) -> SegmentView:
        """Lay out a fresh segment in ``buffer`` (zeroed, descriptors pointing at their buffers)."""
        _engine.segment_init(buffer, ring_size, buf_size, capacity, model, tx_capacity)
        return cls(buffer)

    def active_ring(self) -> np.ndarray[Any, Any]:
        """e1000: the receive ring the device reads -- the one pseudonic prepared, or the driver's own once RCTL.EN
        latched it (``dev.ring_base``, ``dev.ring_count``)."""
        base, count = int(self.dev["ring_base"][0]), int(self.dev["ring_count"][0])
        raw = np.frombuffer(self.buffer, dtype=np.uint8)
        return raw[base : base + count * RX_DESC.itemsize].view(RX_DESC)

    def tx_ring(self) -> np.ndarray[Any, Any]:
        """e1000: the transmit ring the device takes from (empty until TCTL.EN latched one)."""
        base, count = int(self.dev["tx_base"][0]), int(self.dev["tx_count"][0])
        raw = np.frombuffer(self.buffer, dtype=np.uint8)
        return raw[base : base + count * TX_DESC.itemsize].view(TX_DESC)

    def queue_state(self) -> dict[str, int]:
        """virtio-net's receive queue as it stands: both sides' indices, what each asked of the other, what was
        negotiated, and how often each side signalled."""
        return {
            "avail_idx": int(self.avail_idx[0]),
            "last_avail": int(self.dev["rdh"][0]),
            "used_idx": int(self.used_idx[0]),
            "used_event": int(self.used_event[0]),
            "avail_flags": int(self.avail_flags[0]),
            "avail_event": int(self.avail_event[0]),
            "used_flags": int(self.used_flags[0]),
            "features": int(self.drv["features"][0]),
            "notifies": int(self.drv["notifies"][0]),
            "quiet": int(self.dev["quiet"][0]),
        }

    def buffer_of(self, index: int) -> np.ndarray[Any, Any]:
        """The receive buffer descriptor ``index`` points at."""
        off = int(self.ring["buffer_addr"][index]) - self.buf_off
        return self.pool[off : off + self.buf_size]

    def release(self) -> None:
        """Drop every view so the underlying mapping can be closed."""
        for name in ("header", "dev", "line", "drv", "ctl", "ring", "pool", "tx", "raises", "irqs", "san", "txv",
                     "desc", "avail_flags", "avail_idx", "avail_ring", "used_event", "used_flags", "used_idx",
                     "used_ring", "avail_event"):  # fmt: skip
            self.__dict__.pop(name, None)
        self.buffer = None
