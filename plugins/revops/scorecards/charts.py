"""Charts for the scorecard, drawn by matplotlib as SVG so they stay vector in the PDF."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Fixed ids and no timestamp in the SVG: identical data gives identical bytes.
matplotlib.rcParams["svg.hashsalt"] = "revops-scorecards"
matplotlib.rcParams["svg.fonttype"] = "none"

INK = "#1f2937"
MUTED = "#9ca3af"


def sparkline(values: list[float | None], highlight_last: bool = True) -> str:
    """A small trend line as a `data:` URI; gaps where a value is missing."""
    figure, axes = plt.subplots(figsize=(1.9, 0.55), dpi=100)
    xs = list(range(len(values)))
    ys = [math.nan if v is None else v for v in values]
    axes.plot(xs, ys, color=INK, linewidth=1.4, marker="o", markersize=2.2)
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if highlight_last and known:
        axes.plot(*known[-1], marker="o", markersize=4.5, color=INK)
    if known:
        low = min(y for _, y in known)
        high = max(y for _, y in known)
        pad = (high - low) * 0.15 or abs(high) * 0.1 or 0.01
        axes.set_ylim(low - pad, high + pad)
    axes.set_xlim(-0.3, max(len(values) - 0.7, 0.7))
    axes.axis("off")
    figure.subplots_adjust(0, 0, 1, 1)
    return _svg_data_uri(figure)


def _svg_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", transparent=True, metadata={"Date": None})
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def weekly_change_chart(
    labels: list[str], changes: list[float | None], moving_average: list[float | None]
) -> str:
    """Bars of the weekly average score change, with its 4-week moving average as a line."""
    figure, axes = plt.subplots(figsize=(7.1, 1.3), dpi=100)
    xs = list(range(len(labels)))
    bars = [0.0 if v is None else v for v in changes]
    axes.bar(xs, bars, color=[INK if v >= 0 else MUTED for v in bars], width=0.6, label="Weekly change")
    line = [math.nan if v is None else v for v in moving_average]
    axes.plot(xs, line, color="#b45309", linewidth=1.8, label="4-week moving average")
    axes.axhline(0, color=MUTED, linewidth=0.6)
    axes.set_xticks(xs, labels, fontsize=6.5)
    axes.tick_params(axis="y", labelsize=6.5)
    axes.set_ylabel("points per prospect", fontsize=6.5)
    axes.legend(fontsize=6.5, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.3)
    return _svg_data_uri(figure)


def funnel_chart(steps: list[str], rates: list[float | None], targets: list[float | None]) -> str:
    """One horizontal bar per funnel step: its conversion rate, with the target as a tick."""
    figure, axes = plt.subplots(figsize=(7.1, 0.3 + 0.28 * len(steps)), dpi=100)
    ys = list(range(len(steps)))[::-1]
    values = [0.0 if r is None else r * 100 for r in rates]
    axes.barh(ys, values, color=INK, height=0.55)
    for y, value, rate, target in zip(ys, values, rates, targets, strict=True):
        text = "no data" if rate is None else f"{value:.1f}%"
        axes.text(value + 1, y, text, va="center", fontsize=7, color=INK)
        if target is not None:
            axes.plot([target * 100] * 2, [y - 0.38, y + 0.38], color="#b45309", linewidth=1.6)
    axes.set_yticks(ys, steps, fontsize=7)
    axes.set_xlim(0, 105)
    axes.tick_params(axis="x", labelsize=6.5)
    axes.set_xlabel("conversion, % of the stage's cohort (tick: target)", fontsize=6.5)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout(pad=0.3)
    return _svg_data_uri(figure)
