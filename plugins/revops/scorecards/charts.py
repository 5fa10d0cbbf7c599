"""Charts for the scorecard, written as small SVG documents so they stay vector in the PDF.

Three plain shapes (a trend line, weekly bars, funnel bars) need no plotting library, and
matplotlib cost about half a second to import in every render task (docs/performance-history.md,
"Twenty-eighth stop"). Lengths are in points, the unit of the PDF, so a chart laid out at its
own width shows its text at the sizes given here. The same data always gives the same bytes.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

INK = "#1f2937"
MUTED = "#9ca3af"
TARGET = "#b45309"
FONT = "DejaVu Sans"  # the scorecard's own face (scorecard.css)
LABEL_SIZE = 6.5
WIDE = 511.0  # a chart across the page's text width, in points


@dataclass(frozen=True)
class Axis:
    """Maps data values from [low, high] linearly onto drawing positions [start, end]."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def sparkline(values: Sequence[float | None], highlight_last: bool = True) -> str:
    """A small trend line as a `data:` URI; a gap where a value is missing."""
    width, height = 137.0, 40.0
    known = [(i, v) for i, v in enumerate(values) if _is_number(v)]
    if not known:
        return _svg(width, height, [])
    low, high = min(v for _, v in known), max(v for _, v in known)
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 0.01
    x = Axis(-0.3, max(len(values) - 0.7, 0.7), 0, width)
    y = Axis(low - pad, high + pad, height, 0)
    shapes = [_polyline(run, INK, 1.4) for run in _runs(values, x, y)]
    shapes += [_dot(x(i), y(v), 1.6, INK) for i, v in known]
    if highlight_last:
        shapes.append(_dot(x(known[-1][0]), y(known[-1][1]), 2.75, INK))
    return _svg(width, height, shapes)


def weekly_change_chart(
    labels: Sequence[str], changes: Sequence[float | None], moving_average: Sequence[float | None]
) -> str:
    """Bars of the weekly average score change, with its 4-week moving average as a line."""
    width, height = WIDE, 94.0
    left, right, top, bottom = 38.0, width - 4, 18.0, height - 12
    bars = [v if _is_number(v) else 0.0 for v in changes]
    plotted = [0.0, *bars, *(v for v in moving_average if _is_number(v))]
    ticks = nice_ticks(min(plotted), max(plotted))
    x = Axis(-0.7, len(labels) - 0.3, left, right)
    y = Axis(ticks[0], ticks[-1], bottom, top)
    shapes = [
        _rect(x(i - 0.3), min(y(v), y(0)), x(0.6) - x(0), abs(y(v) - y(0)), INK if v >= 0 else MUTED)
        for i, v in enumerate(bars)
    ]
    shapes += [_polyline(run, TARGET, 1.8) for run in _runs(moving_average, x, y)]
    shapes.append(_line(left, y(0), right, y(0), MUTED, 0.6))
    shapes += _left_axis(ticks, y, left, top, bottom, "points per prospect")
    shapes.append(_line(left, bottom, right, bottom, INK, 0.8))
    shapes += [_text(x(i), bottom + 8, label, anchor="middle") for i, label in enumerate(labels)]
    shapes += _legend(left, 7, [("bar", INK, "Weekly change"), ("line", TARGET, "4-week moving average")])
    return _svg(width, height, shapes)


def funnel_chart(steps: Sequence[str], rates: Sequence[float | None], targets: Sequence[float | None]) -> str:
    """One horizontal bar per funnel step: its conversion rate, with the target as a tick."""
    row = 20.0
    width, height = WIDE, 30.0 + row * len(steps)
    left = 12 + max((_text_width(step, 7) for step in steps), default=0)
    right, top, bottom = width - 8, 2.0, height - 28
    x = Axis(0, 105, left, right)
    shapes = []
    for i, (step, rate, target) in enumerate(zip(steps, rates, targets, strict=True)):
        middle = top + (i + 0.5) * row
        percent = rate * 100 if _is_number(rate) else 0.0
        # A rate over 100% would be a defect upstream: its label says so, its bar stays on the chart.
        drawn = min(percent, 100.0)
        shapes.append(_rect(left, middle - 0.275 * row, x(drawn) - left, 0.55 * row, INK))
        label = f"{percent:.1f}%" if _is_number(rate) else "no data"
        shapes.append(_text(x(drawn + 1), middle + 2.5, label, size=7))
        if _is_number(target):
            shapes.append(
                _line(x(target * 100), middle - 0.38 * row, x(target * 100), middle + 0.38 * row, TARGET, 1.6)
            )
        shapes.append(_line(left - 3, middle, left, middle, INK, 0.8))
        shapes.append(_text(left - 6, middle + 2.5, step, size=7, anchor="end"))
    shapes.append(_line(left, top, left, bottom, INK, 0.8))
    shapes.append(_line(left, bottom, right, bottom, INK, 0.8))
    for tick in range(0, 101, 20):
        shapes.append(_line(x(tick), bottom, x(tick), bottom + 3, INK, 0.8))
        shapes.append(_text(x(tick), bottom + 10, str(tick), anchor="middle"))
    caption = "conversion, % of the stage's cohort (tick: target)"
    shapes.append(_text((left + right) / 2, bottom + 21, caption, anchor="middle"))
    return _svg(width, height, shapes)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values, 1, 2 or 5 times a power of ten apart, from at or below `low` to at
    or above `high`: about `most` of them."""
    if not high > low:
        high = low + 1
    rough = (high - low) / (most - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(n * step, 12) for n in range(first, last + 1)]


def tick_text(value: float, ticks: Sequence[float]) -> str:
    """A tick label with as many decimals as the tick spacing needs, and a true minus sign."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    text = f"{abs(value):.{decimals}f}"
    return ("\u2212" + text) if value < 0 and float(text) != 0 else text


# --- drawing primitives ---------------------------------------------------------------------


def _left_axis(
    ticks: Sequence[float], y: Axis, left: float, top: float, bottom: float, title: str
) -> list[str]:
    shapes = [_line(left, top, left, bottom, INK, 0.8)]
    for tick in ticks:
        shapes.append(_line(left - 3, y(tick), left, y(tick), INK, 0.8))
        shapes.append(_text(left - 6, y(tick) + 2.3, tick_text(tick, ticks), anchor="end"))
    shapes.append(_text(6, (top + bottom) / 2, title, anchor="middle", turned=True))
    return shapes


def _legend(left: float, baseline: float, entries: list[tuple[str, str, str]]) -> list[str]:
    shapes, x = [], left
    for kind, colour, label in entries:
        if kind == "bar":
            shapes.append(_rect(x, baseline - 5.5, 12, 6, colour))
        else:
            shapes.append(_line(x, baseline - 2.5, x + 12, baseline - 2.5, colour, 1.8))
        shapes.append(_text(x + 16, baseline, label))
        x += 16 + _text_width(label, LABEL_SIZE) + 14
    return shapes


def _runs(values: Sequence[float | None], x: Axis, y: Axis) -> list[list[tuple[float, float]]]:
    """The points of each unbroken stretch of known values: a missing value breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if _is_number(value):
            runs[-1].append((x(i), y(value)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if len(run) > 1]


def _polyline(points: list[tuple[float, float]], colour: str, width: float) -> str:
    coordinates = " ".join(f"{_n(px)},{_n(py)}" for px, py in points)
    return (
        f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="{width}" '
        'stroke-linejoin="round" stroke-linecap="round"/>'
    )


def _dot(cx: float, cy: float, radius: float, colour: str) -> str:
    return f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{radius}" fill="{colour}"/>'


def _rect(x: float, y: float, width: float, height: float, colour: str) -> str:
    return (
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(width, 0))}" height="{_n(height)}" fill="{colour}"/>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str, width: float) -> str:
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
        f'stroke="{colour}" stroke-width="{width}"/>'
    )


def _text(
    x: float, y: float, content: str, size: float = LABEL_SIZE, anchor: str = "start", turned: bool = False
) -> str:
    """Text on a baseline at `y` (`turned`: read bottom to top, as an axis title); CRM and KPI
    names are escaped, never read as markup."""
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if turned else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" fill="{INK}" text-anchor="{anchor}"{turn}>'
        f"{escape(content)}</text>"
    )


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a label's width in DejaVu Sans, whose average glyph is about
    0.6 em wide: enough to keep a right-aligned label inside the chart."""
    return 0.62 * size * len(text)


def _svg(width: float, height: float, shapes: list[str]) -> str:
    document = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}pt" height="{_n(height)}pt" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}">{"".join(shapes)}</svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(document.encode()).decode()


def _n(value: float) -> str:
    return f"{value:.2f}"


def _is_number(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
