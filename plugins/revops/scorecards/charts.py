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
