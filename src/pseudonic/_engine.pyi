"""Type stubs of the C core (src/pseudonic/_engine/enginemodule.c)."""

from typing import Any

class EngineError(RuntimeError): ...

MAGIC: int
LAYOUT_VERSION: int
RXD_STAT_DD: int
RXD_STAT_EOP: int
RXD_ERR_CE: int
RXD_ERR_SE: int
RXD_ERR_SEQ: int
RXD_ERR_CXE: int
RXD_ERR_TCPE: int
RXD_ERR_IPE: int
RXD_ERR_RXE: int
ICR_RXDMT0: int
ICR_RXO: int
ICR_RXT0: int
DEV_IDLE: int
DEV_RUNNING: int
DEV_DONE: int
DEV_STOPPED: int
TX_STORED: int
TX_DROPPED: int
TX_RAISED: int
TX_SPURIOUS: int
SLOT_ERRORS_MASK: int
SLOT_SPURIOUS: int
LINE_SPIN: int
LINE_EVENTFD: int
LINE_SIGNAL: int
DRIVER_ABI: int
RXD_STAT_IXSM: int
RXD_STAT_TCPCS: int
RXD_STAT_IPCS: int
RXD_ERR_FRAME: int
RXCSUM_IPOFL: int
RXCSUM_TUOFL: int
PCSS: int
DEV_STORM: int
IRQ_EDGE: int
IRQ_LEVEL: int
LATE_CATCHUP: int
LATE_SHIFT: int
LATE_SLACK_NS: int
SLOT_NO_RAISE: int
TX_REFUSED: int
FRAME_IPV4: int
FRAME_L4: int
MAX_FRAME: int
SAN_RDT_OUTSIDE: int
SAN_RDT_AT_HEAD: int
SAN_RDT_OWNED: int
SAN_DD_SET: int
SAN_BUF_OUTSIDE: int
SAN_BUF_SHARED: int
SAN_KINDS: int
POISON: int
LINE_PAIR: int
ITR_UNIT_NS: int
BUFFER_SIZES: tuple[int, ...]

MODEL_E1000: int
MODEL_VIRTIO_NET: int
VIRTIO_NET_F_MRG_RXBUF: int
VIRTIO_RING_F_EVENT_IDX: int
VIRTIO_F_VERSION_1: int
VIRTIO_OFFERED: int
VIRTQ_DESC_F_NEXT: int
VIRTQ_DESC_F_WRITE: int
VIRTQ_AVAIL_F_NO_INTERRUPT: int
VIRTQ_USED_F_NO_NOTIFY: int
VIRTIO_MAX_QUEUE: int
VIRTIO_NET_HDR: int
VIRTIO_HDR_ROOM: int
VIRTIO_ISR_QUEUE: int
SAN_AVAIL_OVERRUN: int
SAN_AVAIL_REUSED: int
SAN_HEAD_OUTSIDE: int
SAN_NOT_WRITABLE: int

STATUS_FD: int
STATUS_LU: int
STATUS_SPEED_1000: int
RCTL_EN: int
RCTL_LPE: int
RCTL_BAM: int
RCTL_SECRC: int
RCTL_DEFAULT: int
FCS: int

RCTL_BSEX: int
RCTL_BSIZE_SHIFT: int
MAX_STANDARD_FRAME: int
TX_DISCARDED: int

TX_RX_OFF: int
MAX_RING: int
TX_BUFFER: int
CTRL_RST: int
TCTL_EN: int
TCTL_PSP: int
TXD_CMD_EOP: int
TXD_CMD_IFCS: int
TXD_CMD_RS: int
TXD_CMD_DEXT: int
TXD_STAT_DD: int
MAX_TX_FRAME: int
MIN_FRAME: int
ICR_TXDW: int
ICR_TXQE: int
DEV_FAULT: int
FAULT_NONE: int
FAULT_NO_RX_RING: int
FAULT_RDLEN: int
FAULT_RDLEN_LARGE: int
FAULT_RDBA: int
FAULT_RDH: int
FAULT_NO_TX_RING: int
FAULT_TDLEN: int
FAULT_TDLEN_LARGE: int
FAULT_TDBA: int
FAULT_TDH: int
FAULT_TX_BUFFER: int
FAULT_TX_LENGTH: int
FAULT_TDT: int
FAULT_TX_DEXT: int
FAULTS: int
SAN_RING_INVALID: int
SAN_TDT_OUTSIDE: int
SAN_TDT_OWNED: int
SAN_TX_BUF_OUTSIDE: int
TXV_STAMPED: int
TXV_INTACT: int
TXV_NO_EOP: int
TXV_PADDED: int
TXV_NO_FCS: int
TXV_LOOPED: int

def layout(
    ring_size: int, buf_size: int, capacity: int, model: int = ..., tx_capacity: int = ..., /
) -> dict[str, int]: ...
def structs() -> dict[str, dict[str, int]]: ...
def segment_init(
    seg: Any, ring_size: int, buf_size: int, capacity: int, model: int = ..., tx_capacity: int = ..., /
) -> None: ...
def prefault(seg: Any, /) -> None: ...
def receive(seg: Any, frame: Any, stamp_off: int, csum_off: int, seq: int, stamp_ns: int, errors: int, /) -> int: ...
def raise_irq(seg: Any, packet: int, /) -> tuple[bool, int]: ...
def device_run(
    seg: Any,
    slots: Any,
    frames: Any,
    blob: Any,
    lead_ns: int,
    drain_ns: int,
    line_mode: int,
    fd: int,
    pid: int,
    signo: int,
    irq_mode: int,
    storm_limit: int,
    late: int,
    tx_frames: bytes = ...,
    loopback: int = ...,
    tx_bits_per_s: int = ...,
    batch: int = ...,
    total: int = ...,
    period_ns: int = ...,
    /,
) -> None: ...
def wait_irq(seg: Any, seen: int, index: int, /) -> int: ...
def wait_irq_or_tx(seg: Any, seen: int, index: int, tx_seen: int, /) -> int: ...
def wait_running(seg: Any, /) -> None: ...
def rx_burst(ring: Any, start: int, max: int, addr: Any, length: Any, status: Any, errors: Any, /) -> int: ...
def gather(src: Any, offsets: Any, lengths: Any, n: int, /) -> bytes: ...
def twocore_ring(size: int, count: int, producer_core: int, consumer_core: int, /) -> int: ...
def hist_add(pos: Any, neg: Any, values: Any, /) -> tuple[int, float, int, int]: ...
def fold_packets(
    ring: Any,
    first: int,
    n: int,
    mask: int,
    slot_due: Any,
    period_ns: int,
    t0: int,
    band_ppm: int,
    acc: Any,
    send_pos: Any,
    send_neg: Any,
    dev_pos: Any,
    dev_neg: Any,
    /,
) -> None: ...
def verifier_new(frames: bytes, blob: bytes, frame_of: bytes, total: int, window: int, /) -> Any: ...
def verify_blob(verifier: Any, blob: Any, lengths: Any, n: int, /) -> None: ...
def verify_list(verifier: Any, skbs: list[Any], /) -> None: ...
def verify_match_blob(verifier: Any, blob: Any, lengths: Any, n: int, /) -> bytes: ...
def verify_match_list(verifier: Any, skbs: list[Any], /) -> bytes: ...
def verifier_stats(verifier: Any, /) -> dict[str, Any]: ...
def cdriver_verify(handle: Any, verifier: Any, /) -> None: ...
def stamp_frame(frame: Any, stamp_off: int, csum_off: int, seq: int, ts: int, /) -> None: ...
def wait_irq_eventfd(seg: Any, seen: int, index: int, fd: int, busy_poll_ns: int, /) -> int: ...
def take_irq(seg: Any, seen: int, index: int, /) -> int: ...
def idle_wait(seg: Any, seen: int, signo: int, busy_poll_ns: int, /) -> bool: ...
def record_exit(seg: Any, index: int, doorbell: int, delivered: int, /) -> None: ...
def write_mask(seg: Any, register: str, value: int, /) -> None: ...
def cdriver_new(
    seg: Any,
    open: int,
    interrupt: int,
    close: int,
    idle: int,
    napi_budget: int,
    arena: Any,
    lengths: Any,
    stamps: Any = None,
    /,
) -> object: ...
def cdriver_open(handle: object, /) -> int: ...
def cdriver_loop(handle: object, line_mode: int, fd: int, signo: int, busy_poll_ns: int, /) -> int: ...
def cdriver_close(handle: object, /) -> None: ...
def cdriver_transmit(handle: object, transmit: int, frames: bytes, blob: bytes, order: bytes, /) -> None: ...
def cdriver_stats(handle: object, /) -> dict[str, Any]: ...
def read_icr(seg: Any, /) -> int: ...
def write_rdt(seg: Any, value: int, /) -> None: ...
def memcpy_bench(size: int, out: Any, /) -> None: ...
def now_ns() -> int: ...
def mb() -> None: ...
def fcs_shift(n: int, /) -> int: ...
def reg_read(seg: Any, offset: int, /) -> int: ...
def reg_write(seg: Any, offset: int, value: int, /) -> None: ...
def registers() -> dict[str, int]: ...
def dma_alloc(seg: Any, size: int, align: int, /) -> int: ...
def publish_avail(seg: Any, idx: int, /) -> None: ...
def spin_gaps(
    start_ns: int, duration_ns: int, threshold_ns: int, hist: Any, starts: Any, lengths: Any, /
) -> tuple[int, int, int, int]: ...
