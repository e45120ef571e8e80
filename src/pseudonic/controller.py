"""The controller: one run from configuration to result, and nothing left behind.

It validates, claims the run's two cores, builds the frames and the
schedule, creates the segment, forks the driver node (which loads the
driver: no driver code ever runs here) and, once the driver is open, the
device node; then it waits on the nodes' pipes and process handles until the
device has sent everything and the driver has reported. Whatever happens --
a driver exception, a node killed by a signal, Ctrl-C, SIGTERM or SIGHUP --
both nodes are stopped, what the driver delivered so far is verified and
reported as a partial result, whatever the driver forked is ended, and the
segment is removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from . import _engine, config, cores, faults, limits, machine, realtime, stream, timing
from .config import RunConfig, make_config
from .device import DEFAULT_LEAD_NS, device_node
from .errors import ConfigError, DriverLoadError, RealtimeError
from .frame_list import recv_frames
from .hosts import NodeRun, driver_node
from .layout import (
    IRQ_EDGE,
    IRQ_LEVEL,
    LATE_CATCHUP,
    LATE_SHIFT,
    MAX_TX_FRAME,
    RXD_STAT_DD,
    SegmentView,
    segment_size,
)
from .line import Lines
from .loading import check_driver_class, check_spec, ended_while_loading, spec_of
from .node import STOP_SIGNALS, end_group
from .plan import RECORD_MODES, Plan
from .result import RunEnd, RunResult, build_result
from .segment import Segment
from .units import format_ns
from .verdict import MissedLimit, parse_missed_limit

#: How long the driver may take to open.
OPEN_TIMEOUT_S = 30.0
#: Past its schedule's last deadline, the device is hung only when it has not moved for this long: a schedule
#: faster than the device can send (--interval 1ns) is sent back to back, behind its deadlines, for as long
#: as that takes -- minutes, for billions of packets.
STILL_TIMEOUT_S = 30.0
#: How long the driver may take to load, and to finish after the last packet.
DRIVER_TIMEOUT_S = 10.0
#: How long pseudonic's own work in the driver node may take once the driver is through (verifying what it
#: delivered: well under a second for a million deliveries here); past it, pseudonic's failure, never the driver's.
VERIFY_TIMEOUT_S = 600.0
#: How long a node gets to leave by itself once told to stop, before SIGKILL.
STOP_GRACE_S = 2.0
#: How often a watcher (the CLI's live line) hears how the run is going.
PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True)
class Progress:
    """How a run is going, read from the segment while it runs (for a live line)."""

    elapsed_s: float
    packets: int  # schedule entries in all
    sent: int
    stored: int
    taken: int  # stored frames whose descriptors the driver has taken (DD no longer set)
    missed: int


class RunInterrupted(KeyboardInterrupt):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the run; ``result`` has the figures up to then."""

    def __init__(self, signo: int, result: RunResult | None = None) -> None:
        super().__init__(signo)
        self.signo = signo
        self.result = result


def run(
    interval: str | int = config.DEFAULT_INTERVAL,
    count: int = config.DEFAULT_COUNT,
    size: str | int = config.DEFAULT_SIZE,
    *,
    plan: Plan | None = None,
    driver: str | type = config.DEFAULT_DRIVER,
    ring_size: int = config.DEFAULT_RING_SIZE,
    buffer_size: str | int = config.DEFAULT_BUFFER_SIZE,
    device_core: int = config.DEFAULT_DEVICE_CORE,
    driver_core: int = config.DEFAULT_DRIVER_CORE,
    irq: str = config.DEFAULT_IRQ,
    upper: str = config.DEFAULT_UPPER,
    itr: str | int = config.DEFAULT_ITR,
    napi_budget: int = config.DEFAULT_NAPI_BUDGET,
    frames: Sequence[Any] | None = None,
    slots: np.ndarray[Any, Any] | None = None,
    driver_timeout: float = DRIVER_TIMEOUT_S,
    lead_ns: int = DEFAULT_LEAD_NS,
    max_missed: str | int | None = None,
    wait_for_cores: bool = False,
    progress: Callable[[Progress], None] | None = None,
    keep_frames: bool = False,
    faults: Sequence[str] = (),
    fault_seed: int | None = None,
    irq_mode: str = config.DEFAULT_IRQ_MODE,
    sanitize: bool = False,
    late: str = config.DEFAULT_LATE,
    busy_poll: str | int = 0,
    rt: str | bool = "off",
    calibrate: str | int | None = None,
    device: str = config.DEFAULT_DEVICE,
    transmit: int = 0,
    tx_rate: str | int = "off",
    loopback: bool = False,
    batch: int = config.DEFAULT_BATCH,
    records: str = "auto",
) -> RunResult:
    """Run the pseudo-NIC against a driver and return what was measured, with its verdict.

    The run's one input is its :class:`~pseudonic.plan.Plan`: when each
    packet is due, the frame it carries, its flags. ``plan`` gives one
    (:mod:`pseudonic.traffic` and :mod:`pseudonic.capture` make them);
    without it, ``interval``, ``count`` and ``size`` make a periodic plan of
    generated, stamped UDP frames, and ``slots`` (see
    :mod:`pseudonic.schedule`) with optional ``frames`` (bytes or scapy
    packets) make a plan of any timeline.
    ``irq`` picks the line (spin, eventfd, signal); ``itr`` programs the
    minimum interval between interrupts before the driver opens;
    ``napi_budget`` asks the driver to poll NAPI-style (the reference
    drivers do; ``nic.napi_budget`` tells any driver). ``max_missed`` (a
    count, or ``"P%"``) makes device drops past it fail the verdict.
    ``keep_frames`` keeps what the driver delivered, and when
    (``RunResult.delivered_frames``, ``delivered_ns``; verify layer only), for a
    capture of the deliveries.
    ``faults`` are :mod:`pseudonic.faults` specs (``"ce:0.01"``, ``"split:3@5"``), drawn with
    ``fault_seed`` (one is drawn and kept in the result's plan when None); ``irq_mode`` is ``level``
    (INTx, the e1000's) or ``edge`` (MSI); ``sanitize`` checks every hand-over of the ring.
    ``late`` is what the device does after a late start: ``catch-up`` (overdue packets back to back)
    or ``shift`` (keep the intervals). ``busy_poll`` (eventfd and signal lines) spins the driver node
    that long before it sleeps. ``rt`` (``on``, ``try``) runs both nodes SCHED_FIFO with their memory
    locked; ``calibrate`` (a duration) measures the two cores' noise floor before and after the run
    (``RunResult.calibration``), and the timing verdict compares the run with it.
    ``transmit`` (e1000) hands the driver's transmit entry that many frames, the plan's frames in turn,
    and judges what reached the wire (``RunResult.transmit``); ``tx_rate`` paces the transmitter
    (``off``: as fast as it takes them; ``line``: 1 Gbps; or e.g. ``"10Gbps"``).
    ``records`` (:data:`pseudonic.plan.RECORD_MODES`) is how the per-packet records are kept: ``full``
    (every one, in the result), ``summary`` (read while the run goes into streaming histograms, deliveries
    checked as they come: a run of any length, e.g. a ``count`` of 10**9, in bounded memory), ``none``
    (counts and the verdict only), ``auto`` (full up to ``plan.MAX_PACKETS``, summary past it).
    The run holds its two cores for its whole life; another run on either
    raises :class:`~pseudonic.errors.CoresBusyError` unless
    ``wait_for_cores``. Raises :class:`~pseudonic.errors.ConfigError` for
    bad input, :class:`RunInterrupted` (a ``KeyboardInterrupt`` carrying
    the partial result) when a signal stopped the run.
    """
    # Everything is checked before the cores are claimed: bad input never waits for them.
    cfg, plan, limit = _prepared(
        interval, count, size, plan=plan, frames=frames, slots=slots, faults=faults, fault_seed=fault_seed,
        max_missed=max_missed, ring_size=ring_size, buffer_size=buffer_size, device_core=device_core,
        driver_core=driver_core, irq=irq, upper=upper, driver=spec_of(driver), itr=itr, napi_budget=napi_budget,
        irq_mode=irq_mode, sanitize=sanitize, late=late, busy_poll=busy_poll, rt=rt, device=device,
        transmit=transmit, tx_rate=tx_rate, loopback=loopback, batch=batch, records=records, keep_frames=keep_frames,
    )  # fmt: skip
    calibration = _calibration_of(calibrate)
    with Session(driver, device_core=device_core, driver_core=driver_core, driver_timeout=driver_timeout,
                 wait_for_cores=wait_for_cores) as session:  # fmt: skip

        def one_run() -> RunResult:
            return session._run_prepared(cfg, plan, limit, lead_ns=lead_ns, progress=progress, keep_frames=keep_frames)

        return one_run() if calibration is None else _calibrated(session, calibration, one_run)


def _prepared(
    interval: str | int,
    count: int,
    size: str | int,
    *,
    plan: Plan | None,
    frames: Sequence[Any] | None,
    slots: np.ndarray[Any, Any] | None,
    faults: Sequence[str],
    fault_seed: int | None,
    max_missed: str | int | None,
    records: str = "auto",
    keep_frames: bool = False,
    **platform: Any,
) -> tuple[RunConfig, Plan, MissedLimit | None]:
    """A run's checked configuration (``platform``: :func:`make_config`'s arguments), its plan with its
    faults, and its drop limit: every bound checked here, once, before anything runs."""
    cfg = make_config(**platform)
    if cfg.rt == "on":
        refusal = realtime.check_rt()
        if refusal is not None:
            raise RealtimeError(f"--rt: {refusal} (--rt=try runs without it where it is not permitted)")
    given = plan
    if records not in RECORD_MODES:
        raise ConfigError(f"records {records!r} is unknown: give one of {', '.join(RECORD_MODES)}")
    plan = plan_of(interval, count, size, plan=plan, frames=frames, slots=slots, buffer_size=cfg.buffer_size)
    mode = ("summary" if plan.total else "full") if records == "auto" else records
    plan.check(cfg.buffer_size, cfg.upper, mode)
    if mode != "full":
        _check_long(plan, cfg, faults, keep_frames, mode)
        cfg = dataclasses.replace(cfg, records=mode)
    if cfg.loopback:
        # The plan's frames are what the driver transmits; each comes back as its own entry of the plan.
        if cfg.transmit not in (0, len(plan)):
            raise ConfigError(
                f"loopback transmits the plan's {len(plan)} frames: leave --transmit out (it was {cfg.transmit})"
            )
        if faults:
            raise ConfigError("loopback: faults are injected into received frames, and here every frame is one the "
                              "driver transmitted: run the faults without --loopback")  # fmt: skip
        cfg = dataclasses.replace(cfg, transmit=len(plan))
    if given is None and slots is None:  # a pace the user asked for (limits.check_pace)
        limits.check_pace(plan, cfg.device, cfg.batch)
    if cfg.transmit and max(plan.frames.sizes) > MAX_TX_FRAME:
        raise ConfigError(
            f"transmit: the plan has a {max(plan.frames.sizes)} B frame; the transmitter takes frames of at most "
            f"{MAX_TX_FRAME} B (SDM 3.3.3)"
        )
    return cfg, with_faults(plan, faults, fault_seed, cfg), parse_missed_limit(max_missed)


def _check_long(plan: Plan, cfg: RunConfig, specs: Sequence[str], keep_frames: bool, mode: str) -> None:
    """What a run without full records cannot do, refused in one line each: its deliveries are checked as they
    come by the stamp each frame carries, and nothing per packet is kept."""
    why = f"--records {mode} keeps no per-packet records"
    if not plan.frames.stamped:
        raise ConfigError(f"{why}: deliveries are checked as they come by their stamp, and the plan's frames carry "
                          "none (frames of your own, a capture): use generated frames, or --records full")  # fmt: skip
    if specs or (plan.slots["flags"] != 0).any():
        raise ConfigError(f"{why}: faults are judged per packet; run them with --records full")
    if cfg.transmit or cfg.loopback:
        raise ConfigError(f"{why}: transmit is judged per frame; run it with --records full")
    if keep_frames:
        raise ConfigError(f"{why}: the deliveries are not kept for a capture; use --records full")


def _calibration_of(duration: str | int | None) -> int | None:
    """The length of each calibration asked for (ns), checked as ``calibrate`` checks it; None: none asked."""
    if duration is None:
        return None
    from .calibrate import check_duration

    return check_duration(duration)


def _calibrated(session: Session, duration_ns: int, one_run: Callable[[], RunResult]) -> RunResult:
    """``one_run`` between two calibrations of the session's cores; its timing verdict compared with them."""
    from .calibrate import MIN_MODEL_INTERVAL_NS, calibrate

    cores_ = (session.device_core, session.driver_core)
    before = calibrate(duration_ns, cores_)
    result = one_run()
    after = calibrate(duration_ns, cores_)
    interval = result.plan.median_interval_ns() if result.plan is not None else 0
    expected, note = None, None
    if MIN_MODEL_INTERVAL_NS <= interval <= duration_ns // 2:
        late = result.config["late"]
        expected = (before.expected_disturbed_share(interval, late=late)
                    + after.expected_disturbed_share(interval, late=late)) / 2  # fmt: skip
    else:
        # The model lays the run's interval over the calibration at least twice, and takes a send as
        # instantaneous: neither holds outside this range.
        span = f"{format_ns(MIN_MODEL_INTERVAL_NS)} .. {format_ns(duration_ns // 2)}"
        note = f"no prediction for a {format_ns(interval)} interval: the model takes {span}, half the calibration"
    result.calibration = {"before": before.to_dict(), "after": after.to_dict(), "interval_ns": interval,
                          "expected_disturbed_share": expected, "note": note}  # fmt: skip
    if result.attribution is not None:
        result.timing = timing.timing_verdict(
            result.attribution, result.stalls, expected_disturbed_share=expected, cores=cores_
        )
    return result


def with_faults(plan: Plan, specs: Sequence[str], seed: int | None, cfg: RunConfig) -> Plan:
    """The plan with its faults applied (and frames longer than the buffer split); a seed is drawn if none."""
    if isinstance(specs, str):
        specs = [specs]
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1) if specs else 0
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"fault seed {seed!r} must be a whole number, 0 or more")
    # A plan that carries faults already (a replayed one) keeps them; new specs add to them.
    out = faults.apply(plan, list(specs), seed, cfg.ring_size, cfg.buffer_size, cfg.device)
    # a long plan's pass, split where its frames need it, stays repeated
    return dataclasses.replace(out, total=plan.total, period_ns=plan.period_ns) if plan.total else out


def plan_of(
    interval: str | int,
    count: int,
    size: str | int,
    *,
    plan: Plan | None,
    frames: Sequence[Any] | None,
    slots: np.ndarray[Any, Any] | None,
    buffer_size: int,
) -> Plan:
    """The run's plan from :func:`run`'s arguments (see its docstring); bounds are checked by ``Plan.check``."""
    if plan is not None:
        if slots is not None or frames is not None:
            raise ConfigError("give a plan, or slots and frames, not both")
        if not isinstance(plan, Plan):
            raise ConfigError(f"plan must be a pseudonic.plan.Plan, not {type(plan).__name__}")
        return plan
    if slots is not None:
        return Plan.custom(slots, frames, size, buffer_size=buffer_size)
    if frames is not None:  # the frames in turn, on the periodic timeline
        timeline = Plan.periodic(interval, count, config.DEFAULT_SIZE).slots.copy()
        timeline["frame"] = np.arange(timeline.size) % max(len(frames), 1)
        return Plan.custom(timeline, frames, size)
    return Plan.periodic(interval, count, size, buffer_size=buffer_size)


class Session:
    """A driver loaded once, for one run after another on the same two cores.

    Like a kernel module, the driver is loaded once -- its imports, its
    library's constructors -- and each run opens a fresh instance of it on
    a fresh segment (check-driver's cases and a hunt's trials run this way)::

        with pseudonic.Session("mydriver.py", wait_for_cores=True) as s:
            for interval in ("40us", "20us", "10us"):
                print(s.run(interval, 2000).verdict.line())

    The session holds its cores from ``__enter__`` to ``__exit__``. A driver
    that fails a run ends its node; the next run loads it again. Loading
    errors raise :class:`~pseudonic.errors.DriverLoadError` at the first run.
    """

    def __init__(
        self,
        driver: str | type = config.DEFAULT_DRIVER,
        *,
        device_core: int = config.DEFAULT_DEVICE_CORE,
        driver_core: int = config.DEFAULT_DRIVER_CORE,
        driver_timeout: float = DRIVER_TIMEOUT_S,
        wait_for_cores: bool = False,
    ) -> None:
        self.spec = spec_of(driver)
        make_config(device_core=device_core, driver_core=driver_core, driver=self.spec)  # the cores' bounds
        if not 0 < driver_timeout <= 3600:
            raise ConfigError(
                f"driver timeout {driver_timeout!r} s is out of range: give more than 0 and at most 3600 s"
            )
        # What can be checked without running the driver's code; the rest happens in the driver node.
        if isinstance(driver, str):
            check_spec(driver)
        else:
            check_driver_class(driver, self.spec)
        self.driver = driver
        self.device_core, self.driver_core = device_core, driver_core
        self.driver_timeout = driver_timeout
        self.wait_for_cores = wait_for_cores
        self.ctx = mp.get_context("fork")
        self.node: BaseProcess | None = None
        self.conn: Connection | None = None
        self.label = self.spec
        #: how many times the driver was loaded (a failed run ends its node; the next run loads again)
        self.loads = 0
        self.transmits = False
        self._held = contextlib.ExitStack()
        self.lines = Lines()

    def __enter__(self) -> Session:
        self._held.enter_context(cores.claim({self.device_core, self.driver_core}, wait=self.wait_for_cores))
        self.lines.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the driver node, give the cores back."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            node, conn = self.node, self.conn
            self.forget()
            if node is not None:
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.send(("quit", None))
                Controller.reap([node])
            if conn is not None:
                conn.close()
            self.lines.close()
            self._held.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def forget(self) -> None:
        """The node is being stopped by its run (it failed, or the run was interrupted): the next run loads anew."""
        self.node = None

    def run(
        self,
        interval: str | int = config.DEFAULT_INTERVAL,
        count: int = config.DEFAULT_COUNT,
        size: str | int = config.DEFAULT_SIZE,
        *,
        plan: Plan | None = None,
        ring_size: int = config.DEFAULT_RING_SIZE,
        buffer_size: str | int = config.DEFAULT_BUFFER_SIZE,
        irq: str = config.DEFAULT_IRQ,
        upper: str = config.DEFAULT_UPPER,
        itr: str | int = config.DEFAULT_ITR,
        napi_budget: int = config.DEFAULT_NAPI_BUDGET,
        frames: Sequence[Any] | None = None,
        slots: np.ndarray[Any, Any] | None = None,
        lead_ns: int = DEFAULT_LEAD_NS,
        max_missed: str | int | None = None,
        progress: Callable[[Progress], None] | None = None,
        keep_frames: bool = False,
        faults: Sequence[str] = (),
        fault_seed: int | None = None,
        irq_mode: str = config.DEFAULT_IRQ_MODE,
        sanitize: bool = False,
        late: str = config.DEFAULT_LATE,
        busy_poll: str | int = 0,
        rt: str | bool = "off",
        device: str = config.DEFAULT_DEVICE,
        transmit: int = 0,
        tx_rate: str | int = "off",
        loopback: bool = False,
        batch: int = config.DEFAULT_BATCH,
        records: str = "auto",
    ) -> RunResult:
        """One run with the session's driver; the arguments are :func:`run`'s."""
        if not self.lines.is_open:
            raise ConfigError("this session is not open: use it in a with block")
        cfg, ready, limit = _prepared(
            interval, count, size, plan=plan, frames=frames, slots=slots, faults=faults, fault_seed=fault_seed,
            max_missed=max_missed, ring_size=ring_size, buffer_size=buffer_size, device_core=self.device_core,
            driver_core=self.driver_core, irq=irq, upper=upper, driver=self.spec, itr=itr, napi_budget=napi_budget,
            irq_mode=irq_mode, sanitize=sanitize, late=late, busy_poll=busy_poll, rt=rt, device=device,
            transmit=transmit, tx_rate=tx_rate, loopback=loopback, batch=batch, records=records,
            keep_frames=keep_frames,
        )  # fmt: skip
        return self._run_prepared(cfg, ready, limit, lead_ns=lead_ns, progress=progress, keep_frames=keep_frames)

    def _run_prepared(
        self,
        cfg: RunConfig,
        plan: Plan,
        limit: MissedLimit | None,
        *,
        lead_ns: int = DEFAULT_LEAD_NS,
        progress: Callable[[Progress], None] | None = None,
        keep_frames: bool = False,
    ) -> RunResult:
        """One run of what :func:`_prepared` checked (its driver and cores must be this session's)."""
        if not self.lines.is_open:
            raise ConfigError("this session is not open: use it in a with block")
        return Controller(cfg, self, plan, lead_ns, limit, progress, keep_frames).run()

    def load(self) -> str:
        """Load the driver now (else the first run does); its name. :class:`DriverLoadError` if it cannot load."""
        if not self.lines.is_open:
            raise ConfigError("this session is not open: use it in a with block")
        procs: list[BaseProcess] = []
        try:
            self.loaded_node(procs)
        except BaseException:
            self.forget()
            Controller.reap(procs)
            raise
        return self.label

    def loaded_node(self, procs: list[BaseProcess]) -> tuple[BaseProcess, Connection]:
        """The session's driver node, the driver loaded in it; started (and the driver loaded) if there is none."""
        if self.node is not None and self.conn is not None and self.node.is_alive():
            procs.append(self.node)
            return self.node, self.conn
        if self.conn is not None:
            self.conn.close()
        ours, theirs = self.ctx.Pipe(duplex=True)
        node = self.ctx.Process(
            target=driver_node, args=(theirs, self.driver_core, os.getpid(), self.driver),
            name="pseudonic-driver", daemon=True,
        )  # fmt: skip
        Controller.start(node, procs)
        theirs.close()
        self.node, self.conn = node, ours
        self.loads += 1
        # Loading runs the driver's own code (imports, constructors): it gets the driver timeout.
        msg = Controller.next_message(ours, node, self.driver_timeout)
        if msg is None:
            node.join(0.5)
            raise ended_while_loading(self.spec, node.exitcode, self.driver_timeout)
        if msg[0] == "load-error":
            raise DriverLoadError(str(msg[1]))
        self.label = str(msg[1])
        #: the loaded driver has a transmit entry point (pnic_driver_transmit, transmit(nic, frame))
        self.transmits = bool(msg[2].get("transmit")) if len(msg) > 2 else False
        return node, ours


class Controller:
    def __init__(
        self,
        cfg: RunConfig,
        session: Session,
        plan: Plan,
        lead_ns: int,
        max_missed: MissedLimit | None = None,
        progress: Callable[[Progress], None] | None = None,
        keep_frames: bool = False,
    ) -> None:
        self.cfg = cfg
        self.keep_frames = keep_frames
        self.session = session
        self.plan = plan
        self.frames = plan.frames
        self.slots = plan.slots
        #: e1000: the frames the driver's transmit entry is handed, in order (None: none); with loopback, the plan's
        self.tx_order = (
            plan.slots["frame"].astype(np.uint32) if cfg.loopback
            else plan.transmit_order(cfg.transmit) if cfg.transmit else None
        )  # fmt: skip
        self.driver_timeout = session.driver_timeout
        self.lead_ns = lead_ns
        self.max_missed = max_missed
        self.progress = progress
        self.ctx = session.ctx
        self.driver_label = cfg.driver
        self.started = time.monotonic()
        #: the driver node reported this run whole: the session keeps it for the next run
        self.node_done = False
        self.verifying = False  # the driver node said the driver is through and it verifies
        #: --rt: why it is not applied (None: applied, or not asked)
        self.rt_refusal = realtime.check_rt() if cfg.rt != "off" else None
        self.rt = cfg.rt != "off" and self.rt_refusal is None
        self.core_meter = machine.CoreMeter((cfg.device_core, cfg.driver_core))
        #: a run without full records: its records in rings, read while it goes (summary) or not at all (none)
        self.long = cfg.records != "full"
        self.reader: stream.Reader | None = None

    def run(self) -> RunResult:
        cfg = self.cfg
        # A transmit record per frame, and one for a frame the driver never finished (no EOP); a raise and a
        # handler run may come for each frame either way.
        tx_capacity = cfg.transmit + 1 if cfg.transmit else 0
        capacity = stream.ring_capacity(self.plan, cfg.records) if self.long else len(self.slots) + cfg.transmit
        seg = Segment.create(segment_size(cfg.ring_size, cfg.buffer_size, capacity, cfg.model, tx_capacity))
        procs: list[BaseProcess] = []
        view: SegmentView | None = None
        try:
            self.line = self.session.lines.line(cfg.irq, cfg.busy_poll_ns)
            assert seg.map is not None
            view = SegmentView.create(seg.map, cfg.ring_size, cfg.buffer_size, capacity, cfg.model, tx_capacity)
            if self.long:
                view.header["records_mask"][0] = capacity - 1
            # ITR as the platform programmed it before the driver opens; the driver may rewrite it.
            _engine.write_mask(seg.map, "itr", cfg.itr_units)
            view.header["sanitize"][0] = int(cfg.sanitize)
            self.recv: Connection | None = None
            try:
                with self.core_meter:
                    failure, report = self._run_nodes(seg, view, procs)
            except KeyboardInterrupt as exc:
                signo = int(getattr(exc, "signo", signal.SIGINT))
                if len(procs) < 2:
                    raise RunInterrupted(signo) from None  # the device never started: nothing to report
                report = self._stop_and_collect(view, procs)
                stopped = {"kind": "interrupted", "stage": "run", "handler_run": None,
                           "message": f"stopped by {signal.Signals(signo).name}"}  # fmt: skip
                raise RunInterrupted(signo, self._result(view, stopped, report, interrupted=signo)) from None
            return self._result(view, failure, report)
        finally:
            # Cleanup runs to its end: a second Ctrl-C now would leave nodes or the segment behind.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                if self.reader is not None:
                    self.reader.stop()  # before the segment goes
                kept = procs[:1] if self.node_done else []
                if not kept:
                    self.session.forget()
                if view is not None:
                    view.ctl["stop"][0] = 1
                    self._kick([p for p in procs if p not in kept])
                self.reap([p for p in procs if p not in kept])
                if view is not None:
                    view.release()
                seg.close()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _kick(self, procs: list[BaseProcess]) -> None:
        """Wake the driver node, if it is among ``procs``, asleep on its line, so that it sees the stop flag."""
        self.line.kick(next((p.pid for p in procs if p.name == "pseudonic-driver" and p.is_alive()), None))

    # -- the nodes ------------------------------------------------------------------------
    def _run_nodes(
        self, seg: Segment, view: SegmentView, procs: list[BaseProcess]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        cfg, me = self.cfg, os.getpid()
        drv, conn = self.session.loaded_node(procs)
        self.recv = conn
        self.driver_label = self.session.label
        conn.send(("run", NodeRun(seg.name, cfg.upper, self.frames, self.slots, self.line, cfg.napi_budget,
                                  self.keep_frames, self.rt, self.tx_order,
                                  self.plan.entries if self.long else 0)))  # fmt: skip
        msg = self.next_message(conn, drv, OPEN_TIMEOUT_S)
        if msg is not None and msg[0] == "load-error":
            # The driver is not for this device, or asked for what the device does not offer: usage, not a verdict.
            raise DriverLoadError(str(msg[1]))
        if msg is None or msg[0] != "ready":
            return self._driver_failure(msg, drv, view, "open"), None

        mode = IRQ_LEVEL if cfg.irq_mode == "level" else IRQ_EDGE
        dev = self.ctx.Process(
            target=device_node,
            args=(
                seg.map,
                cfg.device_core,
                me,
                # with loopback nothing is received but what the driver transmits: no receive schedule
                self.slots[:0] if cfg.loopback else self.slots,
                self.frames,
                self.lead_ns,
                self.line,
                drv.pid,
                mode,
                LATE_SHIFT if cfg.late == "shift" else LATE_CATCHUP,
                self.rt,
                self.tx_order,
                cfg.loopback,
                cfg.tx_rate_bps,
                cfg.batch,
                self.plan.entries if self.long else 0,  # 0: each slot once
                self.plan.period_ns,
            ),
            name="pseudonic-device",
            daemon=True,
        )
        self.start(dev, procs)
        if cfg.records == "summary":
            self.reader = stream.Reader(view, stream.Fold(self.plan), lambda: int(view.header["t0_ns"][0]),
                                        (cfg.device_core, cfg.driver_core))  # fmt: skip
            self.reader.start()
        due_s = self.plan.last_due_ns / 1e9 + self.lead_ns / 1e9

        # Until the device is through its schedule, or the driver speaks or dies first; while the device sends
        # (behind its deadlines) or the transmitter moves (the device goes on while the driver has frames to
        # send), it is not through.
        ready, moved = self._watch([conn, drv.sentinel, dev.sentinel], due_s + STILL_TIMEOUT_S, view), -1
        while not ready and moved != (moved := self._progress(view)):
            ready = self._watch([conn, drv.sentinel, dev.sentinel], STILL_TIMEOUT_S, view)
        if not ready:
            sent = int(view.dev["sent"][0])
            return {"kind": "device node hung", "stage": "schedule", "handler_run": None,
                    "message": f"the device did not finish its schedule: it stopped at {sent} of "
                               f"{self.plan.entries} entries, {STILL_TIMEOUT_S:g} s without sending"}, None  # fmt: skip
        if dev.sentinel in ready:
            dev.join()
            if dev.exitcode != 0:
                # The device is gone; what the driver took until then is still verified and reported.
                code = dev.exitcode or 0
                sent = int(view.dev["sent"][0])
                failure = {"kind": "device node died", "stage": "schedule", "handler_run": None,
                           "last_packet": sent - 1 if sent else None,
                           "message": (f"killed by {signal.Signals(-code).name}" if code < 0
                                       else f"exited with status {code}") + f" after {sent} of {self.plan.entries} "
                                       "schedule entries"}  # fmt: skip
                return failure, self._stop_and_collect(view, procs)
        msg = self.report_of(conn, drv, self.driver_timeout)
        if msg is not None and msg[0] == "done":
            self.node_done = True
            dev.join(due_s + OPEN_TIMEOUT_S)
            return None, msg[1]
        view.ctl["stop"][0] = 1
        self._kick(procs)
        dev.join(STOP_GRACE_S)
        return self._driver_failure(msg, drv, view, "interrupt"), None

    def report_of(
        self, conn: Connection, drv: BaseProcess, timeout: float, after_ready: bool = False
    ) -> tuple[str, Any] | None:
        """The driver node's report: the driver gets ``timeout`` to finish; once the node says it is verifying,
        the wait is for pseudonic's own work (VERIFY_TIMEOUT_S), which a slow machine must not make a hang.
        ``after_ready``: a "ready" may come first (a run stopped before the device started)."""
        msg = self.next_message(conn, drv, timeout)
        if after_ready and msg is not None and msg[0] == "ready":
            msg = self.next_message(conn, drv, timeout)
        if msg is not None and msg[0] == "verifying":
            self.verifying = True
            msg = self.next_message(conn, drv, VERIFY_TIMEOUT_S)
        if msg is not None and msg[0] == "done" and msg[1].get("frames_follow"):
            try:
                msg[1]["deliveries"].frames = recv_frames(conn)
            except (EOFError, OSError):
                return None  # the node died handing its frames over: no report
        return msg

    @staticmethod
    def _progress(view: SegmentView) -> int:
        """A count that moves whenever the device does: entries sent, frames handed, descriptors taken."""
        return int(view.dev["sent"][0]) + int(view.drv["tx_handed"][0]) + int(view.dev["tx_descs"][0])

    @staticmethod
    def start(node: BaseProcess, procs: list[BaseProcess]) -> None:
        """Fork a node and note it, with no stop signal in between: a node that exists is a node we stop."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            node.start()
            procs.append(node)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _watch(self, handles: list[Any], timeout: float, view: SegmentView) -> list[Any]:
        """Wait for any of ``handles``; tell the progress watcher how the run goes meanwhile."""
        if self.progress is None:
            return list(wait(handles, timeout=timeout))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            ready = wait(handles, timeout=min(left, PROGRESS_EVERY_S))
            self.progress(self.snapshot(view))
            if ready:
                return list(ready)

    def snapshot(self, view: SegmentView) -> Progress:
        stored = int(view.dev["gprc"][0])
        pending = int(np.count_nonzero(view.active_ring()["status"] & RXD_STAT_DD))
        return Progress(
            elapsed_s=time.monotonic() - self.started,
            packets=self.plan.entries,
            sent=int(view.dev["sent"][0]),
            stored=stored,
            taken=max(stored - pending, 0),
            missed=int(view.dev["mpc"][0]),
        )

    def _stop_and_collect(self, view: SegmentView, procs: list[BaseProcess]) -> dict[str, Any] | None:
        """Stop both nodes; the driver node verifies and reports what it delivered up to now."""
        view.ctl["stop"][0] = 1
        self._kick(procs)
        drv = procs[0]
        if self.recv is None:
            return None
        msg = self.report_of(self.recv, drv, self.driver_timeout, after_ready=True)
        return msg[1] if msg is not None and msg[0] == "done" else None

    @staticmethod
    def next_message(conn: Connection, proc: BaseProcess, timeout: float) -> tuple[str, Any] | None:
        """The node's next message; None if it died or stayed silent for ``timeout`` s."""
        if not wait([conn, proc.sentinel], timeout=timeout):
            return None
        if conn.poll():
            try:
                msg: tuple[str, Any] = conn.recv()
                return msg
            except EOFError:
                return None
        return None

    def _driver_failure(
        self, msg: tuple[str, Any] | None, drv: BaseProcess, view: SegmentView, stage: str
    ) -> dict[str, Any]:
        if msg is not None and msg[0] == "error":
            failure: dict[str, Any] = msg[1]
            return failure
        drv.join(0.5)
        runs = int(view.drv["handled"][0]) if self.long else int(np.count_nonzero(view.irqs["entry_ns"]))
        # The last packet the driver was told about: the one that raised the doorbell its last handler run saw.
        last = None
        if runs:
            mask = int(view.header["records_mask"][0])
            db = int(view.irqs["doorbell"][(runs - 1) & mask if mask else min(runs, view.capacity) - 1])
            # A ring of records (a long run) keeps the newest: the device raised on after the driver stopped
            # handling, and a raise a whole ring older than its last is written over (its packet unknown).
            kept = db <= view.capacity if not mask else int(view.line["doorbell"][0]) - db <= mask
            if db > 0 and kept:
                last = int(view.raises["packet"][(db - 1) & mask if mask else db - 1])
        where = {"stage": stage, "handler_run": runs or None, "last_packet": last}
        if self.verifying:
            # The driver was through; pseudonic's own work after it failed.
            what = (
                f"verifying the deliveries took over {VERIFY_TIMEOUT_S:g} s; the driver node was killed"
                if drv.exitcode is None
                else f"the driver node ended while verifying (status {drv.exitcode})"
            )
            return {"kind": "pseudonic error", "stage": "verify", "handler_run": runs or None, "message": what}
        if drv.exitcode is None:
            return {"kind": "driver hung", **where,
                    "message": f"no answer within {self.driver_timeout:g} s; the driver node was killed"}  # fmt: skip
        code = drv.exitcode
        if code < 0 and -code in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            return {"kind": "driver node killed", **where, "message": f"killed by {signal.Signals(-code).name}"}
        cause = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return {"kind": "driver crashed" if code < 0 else "driver node died", **where, "message": cause}

    @staticmethod
    def reap(procs: list[BaseProcess]) -> None:
        for p in procs:
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()
            if p.pid is not None:
                end_group(p.pid)  # whatever the driver forked, even if its node died first

    # -- the result -----------------------------------------------------------------------
    def _result(
        self,
        view: SegmentView,
        failure: dict[str, Any] | None,
        report: dict[str, Any] | None,
        interrupted: int | None = None,
    ) -> RunResult:
        """What the run left, copied out of its segment, made into its result (result.build_result: pure)."""
        per_packet: dict[str, Any]
        if self.long:
            # nothing per packet is kept: the figures folded as the run went, and what it took
            fold = self.reader.finish() if self.reader is not None else None
            self.reader = None
            per_packet = {"tx": view.tx[:0].copy(), "raises": view.raises[:0].copy(), "irqs": view.irqs[:0].copy(),
                          "fold": fold, "memory": self._memory(view, report),
                          "tail": self._tail(view)}  # fmt: skip
        else:
            sent = int(view.dev["sent"][0])
            raised = int(view.line["doorbell"][0])
            runs = int(np.count_nonzero(view.irqs["entry_ns"]))
            per_packet = {
                "tx": view.tx[:sent].copy(),
                "raises": view.raises[: min(raised, view.capacity)].copy(),
                "irqs": view.irqs[:runs].copy(),
                "txv": view.txv[: min(int(view.dev["tx_taken"][0]), view.tx_capacity)].copy(),
            }
        return build_result(
            RunEnd(
                config=self.cfg,
                plan=self.plan,
                **per_packet,
                dev=view.dev.copy(),
                line=view.line.copy(),
                drv=view.drv.copy(),
                san=view.san.copy(),
                ring_status=view.active_ring()["status"].copy(),
                t0_ns=int(view.header["t0_ns"][0]),
                driver_label=self.driver_label,
                report=report,
                failure=failure,
                interrupted=interrupted,
                max_missed=self.max_missed,
                sleeping_line=self.line.sleeps,
                machine=self._machine(view),
                clock_offset_ns=time.time_ns() - time.monotonic_ns(),
                # as the driver left it before its close (which may turn interrupts off), else as it is now
                queue=(report or {}).get("queue") or view.queue_state() if self.cfg.device == "virtio-net" else {},
            )
        )

    @staticmethod
    def _tail(view: SegmentView) -> dict[str, Any]:
        """A long run's newest records as its rings hold them at the end, oldest first: the last ring's worth of
        packets, raises and handler runs (the nodes are through: nothing is written to them now)."""
        cap = int(view.capacity)  # a power of two (layout: records_mask)

        def newest(ring: np.ndarray[Any, Any], count: int) -> tuple[int, np.ndarray[Any, Any]]:
            first = max(0, count - cap)
            return first, ring[np.arange(first, count, dtype=np.int64) & (cap - 1)].copy()

        first_packet, packets = newest(view.tx, int(view.dev["sent"][0]))
        first_raise, raises = newest(view.raises, int(view.line["doorbell"][0]))
        first_run, runs = newest(view.irqs, int(view.drv["handled"][0]))
        return {"first_packet": first_packet, "packets": packets, "first_raise": first_raise, "raises": raises,
                "first_run": first_run, "handler_runs": runs}  # fmt: skip

    @staticmethod
    def _memory(view: SegmentView, report: dict[str, Any] | None) -> dict[str, Any]:
        """A long run's record rings, and each process's peak resident memory (KiB)."""
        return {
            "records_ring": int(view.capacity),
            "segment_bytes": int(view.header["total_size"][0]),
            "controller_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "device_maxrss_kib": int(view.dev["maxrss_kib"][0]) or None,
            "driver_maxrss_kib": (report or {}).get("maxrss_kib"),
        }

    def _machine(self, view: SegmentView) -> dict[str, Any]:
        """The machine, what it did to the run's two cores during the run, and the real-time set-up."""
        cfg = self.cfg
        try:
            cores_seen = self.core_meter.result()
        except RuntimeError:  # the nodes never started: nothing was measured
            cores_seen = {}
        span = self.plan.last_due_ns + self.lead_ns if len(self.slots) else 0
        return {
            **machine.machine_info(),
            "run_cores": cores_seen,
            "realtime": {
                "asked": cfg.rt,
                "device_fifo": bool(view.dev["rt"][0]),
                "driver_fifo": bool(view.drv["rt"][0]),
                "refused": self.rt_refusal,
                "priority": realtime.RT_PRIORITY if cfg.rt != "off" else None,
                "throttle": realtime.rt_throttle_note(span) if self.rt else None,
            },
            "driver_core_isolation": realtime.isolation(cfg.driver_core),
        }


__all__ = ["Controller", "Session", "run"]
