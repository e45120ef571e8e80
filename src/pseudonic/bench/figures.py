"""The paper's figures, drawn from our measurements: Fig. 7 (interval precision), Fig. 8 (success vs interval,
with the packet rate each interval offers on a second axis and the rate measured at each curve's limit).

Each function draws one PNG and returns its path. Figures are built on a bare
``matplotlib.figure.Figure`` with the Agg canvas, so nothing global (pyplot state,
the backend) changes. No sample is ever dropped silently: what falls outside a
plotted range is piled into the edge bins and counted in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pseudonic.bench.search import Point, shortest_full
from pseudonic.units import format_ns

DPI = 120
#: the paper's precision band: a real 1 GbE NIC's 38 ± 2 µs is ±5.3 %; the paper states all within 6.25 %
BAND = 0.0625
#: the histogram's half-width is never more than this many bands, so a few huge outliers cannot squash it
MAX_WINDOW_BANDS = 8.0


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _fmt_us(us: float) -> str:
    """A duration given in µs, as units.format_ns prints it; a label has room for no decimals from 100 µs
    to 1 ms."""
    return format_ns(us * 1000, digits=0 if 100 <= abs(us) < 1000 else 2)


def _interval_text(interval_ns: int) -> str:
    return _fmt_us(interval_ns / 1000)


def _window_us(samples: Sequence[np.ndarray], band_us: float) -> float:
    """Half-width of the x window: the bulk (p99.9 of |deviation|) with margin, at least 2 bands, at most 8."""
    pooled = np.concatenate([np.abs(s) for s in samples if s.size]) if any(s.size for s in samples) else None
    if pooled is None or band_us <= 0:
        return max(band_us * 2, 1.0)
    bulk = float(np.quantile(pooled, 0.999)) * 1.15
    return float(min(max(bulk, 2 * band_us), MAX_WINDOW_BANDS * band_us))


#: Colours of the driver panel's stacks, by whose the interval's deviation is (pseudonic.timing.GROUPS).
GROUP_COLOURS = {"within the band": "tab:blue", "machine": "0.55", "driver": "tab:purple", "tool": "tab:red"}


def _deviation_panel(
    ax: Axes,
    dev_us: np.ndarray,
    who: str,
    band_us: float,
    window_us: float,
    color: str,
    groups: np.ndarray | None = None,
) -> None:
    n = int(dev_us.size)
    ax.axvspan(-band_us, band_us, color="tab:green", alpha=0.12, label=f"±6.25 % band (±{_fmt_us(band_us)})")
    ax.axvline(0.0, color="0.4", linewidth=0.8)
    ax.set_yscale("log")
    if n == 0:
        ax.text(0.5, 0.5, f"{who}: no samples", transform=ax.transAxes, ha="center", va="center")
        ax.set_xlim(-window_us, window_us)
        ax.set_ylim(0.5, 10)
        ax.legend(loc="upper right", fontsize=8)
        return
    within = float(np.mean(np.abs(dev_us) <= band_us))
    below = dev_us < -window_us
    above = dev_us > window_us
    n_out = int(below.sum() + above.sum())
    # pile outliers into the edge bins (never drop them), and say so
    shown = np.clip(dev_us, -window_us, window_us)
    edges = np.linspace(-window_us, window_us, 81)
    counts, _ = np.histogram(shown, bins=edges)
    label = f"{who} (n={n}): {100 * within:.2f} % within band"
    if n_out:
        worst = float(dev_us[np.argmax(np.abs(dev_us))])
        label += f"\n{n_out} outside ±{_fmt_us(window_us)}, piled in edge bins (worst {worst:+,.1f} µs)"
    # counts of 0 cannot be drawn on a log axis: bars of height 0 are simply absent
    if groups is None:
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=color, alpha=0.85, label=label)
    else:
        # Stacked by whose each interval's deviation is, so machine-caused and tool-caused tell apart.
        from ..timing import GROUPS

        ax.plot([], [], " ", label=label)
        bottom = np.zeros(counts.size)
        for code, (name, colour) in enumerate(GROUP_COLOURS.items(), start=-1):
            part, _ = np.histogram(shown[groups == code], bins=edges)
            if part.any():
                n_part = int(part.sum())
                what = f"{name}: {n_part}" if code < 0 else f"off the band, {GROUPS[code]}'s: {n_part}"
                ax.bar(edges[:-1], part, width=np.diff(edges), align="edge", bottom=bottom, color=colour,
                       alpha=0.9, label=what)  # fmt: skip
                bottom += part
    for side, mask in ((-1, below), (1, above)):
        k = int(mask.sum())
        if k:
            ax.annotate(
                f"{k} beyond",
                xy=(side * window_us, 1),
                xytext=(-4 * side, 12),
                textcoords="offset points",
                ha="right" if side > 0 else "left",
                fontsize=8,
                color="tab:red",
                arrowprops={"arrowstyle": "->", "color": "tab:red"},
            )
    ax.set_xlim(-window_us, window_us)
    ax.set_ylim(0.5, max(10.0, float(counts.max()) * 3))
    ax.set_ylabel("count (log)")
    ax.legend(loc="upper right", fontsize=8)


def deviation_histogram(
    driver_dev_ns: np.ndarray,
    device_dev_ns: np.ndarray,
    interval_ns: int,
    path: Path,
    *,
    driver_groups: np.ndarray | None = None,
) -> Path:
    """Fig. 7: how far each interval (actual minus asked) strayed: the driver's handler entries, the device's sends.

    Two panels sharing the x axis (µs); the green band is ±6.25 % of the interval. With
    ``driver_groups`` (per driver interval: -1 within the band, else the index of the group its
    cause is in, pseudonic.timing), the driver panel's bars are stacked by group.
    """
    return deviation_histograms([(None, driver_dev_ns, device_dev_ns, driver_groups)], interval_ns, path)


def deviation_histograms(
    models: Sequence[tuple[str | None, np.ndarray, np.ndarray, np.ndarray | None]], interval_ns: int, path: Path
) -> Path:
    """Fig. 7 for one or more device models side by side: per model (label, driver deviations, device
    deviations, driver groups) a column of two panels as :func:`deviation_histogram` draws them, every
    panel on the same x window, so that the models compare at a glance."""
    if not models:
        raise ValueError("deviation_histograms: give at least one model")
    columns = [
        (label, np.asarray(drv, dtype=np.float64).ravel() / 1000.0, np.asarray(dev, dtype=np.float64).ravel() / 1000.0,
         None if groups is None else np.asarray(groups))
        for label, drv, dev, groups in models
    ]  # fmt: skip
    band_us = BAND * interval_ns / 1000.0
    window_us = _window_us([a for _, drv, dev, _ in columns for a in (drv, dev)], band_us)
    fig = Figure(figsize=(8 * len(columns), 6.5))
    axes = np.asarray(fig.subplots(2, len(columns), sharex=True, squeeze=False))
    for k, (label, drv, dev, groups) in enumerate(columns):
        top, bottom = axes[0, k], axes[1, k]
        model = f"{label} " if label else ""
        _deviation_panel(top, drv, f"{model}driver: interrupt-handler entries", band_us, window_us, "tab:blue",
                         groups)  # fmt: skip
        _deviation_panel(bottom, dev, f"{model}device: sends", band_us, window_us, "tab:orange")
        title = f"Interval deviation at a {_interval_text(interval_ns)} interval (paper Fig. 7)"
        top.set_title(f"{label}: {title}" if label else title)
        bottom.set_xlabel("deviation of each interval from the one asked (actual − asked, µs)")
    return _save(fig, path)


def _points(curve: dict[str, Any]) -> list[Point]:
    # a point without an interval or a success rate has no place on the axes: it is left out, not guessed
    return sorted(
        (
            Point(
                int(p["interval_ns"]),
                float(p["success_rate"]),
                float(p.get("gbps") or 0.0),
                None if p.get("mpps") is None else float(p["mpps"]),
            )
            for p in curve.get("points") or []
            if p.get("interval_ns") is not None and p.get("success_rate") is not None
        ),
        key=lambda p: p.interval_ns,
    )


def _size_text(size: Any) -> str:
    return "size not recorded" if size is None else f"{size} B"


def _size_key(size: Any) -> tuple[bool, int]:
    return (size is None, 0 if size is None else int(size))


def _driver_text(curve: dict[str, Any], with_model: bool) -> str:
    """A curve's driver, and its device model where the figure shows several."""
    driver = str(curve.get("driver"))
    return f"{driver}, {curve.get('device') or 'e1000'}" if with_model else driver


def sweep_figure(curves: list[dict[str, Any]], path: Path, baseline: dict[str, Any] | None = None) -> Path:
    """Fig. 8: receive success rate (%) against send interval (µs, log), one curve per (size, driver) -- and
    device model, where the curves name one (several models: each label says which).

    A ringed marker shows each curve's shortest interval at which it, and every longer one, took 100 %.
    """
    # Many curves (sizes x drivers x models): a wider figure, the legend beside the axes rather than over them.
    crowded = len(curves) > 6
    fig = Figure(figsize=(12, 6) if crowded else (8, 5))
    ax = fig.subplots()
    # Colour names the size, the line style the driver (and the model): curves stay apart however many there are.
    sizes = sorted({c.get("size") for c in curves}, key=_size_key)
    models = list(dict.fromkeys(str(c["device"]) for c in curves if c.get("device")))
    drivers = list(dict.fromkeys(_driver_text(c, len(models) > 1) for c in curves))
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]
    styles = [("-", "o"), ("--", "^"), (":", "s"), ("-.", "D")]
    series: list[tuple[str, list[Point], dict[str, Any]]] = []
    for c in curves:
        who = _driver_text(c, len(models) > 1)
        linestyle, marker = styles[drivers.index(who) % len(styles)]
        colour = palette[sizes.index(c.get("size")) % len(palette)]
        style: dict[str, Any] = {"marker": marker, "linestyle": linestyle, "color": colour}
        series.append((f"{_size_text(c.get('size'))}, {who}", _points(c), style))
    if baseline and baseline.get("points"):
        series.append(("kernel UDP (veth)", _points(baseline), {"marker": "s", "linestyle": "--", "color": "0.3"}))
    for label, pts, style in series:
        if not pts:
            continue
        xs = [p.interval_ns / 1000.0 for p in pts]
        ys = [100.0 * p.success_rate for p in pts]
        (line,) = ax.plot(xs, ys, markersize=4, linewidth=1.2, label=label, **style)
        best = shortest_full(pts)
        if best is not None:
            ax.plot(
                [best.interval_ns / 1000.0],
                [100.0],
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor=line.get_color(),
                markeredgewidth=1.6,
                linestyle="none",
                label=f"  shortest 100 %: {_interval_text(best.interval_ns)}{_rate_text(best)}",
            )
    if not any(pts for _, pts, _ in series):
        ax.text(0.5, 0.5, "no measured points", transform=ax.transAxes, ha="center", va="center")
    ax.set_xscale("log")
    ax.set_ylim(-3, 105)
    ax.axhline(100.0, color="0.7", linewidth=0.8, linestyle=":")
    ax.set_xlabel("send interval (µs, log scale)")
    # The interval asked is a packet rate offered: 1 / interval. Drivers are judged in Mpps (DPDK, ixy, MoonGen).
    top = ax.secondary_xaxis("top", functions=(_per_us, _per_us))
    top.set_xlabel("packet rate offered (Mpps = 1 / interval in µs)")
    ax.set_ylabel("receive success rate (%)")
    ax.set_title("Receive success rate against send interval (paper Fig. 8)")
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        if crowded:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        else:
            ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _per_us(x: Any) -> Any:
    """1 / x, both ways between an interval in µs and the packet rate in Mpps it offers (0 stays 0, not inf)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > 0, 1.0 / np.where(x > 0, x, 1.0), 0.0)


def _rate_text(best: Point) -> str:
    """What the run at a curve's shortest 100 % interval measured: Mpps, then Gbps (only Gbps where it has no Mpps)."""
    if best.gbps <= 0:
        return ""
    mpps = "" if best.mpps is None else f"{best.mpps:.3f} Mpps, "
    return f" ({mpps}{best.gbps:.2f} Gbps)"


def _positive_us(ns: Any) -> float | None:
    """ns as µs, or None where it cannot go on a log axis (missing, zero or negative)."""
    return float(ns) / 1000.0 if ns is not None and ns > 0 else None


def irq_latency_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """Interrupt latency per line (spin, eventfd, signal) and driver: p50 bar, whisker to p99, min and max ticks.

    Rows carry nanoseconds; the axis shows µs on a log scale. A row without a p50 is shown as "no data".
    """
    lines = list(dict.fromkeys(str(r.get("line")) for r in rows))
    drivers = list(dict.fromkeys(str(r.get("driver")) for r in rows))
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(drivers))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink"]
    plotted = False
    positive: list[float] = []
    for d, driver in enumerate(drivers):
        color = colors[d % len(colors)]
        first = True
        for i, line in enumerate(lines):
            row = next((r for r in rows if str(r.get("line")) == line and str(r.get("driver")) == driver), None)
            if row is None:
                continue
            x = i - 0.4 + width * (d + 0.5)
            p50 = row.get("p50")
            if p50 is None or p50 <= 0:
                ax.text(
                    x,
                    0.02,
                    "no data",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    transform=ax.get_xaxis_transform(),
                )
                continue
            vals = {k: _positive_us(row.get(k)) for k in ("min", "p50", "p99", "max")}
            y50 = vals["p50"]
            assert y50 is not None
            positive.extend(v for v in vals.values() if v is not None)
            ax.bar(x, y50, width=width * 0.9, color=color, alpha=0.85, label=driver if first else None)
            first = False
            plotted = True
            y99 = vals["p99"]
            if y99 is not None and y99 >= y50:
                ax.errorbar([x], [y50], yerr=[[0.0], [y99 - y50]], fmt="none", ecolor="black", capsize=4, linewidth=1)
            for key, marker in (("min", "v"), ("max", "^")):
                v = vals[key]
                if v is not None:
                    ax.plot([x], [v], marker=marker, color="black", markersize=4, linestyle="none")
            # beside the whisker, not on it
            ax.annotate(_fmt_us(y50), (x, y50), xytext=(-3, 2), textcoords="offset points", ha="right", fontsize=7)
    ax.set_yscale("log")
    if positive:
        ax.set_ylim(min(positive) / 3, max(positive) * 3)
    ax.set_xticks(range(len(lines)), lines)
    ax.set_xlim(-0.5, max(1, len(lines)) - 0.5)
    ax.set_xlabel("interrupt line")
    ax.set_ylabel("interrupt latency (µs, log scale)")
    ax.set_title("Interrupt latency by line: bar p50, whisker to p99, ▼ min, ▲ max")
    # legend entries for the markers, so the legend explains the whole chart
    ax.plot([], [], marker="v", color="black", linestyle="none", markersize=4, label="min")
    ax.plot([], [], marker="^", color="black", linestyle="none", markersize=4, label="max")
    if not plotted:
        ax.text(0.5, 0.5, "no latency data", transform=ax.transAxes, ha="center", va="center")
    ax.grid(True, axis="y", which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
