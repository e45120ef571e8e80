"""One run's platform configuration, validated: every bound of it stated here, once (the plan's are in plan.py)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .layout import BUFFER_SIZES, ITR_UNIT_NS, MODELS, VIRTIO_MAX_QUEUE
from .node import available_cores
from .units import parse_interval, parse_rate, parse_size

# e1000 RDLEN is a multiple of 128 bytes (8 descriptors); Linux caps a ring at 4096 (E1000_MAX_RXD).
RING_SIZES = tuple(1 << k for k in range(3, 13))
#: The device models (pnic_layout.h, PNIC_MODEL_*): the 8254x, and virtio-net's split virtqueue.
DEVICES = tuple(MODELS)
DEFAULT_DEVICE = "e1000"
#: A virtqueue's size is a power of two up to 32768 (VIRTIO 1.1 2.6).
QUEUE_SIZES = tuple(1 << k for k in range(VIRTIO_MAX_QUEUE.bit_length()))
IRQ_LINES = ("spin", "eventfd", "signal")
#: ITR is a 16-bit count of ITR_UNIT_NS units (8254x SDM 13.4.18).
MAX_ITR_NS = 0xFFFF * ITR_UNIT_NS
MAX_NAPI_BUDGET = 4096
UPPER_LAYERS = ("verify", "null")
#: How the device raises its line (pnic_layout.h, PNIC_IRQ_*): level is the 8254x's INTx (INTA#),
#: asserted while ICR & IMS is non-zero; edge is MSI, one message per raise.
IRQ_MODES = ("level", "edge")

# Defaults, stated once for the API and the CLI: the paper's E2 setting
# (38 us, 1000 packets, 1.5 KB), its 16 KB buffers, Linux e1000's 256 descriptors.
DEFAULT_INTERVAL = "38us"
DEFAULT_COUNT = 1000
DEFAULT_SIZE = 1500
DEFAULT_RING_SIZE = 256
DEFAULT_BUFFER_SIZE = 16384
DEFAULT_DEVICE_CORE = 0
DEFAULT_DRIVER_CORE = 1
DEFAULT_IRQ = "spin"
DEFAULT_UPPER = "verify"
DEFAULT_DRIVER = "python"
DEFAULT_ITR = 0  # no interrupt moderation
DEFAULT_NAPI_BUDGET = 0  # interrupt mode; Linux's NAPI weight is 64
# Edge (MSI): one interrupt per raise, the paper's IPI per packet, which E2's precision measures, and
# what PCIe NICs after the 8254x (e1000e, igb) and VFIO's eventfd give a driver. Level (the 8254x's
# INTx) is the mode that catches a handler leaving its cause in ICR: check-driver and hunt use it.
DEFAULT_IRQ_MODE = "edge"
#: After a late start: keep the absolute schedule (overdue packets back to back, as pktgen does),
#: or keep the intervals (every later deadline moves by the lateness); pnic_layout.h, PNIC_LATE_*.
LATE_MODES = ("catch-up", "shift")
DEFAULT_LATE = "catch-up"
#: Linux's busy_poll is set in microseconds, 50 being the value its documentation suggests; past
#: 10 ms a poll is a spin line that sleeps now and then, which the spin line already is.
MAX_BUSY_POLL_NS = 10_000_000
#: ``off``; ``on``: SCHED_FIFO and mlockall on both nodes, or the run is refused; ``try``: where permitted.
RT_MODES = ("off", "on", "try")
#: Packets due back to back whose raise may wait for the last of them (pnic_send.c): a cache line of four
#: legacy descriptors, as the 8254x writes them back (SDM 13.4.29 WTHRESH); 1 raises for every packet.
DEFAULT_BATCH = 4
MAX_BATCH = 64
#: Frames a run may hand the driver's transmit entry (a record each in the segment, as for receive).
MAX_TRANSMIT = 1_000_000
#: The transmitter's pace: "off" takes frames as fast as the device can; "line" is the link STATUS reports.
LINE_RATE_BPS = 1_000_000_000
MIN_TX_RATE_BPS = 1_000_000
MAX_TX_RATE_BPS = 400_000_000_000


@dataclass(frozen=True)
class RunConfig:
    """Everything of a run but its plan (:mod:`pseudonic.plan`): the platform, the lines, the driver."""

    ring_size: int
    buffer_size: int
    device_core: int
    driver_core: int
    irq: str
    upper: str
    driver: str
    itr_ns: int
    napi_budget: int
    irq_mode: str = DEFAULT_IRQ_MODE
    #: every RDT write checked, every buffer handed back poisoned (pnic_sanitize.c)
    sanitize: bool = False
    late: str = DEFAULT_LATE
    #: eventfd and signal lines: how long the driver node spins on the doorbell before it sleeps
    busy_poll_ns: int = 0
    rt: str = "off"
    #: the device model: "e1000" or "virtio-net"
    device: str = DEFAULT_DEVICE
    #: What was made of the ITR asked for when it was not a whole number of steps, for the user to see.
    itr_note: str | None = None
    #: e1000: frames the host hands the driver's transmit entry, one after the other (0: none)
    transmit: int = 0
    #: the transmitter's pace in bits per second on the wire (0: as fast as the device takes them)
    tx_rate_bps: int = 0
    #: packets due back to back whose raise waits for the last of them (1: a raise for every packet)
    batch: int = DEFAULT_BATCH
    #: the plan's frames are handed to the driver's transmit entry, and every frame the device takes comes back
    #: into the receive ring as that plan entry: transmit and receive tested together
    loopback: bool = False
    #: how the run keeps its per-packet records (plan.RECORD_MODES), resolved: full, summary or none
    records: str = "full"

    @property
    def model(self) -> int:
        """The device as the segment's header names it (PNIC_MODEL_*)."""
        return MODELS[self.device]

    @property
    def itr_units(self) -> int:
        return self.itr_ns // ITR_UNIT_NS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer, not {value!r}")
    return value


_ONLINE_CPUS = Path("/sys/devices/system/cpu/online")


def parse_cpu_list(text: str) -> list[int]:
    """The kernel's cpu list format (``0-3,8``, as in ``/sys/devices/system/cpu/online``) -> cores."""
    cores: set[int] = set()
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cores.update(range(int(first), int(last or first) + 1))
    return sorted(cores)


def online_cores() -> list[int]:
    """Cores this machine has running, whether or not this process may use them."""
    try:
        return parse_cpu_list(_ONLINE_CPUS.read_text())
    except (OSError, ValueError):
        return list(range(os.cpu_count() or 1))


def _check_core(what: str, core: int, allowed: list[int]) -> None:
    if core in allowed:
        return
    listed = ", ".join(map(str, allowed))
    # taskset and cgroup cpusets narrow the affinity: the core is there, the fix is elsewhere.
    if core in online_cores():
        raise ConfigError(
            f"{what} {core} exists but this process may not run on it (allowed: {listed}; see taskset/cgroup cpuset)"
        )
    raise ConfigError(f"{what} {core} does not exist here: give one of {listed}")


def check_batch(batch: Any) -> int:
    """The device's batch (--batch), checked: packets whose write-back and raise it may hold together."""
    n = _int(batch, "batch")
    if not 1 <= n <= MAX_BATCH:
        raise ConfigError(f"batch {n} is out of range: give 1 (a raise for every packet) .. {MAX_BATCH}")
    return n


def make_config(
    *,
    ring_size: int = DEFAULT_RING_SIZE,
    buffer_size: str | int = DEFAULT_BUFFER_SIZE,
    device_core: int = DEFAULT_DEVICE_CORE,
    driver_core: int = DEFAULT_DRIVER_CORE,
    irq: str = DEFAULT_IRQ,
    upper: str = DEFAULT_UPPER,
    driver: str = DEFAULT_DRIVER,
    itr: str | int = DEFAULT_ITR,
    napi_budget: int = DEFAULT_NAPI_BUDGET,
    irq_mode: str = DEFAULT_IRQ_MODE,
    sanitize: bool = False,
    late: str = DEFAULT_LATE,
    busy_poll: str | int = 0,
    rt: str | bool = "off",
    device: str = DEFAULT_DEVICE,
    transmit: int = 0,
    tx_rate: str | int = "off",
    loopback: bool = False,
    batch: int = DEFAULT_BATCH,
) -> RunConfig:
    """Validate what a user asked for; raise :class:`ConfigError` naming the accepted range."""
    if device not in DEVICES:
        raise ConfigError(f"device {device!r} is unknown: give one of {', '.join(DEVICES)}")
    virtio = device == "virtio-net"
    ring_size = _int(ring_size, "queue size" if virtio else "ring size")
    if virtio and ring_size not in QUEUE_SIZES:
        raise ConfigError(
            f"queue size {ring_size} is not allowed: virtio-net's is a power of two "
            f"{QUEUE_SIZES[0]}..{QUEUE_SIZES[-1]} (VIRTIO 1.1 2.6)"
        )
    if not virtio and ring_size not in RING_SIZES:
        raise ConfigError(
            f"ring size {ring_size} is not allowed: give a power of two {RING_SIZES[0]}..{RING_SIZES[-1]}"
        )
    buf = parse_size(buffer_size, "buffer size", signed=True)
    if virtio and buf not in BUFFER_SIZES:
        raise ConfigError(f"buffer size {buf} is not allowed: give one of {', '.join(map(str, BUFFER_SIZES))}")
    if buf not in BUFFER_SIZES:
        raise ConfigError(
            f"buffer size {buf} is not an e1000 receive buffer size: give one of {', '.join(map(str, BUFFER_SIZES))}"
        )
    cores = available_cores()
    for what, core in (("device core", device_core), ("driver core", driver_core)):
        _check_core(what, _int(core, what), cores)
    if device_core == driver_core:
        raise ConfigError(f"device core and driver core are both {device_core}: each node needs its own core")
    if irq not in IRQ_LINES:
        raise ConfigError(f"interrupt line {irq!r} is not available: give one of {', '.join(IRQ_LINES)}")
    itr_asked = parse_interval(itr, "ITR", signed=True)
    # Below one step the register would hold 0, which turns moderation off: the opposite of what was asked.
    if itr_asked != 0 and not ITR_UNIT_NS <= itr_asked <= MAX_ITR_NS:
        raise ConfigError(
            f"ITR {itr!r} is out of range: give 0 (off) .. {MAX_ITR_NS} ns in steps of {ITR_UNIT_NS} ns, "
            f"the shortest being {ITR_UNIT_NS} ns"
        )
    itr_ns = round(itr_asked / ITR_UNIT_NS) * ITR_UNIT_NS
    itr_note = f"ITR {itr_asked} ns rounded to {itr_ns} ns ({ITR_UNIT_NS} ns steps)" if itr_ns != itr_asked else None
    napi_budget = _int(napi_budget, "NAPI budget")
    if not 0 <= napi_budget <= MAX_NAPI_BUDGET:
        raise ConfigError(f"NAPI budget {napi_budget} is out of range: give 0 (off) .. {MAX_NAPI_BUDGET}")
    if irq_mode not in IRQ_MODES:
        raise ConfigError(f"interrupt mode {irq_mode!r} is unknown: give one of {', '.join(IRQ_MODES)}")
    if virtio and irq_mode != "edge":
        raise ConfigError(
            "interrupt mode level applies to e1000 only: virtio-net interrupts with MSI-X messages (edge)"
        )
    if virtio and itr_ns:
        raise ConfigError(
            "ITR is e1000's interrupt throttle: virtio-net has none (its driver suppresses interrupts itself)"
        )
    if not isinstance(sanitize, bool):
        raise ConfigError(f"sanitize must be True or False, not {sanitize!r}")
    if upper not in UPPER_LAYERS:
        raise ConfigError(f"upper layer {upper!r} is unknown: give one of {', '.join(UPPER_LAYERS)}")
    if late not in LATE_MODES:
        raise ConfigError(f"late mode {late!r} is unknown: give one of {', '.join(LATE_MODES)}")
    busy_poll_ns = parse_interval(busy_poll, "busy poll", signed=True)
    if not 0 <= busy_poll_ns <= MAX_BUSY_POLL_NS:
        raise ConfigError(f"busy poll {busy_poll!r} is out of range: give 0 (off) .. {MAX_BUSY_POLL_NS // 1000} us")
    if busy_poll_ns and irq == "spin":
        raise ConfigError("busy poll applies to the eventfd and signal lines: the spin line polls all the time")
    rt = {True: "on", False: "off"}.get(rt, rt) if isinstance(rt, bool) else rt
    if rt not in RT_MODES:
        raise ConfigError(f"real-time mode {rt!r} is unknown: give one of {', '.join(RT_MODES)}")
    batch = check_batch(batch)
    transmit = _int(transmit, "transmit count")
    if not 0 <= transmit <= MAX_TRANSMIT:
        raise ConfigError(f"transmit count {transmit} is out of range: give 0 (none) .. {MAX_TRANSMIT}")
    if not isinstance(loopback, bool):
        raise ConfigError(f"loopback must be True or False, not {loopback!r}")
    if (transmit or loopback) and virtio:
        raise ConfigError("transmit applies to e1000: virtio-net's transmit queue is not modelled")
    if (transmit or loopback) and irq == "signal":
        raise ConfigError(
            "transmit needs the spin or eventfd line: the host offers refused frames again as the ring drains, "
            "which a driver whose handler runs in a signal handler cannot be called beside"
        )
    if tx_rate in ("off", 0):
        tx_rate_bps = 0
    elif tx_rate == "line":
        tx_rate_bps = LINE_RATE_BPS
    else:
        tx_rate_bps = parse_rate(tx_rate, "transmit rate")
        if not MIN_TX_RATE_BPS <= tx_rate_bps <= MAX_TX_RATE_BPS:
            raise ConfigError(
                f"transmit rate {tx_rate!r} is out of range: give off, line ({LINE_RATE_BPS // 10**9} Gbps, the link "
                f"STATUS reports) or {MIN_TX_RATE_BPS // 10**6} Mbps .. {MAX_TX_RATE_BPS // 10**9} Gbps"
            )
    return RunConfig(
        ring_size,
        buf,
        device_core,
        driver_core,
        irq,
        upper,
        driver,
        itr_ns,
        napi_budget,
        irq_mode,
        sanitize,
        late,
        busy_poll_ns,
        rt,
        device,
        itr_note=itr_note,
        transmit=transmit,
        tx_rate_bps=tx_rate_bps,
        loopback=loopback,
        batch=batch,
    )
