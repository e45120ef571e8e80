"""A run kept whole in one file, and run again: ``--record RUN.pnic`` and ``pseudonic replay``.

A racy driver bug shows in some runs and not in others; a record keeps the
run in which it showed -- the plan (deadlines, per-packet flags and the
frames themselves, a capture's included), the configuration, the per-packet
records (when the device actually sent each packet, every raise, every
handler run), the machine and the verdict -- so that it can be run again.

Replaying runs the same interrupt timeline against the same or another
driver. ``timing="plan"`` sends on the recorded plan's deadlines;
``timing="measured"`` sends on the times the recorded run actually achieved
(its stalls included), so that a timing seen once is reproduced, not just
the one intended. The replay reports how far its sends were from the
recording's, and whether its verdict agrees.

The file is a zip archive (numpy's ``.npz``, read with pickling off):

- ``manifest``: UTF-8 JSON -- ``format`` ("pseudonic-record"), ``version``
  (:data:`VERSION`), the pseudonic version, the plan's origin, whether its
  frames are stamped, the run's options, its result (``RunResult.to_dict``,
  verdict included), the machine, ``t0_ns`` and ``clock_offset_ns``;
- ``slots`` (``layout.SLOT``), ``frame_table`` (``layout.FRAME``),
  ``frame_blob`` (bytes): the plan;
- ``tx``, ``raises``, ``irqs``, ``delivered_seq``: the per-packet records
  (``layout.TX_RECORD``, ``RAISE_RECORD``, ``IRQ_RECORD``; see README, "Records").
"""

from __future__ import annotations

import datetime
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis
from .config import DEFAULT_DEVICE
from .errors import ConfigError
from .frames import FrameSet
from .layout import FRAME, IRQ_RECORD, RAISE_RECORD, SLOT, SLOT_ERRORS_MASK, TX_RECORD
from .plan import Plan
from .result import RunResult

FORMAT = "pseudonic-record"
#: Bumped whenever a field changes meaning or is added: a record of another version is refused, never guessed at.
#: Version 4 keeps the device model among the options.
VERSION = 4
#: The versions this pseudonic reads: version 3 kept no device among its options, and reads as the device its
#: result's configuration names (e1000 where it names none: records from before virtio-net).
READABLE = (3, 4)
TIMINGS = ("plan", "measured")
#: The run options a record keeps: the keyword arguments of pseudonic.run, with the plan beside them.
OPTION_KEYS = (
    "driver", "ring_size", "buffer_size", "device_core", "driver_core", "irq", "upper", "itr", "napi_budget",
    "max_missed", "irq_mode", "sanitize", "late", "busy_poll", "rt", "device", "transmit", "tx_rate", "loopback",
    "batch",
)  # fmt: skip
#: What an option a record of this version does not keep (one written before it existed) was then.
_OPTION_BEFORE = {"transmit": 0, "tx_rate": "off", "loopback": False, "batch": 1}
#: layout.FRAME before it had the FCS fields: records of format 4 written before then carry it
_FRAME_BEFORE_FCS = np.dtype(
    {"names": ["data_off", "length", "stamp_off", "csum_off", "sum", "kind"],
     "formats": ["<u8", "<u4", "<u2", "<u2", "<u2", "<u2"], "offsets": [0, 8, 12, 14, 16, 18], "itemsize": 24}
)  # fmt: skip
_ARRAYS = {
    "slots": SLOT,
    "frame_table": FRAME,
    "frame_blob": np.dtype(np.uint8),
    "tx": TX_RECORD,
    "raises": RAISE_RECORD,
    "irqs": IRQ_RECORD,
    "delivered_seq": np.dtype(np.int64),
}


@dataclass(frozen=True)
class Recording:
    """A recorded run: its plan, its options, its result and records."""

    path: Path
    plan: Plan
    #: keyword arguments of pseudonic.run that made the run (OPTION_KEYS)
    options: dict[str, Any]
    #: the run's result as JSON (RunResult.to_dict), verdict included
    result: dict[str, Any]
    machine: dict[str, Any]
    pseudonic_version: str
    t0_ns: int
    tx: np.ndarray[Any, Any]
    raises: np.ndarray[Any, Any]
    irqs: np.ndarray[Any, Any]
    delivered_seq: np.ndarray[Any, Any]

    @property
    def verdict(self) -> dict[str, Any]:
        v: dict[str, Any] = self.result.get("verdict") or {}
        return v

    @property
    def passed(self) -> bool:
        return bool(self.verdict.get("passed"))

    def measured_plan(self) -> Plan:
        """The recorded plan, each packet due when the recording actually sent it (stalls and all)."""
        slots = self.plan.slots.copy()
        sent = min(len(self.tx), len(slots))
        due = slots["due_ns"].astype(np.int64)
        due[:sent] = self.tx["start_ns"][:sent].astype(np.int64) - self.t0_ns
        # Entries a stopped recording never sent keep their deadlines, after the last send.
        slots["due_ns"] = np.maximum.accumulate(np.maximum(due, 0)).astype(np.uint64)
        origin = {"kind": "replay", "timing": "measured", "record": self.path.name, "recorded": self.plan.origin}
        return Plan.make(slots, self.plan.frames, origin)

    def timed_plan(self, timing: str) -> Plan:
        if timing not in TIMINGS:
            raise ConfigError(f"timing {timing!r} is unknown: give one of {', '.join(TIMINGS)}")
        if timing == "measured":
            return self.measured_plan()
        origin = {"kind": "replay", "timing": "plan", "record": self.path.name, "recorded": self.plan.origin}
        return Plan.make(self.plan.slots.copy(), self.plan.frames, origin)


def _machine() -> dict[str, Any]:
    from .machine import machine_info

    return machine_info()


def _version() -> str:
    try:
        return metadata.version("pseudonic")
    except metadata.PackageNotFoundError:
        return "unknown"


def options_of(result: RunResult) -> dict[str, Any]:
    """The keyword arguments of pseudonic.run that made ``result`` (besides its plan)."""
    c = result.config
    return {
        "driver": c.get("driver_spec") or c["driver"],
        "ring_size": c["ring_size"],
        "buffer_size": c["buffer_size"],
        "device_core": c["device_core"],
        "driver_core": c["driver_core"],
        "irq": c["irq"],
        "upper": c["upper"],
        "itr": c["itr_ns"],
        "napi_budget": c["napi_budget"],
        "max_missed": c.get("max_missed"),
        "irq_mode": c.get("irq_mode", "edge"),
        "sanitize": bool(c.get("sanitize", False)),
        "late": c.get("late", "catch-up"),
        "busy_poll": c.get("busy_poll_ns", 0),
        "rt": c.get("rt", "off"),
        "device": c.get("device", DEFAULT_DEVICE),
        "transmit": int(c.get("transmit", 0)),
        "tx_rate": int(c.get("tx_rate_bps", 0)) or "off",
        "loopback": bool(c.get("loopback", False)),
        "batch": int(c.get("batch", 1)),
    }


def save(path: str | Path, result: RunResult) -> Path:
    """Write ``result`` (a run made by pseudonic.run, which carries its plan) as a record file."""
    if result.plan is None:
        raise ConfigError("this result carries no plan (it was not made by pseudonic.run): nothing to record")
    out = Path(path)
    plan = result.plan
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "pseudonic": _version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "plan": plan.origin,
        "stamped": plan.frames.stamped,
        "options": options_of(result),
        "result": result.to_dict(),
        "machine": _machine(),
        "t0_ns": result.t0_ns,
        "clock_offset_ns": result.clock_offset_ns,
    }
    arrays = {
        "manifest": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8),
        "slots": plan.slots,
        "frame_table": plan.frames.table,
        "frame_blob": np.frombuffer(plan.frames.blob, dtype=np.uint8),
        "tx": result.tx,
        "raises": result.raises,
        "irqs": result.irqs,
        "delivered_seq": np.asarray(result.delivered_seq, dtype=np.int64),
    }
    # Written whole, then moved into place: a run stopped while saving leaves no half a record.
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"record file {out}: cannot write it ({exc.strerror or exc})") from None
    return out


def load(path: str | Path) -> Recording:
    """Read a record file; :class:`ConfigError` (one line) if it is not one, or of another format version."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"record file {p}: no such file")
    if not zipfile.is_zipfile(p):
        raise ConfigError(f"{p} is not a pseudonic record file (not a zip archive; make one with --record)")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "manifest" not in z.files:
                raise ConfigError(f"{p} is not a pseudonic record file (no manifest)")
            manifest = json.loads(bytes(z["manifest"]).decode())
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ConfigError(f"{p} is not a pseudonic record file (its manifest is not one)")
            if manifest.get("version") not in READABLE:
                raise ConfigError(
                    f"{p} is a record of format version {manifest.get('version')} (pseudonic "
                    f"{manifest.get('pseudonic', '?')}); this pseudonic reads versions "
                    f"{' and '.join(map(str, READABLE))} only"
                )
            missing = [k for k in _ARRAYS if k not in z.files]
            if missing:
                raise ConfigError(f"{p} is damaged: it lacks {', '.join(missing)}")
            arrays = {k: z[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not a readable pseudonic record file ({type(exc).__name__}: {exc})") from None
    for k, dtype in _ARRAYS.items():
        # The frame table is read for where each frame lies; a record written before the table had the FCS
        # fields (24-byte entries) still says that (data_off, length at the same places).
        legacy = k == "frame_table" and arrays[k].dtype == _FRAME_BEFORE_FCS
        if (arrays[k].dtype != dtype and not legacy) or arrays[k].ndim != 1:
            raise ConfigError(f"{p} is damaged: {k} is not a 1-d array of the layout this version writes")
    table = arrays["frame_table"]
    blob = arrays["frame_blob"].tobytes()
    ends = table["data_off"].astype(np.int64) + table["length"].astype(np.int64)
    if table.size == 0 or int(ends.max()) > len(blob):
        raise ConfigError(f"{p} is damaged: its frame table points past its frames")
    templates = [blob[int(o) : int(o) + int(n)] for o, n in zip(table["data_off"], table["length"], strict=True)]
    frames = FrameSet.of(templates, stamped=bool(manifest.get("stamped")))
    plan = Plan.make(arrays["slots"], frames, dict(manifest.get("plan") or {}))
    options = {k: manifest["options"].get(k, _OPTION_BEFORE.get(k)) for k in OPTION_KEYS}
    if options["device"] is None:  # version 3: the device its result's configuration names
        options["device"] = ((manifest.get("result") or {}).get("config") or {}).get("device") or DEFAULT_DEVICE
    return Recording(
        path=p,
        plan=plan,
        options=options,
        result=manifest.get("result") or {},
        machine=manifest.get("machine") or {},
        pseudonic_version=str(manifest.get("pseudonic", "?")),
        t0_ns=int(manifest.get("t0_ns", 0)),
        tx=arrays["tx"],
        raises=arrays["raises"],
        irqs=arrays["irqs"],
        delivered_seq=arrays["delivered_seq"],
    )


@dataclass
class Replay:
    """A record run again: the new result, how close its sends came to the recording's, both verdicts."""

    recording: Recording
    result: RunResult
    timing: str
    #: |replay send - recorded send|, both relative to their run's t0, over the entries both sent (ns)
    send_deviation_ns: dict[str, Any]

    @property
    def same_verdict(self) -> bool:
        """Both passed, or both failed for at least one common reason."""
        if self.result.verdict is None:
            return False
        if self.recording.passed or self.result.verdict.passed:
            return self.recording.passed == self.result.verdict.passed
        recorded = {r["code"] for r in self.recording.verdict.get("reasons", [])}
        return bool(recorded & {f.code for f in self.result.verdict.reasons})

    @property
    def reproduced(self) -> bool:
        """The recording failed, and the replay failed the same way."""
        return not self.recording.passed and self.same_verdict


def send_deviation(recording: Recording, result: RunResult) -> dict[str, Any]:
    """How far the replay's sends were from the recording's: |(start - t0) - (recorded start - recorded t0)|."""
    n = min(len(recording.tx), len(result.tx))
    replayed = result.tx["start_ns"][:n].astype(np.int64) - result.t0_ns
    recorded = recording.tx["start_ns"][:n].astype(np.int64) - recording.t0_ns
    return analysis.summarize(np.abs(replayed - recorded))


def replay(
    record: Recording | str | Path,
    *,
    driver: str | type | None = None,
    timing: str = "plan",
    wait_for_cores: bool = False,
    progress: Callable[[Any], None] | None = None,
    **overrides: Any,
) -> Replay:
    """Run a recording again (``driver`` replaces its driver; ``overrides`` any other run option)."""
    from .controller import run

    rec = record if isinstance(record, Recording) else load(record)
    plan = rec.timed_plan(timing)
    unknown = sorted(set(overrides) - set(OPTION_KEYS))
    if unknown:
        raise ConfigError(f"replay: {', '.join(unknown)} cannot be changed: give any of {', '.join(OPTION_KEYS)}")
    options = {**rec.options, **overrides}
    if driver is not None:
        options["driver"] = driver
    if options.get("device") == "virtio-net" and (plan.slots["flags"] & SLOT_ERRORS_MASK).any():
        raise ConfigError(
            f"{rec.path.name} carries descriptor error bits ({rec.options.get('device')} faults): virtio-net has "
            "no receive error bits, so this recording cannot be replayed on it"
        )
    result = run(plan=plan, wait_for_cores=wait_for_cores, progress=progress, **options)
    return Replay(rec, result, timing, send_deviation(rec, result))


def describe(rec: Recording) -> str:
    """One paragraph on a record, for ``pseudonic replay --info`` and the hunt's report."""
    r = rec.result
    return (
        f"{rec.path.name}: {len(rec.plan)} entries ({rec.plan.origin.get('kind', 'schedule')} plan), "
        f"{rec.options['device']}, driver {rec.options['driver']}, irq {rec.options['irq']}, "
        f"ring {rec.options['ring_size']}; "
        f"recorded with pseudonic {rec.pseudonic_version}; verdict: "
        f"{'PASS' if rec.passed else 'FAIL'} ({r.get('received')}/{r.get('sent')} received)"
    )


__all__ = ["FORMAT", "READABLE", "TIMINGS", "VERSION", "Recording", "Replay", "load", "replay", "save"]
