"""E1 / Table 1: the device's send processing time per frame size, against a bare memcpy.

For each size, rounds interleave (a) a hot bare memcpy of the same size,
timed with the same clock reads as the engine, (b) a paced run (one packet
every --interval, default 5 us) and (c) a back-to-back run (interval 0: the
shortest interval the device can produce, the paper's Table 1). Medians
across rounds are compared, because this host's memory bandwidth and core
availability swing several-fold from minute to minute.

    python benchmarks/send_time.py [--rounds 5] [--count 1000] [--interval 5us]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from rich.console import Console
from rich.table import Table

import pseudonic
from pseudonic import _engine, schedule
from pseudonic.units import parse_interval

SIZES = {1500: 205, 8192: 1462, 16384: 3664}  # bytes -> paper's Table 1, ns
TARGET_RATIO = 3.0


def memcpy_p50(size: int, repeat: int) -> float:
    out = np.zeros(repeat, dtype=np.uint64)
    _engine.memcpy_bench(size, out)
    return float(np.median(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--interval", default="5us")
    args = ap.parse_args()
    interval = parse_interval(args.interval)

    rows = []
    for size, paper in SIZES.items():
        memcpy, paced, b2b = [], [], []
        for _ in range(args.rounds):
            memcpy.append(memcpy_p50(size, args.count))
            r = pseudonic.run(interval, args.count, size, upper="null")
            paced.append(r.send_time_ns["p50"])
            memcpy.append(memcpy_p50(size, args.count))
            r = pseudonic.run(
                count=args.count, size=size, upper="null", ring_size=4096,
                slots=schedule.periodic(args.count, 0),
            )  # fmt: skip
            b2b.append(r.send_time_ns["mean"])
        m, p, b = statistics.median(memcpy), statistics.median(paced), statistics.median(b2b)
        rows.append((size, m, p, p / m, b, paper))

    t = Table(title=f"send processing time, median of {args.rounds} rounds × {args.count} packets")
    for col in ("size", "memcpy p50", f"paced ({args.interval}) p50", "paced / memcpy", "target",
                "back-to-back mean", "paper", "ours / paper"):  # fmt: skip
        t.add_column(col, justify="right")
    for size, m, p, ratio, b, paper in rows:
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        t.add_row(f"{size} B", f"{m:.0f} ns", f"{p:.0f} ns", f"{ratio:.2f}×", f"≤ {TARGET_RATIO:g}× {verdict}",
                  f"{b:.0f} ns", f"{paper} ns", f"{b / paper:.2f}×")  # fmt: skip
    Console().print(t)


if __name__ == "__main__":
    main()
