"""``pseudonic hunt``: the command over :func:`pseudonic.hunt.hunt`.

Exit status: 1 a failure was found (the driver has a bug: the record shows it); 0 none in the budget
(not a proof that there is none); 2 a usage error, one line (``ConfigError``, printed by the CLI);
128+N stopped by signal N (``KeyboardInterrupt`` propagates to the CLI, which says so).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from pathlib import Path
from typing import ClassVar

import click
from rich.console import Console
from rich.live import Live

from . import config
from .errors import ConfigError
from .hunt import (
    CONFIRM_RUNS,
    DEFAULT_REPLAYS,
    DEFAULT_RUNS,
    MAX_PACKETS,
    SHRINK_BUDGET,
    HuntProgress,
    HuntResult,
    check_args,
    default_record,
    fresh_seed,
    hunt,
)
from .units import parse_interval

#: --time accepts minutes and hours besides what parse_interval reads (ns .. s).
_LONG_UNITS = {"m": 60, "min": 60, "h": 3600}
_LONG = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(m|min|h)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``60s``, ``10m``, ``1.5h``, ``500ms`` -> seconds; ConfigError names the accepted forms."""
    m = _LONG.match(text)
    if m:
        seconds = float(m.group(1)) * _LONG_UNITS[m.group(2).lower()]
    else:
        try:
            seconds = parse_interval(text, "--time") / 1e9
        except ConfigError:
            raise ConfigError(
                f"--time {text!r} is not a duration: give a number and a unit of s, m (minutes) or h (e.g. 60s, 10m)"
            ) from None
    if not seconds > 0:
        raise ConfigError(f"--time {text!r} is out of range: give more than 0 (e.g. 60s, 10m)")
    return seconds


class LiveHunt(Live):
    """The lines a terminal shows while the hunt goes (rich, on stderr): stage, trial, what it is doing."""

    #: What each stage of :class:`~pseudonic.hunt.HuntProgress` reads as.
    STAGES: ClassVar[dict[str, str]] = {"trial": "hunting", "shrink": "shrinking", "replay": "replaying"}

    def __init__(self, console: Console) -> None:
        super().__init__("", console=console, transient=True, refresh_per_second=8)

    def __call__(self, p: HuntProgress) -> None:
        from rich.console import Group
        from rich.text import Text

        budget = f"/{p.runs}" if p.runs is not None else f" ({max((p.time_s or 0) - p.elapsed_s, 0):.0f} s left)"
        head = Text(f"{p.elapsed_s:6.1f} s  {self.STAGES.get(p.stage, p.stage):<9}  trial {p.trial}{budget}")
        if p.failing is not None:
            head.append(f"  trial {p.failing} failed", style="bold red")
        # One line each, cut to the terminal's width: a trial's parameters can be long.
        detail = Text(f"  {p.detail}", no_wrap=True, overflow="ellipsis", style="dim")
        self.update(Group(head, detail))


def report(r: HuntResult, console: Console) -> None:
    """What the hunt found: the failing trial's verdict, the shrink, the replay commands, the reproduction."""
    budget = f"{r.runs} runs" if r.runs is not None else f"{r.time_s:g} s"
    if not r.found:
        console.print(
            f"no failure in {r.trials} runs ({r.elapsed_s:.1f} s, budget {budget}, seed {r.seed}): "
            "not a proof that there is none; hunt longer or with other seeds",
            highlight=False,
            soft_wrap=True,
        )
        return
    assert r.failing is not None and r.first_failure is not None
    console.print(
        f"[bold red]trial {r.failing.index} failed[/] (after {r.trials} of {budget}, {r.elapsed_s:.1f} s): "
        f"{r.failing.describe()}",
        highlight=False,
        soft_wrap=True,
    )
    if r.first_failure.verdict is not None:
        console.print(f"verdict: {r.first_failure.verdict.line()}", highlight=False, soft_wrap=True)
    s = r.shrunk
    if s is not None:
        how = f"{s.entries_before} → {s.entries} entries in {s.runs} runs"
        console.print(f"shrunk: {how}" + (" (run budget spent)" if s.exhausted else ""), highlight=False)
        for step in s.steps:
            console.print(f"  {step}", highlight=False, soft_wrap=True)
        if s.dropped:
            console.print(
                f"  ({len(s.dropped)} later steps undone: the smaller runs did not fail in "
                f"{CONFIRM_RUNS - 1} of {CONFIRM_RUNS} fresh runs)",
                highlight=False,
            )
        if s.outcome.verdict is not None:
            console.print(f"shrunk verdict: {s.outcome.verdict.line()}", highlight=False, soft_wrap=True)
    if r.original_record is not None:
        console.print(f"first failure as found: {r.original_record}", highlight=False, soft_wrap=True)
    if r.record is not None:
        # Commands to copy are never wrapped.
        console.print(f"record: {r.record}", highlight=False, soft_wrap=True)
        console.print("reproduce it with:", highlight=False)
        for cmd in r.replay_commands():
            console.print(f"  {_quoted(cmd)}", highlight=False, soft_wrap=True)
    if r.replays:
        for timing, n in r.reproduced.items():
            console.print(
                f"replays ({timing} timing): the failure came back in {n} of {r.replays} ({100 * n / r.replays:.0f} %)",
                highlight=False,
            )
    if r.replays and max(r.reproduced.values()) * 2 < r.replays:
        console.print(
            "the failure seldom came back: the run that showed it had a timing this machine seldom gives; replay "
            "it more, or hunt on for another",
            highlight=False,
            soft_wrap=True,
        )
    device = f" --device {r.device}" if r.device != config.DEFAULT_DEVICE else ""
    console.print(
        f"hunt again with: pseudonic hunt --driver {shlex.quote(r.driver)}{device} --seed {r.seed}",
        highlight=False,
        soft_wrap=True,
    )


class _Watch:
    """Passes the hunt's progress to the live line, and keeps the last of it for a stopped hunt's note."""

    def __init__(self, live: LiveHunt | None) -> None:
        self.live = live
        self.last: HuntProgress | None = None

    def __call__(self, p: HuntProgress) -> None:
        self.last = p
        if self.live is not None:
            self.live(p)


def _quoted(cmd: str) -> str:
    head, _, rest = cmd.partition(" replay ")
    path, _, tail = rest.partition(" --")
    return f"{head} replay {shlex.quote(path)}" + (f" --{tail}" if tail else "")


@click.command("hunt")
@click.option("--driver", required=True, help="The driver to hunt races in (as for run: python, c, "
              "module:Class, path/to/driver.py[:Class], path/to/libdriver.so).")  # fmt: skip
@click.option("--device", type=click.Choice(config.DEVICES), default=config.DEFAULT_DEVICE, show_default=True,
              help="Device model every trial runs: e1000 (trials on its level line) or virtio-net (edge, its only "
                   "mode; no ITR, no error-bit faults).")  # fmt: skip
@click.option("--runs", type=int, default=None, metavar="N", help=f"Trials at most [default: {DEFAULT_RUNS}].")
@click.option("--time", "time_text", default=None, metavar="T", help="Hunt for this long instead (60s, 10m, 1h).")
@click.option("--seed", type=int, default=None, metavar="S",
              help="Seed of every trial [default: a fresh one, printed so that the hunt can be repeated].")  # fmt: skip
@click.option("--irq", default=None, metavar="LINE",
              help=f"Interrupt line: {', '.join(config.IRQ_LINES)} [default: drawn per trial].")  # fmt: skip
@click.option("--replays", type=int, default=DEFAULT_REPLAYS, show_default=True, metavar="K",
              help="Replays of the failure found, per timing (plan, measured).")  # fmt: skip
@click.option("--shrink-budget", type=int, default=SHRINK_BUDGET, show_default=True, metavar="N",
              help="Runs the shrinker may spend on the failure found (0: keep it as found).")  # fmt: skip
@click.option("--max-packets", type=int, default=MAX_PACKETS, show_default=True, metavar="N",
              help="Packets per trial at most: fewer make shorter runs.")  # fmt: skip
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Write the record file hunt-<seed>.pnic here.")
@click.option("--record", "record_path", default=None, metavar="PATH",
              help="Write the record file here [default: hunt-<seed>.pnic in the current directory].")  # fmt: skip
@click.option("--wait", "wait_for_cores", is_flag=True, help="Wait for the cores if another run holds them.")
@click.option("--quiet", "-q", is_flag=True, help="No live progress line.")
def hunt_cmd(
    driver: str, device: str, runs: int | None, time_text: str | None, seed: int | None, irq: str | None, replays: int,
    shrink_budget: int, max_packets: int, out_dir: str | None, record_path: str | None, wait_for_cores: bool,
    quiet: bool,
) -> None:  # fmt: skip
    """Run randomised plans meant to shake races out of a receive path: bursts that fill the ring,
    intervals jittered down to back to back, ring sizes, ITR and NAPI settings, spurious interrupts,
    mixed sizes. Stop at the first failing verdict, save it as a record file, shrink it while it
    still fails, print the pseudonic replay command that reproduces it, and replay it to say how
    often the failure comes back. Everything comes from the seed.

    Exit status: 1 a failure was found; 0 none in the budget (not a proof); 2 usage error;
    128+N stopped by signal N."""
    if out_dir is not None and record_path is not None:
        raise ConfigError("give --out or --record, not both")
    time_s = parse_duration(time_text) if time_text is not None else None
    if out_dir is not None and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir}: not a directory")
    record = record_path
    if record is None:
        # The seed names the default record file, so draw it here, once.
        seed = fresh_seed() if seed is None else seed
        record = str(default_record(seed, out_dir))
    # Everything checked before the first line, so that a usage error is one line.
    seed, path, runs, time_s = check_args(
        driver, runs=runs, time_s=time_s, seed=seed, irq=irq, replays=replays, record=record,
        max_packets=max_packets, shrink_budget=shrink_budget, device=device,
    )  # fmt: skip
    console = Console()
    err = Console(stderr=True)
    budget = f"{runs} runs" if runs is not None else f"{time_text}"
    # The seed first, so that even a hunt stopped at once can be repeated.
    err.print(
        f"pseudonic hunt: {device}, driver {driver}, seed {seed}, budget {budget}, irq {irq or 'drawn per trial'}",
        highlight=False,
        soft_wrap=True,
    )
    watch = _Watch(LiveHunt(err) if err.is_terminal and not quiet else None)
    try:
        with watch.live if watch.live is not None else contextlib.nullcontext():
            result = hunt(
                driver, runs=runs, time_s=time_s, seed=seed, irq=irq, replays=replays, record=path,
                shrink_budget=shrink_budget, max_packets=max_packets, wait_for_cores=wait_for_cores, progress=watch,
                device=device,
            )  # fmt: skip
    except KeyboardInterrupt:
        # The CLI prints the signal's line and exits 128+N; say first what the hunt had done.
        last = watch.last
        if last is not None:
            what = f"stopped in trial {last.trial}" if last.failing is None else f"trial {last.failing} failed"
            kept = f"; saved: {last.saved}" if last.saved is not None else ""
            err.print(f"pseudonic hunt: {what} ({last.stage}){kept}; seed {seed}", highlight=False, soft_wrap=True)
        raise
    report(result, console)
    if result.found:
        sys.exit(1)


__all__ = ["hunt_cmd", "parse_duration"]
