"""``report.md``: the paper's evaluations next to ours, on the machine they ran on.

Rules: the machine comes first, since every number depends on it; each evaluation says
what it is (E1 Table 1, E2 Fig. 7, E3a Fig. 8, E3b Table 2) and tabulates the paper's
number, ours and their ratio; every throughput in Gbps has its packet rate (Mpps) beside
it, the paper's (Gbps only) derived from its size and marked so; a section that did not
run says "not run"; a missing
number prints as "—" with the reason where one is known, never as a guess; a missed
target is stated plainly. An evaluation that failed (``{"failed": ..., "traceback": ...}``)
or gave nothing (``{"no_result": reason}``) says so in its own section and at the top, and
the sections of the others render as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..units import format_ns

#: The paper's Table 1 (send processing time, mean of 1000 sends), ns by packet size in bytes.
PAPER_SEND_NS = {1500: 205, 8192: 1462, 16384: 3664}
#: The paper's E2 (Fig. 7): at 38 µs, 996 of 1000 handler intervals exactly 38 µs, worst +2 µs, all within 6.25 %.
PAPER_PRECISION: dict[str, Any] = {
    "interval_ns": 38_000,
    "count": 1000,
    "within_6_25pct": 1.0,
    "exact": 996,
    "max_abs_dev_ns": 2_000,
}
#: The paper's Table 2, first row: a real 1 GbE NIC between two hosts, 1.5 KB packets, 0.92 Gbps.
PAPER_REAL_NIC_GBPS = 0.92
#: The paper's Table 2, pseudo-NIC rows, Gbps by packet size (1.5 KB, 8 KB, 16 KB).
PAPER_THROUGHPUT_GBPS = {1500: 6.3, 8192: 22.7, 16384: 30.6}
#: The paper's measuring machine's memory bandwidth (§5.4.3), the ceiling it compares Table 2 against.
PAPER_MEMORY_GBPS = 130.0
#: Steal above this share during a run is called out next to the results.
STEAL_WARN_PCT = 1.0

DASH = "—"
NOT_RUN = "_Not run._"
#: The sections ``bench all`` records, as results.json names them, with the titles the report gives them.
EVALUATIONS = {
    "send_time": "E1 — send processing time",
    "precision": "E2 — interval precision",
    "sweep": "E3 — success rate against interval (sweep)",
    "baseline": "kernel baseline",
    "irq_lines": "interrupt lines",
    "moderation": "interrupt moderation",
    "transmit": "transmit beside receive",
    "small_packets": "small packets at line rate",
    "sweep_figure": "E3a figure",
    "irq_figure": "interrupt-line figure",
    "targets": "targets",
}


# ---------------------------------------------------------------------------- formatting


def fmt_ns(ns: float | None) -> str:
    """A duration with a unit that fits: 850 ns, 38.00 µs, 1.25 ms, 2.50 s (units.format_ns).

    An adapter: a report's cell may be missing (—), and two decimals are all a table needs.
    """
    return DASH if ns is None else format_ns(float(ns), digits=2)


def fmt_gbps(gbps: float | None) -> str:
    return DASH if gbps is None else f"{float(gbps):.2f} Gbps"


def fmt_mpps(mpps: float | None) -> str:
    return DASH if mpps is None else f"{float(mpps):.3f} Mpps"


#: Why a row's packet rate is missing where its row has none at all: it was measured before the bench kept one.
NOT_RECORDED = "not recorded"


def fmt_rate(gbps: float | None, mpps: float | None, why_no_mpps: str | None = None) -> str:
    """A throughput measured: Gbps, and beside it the packet rate over the same span ("— Mpps (why)" without one)."""
    if gbps is None:
        return DASH
    rate = fmt_mpps(mpps) if mpps is not None else f"{DASH} Mpps" + (f" ({why_no_mpps})" if why_no_mpps else "")
    return f"{fmt_gbps(gbps)}, {rate}"


def _row_rate(row: Mapping[str, Any], gbps_key: str, mpps_key: str) -> str:
    """A row's throughput and its twin; a row from before the twin was kept says so."""
    return fmt_rate(row.get(gbps_key), row.get(mpps_key), None if mpps_key in row else NOT_RECORDED)


def paper_size(size: int) -> int:
    """The paper's packet size a row's size is read as (its 1.5 KB / 8 KB / 16 KB: 1500 / 8192 / 16384 B)."""
    return min(PAPER_THROUGHPUT_GBPS, key=lambda s: abs(s - size))


def fmt_paper_rate(gbps: float | None, size: int) -> str:
    """A paper throughput (Gbps only) with the packet rate it is at the paper's size: Gbps / (8 x size), derived."""
    if gbps is None:
        return DASH
    return f"{fmt_gbps(gbps)}, {fmt_mpps(1000.0 * float(gbps) / (8.0 * size))} derived"


def fmt_pct(fraction: float | None) -> str:
    """A fraction 0..1 as a percentage."""
    return DASH if fraction is None else f"{100 * float(fraction):.2f} %"


def fmt_ratio(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None or float(paper) == 0:
        return DASH
    return f"×{float(ours) / float(paper):.2f}"


def fmt_count(n: float | None) -> str:
    return DASH if n is None else f"{int(n):,}"


def fmt_size(size: int | None) -> str:
    return DASH if size is None else f"{int(size):,} B"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _or_reason(value: Any, fmt: Callable[[Any], str], reason: str | None) -> str:
    """``fmt(value)``, or "—" followed by the reason when the value is missing."""
    if value is not None:
        return fmt(value)
    return f"{DASH} ({reason})" if reason else DASH


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def failure(section: Any) -> str | None:
    """``"ExceptionType: message"`` of an evaluation that raised, as ``bench all`` records it; else None."""
    if isinstance(section, Mapping) and "failed" in section:
        return _one_line(section["failed"] or "no reason recorded")
    return None


def no_result(section: Any) -> str | None:
    """Why an evaluation that ran gave nothing to show, as ``bench all`` records it; else None."""
    if isinstance(section, Mapping) and "no_result" in section:
        return _one_line(section["no_result"] or "no reason recorded")
    return None


def _unavailable(section: Any, key: str) -> list[str] | None:
    """The lines that stand in for a section that failed or gave no result; None for one that has figures."""
    reason = failure(section)
    if reason is not None:
        lines = [f"**Failed:** `{reason}`. The other evaluations still ran."]
        trace = section.get("traceback")
        if trace:
            # the traceback is what the issue lost; folded, so it does not drown the figures
            lines += ["", "<details><summary>traceback</summary>", "", "```", str(trace).rstrip(), "```", "",
                      "</details>"]  # fmt: skip
        else:
            lines.append(f"(No traceback recorded; results.json has `{key}`.)")
        return [*lines, ""]
    reason = no_result(section)
    if reason is not None:
        return [f"_No result: {reason}._", ""]
    return None


def _stand_in(out: list[str], section: Any, key: str, empty: bool, none_text: str = NOT_RUN) -> list[str] | None:
    """A section's heading and intro, then what stands in for its figures when it has none -- its failure, its
    lack of a result (:func:`_unavailable`), or that it was not run (``empty``); None when it has figures."""
    gone = _unavailable(section, key)
    if gone is not None:
        return [*out, *gone]
    if empty:
        return [*out, none_text, ""]
    return None


def _has_device(rows: list[Mapping[str, Any]]) -> bool:
    """Rows that name their device model get a device column (results from before virtio-net name none)."""
    return any("device" in r for r in rows)


def _device(row: Mapping[str, Any]) -> str:
    """A row's device model: e1000 where it names none (every result from before virtio-net was e1000's)."""
    return str(row.get("device") or "e1000")


def _model(section: Mapping[str, Any]) -> str:
    """An E2 section's device model (its ``model``: its ``device`` is the device's sends); e1000 if it names none."""
    return str(section.get("model") or "e1000")


def _rows(section: Any) -> list[Mapping[str, Any]]:
    """A section's rows; a row that is not a mapping renders as a row of dashes rather than vanishing."""
    if not isinstance(section, list):
        return []
    return [r if isinstance(r, Mapping) else {} for r in section]


def _skipped(section: Any) -> str | None:
    """The reason a section gives for having been skipped, if it was."""
    if isinstance(section, Mapping) and "skipped" in section:
        return str(section["skipped"] or "no reason given")
    return None


def _figure(name: Any, alt: str, out_dir: Path) -> list[str]:
    if not name:
        return []
    reason = failure(name) or no_result(name)
    if reason is not None:
        return [f"_The figure ({alt}) was not drawn: {reason}._", ""]
    if not isinstance(name, str):
        return [f"_The figure ({alt}) was not drawn: results.json names no file for it._", ""]
    line = f"![{alt}]({name})"
    if not (out_dir / str(name)).is_file():
        return [line, "", f"_(figure file `{name}` was not found beside this report)_", ""]
    return [line, ""]


# ---------------------------------------------------------------------------- sections


def _meta(meta: Mapping[str, Any] | None) -> list[str]:
    out = ["# pseudonic bench report", ""]
    if not meta:
        return [*out, "_No run metadata recorded._", ""]
    rows = [
        ["command", f"`{meta['command']}`" if meta.get("command") else DASH],
        ["date", meta.get("date") or DASH],
        ["duration", f"{float(meta['duration_s']):.1f} s" if meta.get("duration_s") is not None else DASH],
        ["pseudonic version", meta.get("version") or DASH],
    ]
    return [*out, *table(["", ""], rows), ""]


def _models(devices: Any) -> list[str]:
    """Which device models the bench measured, where it says (results from before virtio-net do not)."""
    if not isinstance(devices, list) or not devices:
        return []
    names = ", ".join(str(d) for d in devices)
    if len(devices) == 1:
        return [f"Device model: {names} (E1–E3); the interrupt lines and moderation are e1000's.", ""]
    return [
        f"Device models: {names}, side by side in E1–E3 (a device column; their runs interleaved, so that the "
        "machine's moods fall on every model); the interrupt lines and moderation are e1000's.",
        "",
    ]


def _summary(results: Mapping[str, Any]) -> list[str]:
    failed = [(title, r) for key, title in EVALUATIONS.items() if (r := failure(results.get(key))) is not None]
    empty = [(title, r) for key, title in EVALUATIONS.items() if (r := no_result(results.get(key))) is not None]
    out: list[str] = []
    if failed:
        out += [f"**{len(failed)} evaluation(s) FAILED** (each section below says why; the rest ran):", ""]
        out += [f"- FAILED: {title} — `{reason}`" for title, reason in failed]
        out.append("")
    if empty:
        out += [f"**{len(empty)} evaluation(s) gave no result:**", ""]
        out += [f"- no result: {title} — {reason}" for title, reason in empty]
        out.append("")
    return out


def _virt_text(m: Mapping[str, Any]) -> str:
    virt = m.get("virtualised")
    evidence = m.get("virt_evidence") or {}
    how = "; ".join(f"{k}: {_text(v)}" for k, v in evidence.items())
    if virt is None:
        text = "unknown"
    elif virt:
        text = f"yes ({m['hypervisor']})" if m.get("hypervisor") else "yes (hypervisor not named)"
    else:
        text = "no"
    return f"{text} — {how}" if how else text


def _machine(m: Mapping[str, Any] | None) -> list[str]:
    out = ["## Machine", ""]
    if not m:
        return [*out, NOT_RUN + " No machine description was recorded.", ""]
    steal = m.get("steal_pct")
    cores = f"{fmt_count(m.get('usable_cores'))} usable of {fmt_count(m.get('cores'))}"
    rows = [
        ["CPU", m.get("cpu_model") or "unknown"],
        ["cores", cores],
        ["kernel", m.get("kernel") or DASH],
        ["Python", m.get("python") or DASH],
        ["host", m.get("hostname") or DASH],
        ["virtualised", _virt_text(m)],
    ]
    if m.get("container"):
        rows.append(["container", m["container"]])
    rows.append(["steal time during the run", _or_reason(steal, lambda v: f"{float(v):.2f} %", "not measured")])
    out += [*table(["", ""], rows), ""]
    if steal is not None and float(steal) > STEAL_WARN_PCT:
        out += [
            f"**The hypervisor took {float(steal):.2f} % of the CPU during the run** (above {STEAL_WARN_PCT:.0f} %): "
            "interval outliers and lost packets below may be the machine's, not the tool's.",
            "",
        ]
    if m.get("virtualised"):
        out += [
            "The paper ran on bare metal (Mint: one Linux kernel per core, no hypervisor); this machine is "
            "virtualised, so its vCPUs can be descheduled at any moment.",
            "",
        ]
    return out


def _send_time(section: Any) -> list[str]:
    out = [
        "## E1 — send processing time (paper Table 1)",
        "",
        "What one send (mark the descriptor, copy the frame, raise the interrupt) costs; the paper takes this as "
        "the shortest possible interval (mean of 1000 sends per size). Ours: paced sends (mean, p50, p99), sends "
        "back to back, and a bare memcpy of the frame for scale.",
        "",
    ]
    rows = _rows(section)
    if (stand_in := _stand_in(out, section, "send_time", not rows)) is not None:
        return stand_in
    with_device, against = _has_device(rows), any("over_e1000" in r for r in rows)
    if against:
        out += [
            "Both device models were measured in the same rounds, their runs alternating (the order reversed "
            "every other round); \"p50 / e1000's\" sets a model's median p50 against e1000's of the same rounds.",
            "",
        ]
    header = [
        "size",
        *(["device"] if with_device else []),
        "paced mean",
        "paced p50",
        "paced p99",
        "back to back",
        "memcpy",
        "p50 / memcpy",
        *(["p50 / e1000's"] if against else []),
        "paper (Table 1)",
        "back to back / paper",
    ]
    body = []
    for r in rows:
        # a row that does not carry the paper's figure gets Table 1's for its size, if Table 1 has one
        paper = r["paper_ns"] if "paper_ns" in r else PAPER_SEND_NS.get(int(r.get("size") or 0))
        ratio = r.get("over_e1000")
        body.append(
            [
                fmt_size(r.get("size")),
                *([_device(r)] if with_device else []),
                fmt_ns(r.get("mean_ns")),
                fmt_ns(r.get("p50_ns")),
                fmt_ns(r.get("p99_ns")),
                fmt_ns(r.get("back_to_back_ns")),
                fmt_ns(r.get("memcpy_ns")),
                fmt_ratio(r.get("p50_ns"), r.get("memcpy_ns")),
                *([DASH if ratio is None else f"×{float(ratio):.2f}"] if against else []),
                _or_reason(paper, fmt_ns, "no paper figure for this size"),
                fmt_ratio(r.get("back_to_back_ns"), paper),
            ]
        )
    return [*out, *table(header, body), ""]


def _stats(side: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return side if isinstance(side, Mapping) else {}


def _precision(p: Any, out_dir: Path) -> list[str]:
    out = [
        "## E2 — interval precision (paper Fig. 7)",
        "",
        "Interrupts at a fixed interval; how far apart successive interrupt-handler entries on the driver node "
        "actually were. The paper, at 38 µs (what a real 1 GbE NIC showed), had 996 of 1000 exactly 38 µs, "
        "worst +2 µs, all within ±6.25 %. The device's own send intervals are shown too, so a deviation can be "
        "placed on the sending or the receiving side.",
        "",
    ]
    if (stand_in := _stand_in(out, p, "precision", not p or not isinstance(p, Mapping))) is not None:
        return stand_in
    reason = _skipped(p)
    if reason:
        return [*out, f"_Skipped: {reason}_", ""]
    drv = _stats(p)
    # a paper figure the section leaves empty is still the paper's: the constants stand in for it
    paper = {**PAPER_PRECISION, **{k: v for k, v in _stats(p.get("paper")).items() if v is not None}}
    models = _precision_models(p)
    named = "model" in p
    header, columns = [""], [[
        "interval asked", "intervals measured", "within ±6.25 %", "off by more than 1 µs", "worst |deviation|",
        *(f"interval {key}" for key in ("min", "p50", "p99", "max")),
    ]]  # fmt: skip
    header.append("paper")
    columns.append([fmt_ns(paper["interval_ns"]), fmt_count(paper["count"]), fmt_pct(paper["within_6_25pct"]),
                    f"{DASH} (paper: {paper['count'] - paper['exact']} not exactly on time)",
                    fmt_ns(paper["max_abs_dev_ns"]), DASH, DASH, DASH, DASH])  # fmt: skip
    for model in models:
        who = f"ours, {_model(model)}" if named else "ours"
        ratio = f"{who}: ratio (driver / paper)" if len(models) > 1 else "ratio (driver / paper)"
        header += [f"{who}: driver handler entries", f"{who}: device sends", ratio]
        columns += _precision_columns(model, paper)
    rows = [list(row) for row in zip(*columns, strict=True)]
    out += [*table(header, rows)]
    out.append("")
    asked = drv.get("interval_ns")
    if asked is not None and int(asked) != int(paper["interval_ns"]):
        out += [
            f"Our interval ({fmt_ns(asked)}) is not the paper's ({fmt_ns(paper['interval_ns'])}): compare the shares "
            "within the band, not the absolute deviations.",
            "",
        ]
    for model in models:
        within = _stats(model).get("within_6_25pct")
        if within is not None and float(within) < float(paper["within_6_25pct"]):
            n = model.get("count")
            outside = f" ({round((1 - float(within)) * int(n)):,} of {int(n):,})" if n else ""
            whose = f" ({_model(model)})" if len(models) > 1 else ""
            out += [f"Not every interval{whose} was within ±6.25 %: {fmt_pct(1 - float(within))} fell "
                    f"outside{outside}.", ""]  # fmt: skip
    out += _timing(p)
    out += _figure(p.get("figure"), "E2: interval deviation histogram", out_dir)
    if isinstance(p.get("long"), Mapping):
        out += _figure(p["long"].get("figure"), "E2: the same, 10 000 intervals", out_dir)
    return out


def _precision_models(p: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """E2's section of each device model: the section, then its ``others`` (evaluations.precision_sections)."""
    others = p.get("others")
    return [p, *(o for o in (others if isinstance(others, list) else []) if isinstance(o, Mapping))]


def _precision_columns(model: Mapping[str, Any], paper: Mapping[str, Any]) -> list[list[str]]:
    """One model's three columns of the E2 table: its handler entries, its device's sends, the ratio to the paper."""
    drv, dev = _stats(model), _stats(model.get("device") if isinstance(model.get("device"), Mapping) else None)
    di, vi = _stats(drv.get("intervals_ns")), _stats(dev.get("intervals_ns"))
    no_dev = "device intervals not recorded"
    driver = [fmt_ns(drv.get("interval_ns")), fmt_count(drv.get("count")), fmt_pct(drv.get("within_6_25pct")),
              fmt_count(drv.get("over_1us")), fmt_ns(drv.get("max_abs_dev_ns")),
              *(fmt_ns(di.get(k)) for k in ("min", "p50", "p99", "max"))]  # fmt: skip
    sends = [DASH, fmt_count(dev.get("count")),
             _or_reason(dev.get("within_6_25pct"), fmt_pct, no_dev if not dev else None),
             fmt_count(dev.get("over_1us")), fmt_ns(dev.get("max_abs_dev_ns")),
             *(fmt_ns(vi.get(k)) for k in ("min", "p50", "p99", "max"))]  # fmt: skip
    ratio = ["", "", fmt_ratio(drv.get("within_6_25pct"), paper["within_6_25pct"]), "",
             fmt_ratio(drv.get("max_abs_dev_ns"), paper["max_abs_dev_ns"]), "", "", "", ""]  # fmt: skip
    return [driver, sends, ratio]


def _timing(p: Mapping[str, Any]) -> list[str]:
    """Whose each deviation was, against what the same invocation's calibration predicted (issue 11)."""
    runs = [(m, r) for m in _precision_models(p) for r in (m, m.get("long"))
            if isinstance(r, Mapping) and isinstance(r.get("timing"), Mapping)]  # fmt: skip
    if not runs:
        return []
    cal = p.get("calibration") if isinstance(p.get("calibration"), Mapping) else {}
    expected = cal.get("expected_disturbed_share") if cal else None
    out = [
        'Every interval off the band has a cause from the records (README, "Timing you can trust"): the '
        "machine's (a spinning loop saw the stall), the driver's (its handler time), or the tool's (pseudonic's "
        "own path, or nothing on record explains it). Both cores were calibrated before and after the runs; the "
        "calibration's prediction is the share of intervals this long their measured gaps would disturb.",
        "",
    ]
    rows = []
    named = "model" in p

    def label(model: Mapping[str, Any], r: Mapping[str, Any]) -> str:
        return f"{fmt_ns(r.get('interval_ns'))} × {fmt_count(r.get('count'))}" + (
            f", {_model(model)}" if named else "")  # fmt: skip

    for m, r in runs:
        t = r["timing"]
        rows.append([
            label(m, r), fmt_pct(t.get("raw_off_share")),
            fmt_pct(t.get("machine_share")), fmt_pct(t.get("driver_share")), fmt_pct(t.get("tool_attributed_share")),
            fmt_pct(expected) if expected is not None else DASH,
            "yes" if t.get("trustworthy") else "no",
        ])  # fmt: skip
    out += table(["run", "off the band", "machine's", "driver's", "tool's", "calibration predicts", "trustworthy"],
                 rows)  # fmt: skip
    out.append("")
    for m, r in runs:
        model = f", {_model(m)}" if named else ""
        out += [f"- {fmt_count(r.get('count'))} intervals{model}: {r['timing'].get('why')}"]
    out.append("")
    return out


#: What every size in the bench is (frames.MIN_FRAME, plan._frame_size): said where the sizes are tabulated.
SIZES_NOTE = (
    "Sizes are Ethernet frames without their 4-byte FCS, as pseudonic's `--size` takes them (the shortest is 60 B): "
    "a 60 B row is the minimum frame, 64 B on the wire with its FCS -- DPDK's and RFC 2544's 64 B, 14.88 Mpps at "
    "10 GbE."
)


def _sweep(section: Any, figure: Any, out_dir: Path) -> list[str]:
    rows = _rows(section)
    out = [
        "## E3a — receive success rate against send interval (paper Fig. 8)",
        "",
        f"{_count_text(rows)} sends per cycle, the interval searched (coarse, then fine) from 64 µs down to the "
        "device's back-to-back limit at the size, never below it: that limit is measured first (every packet due "
        "at once; the median gap between the starts of successive sends that both stored their frame, the median "
        "of the runs). Success = the driver delivered the packet, verified. The shortest interval at which a "
        "cycle, and every longer one, took 100 % is the driver's limit. Where the device could not send that fast, "
        "the achieved interval (the time of the sends / their count) says so, and the time the driver spent in its "
        "handler per packet gives its own ceiling. The paper gives this as a curve only (Fig. 8), so there is no "
        "paper number to set beside ours.",
        "",
        SIZES_NOTE,
        "",
    ]
    if (stand_in := _stand_in(out, section, "sweep", not rows)) is not None:
        return stand_in
    with_device = _has_device(rows)
    body = []
    outran: list[str] = []
    for r in rows:
        floor = r.get("device_floor_ns")
        # a row from before the search measured the device's limit searched down to a fixed 200 ns
        no_floor = r.get("device_floor_reason") if "device_floor_ns" in r else "not measured: a fixed floor"
        body.append(
            [
                fmt_size(r.get("size")),
                r.get("driver") or DASH,
                *([_device(r)] if with_device else []),
                r.get("irq") or DASH,
                _or_reason(floor, fmt_ns, no_floor),
                _or_reason(r.get("min_full_success_interval_ns"), fmt_ns, "no measured interval took 100 %"),
                fmt_ns(r.get("achieved_interval_ns")),
                r.get("limited_by") or DASH,
                fmt_ns(r.get("handler_ns_per_packet")),
            ]
        )
        shortest = r.get("min_full_success_interval_ns")
        # an interval list of the user's may stop above the device's limit: then it was not reached
        if r.get("limited_by") == "device" and floor is not None and shortest is not None and shortest <= floor:
            model = f", {_device(r)}" if with_device else ""
            outran.append(
                f"- {fmt_size(r.get('size'))}, {r.get('driver') or DASH}{model}: the receiver took everything even "
                f"at the device's back-to-back limit at this size ({fmt_ns(floor)}): the receiver outran the device, "
                "and the device was the limit."
            )
    header = ["size", "driver", *(["device"] if with_device else []), "interrupt line",
              "device's back-to-back limit at this size", "shortest 100 % interval", "achieved interval",
              "limited by", "handler time / packet"]  # fmt: skip
    out += [*table(header, body), ""]
    if outran:
        out += [*outran, ""]
    repeats = sorted({int(r["runs_per_interval"]) for r in rows if r.get("runs_per_interval")})
    if repeats and repeats != [1]:
        out += [
            f"Each interval was measured in {' / '.join(map(str, repeats))} runs and the median run counts (a stall "
            "of a node's core in one run must not set the answer on a shared machine); every run is in results.json "
            "(`every_run`, with its longest stall).",
            "",
        ]
    out += _figure(figure, "E3a: success rate against send interval", out_dir)
    return out


def _throughput(section: Any, baseline: Any) -> list[str]:
    rows = _rows(section)
    out = [
        "## E3b — maximum throughput (paper Table 2)",
        "",
        f"At the first interval with 100 % success: size × {_count_text(rows)} / the time of those sends, and "
        "beside it the packets received over the same time (Mpps). The paper also "
        f"measured a real NIC between two hosts at 1.5 KB ({_real_nic()}, Table 2), and gives "
        f"its machine's memory bandwidth as about {PAPER_MEMORY_GBPS:.0f} Gbps (bytes: no packet rate goes with "
        "it). Our stand-in for the real NIC is "
        "the kernel's UDP path over a veth pair. The paper gives Gbps only: its Mpps here are derived, "
        "Gbps / (8 × size) at its 1.5 KB / 8 KB / 16 KB (1500 / 8192 / 16384 B), and marked so.",
        "",
    ]
    sweep_gone = failure(section) or no_result(section)
    if not rows and baseline is None and sweep_gone is None:
        return [*out, NOT_RUN, ""]
    body: list[list[Any]] = []
    with_device = _has_device(rows)
    # the kernel's row has no model: a dash in the device column
    model: list[Any] = [DASH] if with_device else []
    for r in rows:
        paper = r["paper_gbps"] if "paper_gbps" in r else PAPER_THROUGHPUT_GBPS.get(int(r.get("size") or 0))
        ours = r.get("throughput_gbps")
        no_full = "no measured interval took 100 %" if r.get("min_full_success_interval_ns") is None else None
        at = paper_size(int(r.get("size") or 0))
        body.append(
            [
                fmt_size(r.get("size")),
                r.get("driver") or DASH,
                *([_device(r)] if with_device else []),
                r.get("irq") or DASH,
                _row_rate(r, "throughput_gbps", "throughput_mpps")
                if ours is not None
                else _or_reason(None, fmt_gbps, r.get("reason") or no_full),
                _row_rate(r, "max_full_success_gbps", "max_full_success_mpps"),
                fmt_paper_rate(paper, at) if paper is not None else f"{DASH} (no paper figure for this size)",
                fmt_ratio(ours, paper),
            ]
        )
    baseline_note: list[str] = []
    if (reason := failure(baseline)) is not None:
        body.append(
            [
                "1,500 B",
                "kernel UDP (veth)",
                *model,
                DASH,
                f"{DASH} (failed)",
                DASH,
                _real_nic(),
                DASH,
            ]
        )
        baseline_note = [f"Kernel baseline FAILED: `{reason}` (traceback in results.json, `baseline`).", ""]
    elif (reason := no_result(baseline)) is not None:
        body.append(
            [
                "1,500 B",
                "kernel UDP (veth)",
                *model,
                DASH,
                f"{DASH} (no result)",
                DASH,
                _real_nic(),
                DASH,
            ]
        )
        baseline_note = [f"Kernel baseline: _No result: {reason}._", ""]
    elif not isinstance(baseline, Mapping) or not baseline:
        body.append(
            [
                "1,500 B",
                "kernel UDP (veth)",
                *model,
                DASH,
                f"{DASH} (not run)",
                DASH,
                _real_nic(),
                DASH,
            ]
        )
    elif (reason := _skipped(baseline)) is not None:
        body.append(
            [
                "1,500 B",
                "kernel UDP (veth)",
                *model,
                DASH,
                f"{DASH} (skipped)",
                DASH,
                _real_nic(),
                DASH,
            ]
        )
        baseline_note = [f"Kernel baseline skipped: {reason}", ""]
    else:
        ours_b = baseline.get("gbps")
        pps = baseline.get("pps")
        mpps_b = None if pps is None else float(pps) / 1e6
        why_b = None if "pps" in baseline else NOT_RECORDED
        no_full_b = (
            "no measured interval took every datagram"
            if "min_full_success_interval_ns" in baseline and baseline["min_full_success_interval_ns"] is None
            else None
        )
        body.append(
            [
                fmt_size(baseline.get("size", 1500)),
                "kernel UDP (veth)",
                *model,
                "kernel",
                _or_reason(ours_b, lambda g: fmt_rate(g, mpps_b, why_b), baseline.get("reason") or no_full_b),
                DASH,
                f"{_real_nic()} (real NIC)",
                fmt_ratio(ours_b, PAPER_REAL_NIC_GBPS),
            ]
        )
        extra = []
        if baseline.get("pps") is not None:
            extra.append(f"{float(baseline['pps']):,.0f} packets/s")
        if "min_full_success_interval_ns" in baseline:
            extra.append(
                "shortest 100 % interval "
                + _or_reason(baseline["min_full_success_interval_ns"], fmt_ns, "no measured interval took 100 %")
            )
        if baseline.get("note"):
            extra.append(str(baseline["note"]))
        if extra:
            baseline_note = ["Kernel baseline: " + "; ".join(extra) + ".", ""]
    if sweep_gone is not None:
        what = "FAILED" if failure(section) is not None else "no result"
        out += [f"Pseudo-NIC throughput: {what} (the sweep: `{sweep_gone}`).", ""]
    elif not rows:
        out += ["Pseudo-NIC throughput: " + NOT_RUN, ""]
    header = ["size", "driver", *(["device"] if with_device else []), "interrupt line", "ours", "highest 100 % run",
              "paper (Table 2)", "ratio"]  # fmt: skip
    out += [*table(header, body), ""]
    return out + baseline_note


def _real_nic() -> str:
    """The paper's real NIC (Table 2: 1.5 KB), with the packet rate it is at 1500 B, derived."""
    return fmt_paper_rate(PAPER_REAL_NIC_GBPS, 1500)


def _count_text(rows: list[Mapping[str, Any]]) -> str:
    counts = sorted({int(r["count"]) for r in rows if r.get("count")})
    return " / ".join(f"{c:,}" for c in counts) if counts else "5,000"


def _moderation(section: Any) -> list[str]:
    rows = _rows(section)
    out = [
        "## Interrupt moderation",
        "",
        "Interrupts raised against packets, with e1000 ITR (a minimum interval between interrupts, SDM 13.4.18) "
        "and NAPI-style polling (the handler masks RXT0, polls up to its budget, unmasks once the ring is clean)"
        + (f", packets every {fmt_ns(rows[0]['interval_ns'])}." if rows and rows[0].get("interval_ns") else "."),
        "",
    ]
    if (stand_in := _stand_in(out, section, "moderation", not rows)) is not None:
        return stand_in
    body = [
        [_text(r.get("mode")), _text(r.get("driver")), fmt_count(r.get("packets")), fmt_count(r.get("received")),
         fmt_count(r.get("interrupts")), fmt_count(r.get("handler_runs")),
         DASH if r.get("packets_per_interrupt") is None else f"{float(r['packets_per_interrupt']):.1f}"]
        for r in rows
    ]  # fmt: skip
    header = ["mode", "driver", "packets", "received", "interrupts", "handler runs", "packets / interrupt"]
    return [*out, *table(header, body), ""]


def _transmit(section: Any) -> list[str]:
    rows = _rows(section)
    out = [
        "## Transmit beside receive",
        "",
        "e1000's transmit ring: each driver is handed frames as fast as its transmit takes them, the transmitter "
        "unpaced, every frame checked against the one handed; beside it the same driver receives a back-to-back "
        "burst (a ring of 4096), and a hot memcpy of the size is timed, all interleaved round by round (medians). "
        "The paper has no transmit path.",
        "",
    ]
    if (stand_in := _stand_in(out, section, "transmit", not rows)) is not None:
        return stand_in
    body = [
        [DASH if r.get("size") is None else f"{r['size']} B", _text(r.get("driver")),
         _row_rate(r, "transmit_gbps", "transmit_mpps"), _row_rate(r, "receive_gbps", "receive_mpps"),
         _ratio(r.get("transmit_over_memcpy")), _ratio(r.get("receive_over_memcpy")),
         "yes" if r.get("all_intact") else "**no**"]
        for r in rows
    ]  # fmt: skip
    header = ["size", "driver", "transmit", "receive (back to back)", "transmit / memcpy", "receive / memcpy",
              "every frame intact"]  # fmt: skip
    return [*out, *table(header, body), ""]


def _small_packets(section: Any) -> list[str]:
    out = [
        "## Small packets at line rate",
        "",
        "64 B frames on the wire (60 B and the FCS) sent back to back into a ring of 4096, beside a bare two-core "
        "ring measured in the same rounds (a frame copied in, a descriptor and a doorbell per packet, the frame "
        "copied out: nothing of pseudonic's), interleaved round by round (medians). Mpps taken is over the time "
        "of the sends; the driver's pace over its handler runs. Then a run paced at 10 GbE's 14.88 Mpps.",
        "",
    ]
    empty = not isinstance(section, dict) or not section.get("rows")
    if (stand_in := _stand_in(out, section, "small_packets", empty)) is not None:
        return stand_in

    def num(v: Any, spec: str = ".2f", unit: str = "") -> str:
        return DASH if v is None else f"{float(v):{spec}}{unit}"

    body = [
        [_text(r.get("subject")), num(r.get("mpps")), _ratio(r.get("over_reference")),
         num(None if r.get("delivered") is None else 100 * float(r["delivered"]), ".2f", " %"),
         num(r.get("driver_mpps"))]
        for r in section["rows"]
    ]  # fmt: skip
    line = section.get("line_rate") or {}
    tail = (
        [f"Paced at {num(line.get('target_mpps'))} Mpps ({_text(line.get('interval_ns'))} ns a frame), C driver: "
         f"{num(None if line.get('delivered') is None else 100 * float(line['delivered']), '.2f', ' %')} delivered "
         f"({_text(line.get('received'))} of {_text(line.get('sent'))}), {num(line.get('received_mpps'))} Mpps "
         f"taken while the device sent {num(line.get('sent_mpps'))} Mpps.", ""]
        if line else []
    )  # fmt: skip
    header = ["subject", "Mpps taken", "over the two-core ring", "delivered (worst round)", "the driver's pace"]
    return [*out, *table(header, body), "", *tail]


def _ratio(v: Any) -> str:
    return DASH if v is None else f"{float(v):.2f}×"


def _irq_lines(section: Any, figure: Any, out_dir: Path) -> list[str]:
    rows = _rows(section)
    out = [
        "## Interrupt lines",
        "",
        "The paper raises an IPI from core 0 to core 1. Ours offers three stand-ins: a shared-memory doorbell the "
        "driver core spins on, an eventfd (as VFIO delivers MSI-X to user-space drivers), and a POSIX signal. "
        "Latency is from the device raising the interrupt to the driver's handler running.",
        "",
    ]
    if (stand_in := _stand_in(out, section, "irq_lines", not rows)) is not None:
        return stand_in
    body = [
        [
            r.get("line") or DASH,
            r.get("driver") or DASH,
            fmt_ns(r.get("min")),
            fmt_ns(r.get("p50")),
            fmt_ns(r.get("p99")),
            fmt_ns(r.get("max")),
            fmt_count(r.get("interrupts")),
            r.get("note") or "",
        ]
        for r in rows
    ]
    out += [*table(["line", "driver", "min", "p50", "p99", "max", "interrupts", "note"], body), ""]
    out += _figure(figure, "interrupt latency by line", out_dir)
    return out


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


def _met(row: Mapping[str, Any]) -> str:
    """Only an explicit True is "met"; anything else (False, None, missing) is a miss."""
    return "met" if row.get("met") is True else "MISSED"


def _targets(section: Any) -> list[str]:
    out = ["## Targets", ""]
    rows = _rows(section)
    if (stand_in := _stand_in(out, section, "targets", not rows, NOT_RUN + " No targets were checked.")) is not None:
        return stand_in
    body = [[_text(r.get("name")), _text(r.get("target")), _text(r.get("measured")), _met(r)] for r in rows]
    out += [*table(["target", "asked", "measured", "result"], body), ""]
    missed = [r for r in rows if _met(r) == "MISSED"]
    if missed:
        out.append(f"**{len(missed)} of {len(rows)} targets MISSED:**")
        out.append("")
        out += [
            f"- MISSED: {_text(r.get('name'))} — asked {_text(r.get('target'))}, measured {_text(r.get('measured'))}."
            for r in missed
        ]
    else:
        out.append(f"All {len(rows)} targets met.")
    return [*out, ""]


def render_report(results: Mapping[str, Any], out_dir: Path) -> str:
    """The report's markdown; figure links are relative to ``out_dir``."""
    out_dir = Path(out_dir)
    lines: list[str] = []
    lines += _meta(results.get("meta"))
    lines += _models(results.get("devices"))
    lines += _summary(results)
    lines += _machine(results.get("machine"))
    lines += _send_time(results.get("send_time"))
    lines += _precision(results.get("precision"), out_dir)
    lines += _sweep(results.get("sweep"), results.get("sweep_figure"), out_dir)
    lines += _throughput(results.get("sweep"), results.get("baseline"))
    lines += _irq_lines(results.get("irq_lines"), results.get("irq_figure"), out_dir)
    lines += _moderation(results.get("moderation"))
    lines += _transmit(results.get("transmit"))
    lines += _small_packets(results.get("small_packets"))
    lines += _targets(results.get("targets"))
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/report.md`` from a bench run's results and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text(render_report(results, out_dir), encoding="utf-8")
    return path
