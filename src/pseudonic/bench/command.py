"""``pseudonic bench``: the paper's evaluations as commands, with results.json, figures and report.md.

Each subcommand prints its table, and with ``--out DIR`` writes
DIR/results.json holding its own section (and its figure); ``bench all``
runs them all and writes the report, and an evaluation that fails there is
recorded and reported without stopping the others. ``--quick`` is a reduced run (one
size, small counts) for tests and a first look. E1, E2 and E3 (send-time,
precision, sweep, and all) measure both device models side by side unless
``--device`` names one; the interrupt lines and moderation are e1000's.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__, analysis, config
from ..errors import ConfigError
from ..frames import MIN_FRAME
from ..layout import MAX_TX_FRAME
from ..machine import StealMeter, machine_info
from ..plan import Plan
from ..units import format_ns, parse_interval, parse_size
from . import evaluations as ev
from . import report
from .baseline import measure_baseline
from .search import coarse_grid

#: Frame sizes as every pseudonic size is: the Ethernet frame without its 4-byte FCS (frames.MIN_FRAME, 60, is
#: the shortest). 60 is the minimum frame, 64 B on the wire with its FCS: DPDK's and RFC 2544's "64 B", 14.88 Mpps
#: at 10 GbE. The smallest frames first: the per-packet cost is what they show.
DEFAULT_SIZES = "60,1500,8KiB,16KiB"
SIZES_HELP = "Frame sizes without FCS (60: the 64 B minimum frame on the wire), comma-separated."
#: --quick measures one size: the paper's first
QUICK_SIZE = 1500
DRIVERS = ("python", "c")
#: --device: one model, or both side by side (the default of E1-E3).
DEVICE_CHOICES = (*config.DEVICES, "both")
DEFAULT_DEVICES = "both"
LINES = ("spin", "eventfd", "signal")
console = Console()


def _plan_bounds(option: str, interval: str | int = 1, count: int = 1, size: str | int = MIN_FRAME) -> None:
    """The bench's runs are periodic plans: their bounds are the plan's, checked there, named by the option."""
    try:
        Plan.periodic(interval, count, size).check(config.DEFAULT_BUFFER_SIZE, "null")
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _sizes(text: str) -> list[int]:
    sizes = [parse_size(s.strip(), "size") for s in text.split(",") if s.strip()]
    if not sizes:
        raise ConfigError("--sizes: give one or more sizes, e.g. 1500,8KiB,16KiB")
    for s in sizes:
        _plan_bounds("--sizes", size=s)
    return sizes


def _check_count(count: int) -> None:
    _plan_bounds("--count", count=count)


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
    if not values:
        raise ConfigError("--intervals: give auto, or a list of intervals each 1ns..10s (e.g. 2us,1us,500ns)")
    for v in values:
        _plan_bounds("--intervals", interval=v)
    return values


def _devices(choice: str) -> list[str]:
    """The device models --device names: one, or every model (``both``), e1000 first."""
    return list(config.DEVICES) if choice == "both" else [choice]


device_option = click.option(
    "--device", "device", type=click.Choice(DEVICE_CHOICES), default=DEFAULT_DEVICES, show_default=True,
    help="Device model: e1000, virtio-net, or both side by side (their runs interleaved).",
)  # fmt: skip


def _device_text(row: dict[str, Any]) -> str:
    return _text(row.get("device") or config.DEFAULT_DEVICE)


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
    return "pseudonic " + " ".join(sys.argv[1:])


# -- the tables each step prints --------------------------------------------------------------
# Every figure may be None (no interval took 100 %, no samples, a ratio over 0): it prints as "—",
# never through a format spec, which None does not take.
def _ns(v: Any) -> str:
    return "—" if v is None else format_ns(float(v))


def _rate(gbps: Any, mpps: Any) -> str:
    """A throughput: Gbps, and its packet rate under it in the same cell (each "—" where it is missing); one line
    each keeps the wide tables readable on a narrow terminal."""
    return "—" if gbps is None and mpps is None else f"{_fixed(gbps, '.2f', ' Gbps')}\n{_fixed(mpps, '.3f', ' Mpps')}"


def _paper_rate(gbps: Any, size: Any) -> str:
    """A paper figure (Gbps only) and the packet rate it is at the size, derived: Gbps / (8 x size)."""
    if gbps is None:
        return "—"
    mpps = analysis.mpps_at(float(gbps), float(size)) if size else None
    return f"{float(gbps):g} Gbps\n" + ("—" if mpps is None else f"{mpps:.3f} Mpps derived")


def _fixed(v: Any, spec: str, unit: str = "") -> str:
    return "—" if v is None else f"{format(float(v), spec)}{unit}"


def _text(v: Any) -> str:
    return "—" if v is None or v == "" else str(v)


def _nothing(what: str, section: Any) -> bool:
    """Say so and return True when an evaluation gave nothing to tabulate."""
    if section:
        return False
    console.print(f"{what}: no result")
    return True


def show_send_time(rows: list[dict[str, Any]] | None) -> None:
    if _nothing("send time", rows):
        return
    t = Table(title="E1 / Table 1: send processing time (medians over rounds)")
    for c in ("size", "device", "memcpy p50", "paced p50", "paced / memcpy", "p50 / e1000's", "paced mean",
              "paced p99", "back to back", "paper"):  # fmt: skip
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(_fixed(r.get("size"), ".0f", " B"), _device_text(r), _ns(r.get("memcpy_ns")), _ns(r.get("p50_ns")),
                  _fixed(r.get("paced_over_memcpy"), ".2f", "×"), _fixed(r.get("over_e1000"), ".2f", "×"),
                  _ns(r.get("mean_ns")), _ns(r.get("p99_ns")), _ns(r.get("back_to_back_ns")),
                  _ns(r.get("paper_ns")))  # fmt: skip
    console.print(t)


def show_precision(p: dict[str, Any] | None) -> None:
    if _nothing("precision", p):
        return
    assert p is not None
    t = Table(title=f"E2 / Fig. 7: intervals at {_ns(p.get('interval_ns'))} × {_text(p.get('count'))} "
                    f"({_text(p.get('driver'))}, {_text(p.get('irq'))})")  # fmt: skip
    for c in ("as seen by", "within ±6.25 %", "off > 1 µs", "worst |dev|", "min", "p50", "p99", "max"):
        t.add_column(c, justify="right")
    runs = []
    for section in ev.precision_sections(p):
        model = _text(section.get("model") or config.DEFAULT_DEVICE)
        runs.append((f"{model} × {_text(section.get('count'))}", section))
        if isinstance(section.get("long"), dict):
            runs.append((f"{model} × {_text(section['long'].get('count'))}", section["long"]))
    for label, r in runs:
        for who, s in ((f"{label}: driver (handler entries)", r), (f"{label}: device (sends)", r.get("device") or {})):
            i = s.get("intervals_ns") or {}
            within = s.get("within_6_25pct")
            t.add_row(who, _fixed(None if within is None else 100 * within, ".2f", " %"), _text(s.get("over_1us")),
                      _ns(s.get("max_abs_dev_ns")), _ns(i.get("min")), _ns(i.get("p50")), _ns(i.get("p99")),
                      _ns(i.get("max")))  # fmt: skip
    console.print(t)
    cal = p.get("calibration") or {}
    if cal.get("expected_disturbed_share") is not None:
        console.print(f"calibration (before and after, same cores): {cal['expected_disturbed_share'] * 100:.2f} % "
                      "of intervals this long expected off the band")  # fmt: skip
    for label, r in runs:
        t_ = r.get("timing") or {}
        if t_:
            trust = "trustworthy" if t_.get("trustworthy") else "not trustworthy"
            console.print(f"{label}: {t_['raw_off_share'] * 100:.2f} % off the band (machine "
                          f"{t_['machine_share'] * 100:.2f} %, driver {t_['driver_share'] * 100:.2f} %, tool "
                          f"{t_['tool_attributed_share'] * 100:.2f} %); timing {trust}: {t_.get('why')}",
                          highlight=False, soft_wrap=True)  # fmt: skip


def show_sweep(rows: list[dict[str, Any]] | None) -> None:
    if _nothing("sweep", rows):
        return
    # Two tables, as the report has them (E3a intervals, E3b rates): one would not fit a terminal.
    t = Table(title="E3a / Fig. 8: shortest interval with 100 % success, searched down to the device's back-to-back "
                    "limit")  # fmt: skip
    for c in ("driver", "size", "device", "device back to back", "interval", "achieved", "limited by",
              "handler / pkt"):  # fmt: skip
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(_text(r.get("driver")), _fixed(r.get("size"), ".0f", " B"), _device_text(r),
                  _ns(r.get("device_floor_ns")), _ns(r.get("min_full_success_interval_ns")),
                  _ns(r.get("achieved_interval_ns")), _text(r.get("limited_by")),
                  _ns(r.get("handler_ns_per_packet")))  # fmt: skip
    console.print(t)
    t = Table(title="E3b / Table 2: throughput at the shortest 100 % interval (the paper's Mpps derived from its Gbps)")
    for c in ("driver", "size", "device", "throughput", "highest 100 % run", "paper"):
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(_text(r.get("driver")), _fixed(r.get("size"), ".0f", " B"), _device_text(r),
                  _rate(r.get("throughput_gbps"), r.get("throughput_mpps")),
                  _rate(r.get("max_full_success_gbps"), r.get("max_full_success_mpps")),
                  _paper_rate(r.get("paper_gbps"), r.get("size")))  # fmt: skip
    console.print(t)
    for r in rows or []:
        floor, shortest = r.get("device_floor_ns"), r.get("min_full_success_interval_ns")
        if r.get("limited_by") == "device" and floor is not None and shortest is not None and shortest <= floor:
            console.print(f"{_text(r.get('driver'))} {_fixed(r.get('size'), '.0f', ' B')} {_device_text(r)}: took "
                          f"everything even at the device's back-to-back limit ({_ns(r.get('device_floor_ns'))}): the "
                          "receiver outran the device", highlight=False, soft_wrap=True)  # fmt: skip


def show_baseline(b: dict[str, Any] | None) -> None:
    if _nothing("kernel baseline", b):
        return
    assert b is not None
    if "skipped" in b:
        console.print(f"kernel baseline skipped: {b['skipped']}")
        return
    # No interval that took every datagram means no rate to give; the note says what limited it.
    console.print(
        f"kernel UDP over veth, {_text(b.get('size'))} B: {_fixed(b.get('gbps'), '.2f', ' Gbps')}, "
        f"{_fixed(None if b.get('pps') is None else float(b['pps']) / 1e6, '.3f', ' Mpps')}, "
        f"{_fixed(b.get('pps'), '.0f', ' packets/s')} (shortest 100 % interval "
        f"{_ns(b.get('min_full_success_interval_ns'))}); {b.get('note') or ''}"
    )


def show_irq(rows: list[dict[str, Any]] | None) -> None:
    if _nothing("irq lines", rows):
        return
    t = Table(title="interrupt latency per line (raised → handler entered)")
    for c in ("line", "busy poll", "driver", "min", "p50", "p99", "max", "interrupts"):
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(_text(r.get("line")), _ns(r.get("busy_poll_ns")) if r.get("busy_poll_ns") else "-",
                  _text(r.get("driver")), _ns(r.get("min")), _ns(r.get("p50")), _ns(r.get("p99")), _ns(r.get("max")),
                  _text(r.get("interrupts")))  # fmt: skip
    console.print(t)
    for note in sorted({str(r["note"]) for r in rows or [] if r.get("note")}):
        console.print(f"eventfd, signal: {note}")


def show_moderation(rows: list[dict[str, Any]] | None) -> None:
    if _nothing("moderation", rows):
        return
    t = Table(title="interrupt moderation: interrupts raised against packets")
    for c in ("mode", "driver", "packets", "received", "interrupts", "handler runs", "packets / interrupt"):
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(_text(r.get("mode")), _text(r.get("driver")), _text(r.get("packets")), _text(r.get("received")),
                  _text(r.get("interrupts")), _text(r.get("handler_runs")),
                  _fixed(r.get("packets_per_interrupt"), ".1f"))  # fmt: skip
    console.print(t)


def show_transmit(rows: list[dict[str, Any]] | None) -> None:
    if _nothing("transmit", rows):
        return
    t = Table(title="transmit beside receive (e1000): medians of interleaved rounds")
    for c in ("size", "driver", "transmit", "receive (back to back)", "transmit / memcpy", "receive / memcpy",
              "intact"):  # fmt: skip
        t.add_column(c, justify="right")
    for r in rows or []:
        t.add_row(f"{r['size']} B", _text(r.get("driver")), _rate(r.get("transmit_gbps"), r.get("transmit_mpps")),
                  _rate(r.get("receive_gbps"), r.get("receive_mpps")),
                  _fixed(r.get("transmit_over_memcpy"), ".2f", "×"),
                  _fixed(r.get("receive_over_memcpy"), ".2f", "×"), "yes" if r.get("all_intact") else "NO")  # fmt: skip
    console.print(t)


# -- the steps --------------------------------------------------------------------------------
def step_send_time(
    sizes: list[int], repeat: int, rounds: int, devices: tuple[str, ...] = (config.DEFAULT_DEVICE,)
) -> list[dict[str, Any]]:
    with _progress("send time", len(sizes) * rounds) as tick:
        rows = ev.send_time(sizes, repeat, rounds, progress=tick, devices=devices)
    show_send_time(rows)
    return rows


def step_precision(
    interval_ns: int, count: int, out: Path | None, driver: str, irq: str, quick: bool = False,
    devices: tuple[str, ...] = (config.DEFAULT_DEVICE,),
) -> dict[str, Any]:  # fmt: skip
    with _progress("precision", 2 + 2 * len(devices)) as tick:
        p = ev.precision(interval_ns, count, driver=driver, irq=irq, out=out, progress=tick,
                         long_count=2000 if quick else ev.LONG_PRECISION_COUNT,
                         calibration_ns=300_000_000 if quick else ev.CALIBRATION_NS, devices=devices)  # fmt: skip
    show_precision(p)
    return p


def step_sweep(
    sizes: list[int], drivers: list[str], count: int, intervals: list[int] | None, irq: str, fine_steps: int,
    runs: int = ev.RUNS, devices: tuple[str, ...] = (config.DEFAULT_DEVICE,),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    # each search: the device's back-to-back limit first, then the grid (its length an estimate: the limit sets it)
    per_search = 1 + (len(intervals) if intervals else len(coarse_grid(ev.SWEEP_LO_NS, ev.SWEEP_HI_NS)) + fine_steps)
    with _progress("sweep", per_search * len(sizes) * len(drivers) * len(devices)) as tick:
        rows, curves = ev.sweep(sizes, drivers, count=count, intervals=intervals, irq=irq, fine_steps=fine_steps,
                                runs=runs, progress=tick, devices=devices)  # fmt: skip
    show_sweep(rows)
    return rows, curves


def step_baseline(count: int, intervals: list[int] | None) -> dict[str, Any]:
    total = len(intervals) if intervals else len(coarse_grid(ev.SWEEP_LO_NS, ev.SWEEP_HI_NS)) + 6
    with _progress("kernel baseline", total) as tick:
        b = measure_baseline(1500, count, intervals=intervals, progress=lambda i, p: tick(f"{p.interval_ns} ns"))
    show_baseline(b)
    return b


def step_irq(lines: list[str], drivers: list[str], count: int) -> list[dict[str, Any]]:
    with _progress("irq lines", len(ev.irq_variants(lines)) * len(drivers)) as tick:
        rows = ev.irq_lines(lines, drivers, count=count, progress=tick)
    show_irq(rows)
    return rows


def step_transmit(sizes: list[int], drivers: list[str], count: int, rounds: int) -> list[dict[str, Any]]:
    with _progress("transmit", len(sizes) * len(drivers) * rounds) as tick:
        rows = ev.transmit(sizes, drivers, count=count, rounds=rounds, progress=tick)
    show_transmit(rows)
    return rows


def step_moderation(count: int) -> list[dict[str, Any]]:
    with _progress("moderation", 4) as tick:
        rows = ev.moderation(count=count, progress=tick)
    show_moderation(rows)
    return rows


# -- the commands -----------------------------------------------------------------------------
out_option = click.option("--out", default=None, metavar="DIR", help="Write DIR/results.json (and figures) here.")
quick_option = click.option("--quick", is_flag=True, help="A reduced run: one size, small counts.")


class _OnTheCores(click.Command):
    """A bench step: it holds cores 0 and 1 for its whole length, claimed once its options have parsed (a
    usage error is said as such, even while another run holds the cores); bench --wait waits for them."""

    def invoke(self, ctx: click.Context) -> Any:
        from .. import cores

        wait = bool(ctx.parent is not None and ctx.parent.params.get("wait_for_cores"))
        with cores.claim({config.DEFAULT_DEVICE_CORE, config.DEFAULT_DRIVER_CORE}, wait=wait):
            return super().invoke(ctx)


@click.group("bench")
@click.option("--wait", "wait_for_cores", is_flag=True, help="Wait for the cores if another run holds them.")
@click.pass_context
def bench(ctx: click.Context, wait_for_cores: bool) -> None:
    """The paper's evaluations: send time (E1), precision (E2), sweep (E3), the kernel baseline, all.

    Each holds cores 0 and 1 for its whole length (another run there: exit 2, or --wait). Exit
    status 1 when any run failed its verdict (the driver failed, or frames were lost, duplicated,
    reordered or corrupted -- device drops alone never fail a run: the sweep measures them)."""
    if ctx.invoked_subcommand is not None:
        ctx.call_on_close(_verdicts_say_so)


bench.command_class = _OnTheCores


def _verdicts_say_so() -> None:
    failed = ev.failed_verdicts
    if failed:
        click.echo(f"pseudonic bench: {len(failed)} run(s) failed their verdict; the first: {failed[0]}", err=True)
        failed.clear()
        raise SystemExit(1)


@bench.command("send-time")
@click.option("--sizes", default=DEFAULT_SIZES, show_default=True, help=SIZES_HELP)
@click.option("--repeat", default=1000, show_default=True, type=int, help="Sends per round and size.")
@click.option("--rounds", default=5, show_default=True, type=int, help="Interleaved rounds (medians are reported).")
@device_option
@quick_option
@out_option
def send_time_cmd(sizes: str, repeat: int, rounds: int, device: str, quick: bool, out: str | None) -> None:
    """E1 / Table 1: paced and back-to-back send time beside a hot memcpy of the same size; with both
    device models, their runs interleaved and virtio-net's set against e1000's."""
    started, where = time.monotonic(), _out(out)
    size_list = [QUICK_SIZE] if quick else _sizes(sizes)
    if quick:
        repeat, rounds = 200, 2
    if not 10 <= repeat <= 100_000 or not 1 <= rounds <= 100:
        raise ConfigError("--repeat must be 10..100000 and --rounds 1..100")
    devices = tuple(_devices(device))
    rows = step_send_time(size_list, repeat, rounds, devices)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "devices": list(devices),
                   "send_time": rows})  # fmt: skip


@bench.command("precision")
@click.option("--interval", default="38us", show_default=True, help="Send interval.")
@click.option("--count", default=1000, show_default=True, type=int, help="Packets.")
@click.option("--driver", default="python", show_default=True, help="Driver under test.")
@click.option("--irq", default="spin", show_default=True, type=click.Choice(LINES), help="Interrupt line.")
@device_option
@quick_option
@out_option
def precision_cmd(interval: str, count: int, driver: str, irq: str, device: str, quick: bool, out: str | None) -> None:
    """E2 / Fig. 7: how precise the intervals between handler entries are, as a deviation histogram."""
    started, where = time.monotonic(), _out(out)
    if quick:
        count = 200
    devices = tuple(_devices(device))
    for d in devices:
        config.make_config(irq=irq, driver=driver, device=d)
    plan = Plan.periodic(interval, count, 1500)
    plan.check(config.DEFAULT_BUFFER_SIZE)
    p = step_precision(plan.origin["interval_ns"], len(plan), where, driver, irq, quick, devices)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "devices": list(devices),
                   "precision": p})  # fmt: skip


@bench.command("sweep")
@click.option("--sizes", default=DEFAULT_SIZES, show_default=True, help=SIZES_HELP)
@click.option("--count", default=5000, show_default=True, type=int, help="Packets per run (the paper: 5000).")
@click.option("--intervals", default="auto", show_default=True, help="auto (search), or a comma-separated list.")
@click.option("--driver", "drivers", default="python,c", show_default=True, help="Drivers, comma-separated.")
@click.option("--irq", default="spin", show_default=True, type=click.Choice(LINES), help="Interrupt line.")
@click.option("--runs", default=ev.RUNS, show_default=True, type=int, help="Runs per interval; the median counts.")
@device_option
@quick_option
@out_option
def sweep_cmd(
    sizes: str, count: int, intervals: str, drivers: str, irq: str, runs: int, device: str, quick: bool,
    out: str | None,
) -> None:  # fmt: skip
    """E3a / Fig. 8 and E3b / Table 2: success rate against send interval; the shortest 100 % interval."""
    started, where = time.monotonic(), _out(out)
    size_list, driver_list = _sizes(sizes), _names(drivers, None, "driver")
    if quick:
        # the default sizes' quick run is the paper's 1500 B; sizes given are the user's: the first of them
        size_list, count = [QUICK_SIZE] if sizes == DEFAULT_SIZES else size_list[:1], 500
    _check_count(count)
    if not 1 <= runs <= 15:
        raise ConfigError(f"--runs {runs} is out of range: give 1..15")
    from ..loading import probe

    for d in driver_list:
        probe(d)  # in a child process: a driver that cannot load is a usage error before any run
    devices = tuple(_devices(device))
    rows, curves = step_sweep(size_list, driver_list, count, _intervals(intervals), irq, 2 if quick else 6,
                              1 if quick else runs, devices)  # fmt: skip
    results: dict[str, Any] = {"meta": _meta(_command_line(), started), "machine": machine_info(),
                               "devices": list(devices), "sweep": rows, "sweep_curves": curves}  # fmt: skip
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _evaluate(key: str, step: Callable[[], Any]) -> Any:
    """What one evaluation of ``bench all`` returned, or the record of why it gave nothing.

    An exception (a bug, a run that broke) becomes ``{"failed": "Type: message", "traceback": ...}``
    and one line on stderr, so that the evaluations after it still run and the report can say what
    happened; a usage error is the user's to fix and would hit every evaluation, so it propagates, as
    do Ctrl-C and SIGTERM (not Exceptions). Nothing returned becomes ``{"no_result": reason}``.
    """
    what = report.EVALUATIONS.get(key, key)
    try:
        value = step()
    except (ConfigError, click.UsageError):
        raise
    except Exception as exc:
        # a bare `assert` or `raise X()` has no message: say so rather than end on a colon
        reason = f"{type(exc).__name__}: {str(exc) or '(no message)'}"
        click.echo(f"pseudonic: bench all: {what} FAILED: {_one_line(reason)}", err=True)
        return {"failed": reason, "traceback": traceback.format_exc()}
    if value is None or (isinstance(value, list | tuple | dict | str) and not value):
        why = f"it returned {'nothing (None)' if value is None else 'an empty ' + type(value).__name__}"
        click.echo(f"pseudonic: bench all: {what}: no result: {why}", err=True)
        return {"no_result": why}
    return value


def _measured(section: Any) -> bool:
    return bool(section) and report.failure(section) is None and report.no_result(section) is None


@bench.command("timelines")
@click.option("--driver", default="c", show_default=True, help="Driver under test.")
@click.option("--count", default=2000, show_default=True, type=int, help="Packets per run.")
@click.option("--rounds", default=5, show_default=True, type=int, help="Interleaved rounds (medians are reported).")
@quick_option
@out_option
def timelines_cmd(driver: str, count: int, rounds: int, quick: bool, out: str | None) -> None:
    """Issue 9's targets: a capture at its own timing beside a fixed interval; replay --timing measured."""
    from . import timelines

    started, where = time.monotonic(), _out(out)
    if quick:
        count, rounds = 300, 2
    _check_count(count)
    if not 1 <= rounds <= 50:
        raise ConfigError(f"--rounds {rounds} is out of range: give 1..50")
    with _progress("timelines", 4 * rounds) as tick:
        cap = timelines.capture_timing(driver=driver, count=count, rounds=rounds, progress=tick)
        rep = timelines.measured_replay(driver=driver, count=count, replays=rounds, progress=tick)
    t = Table(title=f"a capture's own timing vs a fixed interval (mean gap {_ns(cap['mean_gap_ns'])}, {count} "
                    f"packets, driver {driver}; |achieved gap - planned gap|, median of {rounds} rounds)")  # fmt: skip
    for c in ("plan", "device p50", "device p99", "handler entries p50", "handler entries p99"):
        t.add_column(c, justify="right")
    for label, m in cap["medians"].items():
        t.add_row(label, _ns(m["device_p50"]), _ns(m["device_p99"]), _ns(m["driver_p50"]), _ns(m["driver_p99"]))
    console.print(t)
    t = Table(title=f"replay: |replay send - recorded send| ({count} Poisson packets, median of {rounds} replays)")
    for c in ("timing", "p50", "p99", "max"):
        t.add_column(c, justify="right")
    for timing, m in rep["medians"].items():
        t.add_row(timing, _ns(m["p50"]), _ns(m["p99"]), _ns(m["max"]))
    console.print(t)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "capture_timing": cap,
                   "measured_replay": rep})  # fmt: skip


@bench.command("transmit")
@click.option("--sizes", default="64,1500,9000", show_default=True, help=SIZES_HELP)
@click.option("--drivers", default=",".join(DRIVERS), show_default=True, help="Drivers, comma-separated.")
@click.option("--count", default=ev.TX_COUNT, show_default=True, type=int, help="Frames transmitted per run.")
@click.option("--rounds", default=5, show_default=True, type=int, help="Interleaved rounds (medians are reported).")
@quick_option
@out_option
def transmit_cmd(sizes: str, drivers: str, count: int, rounds: int, quick: bool, out: str | None) -> None:
    """e1000's transmit ring: the rate each driver sends at (every frame checked against the one handed),
    beside the rate it receives a back-to-back burst at and a hot memcpy of the same size, interleaved."""
    started, where = time.monotonic(), _out(out)
    size_list = [1500] if quick else _sizes(sizes)
    if max(size_list) > MAX_TX_FRAME:
        raise ConfigError(f"--sizes: the transmitter takes frames of at most {MAX_TX_FRAME} B")
    if quick:
        count, rounds = 2000, 2
    if not 100 <= count <= config.MAX_TRANSMIT or not 1 <= rounds <= 100:
        raise ConfigError(f"--count must be 100..{config.MAX_TRANSMIT} and --rounds 1..100")
    rows = step_transmit(size_list, _names(drivers, DRIVERS, "driver"), count, rounds)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "transmit": rows,
                   "targets": ev.transmit_targets(rows)})  # fmt: skip


def show_small_packets(section: dict[str, Any] | None) -> None:
    if _nothing("small packets", section):
        return
    assert section is not None
    t = Table(title=f"{section['size_on_wire']} B on the wire, back to back: medians of {section['rounds']} "
                    "interleaved rounds")  # fmt: skip
    for c in ("subject", "Mpps taken", "over the two-core ring", "delivered (worst round)", "the driver's pace"):
        t.add_column(c, justify="left" if c == "subject" else "right")
    for r in section["rows"]:
        t.add_row(r["subject"], f"{r['mpps']:.2f}", _fixed(r.get("over_reference"), ".2f", "×"),
                  f"{100 * r['delivered']:.2f} %", _fixed(r.get("driver_mpps"), ".2f", " Mpps"))  # fmt: skip
    console.print(t)
    line = section["line_rate"]
    console.print(f"paced at {line['target_mpps']} Mpps ({line['interval_ns']} ns), C driver: "
                  f"{100 * line['delivered']:.2f} % delivered ({line['received']:,} of {line['sent']:,}); "
                  f"{line['received_mpps']:.2f} Mpps taken, the device sending {line['sent_mpps'] or 0:.2f} Mpps "
                  "over the time of the sends", highlight=False)  # fmt: skip


def step_small_packets(count: int, rounds: int, line_rate_ns: int) -> dict[str, Any]:
    with _progress("small packets", rounds * (1 + len(ev.SMALL_SUBJECTS)) + 1) as tick:
        section = ev.small_packets(count, rounds, line_rate_ns, progress=tick)
    show_small_packets(section)
    return section


@bench.command("mpps")
@click.option("--count", default=200_000, show_default=True, type=int, help="Frames back to back per run.")
@click.option("--rounds", default=5, show_default=True, type=int, help="Interleaved rounds (medians are reported).")
@click.option(
    "--line-rate-for",
    "line_rate_for",
    default="2s",
    show_default=True,
    metavar="T",
    help="How long the run paced at 14.88 Mpps lasts (issue 14 asks for 10s).",
)
@quick_option
@out_option
def mpps_cmd(count: int, rounds: int, line_rate_for: str, quick: bool, out: str | None) -> None:
    """Small packets at line rate: 64 B frames back to back into the reference drivers (C with NAPI, C with an
    interrupt per packet, Python with bursts) beside a bare two-core ring measured in the same rounds, and a
    run paced at 10 GbE's 14.88 Mpps."""
    started, where = time.monotonic(), _out(out)
    if quick:
        count, rounds, line_rate_for = 20_000, 2, "200ms"
    line_ns = parse_interval(line_rate_for, "--line-rate-for")
    for option, value, ok, accepted in (
        ("--count", count, 10_000 <= count <= 1_000_000, "10000..1000000 frames"),
        ("--rounds", rounds, 1 <= rounds <= 100, "1..100"),
        ("--line-rate-for", line_rate_for, 1_000_000 <= line_ns <= 60 * 10**9, "1ms..60s"),
    ):
        if not ok:
            raise ConfigError(f"{option} {value} is out of range: give {accepted}")
    section = step_small_packets(count, rounds, line_ns)
    _write(where, {"meta": _meta(_command_line(), started), "machine": machine_info(), "small_packets": section})


@bench.command("all")
@click.option("--out", default="results", show_default=True, metavar="DIR", help="Where results, figures, report go.")
@device_option
@quick_option
def all_cmd(out: str, device: str, quick: bool) -> None:
    """Every evaluation; writes DIR/results.json, DIR/report.md and the figures. E1-E3 measure both
    device models side by side (--device to name one); their targets are in the report.

    An evaluation that fails (raises) or gives no result does not stop the others: results.json
    records it as {"failed": "Type: message", "traceback": ...} or {"no_result": reason}, stderr
    gets one line for it, and report.md says which and why. Exit status: 0 when every evaluation
    gave its result (missed targets are in the report, not the status); 1 when any evaluation or
    figure failed or gave no result; 2 on a usage error.
    """
    started, where = time.monotonic(), _out(out)
    assert where is not None
    sizes = [QUICK_SIZE] if quick else _sizes(DEFAULT_SIZES)
    devices = tuple(_devices(device))
    results: dict[str, Any] = {"devices": list(devices)}
    curves: list[dict[str, Any]] = []

    def sweep_rows() -> list[dict[str, Any]] | None:
        # the sweep's rows are its result; its curves only feed the figure
        swept = step_sweep(sizes, list(DRIVERS), 500 if quick else 5000, None, "spin", 2 if quick else 6,
                           1 if quick else ev.RUNS, devices)  # fmt: skip
        if not swept:
            return None
        rows, found = swept
        curves.extend(found or [])
        return rows

    steps: dict[str, Callable[[], Any]] = {
        "send_time": lambda: step_send_time(sizes, 200 if quick else 1000, 2 if quick else 5, devices),
        "precision": lambda: step_precision(38_000, 200 if quick else 1000, where, "python", "spin", quick, devices),
        "sweep": sweep_rows,
        "baseline": lambda: step_baseline(500 if quick else 5000, [20_000, 5_000] if quick else None),
        "irq_lines": lambda: step_irq(list(LINES), list(DRIVERS), 200 if quick else 2000),
        "moderation": lambda: step_moderation(500 if quick else 5000),
        "transmit": lambda: step_transmit(
            [1500] if quick else [64, 1500, 9000], list(DRIVERS), 2000 if quick else ev.TX_COUNT, 2 if quick else 5
        ),
        "small_packets": lambda: step_small_packets(
            20_000 if quick else 200_000, 2 if quick else 5, 200_000_000 if quick else 10_000_000_000
        ),
    }
    with StealMeter() as steal:
        for key, step in steps.items():
            results[key] = _evaluate(key, step)
    if _measured(results["sweep"]):
        results["sweep_curves"] = curves
        # a baseline that failed or was skipped has no points: the figure is drawn without its curve
        results["sweep_figure"] = _evaluate("sweep_figure", lambda: ev.draw_sweep(curves, results["baseline"], where))
    if _measured(results["irq_lines"]):
        results["irq_figure"] = _evaluate("irq_figure", lambda: ev.draw_irq(results["irq_lines"], where))
    results["meta"] = _meta(_command_line(), started)
    results["machine"] = {**machine_info(), "steal_pct": steal.result()["steal_pct"]}
    results["targets"] = _evaluate("targets", lambda: ev.targets(results, results["meta"]["duration_s"]))
    _write(where, results)
    written = report.write_report(results, where)
    console.print(f"wrote {written}")
    missed = [t["name"] for t in _rows(results["targets"]) if not t.get("met")]
    if missed:
        console.print(f"[bold]targets missed[/]: {'; '.join(missed)}")
    broken = [report.EVALUATIONS.get(k, k) for k, v in results.items() if report.failure(v) or report.no_result(v)]
    if broken:
        console.print(f"[bold red]without a result[/]: {'; '.join(broken)} (see {written})")
        sys.exit(1)


def _rows(section: Any) -> list[dict[str, Any]]:
    return [r for r in section if isinstance(r, dict)] if isinstance(section, list) else []
