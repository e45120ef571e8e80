"""``pseudonic bench``: the paper's evaluations as commands, with results.json, figures and report.md.

Each subcommand prints its table, and with ``--out DIR`` writes
DIR/results.json holding its own section (and its figure); ``bench all``
runs them all and writes the report. ``--quick`` is a reduced run (one
size, small counts) for tests and a first look.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__, config
from ..errors import ConfigError
from ..frames import MIN_FRAME
from ..units import format_ns, parse_interval, parse_size
from . import evaluations as ev
from .baseline import measure_baseline
from .machine import StealMeter, machine_info
from .report import write_report
from .search import coarse_grid

DEFAULT_SIZES = "1500,8KiB,16KiB"
DRIVERS = ("python", "c")
LINES = ("spin", "eventfd", "signal")
console = Console()


def _sizes(text: str) -> list[int]:
    sizes = [parse_size(s.strip(), "size") for s in text.split(",") if s.strip()]
    if not sizes:
        raise ConfigError("--sizes: give one or more sizes, e.g. 1500,8KiB,16KiB")
    for s in sizes:
        if not MIN_FRAME <= s <= config.DEFAULT_BUFFER_SIZE:
            raise ConfigError(f"--sizes: {s} B is out of range: give {MIN_FRAME}..{config.DEFAULT_BUFFER_SIZE} bytes")
    return sizes


def _check_count(count: int) -> None:
    if not 1 <= count <= config.MAX_COUNT:
        raise ConfigError(f"--count {count} is out of range: give 1..{config.MAX_COUNT}")


def _names(text: str, allowed: tuple[str, ...] | None, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{what}: give one or more, e.g. {','.join(allowed or ('python',))}")
    if allowed is not None:
        bad = [n for n in names if n not in allowed]
        if bad:
            raise ConfigError(f"--{what}: {', '.join(bad)} unknown: give any of {', '.join(allowed)}")
    return names


def _intervals(text: str) -> list[int] | None:
    if text == "auto":
        return None
    values = [parse_interval(v.strip(), "interval") for v in text.split(",") if v.strip()]
    if not values or any(not 1 <= v <= config.MAX_INTERVAL_NS for v in values):
        raise ConfigError("--intervals: give auto, or a list of intervals each 1ns..10s (e.g. 2us,1us,500ns)")
    return values


def _out(path: str | None) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {path}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def _progress(what: str, total: int | None) -> Iterator[ev.Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)

        def tick(note: str) -> None:
            bar.update(task, advance=1, description=f"{what}: {note}")

        yield tick


def _meta(command: str, started: float) -> dict[str, Any]:
    return {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": time.monotonic() - started,
        "version": __version__,
    }


def _write(out: Path | None, results: dict[str, Any]) -> None:
    if out is not None:
        (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
        console.print(f"wrote {out / 'results.json'}")


def _command_line() -> str:
    import sys

    return "pseudonic " + " ".join(sys.argv[1:])


# -- the tables each step prints --------------------------------------------------------------
def _ns(v: Any) -> str:
    return "—" if v is None else format_ns(float(v))


def show_send_time(rows: list[dict[str, Any]]) -> None:
    t = Table(title="E1 / Table 1: send processing time (medians over rounds)")
    for c in ("size", "memcpy p50", "paced p50", "paced / memcpy", "paced mean", "paced p99", "back to back", "paper"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(f"{r['size']} B", _ns(r["memcpy_ns"]), _ns(r["p50_ns"]), f"{r['paced_over_memcpy']:.2f}×",
                  _ns(r["mean_ns"]), _ns(r["p99_ns"]), _ns(r["back_to_back_ns"]), _ns(r["paper_ns"]))  # fmt: skip
    console.print(t)


def show_precision(p: dict[str, Any]) -> None:
    t = Table(
        title=f"E2 / Fig. 7: intervals at {format_ns(p['interval_ns'])} × {p['count']} ({p['driver']}, {p['irq']})"
    )
    for c in ("as seen by", "within ±6.25 %", "off > 1 µs", "worst |dev|", "min", "p50", "p99", "max"):
        t.add_column(c, justify="right")
    for who, s in (("driver (handler entries)", p), ("device (sends)", p["device"])):
        i = s["intervals_ns"]
        within = s["within_6_25pct"]
        t.add_row(who, "—" if within is None else f"{100 * within:.2f} %", str(s["over_1us"]),
                  _ns(s["max_abs_dev_ns"]), _ns(i["min"]), _ns(i["p50"]), _ns(i["p99"]), _ns(i["max"]))  # fmt: skip
    console.print(t)


def show_sweep(rows: list[dict[str, Any]]) -> None:
    t = Table(title="E3 / Fig. 8, Table 2: shortest interval with 100 % success")
    for c in ("driver", "size", "interval", "achieved", "limited by", "handler / pkt", "throughput", "paper"):
        t.add_column(c, justify="right")
    for r in rows:
        gbps = r["throughput_gbps"]
        t.add_row(r["driver"], f"{r['size']} B", _ns(r["min_full_success_interval_ns"]),
                  _ns(r["achieved_interval_ns"]), r["limited_by"] or "—", _ns(r.get("handler_ns_per_packet")),
                  "—" if gbps is None else f"{gbps:.2f} Gbps",
                  "—" if r["paper_gbps"] is None else f"{r['paper_gbps']} Gbps")  # fmt: skip
    console.print(t)


def show_baseline(b: dict[str, Any]) -> None:
    if "skipped" in b:
        console.print(f"kernel baseline skipped: {b['skipped']}")
        return
    console.print(
        f"kernel UDP over veth, {b['size']} B: {b['gbps']:.2f} Gbps, {b['pps']:.0f} packets/s "
        f"(shortest 100 % interval {_ns(b['min_full_success_interval_ns'])}); {b.get('note') or ''}"
    )


def show_irq(rows: list[dict[str, Any]]) -> None:
    t = Table(title="interrupt latency per line (raised → handler entered)")
    for c in ("line", "driver", "min", "p50", "p99", "max", "interrupts"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r["line"], r["driver"], _ns(r["min"]), _ns(r["p50"]), _ns(r["p99"]), _ns(r["max"]),
                  str(r["interrupts"]))  # fmt: skip
    console.print(t)
    for note in sorted({r["note"] for r in rows if r["note"]}):
        console.print(f"eventfd, signal: {note}")


def show_moderation(rows: list[dict[str, Any]]) -> None:
    t = Table(title="interrupt moderation: interrupts raised against packets")
    for c in ("mode", "driver", "packets", "received", "interrupts", "handler runs", "packets / interrupt"):
        t.add_column(c, justify="right")
    for r in rows:
        ppi = r["packets_per_interrupt"]
        t.add_row(r["mode"], r["driver"], str(r["packets"]), str(r["received"]), str(r["interrupts"]),
                  str(r["handler_runs"]), "—" if ppi is None else f"{ppi:.1f}")  # fmt: skip
    console.print(t)


# -- the steps --------------------------------------------------------------------------------
def step_send_time(sizes: list[int], repeat: int, rounds: int) -> list[dict[str, Any]]:
    with _progress("send time", len(sizes) * rounds) as tick:
        rows = ev.send_time(sizes, repeat, rounds, progress=tick)
    show_send_time(rows)
    return rows


def step_precision(interval_ns: int, count: int, out: Path | None, driver: str, irq: str) -> dict[str, Any]:
    with _progress("precision", 1) as tick:
        p = ev.precision(interval_ns, count, driver=driver, irq=irq, out=out, progress=tick)
    show_precision(p)
    return p


def step_sweep(
    sizes: list[int], drivers: list[str], count: int, intervals: list[int] | None, irq: str, fine_steps: int,
    runs: int = ev.RUNS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    per_search = len(intervals) if intervals else len(coarse_grid(ev.SWEEP_LO_NS, ev.SWEEP_HI_NS)) + fine_steps
    with _progress("sweep", per_search * len(sizes) * len(drivers)) as tick:
        rows, curves = ev.sweep(sizes, drivers, count=count, intervals=intervals, irq=irq, fine_steps=fine_steps,
                                runs=runs, progress=tick)  # fmt: skip
    show_sweep(rows)
    return rows, curves


def step_baseline(count: int, intervals: list[int] | None) -> dict[str, Any]:
    total = len(intervals) if intervals else len(coarse_grid(ev.SWEEP_LO_NS, ev.SWEEP_HI_NS)) + 6
    with _progress("kernel baseline", total) as tick:
        b = measure_baseline(1500, count, intervals=intervals, progress=lambda i, p: tick(f"{p.interval_ns} ns"))
    show_baseline(b)
    return b


def step_irq(lines: list[str], drivers: list[str], count: int) -> list[dict[str, Any]]:
    with _progress("irq lines", len(lines) * len(drivers)) as tick:
        rows = ev.irq_lines(lines, drivers, count=count, progress=tick)
    show_irq(rows)
    return rows


def step_moderation(count: int) -> list[dict[str, Any]]:
    with _progress("moderation", 4) as tick:
        rows = ev.moderation(count=count, progress=tick)
    show_moderation(rows)
    return rows


# -- the commands -----------------------------------------------------------------------------
out_option = click.option("--out", default=None, metavar="DIR", help="Write DIR/results.json (and figures) here.")
quick_option = click.option("--quick", is_flag=True, help="A reduced run: one size, small counts.")


@click.group("bench")
def bench() -> None:
    """The paper's evaluations: send time (E1), precision (E2), sweep (E3), the kernel baseline, all."""


@bench.command("send-time")
@click.option("--sizes", default=DEFAULT_SIZES, show_default=True, help="Frame sizes, comma-separated.")
@click.option("--repeat", default=1000, show_default=True, type=int, help="Sends per round and size.")
@click.option("--rounds", default=5, show_default=True, type=int, help="Interleaved rounds (medians are reported).")
@quick_option
@out_option
def send_time_cmd(sizes: str, repeat: int, rounds: int, quick: bool, out: str | None) -> None:
    """E1 / Table 1: paced and back-to-back send time beside a hot memcpy of the same size."""
    started, where = time.monotonic(), _out(out)
    size_list = [1500] if quick else _sizes(sizes)
    if quick:
        repeat, rounds = 200, 2
    if not 10 <= repeat <= 100_000 or not 1 <= rounds <= 100:
        raise ConfigError("--repeat must be 10..100000 and --rounds 1..100")
    rows = step_send_time(size_list, repeat, rounds)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "send_time": rows})


@bench.command("precision")
@click.option("--interval", default="38us", show_default=True, help="Send interval.")
@click.option("--count", default=1000, show_default=True, type=int, help="Packets.")
@click.option("--driver", default="python", show_default=True, help="Driver under test.")
@click.option("--irq", default="spin", show_default=True, type=click.Choice(LINES), help="Interrupt line.")
@quick_option
@out_option
def precision_cmd(interval: str, count: int, driver: str, irq: str, quick: bool, out: str | None) -> None:
    """E2 / Fig. 7: how precise the intervals between handler entries are, as a deviation histogram."""
    started, where = time.monotonic(), _out(out)
    if quick:
        count = 200
    cfg = config.make_config(interval, count, 1500, irq=irq, driver=driver)
    p = step_precision(cfg.interval_ns, cfg.count, where, driver, irq)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "precision": p})


@bench.command("sweep")
@click.option("--sizes", default=DEFAULT_SIZES, show_default=True, help="Frame sizes, comma-separated.")
@click.option("--count", default=5000, show_default=True, type=int, help="Packets per run (the paper: 5000).")
@click.option("--intervals", default="auto", show_default=True, help="auto (search), or a comma-separated list.")
@click.option("--driver", "drivers", default="python,c", show_default=True, help="Drivers, comma-separated.")
@click.option("--irq", default="spin", show_default=True, type=click.Choice(LINES), help="Interrupt line.")
@click.option("--runs", default=ev.RUNS, show_default=True, type=int, help="Runs per interval; the median counts.")
@quick_option
@out_option
def sweep_cmd(
    sizes: str, count: int, intervals: str, drivers: str, irq: str, runs: int, quick: bool, out: str | None
) -> None:
    """E3a / Fig. 8 and E3b / Table 2: success rate against send interval; the shortest 100 % interval."""
    started, where = time.monotonic(), _out(out)
    size_list, driver_list = _sizes(sizes), _names(drivers, None, "driver")
    if quick:
        size_list, count = size_list[:1], 500
    _check_count(count)
    if not 1 <= runs <= 15:
        raise ConfigError(f"--runs {runs} is out of range: give 1..15")
    from ..driver import load_driver

    for d in driver_list:
        load_driver(d)  # a driver that cannot load is a usage error before any run
    rows, curves = step_sweep(size_list, driver_list, count, _intervals(intervals), irq, 2 if quick else 6,
                              1 if quick else runs)  # fmt: skip
    results: dict[str, Any] = {"meta": _meta(_command_line(), started), "machine": machine_info(), "sweep": rows,
                               "sweep_curves": curves}  # fmt: skip
    if where is not None:
        results["sweep_figure"] = ev.draw_sweep(curves, None, where)
    _write(where, results)


@bench.command("baseline")
@click.option("--count", default=5000, show_default=True, type=int, help="Datagrams per run.")
@click.option("--intervals", default="auto", show_default=True, help="auto (search), or a comma-separated list.")
@quick_option
@out_option
def baseline_cmd(count: int, intervals: str, quick: bool, out: str | None) -> None:
    """The real-NIC row of Table 2 here: the kernel's UDP receive path between two namespaces over veth."""
    started, where = time.monotonic(), _out(out)
    if quick:
        count, intervals = 500, "20us,5us"
    _check_count(count)
    b = step_baseline(count, _intervals(intervals))
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "baseline": b})


@bench.command("irq")
@click.option("--count", default=2000, show_default=True, type=int, help="Packets per line and driver.")
@quick_option
@out_option
def irq_cmd(count: int, quick: bool, out: str | None) -> None:
    """Interrupt latency per line (spin, eventfd, signal) and reference driver; coalescing with ITR and NAPI."""
    started, where = time.monotonic(), _out(out)
    if quick:
        count = 200
    rows = step_irq(list(LINES), list(DRIVERS), count)
    mod = step_moderation(500 if quick else 5000)
    results: dict[str, Any] = {"meta": _meta(_command_line(), started), "machine": machine_info(), "irq_lines": rows,
                               "moderation": mod}  # fmt: skip
    if where is not None:
        results["irq_figure"] = ev.draw_irq(rows, where)
    _write(where, results)


@bench.command("all")
@click.option("--out", default="results", show_default=True, metavar="DIR", help="Where results, figures, report go.")
@quick_option
def all_cmd(out: str, quick: bool) -> None:
    """Every evaluation; writes DIR/results.json, DIR/report.md and the figures."""
    started, where = time.monotonic(), _out(out)
    assert where is not None
    sizes = [1500] if quick else _sizes(DEFAULT_SIZES)
    results: dict[str, Any] = {}
    with StealMeter() as steal:
        results["send_time"] = step_send_time(sizes, 200 if quick else 1000, 2 if quick else 5)
        results["precision"] = step_precision(38_000, 200 if quick else 1000, where, "python", "spin")
        rows, curves = step_sweep(sizes, list(DRIVERS), 500 if quick else 5000, None, "spin", 2 if quick else 6,
                                  1 if quick else ev.RUNS)  # fmt: skip
        results["sweep"], results["sweep_curves"] = rows, curves
        results["baseline"] = step_baseline(500 if quick else 5000, [20_000, 5_000] if quick else None)
        results["irq_lines"] = step_irq(list(LINES), list(DRIVERS), 200 if quick else 2000)
        results["moderation"] = step_moderation(500 if quick else 5000)
    results["sweep_figure"] = ev.draw_sweep(curves, results["baseline"], where)
    results["irq_figure"] = ev.draw_irq(results["irq_lines"], where)
    results["meta"] = _meta(_command_line(), started)
    results["machine"] = {**machine_info(), "steal_pct": steal.result()["steal_pct"]}
    results["targets"] = ev.targets(results, results["meta"]["duration_s"])
    _write(where, results)
    report = write_report(results, where)
    console.print(f"wrote {report}")
    missed = [t["name"] for t in results["targets"] if not t["met"]]
    if missed:
        console.print(f"[bold]targets missed[/]: {'; '.join(missed)}")
