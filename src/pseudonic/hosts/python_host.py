"""The host of a Python driver: a class with ``open(nic)``, ``interrupt(nic)`` and ``close(nic)``.

How an interrupt reaches the driver is the run's line:

- ``spin``: the engine spins on the doorbell with the GIL released, stamps the handler entry, and
  the host calls ``interrupt(nic)``;
- ``eventfd``: the same, asleep in ``read`` on an eventfd the device writes (how VFIO hands MSI-X
  to user-space drivers);
- ``signal``: the device sends a real-time signal to the node's thread. Only CPython's own C
  handler runs in signal context (it notes the signal); ``interrupt(nic)`` runs in the main thread
  at the next bytecode boundary -- preempting the driver's ``idle(nic)``, if it has one, between
  any two bytecodes, but never in the middle of a C call.

An exception in the driver ends the node with a report of where and why.
"""

from __future__ import annotations

import signal
import traceback
from types import FrameType
from typing import Any

from .. import _engine
from ..layout import DEV_DONE, LINE_EVENTFD, LINE_SIGNAL, MODEL_VIRTIO_NET
from ..models.virtio_net import features_refusal
from ..nic import Nic, VirtioNic
from ..node import disturbance, record_disturbance
from ..upper import StreamVerifyLayer, VerifyLayer, make_upper, warm_heap
from .host_plan import DriverFailed, HostPlan, Reporter
from .tx_feed import TxFeed


def describe_failure(exc: BaseException, stage: str, handler_runs: int, doorbell: int) -> dict[str, Any]:
    """Where and why a driver failed, for the summary. Handler runs are numbered from 1, as for C drivers."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
    return {
        "kind": "driver exception",
        "stage": stage,
        "exception": type(exc).__name__,
        "message": str(exc),
        "where": where,
        "handler_run": handler_runs + 1 if stage == "interrupt" else None,
        "interrupt": doorbell,
    }


def host_python(plan: HostPlan, factory: type) -> Reporter:
    """Run the driver; return what verifies and reports its deliveries (pseudonic's part, kept apart)."""
    conn, seg, view, frames, slots, line = plan.conn, plan.seg, plan.view, plan.frames, plan.slots, plan.line
    nic_class = VirtioNic if view.model == MODEL_VIRTIO_NET else Nic
    upper = (
        StreamVerifyLayer(frames, slots["frame"], plan.total)
        if plan.total and plan.upper == "verify"
        else make_upper(plan.upper, keep_times=plan.keep_frames)
    )
    nic = nic_class(view, upper, plan.napi_budget)
    # a long run checks what each handler run delivered, off the handler's clock
    settle = upper.settle if isinstance(upper, StreamVerifyLayer) else None
    if isinstance(nic.upper, VerifyLayer):
        warm_heap(len(slots), max(frames.sizes))
    stage, runs, seen = "open", 0, 0
    feed: TxFeed | None = None
    try:
        driver = factory()
        if plan.tx_order is not None:
            transmit = getattr(driver, "transmit", None)
            if not callable(transmit):
                conn.send(("load-error", f"driver {factory.__name__} has no transmit(nic, frame) method: a run with "
                                         "--transmit hands it frames to send (see pseudonic.nic.Driver)"))  # fmt: skip
                raise DriverFailed
            feed = TxFeed(frames, plan.tx_order, transmit, nic, view)
        driver.open(nic)
        if isinstance(nic, VirtioNic) and (why := features_refusal(nic.features, nic.offered)):
            conn.send(("load-error", why))
            raise DriverFailed
        _engine.prefault(seg)
        conn.send(("ready", None))
        before = disturbance()
        stage = "interrupt"
        handler = driver.interrupt
        count = nic.upper.count
        if line.mode == LINE_SIGNAL:
            busy = False

            def on_signal(signo: int, frame: FrameType | None) -> None:
                # CPython may run this handler again, nested, at any bytecode of the running one; a
                # real line is not re-entered, so a nested call returns and the running handler takes
                # what it announced -- it looks at the doorbell again before it returns.
                nonlocal seen, runs, busy
                if busy:
                    return
                busy = True
                try:
                    while db := _engine.take_irq(seg, seen, runs):
                        seen = db
                        handler(nic)
                        _engine.record_exit(seg, runs, seen, count())
                        runs += 1
                        if settle is not None:
                            settle()
                finally:
                    busy = False

            signal.signal(line.signo, on_signal)
            try:
                idle = getattr(driver, "idle", None)
                state, doorbell, stop = view.line["state"], view.line["doorbell"], view.ctl["stop"]
                while True:
                    if idle is None:
                        if not _engine.idle_wait(seg, seen, line.signo, line.busy_poll_ns):
                            break
                    elif stop[0] or (state[0] >= DEV_DONE and doorbell[0] == seen):
                        break
                    else:
                        idle(nic)
                    # CPython folds signals that arrive together into one call of the handler; one
                    # that came between the handler's last look and its return is taken here.
                    on_signal(line.signo, None)
            finally:
                # Late kicks must neither run a failed driver again nor kill the node.
                line.ignore()
        else:
            wait = _engine.wait_irq
            if feed is not None:
                stage = "transmit"
                _engine.wait_running(seg)
            waiting_tx = feed is not None and feed.offer(seen)
            while True:
                if waiting_tx:
                    assert feed is not None
                    # Frames the full ring refused: offered again as soon as the transmitter moves.
                    db = _engine.wait_irq_or_tx(seg, seen, runs, feed.descs_seen)
                    if db == seen:
                        stage = "transmit"
                        waiting_tx = feed.offer(seen)
                        continue
                else:
                    db = (
                        _engine.wait_irq_eventfd(seg, seen, runs, line.fd, line.busy_poll_ns)
                        if line.mode == LINE_EVENTFD
                        else wait(seg, seen, runs)
                    )
                if db == 0:
                    break
                seen = db
                stage = "interrupt"
                handler(nic)
                _engine.record_exit(seg, runs, seen, count())
                runs += 1
                if settle is not None:
                    settle()
                if feed is not None and feed.left:
                    stage = "transmit"
                    waiting_tx = feed.offer(seen)
        record_disturbance(view.drv, before)
        stage = "close"
        # virtio-net's queue as the driver's handling left it: its close may turn interrupts off
        queue = view.queue_state() if isinstance(nic, VirtioNic) else None
        driver.close(nic)
    except DriverFailed:
        raise
    except BaseException as exc:
        view.drv["handled"][0] = runs
        conn.send(("error", describe_failure(exc, stage, runs, seen)))
        raise DriverFailed from None
    view.drv["handled"][0] = runs
    rx_errors = getattr(driver, "rx_errors", None)
    tx = None if feed is None else {"handed": feed.next, "refused": feed.refused}

    def report() -> dict[str, Any]:
        sent = int(view.dev["sent"][0])
        deliveries = nic.upper.report(
            frames, slots[:sent], view.tx["flags"][:sent].copy(), poisoned=bool(view.header["sanitize"][0])
        )
        return {"deliveries": deliveries, "rx_errors": None if rx_errors is None else int(rx_errors), "queue": queue,
                "tx": tx}  # fmt: skip

    return report
