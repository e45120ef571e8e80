"""The ``pseudonic`` command: a thin layer over :func:`pseudonic.run`.

Usage errors print one line on stderr and exit 2; a run whose driver failed
prints its summary and exits 1; Ctrl-C stops both nodes, removes the
segment and exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import config
from .errors import ConfigError, PseudonicError
from .result import RunResult
from .units import format_ns

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _check_writable(path: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--json {path}: is a directory; give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"--json {path}: directory {parent} does not exist")
    if not os.access(p if p.exists() else parent, os.W_OK):
        raise ConfigError(f"--json {path}: not writable")


def _ns(v: Any) -> str:
    return "-" if v is None else format_ns(float(v))


def _causes(c: dict[str, int] | None) -> str:
    return (
        "-" if not c else " / ".join(str(c[k]) for k in ("device_late", "driver_busy", "driver_stall", "unexplained"))
    )


def render(result: RunResult, console: Console) -> None:
    cfg = result.config
    t = Table(
        title=(
            f"pseudonic run: {cfg['count']} × {cfg['size']} B "
            f"{'on a custom schedule' if cfg['interval_ns'] is None else 'every ' + format_ns(cfg['interval_ns'])}, "
            f"driver {cfg['driver']}, irq {cfg['irq']}, cores {cfg['device_core']}→{cfg['driver_core']}"
        ),
        show_header=True,
        header_style="bold",
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    dev, sent_t = result.interval_deviation_ns, result.send_time_ns
    within = dev.get("within_6_25pct")
    rows = [
        ("sent", f"{result.sent}", "schedule entries the device handled"),
        ("received", f"{result.received}", "stored in a socket buffer by the driver and verified"
         if result.verified else "delivered (not verified)"),
        ("success rate", f"{100 * result.success_rate:.2f} %", "received / sent"),
        ("missed (MPC)", f"{result.missed}", "dropped by the device: no free descriptor"),
        ("lost / duplicated / reordered / corrupted",
         f"{result.lost} / {result.duplicated} / {result.reordered} / {result.corrupted}", ""),
        ("descriptor errors", f"{result.rx_errors}", "counted and dropped by the driver"),
        ("send time p50 / mean / max", f"{_ns(sent_t['p50'])} / {_ns(sent_t['mean'])} / {_ns(sent_t['max'])}",
         "device: due packet handled → line raised"),
        ("interval deviation p50 / p99 / max", f"{_ns(dev['p50'])} / {_ns(dev['p99'])} / {_ns(dev['max'])}",
         "between handler entries on the driver node"),
        ("within ±6.25 %", "-" if within is None else f"{100 * within:.2f} %",
         f"{dev.get('outliers')} outside; paper: 99.6 % exact, 100 % within"),
        ("outside the band, by cause", _causes(dev.get("outliers_by_cause")),
         "device late / driver busy / driver stall / unexplained"),
        ("irq latency p50 / p99", f"{_ns(result.irq_latency_ns['p50'])} / {_ns(result.irq_latency_ns['p99'])}",
         "line raised → handler entered"),
        ("interrupts / handler runs", f"{result.interrupts} / {result.handler_runs}",
         "fewer runs than interrupts: raises merged while the driver was busy"),
        ("throughput", f"{result.throughput_gbps:.3f} Gbps", "received bytes / time of the sends"),
        ("machine stalls > 10 µs", f"device {result.stalls['device']['over_10us']}, "
         f"driver {result.stalls['driver']['over_10us']}",
         f"longest {format_ns(max(result.stalls['device']['max_ns'], result.stalls['driver']['max_ns']))}"),
    ]  # fmt: skip
    for row in rows:
        t.add_row(*row)
    console.print(t)
    if result.error:
        e = result.error
        where = f" at {e['where']}" if "where" in e else ""
        what = f"{e['exception']}: {e['message']}" if "exception" in e else e.get("message", "")
        last = f", last packet {e['last_packet']}" if e.get("last_packet") is not None else ""
        console.print(
            f"[bold red]run stopped[/]: {e['kind']} in {e.get('stage', '?')}{where} "
            f"(handler run {e.get('handler_run', '?')}{last}): {what}"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pseudonic")
def cli() -> None:
    """A pseudo-NIC: a device node writes packets into an e1000 receive ring in
    shared memory at a chosen interval and raises interrupts to the driver under
    test on another core."""


@cli.command("run")
@click.option(
    "--interval", default=config.DEFAULT_INTERVAL, show_default=True, help="Time between packets: ns, us or ms."
)
@click.option("--count", default=config.DEFAULT_COUNT, show_default=True, type=int, help="Packets to send.")
@click.option(
    "--size", default=str(config.DEFAULT_SIZE), show_default=True, help="Frame size: B, KB (1000) or KiB (1024)."
)
@click.option("--driver", default=config.DEFAULT_DRIVER, show_default=True,
              help="python or c (the reference drivers), module:Class, path/to/driver.py[:Class], "
                   "or path/to/libdriver.so (a C driver, see pseudonic include-dir).")  # fmt: skip
@click.option(
    "--ring-size",
    default=config.DEFAULT_RING_SIZE,
    show_default=True,
    type=int,
    help="Receive descriptors (power of two).",
)
@click.option(
    "--buffer-size",
    default=str(config.DEFAULT_BUFFER_SIZE),
    show_default=True,
    help="Receive buffer size (e1000 BSIZE).",
)
@click.option(
    "--device-core", default=config.DEFAULT_DEVICE_CORE, show_default=True, type=int, help="Core of the device node."
)
@click.option(
    "--driver-core", default=config.DEFAULT_DRIVER_CORE, show_default=True, type=int, help="Core of the driver node."
)
@click.option(
    "--irq",
    default=config.DEFAULT_IRQ,
    show_default=True,
    help="Interrupt line: spin (a doorbell the driver core watches), eventfd (the driver node blocks on it, "
    "as VFIO delivers MSI-X) or signal (a real-time signal to the driver node's thread).",
)
@click.option(
    "--itr", default=str(config.DEFAULT_ITR), show_default=True,
    help="Interrupt throttling: minimum time between interrupts (e1000 ITR, 256 ns steps; 0 = off).",
)  # fmt: skip
@click.option(
    "--napi", "napi_budget", default=config.DEFAULT_NAPI_BUDGET, show_default=True, type=int,
    help="NAPI-style polling with this budget (0 = off; Linux uses 64). The reference drivers honour it.",
)  # fmt: skip
@click.option("--upper", default=config.DEFAULT_UPPER, show_default=True, help="Upper layer: verify or null.")
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the result as JSON here.")
def run_cmd(
    interval: str, count: int, size: str, driver: str, ring_size: int, buffer_size: str, device_core: int,
    driver_core: int, irq: str, itr: str, napi_budget: int, upper: str, json_path: str | None,
) -> None:  # fmt: skip
    """Send COUNT packets of SIZE bytes every INTERVAL to a driver and report
    what it took, how precise the interrupt intervals were, and the throughput."""
    from .controller import run

    if json_path is not None:
        _check_writable(json_path)
    result = run(
        interval, count, size, driver=driver, ring_size=ring_size, buffer_size=buffer_size,
        device_core=device_core, driver_core=driver_core, irq=irq, itr=itr, napi_budget=napi_budget, upper=upper,
    )  # fmt: skip
    render(result, Console())
    if json_path is not None:
        result.write_json(json_path)
    if not result.ok:
        sys.exit(result.exit_code)


@cli.command("include-dir")
def include_dir_cmd() -> None:
    """Print the directory of pseudonic.h, for building a C driver with cc -I."""
    from .cdriver import include_dir

    click.echo(str(include_dir()))


@cli.command("check-driver")
@click.argument("driver")
@click.option("--irq", default=config.DEFAULT_IRQ, show_default=True, help="Interrupt line to check on.")
def check_driver_cmd(driver: str, irq: str) -> None:
    """Run the conformance suite every driver must pass; print pass/fail per case (exit 1 if any fails)."""
    from .conformance import check_driver
    from .driver import load_driver

    config.make_config(irq=irq, driver=driver)
    load_driver(driver)  # a driver that cannot load is a usage error, before any case runs
    console = Console()
    t = Table(title=f"pseudonic check-driver {driver} (irq {irq})")
    for col in ("case", "result", "detail", "time"):
        t.add_column(col)
    results = check_driver(driver, irq=irq)
    for c in results:
        t.add_row(c.name, "[green]pass[/]" if c.passed else "[bold red]FAIL[/]", c.detail, f"{c.seconds:.1f} s")
    console.print(t)
    failed = [c.name for c in results if not c.passed]
    console.print(
        f"{len(results) - len(failed)}/{len(results)} cases passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if failed:
        sys.exit(1)


def _add_bench() -> None:
    from .bench.command import bench

    cli.add_command(bench)


_add_bench()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr for every usage error, exit 2."""
    # SIGTERM stops a run as Ctrl-C does; the caller's own handler is back once we return
    # (processes forked later, by this caller or by libraries, must not inherit ours).
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="pseudonic", standalone_mode=False)
    except (click.UsageError, ConfigError) as exc:
        msg = exc.format_message() if isinstance(exc, click.UsageError) else str(exc)
        click.echo(f"pseudonic: error: {msg}", err=True)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("pseudonic: interrupted; its nodes are stopped and its segments and namespaces removed", err=True)
        return EXIT_INTERRUPTED
    except PseudonicError as exc:
        click.echo(f"pseudonic: error: {exc}", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
