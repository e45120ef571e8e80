"""The controller: one run from configuration to result, and nothing left behind.

It validates, builds the frames and the schedule, creates the segment,
forks the driver node and, once the driver is open, the device node; then
it sleeps on the nodes' pipes and process handles (no polling, no sleeps)
until the device has sent everything and the driver has reported. Whatever
happens -- a driver exception, a node killed by a signal, Ctrl-C -- the
finally clause stops both nodes and removes the segment.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from . import _engine, analysis, config, schedule
from .cdriver import CDriver
from .config import RunConfig, make_config
from .device import DEFAULT_LEAD_NS, device_node
from .driver import Line, check_driver_class, driver_name, driver_node, load_driver
from .errors import ConfigError
from .frames import FrameSet
from .layout import LINE_EVENTFD, LINE_SIGNAL, SLOT, SLOT_SPURIOUS, TX_STORED, SegmentView, segment_size
from .result import RunResult
from .segment import Segment
from .upper import Verdict

#: How long the driver may take to open, and to finish after the last packet.
OPEN_TIMEOUT_S = 30.0
DRIVER_TIMEOUT_S = 10.0
#: How long a node gets to leave by itself once told to stop, before SIGKILL.
STOP_GRACE_S = 2.0


def run(
    interval: str | int = config.DEFAULT_INTERVAL,
    count: int = config.DEFAULT_COUNT,
    size: str | int = config.DEFAULT_SIZE,
    *,
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
) -> RunResult:
    """Run the pseudo-NIC against a driver and return what was measured.

    ``interval`` and ``count`` make a periodic schedule; ``slots`` (see
    :mod:`pseudonic.schedule`) replaces it with any timeline. ``frames``
    (bytes or scapy packets) replaces the generated, stamped UDP frame.
    ``irq`` picks the line (spin, eventfd, signal); ``itr`` programs the
    minimum interval between interrupts before the driver opens;
    ``napi_budget`` asks the driver to poll NAPI-style (the reference
    drivers do; ``nic.napi_budget`` tells any driver).
    Raises :class:`~pseudonic.errors.ConfigError` for bad input.
    """
    back_to_back = slots is not None
    if slots is not None:
        if not isinstance(slots, np.ndarray) or slots.dtype != SLOT or slots.ndim != 1 or slots.size == 0:
            raise ConfigError("slots: give a non-empty schedule made by pseudonic.schedule")
        count = int(slots.size)
        interval = schedule.interval_of(slots) or 0
    if frames is not None:
        frames = list(frames)
        size = max((len(bytes(f)) for f in frames), default=0)
    spec = driver if isinstance(driver, str) else f"{driver.__module__}:{driver.__qualname__}"
    cfg = make_config(
        interval, count, size, ring_size=ring_size, buffer_size=buffer_size, device_core=device_core,
        driver_core=driver_core, irq=irq, upper=upper, driver=spec, itr=itr, napi_budget=napi_budget,
        allow_back_to_back=back_to_back,
    )  # fmt: skip
    cls = load_driver(driver) if isinstance(driver, str) else check_driver_class(driver, spec)
    frameset = FrameSet.from_user(frames, cfg.buffer_size) if frames is not None else FrameSet.generated(cfg.size)
    if slots is None:
        slots = schedule.periodic(cfg.count, cfg.interval_ns)
    elif int(slots["frame"].max()) >= len(frameset.templates):
        raise ConfigError(f"slots name frame {int(slots['frame'].max())}: there are {len(frameset.templates)} frames")
    return Controller(cfg, cls, frameset, slots, driver_timeout, lead_ns).run()


class Controller:
    def __init__(
        self,
        cfg: RunConfig,
        driver_cls: type | CDriver,
        frames: FrameSet,
        slots: np.ndarray[Any, Any],
        driver_timeout: float,
        lead_ns: int,
    ) -> None:
        self.cfg = cfg
        self.driver_cls = driver_cls
        self.frames = frames
        self.slots = slots
        self.driver_timeout = driver_timeout
        self.lead_ns = lead_ns
        self.ctx = mp.get_context("fork")

    def run(self) -> RunResult:
        cfg = self.cfg
        seg = Segment.create(segment_size(cfg.ring_size, cfg.buffer_size, len(self.slots)))
        procs: list[BaseProcess] = []
        view: SegmentView | None = None
        # The eventfd is made here and inherited by both nodes across fork; closed with the run.
        efd = os.eventfd(0, os.EFD_CLOEXEC) if cfg.irq == "eventfd" else -1
        self.line = Line.make(cfg.irq, efd)
        try:
            assert seg.map is not None
            view = SegmentView.create(seg.map, cfg.ring_size, cfg.buffer_size, len(self.slots))
            # ITR as the platform programmed it before the driver opens; the driver may rewrite it.
            _engine.write_mask(seg.map, "itr", cfg.itr_units)
            failure, report = self._run_nodes(seg, view, procs)
            return self._result(view, failure, report)
        finally:
            if view is not None:
                view.ctl["stop"][0] = 1
                self._kick(procs)
            self._reap(procs)
            if view is not None:
                view.release()
            seg.close()
            if efd >= 0:
                os.close(efd)

    def _kick(self, procs: list[BaseProcess]) -> None:
        """Wake a driver node asleep on its line, so that it sees the stop flag."""
        if self.line.mode == LINE_EVENTFD:
            os.eventfd_write(self.line.fd, 1)
        elif self.line.mode == LINE_SIGNAL and procs and procs[0].is_alive() and procs[0].pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(procs[0].pid, self.line.signo)

    # -- the nodes ------------------------------------------------------------------------
    def _run_nodes(
        self, seg: Segment, view: SegmentView, procs: list[BaseProcess]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        cfg, me = self.cfg, os.getpid()
        recv_end, send_end = self.ctx.Pipe(duplex=False)
        drv = self.ctx.Process(
            target=driver_node,
            args=(
                send_end,
                seg.map,
                cfg.driver_core,
                me,
                self.driver_cls,
                cfg.upper,
                self.frames,
                self.slots,
                self.line,
                cfg.napi_budget,
            ),
            name="pseudonic-driver",
            daemon=True,
        )
        drv.start()
        procs.append(drv)
        send_end.close()

        msg = self._next_message(recv_end, drv, OPEN_TIMEOUT_S)
        if msg is None or msg[0] != "ready":
            return self._driver_failure(msg, drv, view, "open"), None

        dev = self.ctx.Process(
            target=device_node,
            args=(seg.map, cfg.device_core, me, self.slots, self.frames, self.lead_ns, self.line, drv.pid),
            name="pseudonic-device",
            daemon=True,
        )
        dev.start()
        procs.append(dev)
        due_s = int(self.slots["due_ns"][-1]) / 1e9 + self.lead_ns / 1e9

        # Until the device is through its schedule, or the driver speaks or dies first.
        ready = wait([recv_end, drv.sentinel, dev.sentinel], timeout=due_s + OPEN_TIMEOUT_S)
        if not ready:
            return {"kind": "device node hung", "message": "the device did not finish its schedule"}, None
        if dev.sentinel in ready:
            dev.join()
            if dev.exitcode != 0:
                view.ctl["stop"][0] = 1
                self._kick(procs)
                return {"kind": "device node failed", "message": f"exit status {dev.exitcode}"}, None
        msg = self._next_message(recv_end, drv, self.driver_timeout)
        if msg is not None and msg[0] == "done":
            dev.join(due_s + OPEN_TIMEOUT_S)
            return None, msg[1]
        view.ctl["stop"][0] = 1
        self._kick(procs)
        dev.join(STOP_GRACE_S)
        return self._driver_failure(msg, drv, view, "interrupt"), None

    @staticmethod
    def _next_message(conn: Connection, proc: BaseProcess, timeout: float) -> tuple[str, Any] | None:
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
        runs = int(np.count_nonzero(view.irqs["entry_ns"]))
        # The last packet the driver was told about: the one that raised the doorbell its last handler run saw.
        last = None
        if runs:
            db = int(view.irqs["doorbell"][min(runs, view.capacity) - 1])
            if 0 < db <= view.capacity:
                last = int(view.raises["packet"][db - 1])
        where = {"stage": stage, "handler_run": runs, "last_packet": last}
        if drv.exitcode is None:
            return {"kind": "driver hung", **where,
                    "message": f"no answer within {self.driver_timeout:g} s; the driver node was killed"}  # fmt: skip
        code = drv.exitcode
        cause = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return {"kind": "driver crashed" if code < 0 else "driver node died", **where, "message": cause}

    @staticmethod
    def _reap(procs: list[BaseProcess]) -> None:
        for p in procs:
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()

    # -- the result -----------------------------------------------------------------------
    def _result(self, view: SegmentView, failure: dict[str, Any] | None, report: dict[str, Any] | None) -> RunResult:
        cfg = self.cfg
        dev = view.dev[0]
        sent = int(dev["sent"])
        # Spurious-interrupt entries of a schedule carry no packet.
        spurious = int(np.count_nonzero(self.slots["flags"][:sent] & SLOT_SPURIOUS))
        packets = sent - spurious
        tx = view.tx[:sent].copy()
        raised = int(view.line["doorbell"][0])
        raises = view.raises[: min(raised, view.capacity)].copy()
        runs = int(np.count_nonzero(view.irqs["entry_ns"]))
        irqs = view.irqs[:runs].copy()
        t0 = int(view.header["t0_ns"][0])
        due = self.slots["due_ns"][:sent].astype(np.int64)
        stored = (tx["flags"] & TX_STORED) != 0

        verdict: Verdict | None = report["verdict"] if report else None
        received = verdict.received if verdict else 0
        sizes = np.array(self.frames.sizes, dtype=np.int64)[self.slots["frame"][:sent]]
        if verdict is not None and verdict.verified:
            got = np.unique(verdict.seq[verdict.seq >= 0])
            received_bytes = int(sizes[got].sum())
        else:  # unverified deliveries are not matched to packets: take the stored packets' mean size
            received_bytes = round(received * float(sizes[stored].mean())) if stored.any() else 0
        span = (int(tx["start_ns"][0]), int(tx["end_ns"][-1])) if sent else (0, 0)

        # Which packet woke each handler run: the one that raised the doorbell it saw.
        known, raise_of = analysis.woken_by(irqs, raises)
        woke_packet = raises["packet"][raise_of].astype(np.int64)
        deviation = analysis.interval_deviation(irqs["entry_ns"][known], t0 + due[woke_packet])
        deviation["outliers_by_cause"] = analysis.attribute_outliers(
            irqs["entry_ns"][known],
            irqs["exit_ns"][known],
            irqs["spin_gap_ns"][known],
            t0 + due[woke_packet],
            tx["start_ns"][woke_packet],
            tx["spin_gap_ns"][woke_packet],
            raises["raised_ns"][raise_of],
        )
        return RunResult(
            config={
                **cfg.as_dict(),
                # None when the schedule is not periodic: its deadlines are in due_ns
                "interval_ns": schedule.interval_of(self.slots) if len(self.slots) > 1 else cfg.interval_ns,
                "driver": driver_name(self.driver_cls, cfg.driver),
                "driver_spec": cfg.driver,
            },
            sent=packets,
            stored=int(stored.sum()),
            received=received,
            missed=int(dev["mpc"]),
            lost=packets - received,
            duplicated=verdict.duplicated if verdict else 0,
            reordered=verdict.reordered if verdict else 0,
            corrupted=verdict.corrupted if verdict else 0,
            rx_errors=int(report["rx_errors"]) if report else 0,
            success_rate=received / packets if packets else 0.0,
            throughput_gbps=analysis.throughput_gbps(received_bytes, *span),
            interrupts=raised,
            handler_runs=runs,
            send_time_ns=analysis.summarize((tx["end_ns"] - tx["start_ns"])[stored]),
            interval_deviation_ns=deviation,
            device_interval_deviation_ns=analysis.interval_deviation(tx["start_ns"], t0 + due),
            irq_latency_ns=analysis.summarize(
                irqs["entry_ns"][known].astype(np.int64) - raises["raised_ns"][raise_of].astype(np.int64)
            ),
            stalls={
                "device": analysis.stalls(tx["spin_gap_ns"]),
                "driver": analysis.stalls(irqs["spin_gap_ns"]),
            },
            verified=verdict.verified if verdict else False,
            error=failure,
            spurious=spurious,
            due_ns=due,
            tx=tx,
            raises=raises,
            irqs=irqs,
            delivered_seq=verdict.seq if verdict else np.zeros(0, np.int64),
            t0_ns=t0,
        )


__all__ = ["Controller", "run"]
