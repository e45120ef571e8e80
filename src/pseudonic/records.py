"""A run's per-packet records, to a file: ``.npz``, ``.csv`` or ``.parquet``.

:func:`write_records` writes five tables. Every time is an integer in ns;
a time that ends in ``_ns`` and is not ``due_ns`` is a CLOCK_MONOTONIC
reading of this machine (the engine's clock; ``run.t0_ns`` is the run's t0,
and ``run.clock_offset_ns`` turns any of them into wall-clock time by
addition). Integers are int64 unless said otherwise.

``packets`` -- one row per schedule entry the device handled, in order:

- ``index``: the schedule entry (a stamped frame carries it as its sequence number)
- ``due_ns``: its deadline, ns after t0 (the plan's)
- ``deadline_ns``: the deadline on the clock, ``t0_ns + due_ns``
- ``start_ns``: when the device began handling it (a stamped frame carries it as its send timestamp)
- ``kept_ns``: the deadline the device kept: ``deadline_ns``, plus how far ``--late shift`` had moved
  the schedule by then
- ``end_ns``: when the device raised the line for it (on the eventfd and signal lines: after the system
  call that carries it), or tried to if it raised none
- ``spin_gap_ns``: the longest gap between two clock reads while the device waited for the deadline
  (a stall of the machine, not of the driver)
- ``slot``: the receive descriptor the frame was written to; -1 if none (dropped, or a spurious entry)
- ``flags``: the device's record bits: 1 stored, 2 dropped, 4 raised the line, 8 spurious interrupt
- ``frame``: the plan's frame it carried (-1 when the result carries no plan)
- ``length``: that frame's length in bytes; 0 for a spurious entry (-1 when the result carries no plan)
- ``errors``: the descriptor error bits the plan asked for (-1 when the result carries no plan)
- ``stored``, ``dropped``, ``raised``, ``spurious``: the flags, one bool each
- ``delivered``: bool, a delivery of the driver was matched to this packet (always False when the run
  did not verify its deliveries: ``run.verified``, or kept no record of them: ``run.tail``)
- ``deliveries``: how many deliveries were matched to it (2 or more: duplicates); -1 in a tail, where
  the deliveries were checked as they came and not kept

``raises`` -- one row per interrupt the device raised:

- ``index``: the raise (it rang doorbell value ``index + 1``)
- ``raised_ns``: when
- ``packet``: the schedule entry whose handling raised it
- ``icr``: the interrupt causes pending when raised (ICR bits)

``handler_runs`` -- one row per run of the driver's interrupt handler:

- ``index``: the handler run
- ``wait_ns``: when the driver node went back to waiting for the line before it (0: not known); a raise
  before it found the node busy
- ``entry_ns``, ``exit_ns``: when the handler was entered and returned
- ``doorbell``: the doorbell value it answered (the raise ``doorbell - 1``)
- ``spin_gap_ns``: the longest gap between two clock reads while the driver node waited for it
- ``delivered``: deliveries made so far when it returned (this run's: the difference with the run before)

``deliveries`` -- one row per socket buffer the driver delivered, in order:

- ``index``: the delivery
- ``packet``: the schedule entry it was matched to; -1 if none (corrupted, unmatched, or not verified)
- ``delivered_ns``: when the driver delivered it; -1 when the run did not keep delivery times

``run`` -- one row:

- ``t0_ns``: the run's t0 (CLOCK_MONOTONIC)
- ``clock_offset_ns``: CLOCK_REALTIME - CLOCK_MONOTONIC measured at the run (0 in a result built by hand)
- ``verified``: bool, the deliveries were verified (matched to packets)
- ``tail``: bool, the tables are a long run's tail (``--records summary|none``, ``--tail FILE``): the
  newest records its rings still held at the end (about its last half second, or 4096 of each with
  ``--records none``), each ``index`` counted from the run's start; no deliveries table rows

In a ``.npz`` file each table is one structured array under its name
(``numpy.load(path)["packets"]["start_ns"]``; ``pandas.DataFrame(...)``
takes one as it is). A ``.csv`` or ``.parquet`` file holds one table:
``path`` holds ``packets`` and the others go beside it, as
``<stem>.raises<ext>``, ``<stem>.handler_runs<ext>``,
``<stem>.deliveries<ext>`` and ``<stem>.run<ext>``. Parquet needs pyarrow,
which pseudonic does not install.
"""

from __future__ import annotations

import csv
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .layout import (
    IRQ_RECORD,
    RAISE_RECORD,
    SLOT_ERRORS_MASK,
    SLOT_SPURIOUS,
    TX_DROPPED,
    TX_RAISED,
    TX_RECORD,
    TX_SPURIOUS,
    TX_STORED,
)
from .plan import Plan
from .result import RunResult

#: the extensions write_records knows
FORMATS = (".npz", ".csv", ".parquet")
#: table names, packets first (the one a .csv or .parquet path itself holds)
TABLES = ("packets", "raises", "handler_runs", "deliveries", "run")
_NO_SLOT = 0xFFFFFFFF


def tables(result: RunResult, plan: Plan | None = None) -> dict[str, np.ndarray[Any, Any]]:
    """The five tables of the module docstring, as structured arrays; ``plan`` defaults to the result's. A run
    without full records gives its tail (``RunResult.tail``): its newest records, deliveries unknown."""
    plan = plan if plan is not None else result.plan
    tail = result.tail
    if tail:
        tx, first = _as(tail["packets"], TX_RECORD), int(tail["first_packet"])
        index = first + np.arange(len(tx), dtype=np.int64)
        due = plan.planned_ns(index) if plan is not None else np.zeros(len(tx), np.int64)
        # checked as they came, not kept: which packet each delivery carried is not known here
        count = np.full(len(tx), -1, np.int64)
        seq = np.zeros(0, np.int64)
        raises, raise0 = _as(tail["raises"], RAISE_RECORD), int(tail["first_raise"])
        irqs, run0 = _as(tail["handler_runs"], IRQ_RECORD), int(tail["first_run"])
    else:
        tx, first = _as(result.tx, TX_RECORD), 0
        index = np.arange(len(tx), dtype=np.int64)
        due = np.zeros(len(tx), np.int64)
        due[: min(len(tx), len(result.due_ns))] = np.asarray(result.due_ns, dtype=np.int64)[: len(tx)]
        seq = np.asarray(result.delivered_seq, dtype=np.int64)
        matched = seq[(seq >= 0) & (seq < len(tx))]
        count = np.bincount(matched, minlength=len(tx)).astype(np.int64) if len(tx) else np.zeros(0, np.int64)
        raises, raise0 = _as(result.raises, RAISE_RECORD), 0
        irqs, run0 = _as(result.irqs, IRQ_RECORD), 0
    n = len(tx)
    t0 = int(result.t0_ns)
    flags = tx["flags"].astype(np.int64)
    frame = np.full(n, -1, np.int64)
    length = np.full(n, -1, np.int64)
    errors = np.full(n, -1, np.int64)
    if plan is not None and len(plan):
        known = index < plan.entries
        rows = plan.slots[index[known] % len(plan)]  # a long plan repeats its pass
        slot_flags = rows["flags"].astype(np.int64)
        frame[known] = rows["frame"]
        length[known] = np.where(slot_flags & SLOT_SPURIOUS, 0, plan.frames.table["length"][rows["frame"]])
        errors[known] = slot_flags & SLOT_ERRORS_MASK
    slot = tx["slot"].astype(np.int64)
    slot[tx["slot"] == _NO_SLOT] = -1
    packets = _table(
        index=index,
        due_ns=due,
        deadline_ns=due + t0,
        start_ns=tx["start_ns"].astype(np.int64),
        kept_ns=tx["due_ns"].astype(np.int64),
        end_ns=tx["end_ns"].astype(np.int64),
        spin_gap_ns=tx["spin_gap_ns"].astype(np.int64),
        slot=slot,
        flags=flags,
        frame=frame,
        length=length,
        errors=errors,
        stored=(flags & TX_STORED) != 0,
        dropped=(flags & TX_DROPPED) != 0,
        raised=(flags & TX_RAISED) != 0,
        spurious=(flags & TX_SPURIOUS) != 0,
        delivered=count > 0,
        deliveries=count,
    )
    delivered_ns = result.delivered_ns  # kept by a run asked to (keep_frames)
    when = np.full(seq.size, -1, np.int64)
    if delivered_ns is not None and len(delivered_ns) == seq.size:
        when[:] = np.asarray(delivered_ns, dtype=np.int64)
    return {
        "packets": packets,
        "raises": _table(
            index=raise0 + np.arange(len(raises), dtype=np.int64),
            raised_ns=raises["raised_ns"].astype(np.int64),
            packet=raises["packet"].astype(np.int64),
            icr=raises["icr"].astype(np.int64),
        ),
        "handler_runs": _table(
            index=run0 + np.arange(len(irqs), dtype=np.int64),
            wait_ns=irqs["wait_ns"].astype(np.int64),
            entry_ns=irqs["entry_ns"].astype(np.int64),
            exit_ns=irqs["exit_ns"].astype(np.int64),
            doorbell=irqs["doorbell"].astype(np.int64),
            spin_gap_ns=irqs["spin_gap_ns"].astype(np.int64),
            delivered=irqs["delivered"].astype(np.int64),
        ),
        "deliveries": _table(index=np.arange(seq.size, dtype=np.int64), packet=seq, delivered_ns=when),
        "run": _table(
            t0_ns=np.array([t0], np.int64),
            clock_offset_ns=np.array([int(result.clock_offset_ns)], np.int64),
            verified=np.array([bool(result.verified)]),
            tail=np.array([bool(tail)]),
        ),
    }


def write_records(path: str | os.PathLike[str], result: RunResult, plan: Plan | None = None) -> list[Path]:
    """Write the run's tables (module docstring) to ``path``; returns the files written.

    ``plan`` (default: ``result.plan``) fills ``frame``, ``length`` and ``errors``; without one they are -1.
    """
    out = Path(path)
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise ConfigError(f"records file {out}: unknown extension {ext or '(none)'!r}: give {', '.join(FORMATS)}")
    writer: Callable[[Path, np.ndarray[Any, Any]], None] = _write_csv
    if ext == ".parquet":
        try:
            importlib.import_module("pyarrow")  # an optional dependency: ask first, before any work
        except ImportError:
            raise ConfigError(
                f"records file {out}: writing .parquet needs pyarrow (pip install pyarrow); or give a .npz file"
            ) from None
        writer = _write_parquet
    data = tables(result, plan)
    try:
        if ext == ".npz":
            with out.open("wb") as f:  # a file, so that numpy adds no second extension (.NPZ)
                np.savez(f, **data)  # type: ignore[arg-type]
            return [out]
        written = []
        for name in TABLES:
            target = out if name == "packets" else out.with_name(f"{out.stem}.{name}{out.suffix}")
            writer(target, data[name])
            written.append(target)
        return written
    except OSError as exc:
        raise ConfigError(f"records file {out} cannot be written: {exc.strerror or exc}") from None


def _write_csv(path: Path, table: np.ndarray[Any, Any]) -> None:
    names = list(table.dtype.names or ())
    columns = [table[name].tolist() for name in names]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerows(zip(*columns, strict=True))


def _write_parquet(path: Path, table: np.ndarray[Any, Any]) -> None:
    pa = importlib.import_module("pyarrow")
    pq = importlib.import_module("pyarrow.parquet")
    names = list(table.dtype.names or ())
    pq.write_table(pa.table({name: table[name] for name in names}), path)


def _as(records: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """``records`` as ``dtype``; a result built by hand may hold an empty placeholder of another dtype."""
    if records.dtype == dtype:
        return records
    if records.size == 0:
        return np.zeros(0, dtype)
    raise ConfigError(f"records: expected {dtype} records, got {records.dtype}")


def _table(**columns: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n = len(next(iter(columns.values())))
    table = np.zeros(n, dtype=[(name, col.dtype) for name, col in columns.items()])
    for name, col in columns.items():
        table[name] = col
    return table


__all__ = ["FORMATS", "TABLES", "tables", "write_records"]
