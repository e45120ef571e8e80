"""Issues 10 and 12's targets: every planted bug caught by check-driver in N runs of N, and no false positive.

e1000 (issue 10): each bug class of ``tests/drivers/planted.py`` -- in Python (the reference path with one step
changed) and, for all but one, in C (``drivers/e1000.c`` with the bug planted, built with warnings as errors).
virtio-net (issue 12, ``--device virtio-net``): each planted driver of ``tests/drivers/broken_virtio.py``, the
reference receive path with one ownership rule of the split virtqueue broken (VIRTIO 1.1 2.6).
Each goes through check-driver N times. A run catches the bug when every case stated for it (``BUGS``) fails and
its detail names the problem; the table also says how often the check failed at all. Then each reference driver
(python, c) goes through check-driver M times on each interrupt line: any case that fails there is a false
positive, printed with its detail.

    python3 benchmarks/planted_bugs.py [--device e1000|virtio-net] [--runs 10] [--fp-runs 100] [--lines ...]

Exit status 1 if a bug was caught fewer than N times or a reference failed any case.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pseudonic import config
from pseudonic.conformance import CASE_NAMES, VIRTIO_CASE_NAMES, CaseResult, check_driver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from drivers import broken_virtio
from drivers import planted as planted_e1000


@dataclass(frozen=True)
class Plant:
    """One planted driver: which bug, in which language, and how to tell it was caught."""

    label: str
    lang: str
    driver: str | type
    cases: tuple[str, ...]
    missed: Callable[[list[CaseResult]], list[str]]


def plants(device: str, cc: str | None, where: Path) -> list[Plant]:
    """The device's planted drivers (the C ones built into ``where``)."""
    if device == "virtio-net":
        return [
            Plant(f"({bug.letter}) {bug.name}", "python", bug.driver, tuple(bug.cases),
                  lambda results, bug=bug: broken_virtio.not_caught(bug, results))  # type: ignore[misc]
            for bug in broken_virtio.BUGS
        ]  # fmt: skip
    out: list[Plant] = []
    for bug in planted_e1000.BUGS:
        drivers: dict[str, str | type] = {"python": bug.python}
        if cc is not None and bug.number in planted_e1000.C_PLANTS:
            drivers["c"] = str(planted_e1000.build_c(bug, where / f"libplanted{bug.number}.so", cc))
        out += [
            Plant(f"{bug.number} {bug.name}", lang, driver, tuple(bug.cases),
                  lambda results, bug=bug: planted_e1000.not_caught(bug, results))  # type: ignore[misc]
            for lang, driver in drivers.items()
        ]  # fmt: skip
    return out


@dataclass
class Tally:
    """One planted driver's runs: how often its cases caught it, how often the check failed at all."""

    plant: Plant
    caught: int = 0
    failed: int = 0
    seconds: float = 0.0
    #: the bug's cases that did not catch it, and in how many runs
    missed_by: Counter[str] = field(default_factory=Counter)
    #: every case that failed, and in how many runs
    failing: Counter[str] = field(default_factory=Counter)
    #: per run that did not catch it: (run, case, what the case said)
    misses: list[tuple[int, str, str]] = field(default_factory=list)


def planted(runs: int, device: str, cc: str | None, where: Path, console: Console) -> list[Tally]:
    tallies: list[Tally] = []
    for plant in plants(device, cc, where):
        t = Tally(plant)
        start = time.perf_counter()
        for k in range(runs):
            results = check_driver(plant.driver, device=device, wait_for_cores=True)
            missed = plant.missed(results)
            t.misses += [
                (k + 1, r.name, ("passed: " if r.passed else "") + r.detail) for r in results if r.name in missed
            ]
            t.caught += not missed
            t.failed += any(not r.passed for r in results)
            t.missed_by.update(missed)
            t.failing.update(r.name for r in results if not r.passed)
        t.seconds = time.perf_counter() - start
        console.print(f"  bug {plant.label} ({plant.lang}): caught {t.caught}/{runs}", highlight=False)
        tallies.append(t)
    return tallies


@dataclass
class FalsePositive:
    driver: str
    line: str
    run: int
    case: str
    detail: str


def references(
    runs: int, device: str, lines: list[str], console: Console
) -> tuple[dict[tuple[str, str], float], list[FalsePositive]]:
    seconds: dict[tuple[str, str], float] = {}
    found: list[FalsePositive] = []
    for driver in ("python", "c"):
        for line in lines:
            start = time.perf_counter()
            for k in range(runs):
                for r in check_driver(driver, irq=line, device=device, wait_for_cores=True):
                    if not r.passed:
                        found.append(FalsePositive(driver, line, k + 1, r.name, r.detail))
            seconds[driver, line] = time.perf_counter() - start
            n = sum(1 for f in found if f.driver == driver and f.line == line)
            console.print(f"  {driver} on {line}: {n} failing cases in {runs} checks", highlight=False)
    return seconds, found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="check-driver runs per planted driver (default 10)")
    ap.add_argument("--fp-runs", type=int, default=100, help="check-driver runs per reference and line (default 100)")
    ap.add_argument("--lines", default=",".join(config.IRQ_LINES), help="interrupt lines for the references")
    ap.add_argument("--device", choices=config.DEVICES, default=config.DEFAULT_DEVICE, help="the device model")
    args = ap.parse_args(argv)
    device, names = args.device, VIRTIO_CASE_NAMES if args.device == "virtio-net" else CASE_NAMES
    lines = [x.strip() for x in args.lines.split(",") if x.strip()]
    if args.runs < 1 or args.fp_runs < 0 or not lines or any(x not in config.IRQ_LINES for x in lines):
        ap.error(f"give --runs 1 or more, --fp-runs 0 or more, --lines from {', '.join(config.IRQ_LINES)}")
    console = Console(width=None if sys.stdout.isatty() else 150)
    cc = shutil.which("cc")
    if cc is None:
        console.print("no C compiler (cc): the planted C drivers are not built, only the Python ones are checked")
    began = time.perf_counter()
    console.print(f"planted bugs: check-driver {args.runs} times each")
    with tempfile.TemporaryDirectory(prefix="planted-") as where:
        tallies = planted(args.runs, device, cc, Path(where), console)
    console.print(f"references: check-driver {args.fp_runs} times on each line ({', '.join(lines)})")
    seconds, positives = references(args.fp_runs, device, lines, console)

    table = Table(title=f"planted {device} bugs: caught by check-driver, of {args.runs} runs each")
    for col in ("bug", "driver", "caught", "check failed", "cases that must catch it", "failed / run", "s / check"):
        table.add_column(col, justify="left" if col in ("bug", "driver", "cases that must catch it") else "right")
    for t in tallies:
        expected = ", ".join(c + (f" (missed {t.missed_by[c]})" if t.missed_by[c] else "") for c in t.plant.cases)
        per_run = sum(t.failing.values()) / args.runs
        table.add_row(t.plant.label, t.plant.lang, f"{t.caught}/{args.runs}", f"{t.failed}/{args.runs}",
                      expected, f"{per_run:.1f} of {len(names)}", f"{t.seconds / args.runs:.2f}")  # fmt: skip
    console.print(table)
    for t in tallies:
        for run, case, detail in t.misses:
            console.print(f"not caught: bug {t.plant.label} ({t.plant.lang}), run {run}, {case}: {detail}",
                          highlight=False)  # fmt: skip

    fp = Table(title=f"references: false positives, of {args.fp_runs} check-driver runs each")
    for col in ("driver", "line", "runs with a failing case", "failing cases", "s / check"):
        fp.add_column(col, justify="left" if col in ("driver", "line", "failing cases") else "right")
    for (driver, line), secs in seconds.items():
        mine = [f for f in positives if f.driver == driver and f.line == line]
        cases = Counter(f.case for f in mine)
        fp.add_row(driver, line, f"{len({f.run for f in mine})}/{args.fp_runs}",
                   ", ".join(f"{c} {n}" for c, n in cases.items()) or "-",
                   f"{secs / args.fp_runs:.2f}" if args.fp_runs else "-")  # fmt: skip
    console.print(fp)
    for f in positives:
        console.print(f"false positive: {f.driver} on {f.line}, run {f.run}, {f.case}: {f.detail}", highlight=False)

    short = [t for t in tallies if t.caught < args.runs]
    console.print(
        f"{len(tallies) - len(short)} of {len(tallies)} planted drivers caught in every run"
        + "".join(f"; bug {t.plant.label} ({t.plant.lang}) caught in {t.caught}/{args.runs}" for t in short)
        + f"; {len(positives)} false positives in {2 * len(lines) * args.fp_runs} reference checks"
        + f" ({time.perf_counter() - began:.0f} s)",
        highlight=False,
    )
    return 1 if short or positives else 0


if __name__ == "__main__":
    sys.exit(main())
