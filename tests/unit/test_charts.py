"""The scorecard's SVG charts: positions worked out by hand, gaps, escaping, determinism, and
what WeasyPrint draws of them."""

import base64
import xml.etree.ElementTree as ET

import numpy as np
import pypdfium2
import pytest
from weasyprint import CSS, HTML

from revops.scorecards.charts import (
    INK,
    MUTED,
    TARGET,
    funnel_chart,
    nice_ticks,
    sparkline,
    tick_text,
    weekly_change_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def parsed(data_uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(data_uri[len(prefix) :]))


def shapes(svg: ET.Element, tag: str) -> list[ET.Element]:
    return svg.findall(f"{SVG}{tag}")


def texts(svg: ET.Element) -> dict[str, ET.Element]:
    return {t.text: t for t in shapes(svg, "text")}


def test_sparkline_positions_by_hand_with_a_gap():
    # Four slots on x from -0.3 to 3.3 over 137 pt; values 0..10 padded by 15% (1.5) on y,
    # from -1.5 to 11.5 over 40 pt, drawn downwards. x(0) = 0.3 / 3.6 * 137 = 11.42,
    # x(1) = 49.47, x(3) = 125.58; y(0) = 40 - 1.5 / 13 * 40 = 35.38, y(10) = 4.62, y(5) = 20.
    svg = parsed(sparkline([0, 10, None, 5]))
    (line,) = shapes(svg, "polyline")  # the lone point after the gap has no line
    assert line.get("points") == "11.42,35.38 49.47,4.62"
    dots = [(c.get("cx"), c.get("cy"), c.get("r")) for c in shapes(svg, "circle")]
    assert dots == [
        ("11.42", "35.38", "1.6"),
        ("49.47", "4.62", "1.6"),
        ("125.58", "20.00", "1.6"),
        ("125.58", "20.00", "2.75"),  # the latest value, highlighted
    ]


def test_sparkline_without_values_is_an_empty_chart():
    svg = parsed(sparkline([None, None, float("nan")]))
    assert not shapes(svg, "polyline") and not shapes(svg, "circle")
    assert svg.get("viewBox") == "0 0 137.00 40.00"


def test_a_single_value_is_a_dot_in_the_middle():
    svg = parsed(sparkline([7.0], highlight_last=False))
    (dot,) = shapes(svg, "circle")
    assert float(dot.get("cy")) == pytest.approx(20.0)


def test_the_same_data_gives_the_same_bytes():
    values = [1.5, None, 2.25, 3.0]
    assert sparkline(values) == sparkline(list(values))
    assert funnel_chart(["a"], [0.4], [0.5]) == funnel_chart(["a"], [0.4], [0.5])


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 2.7, [0, 1, 2, 3]),  # rough step 0.54 rounds up to 1
        (-3.2, 7.9, [-5, 0, 5, 10]),  # rough step 2.22 rounds up to 5
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # no spread: a unit range
        (0.001, 0.0042, [0.001, 0.002, 0.003, 0.004, 0.005]),
    ],
)
def test_nice_ticks_cover_the_range_in_round_steps(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_tick_labels_carry_the_decimals_the_step_needs_and_a_true_minus():
    assert [tick_text(t, [-1, -0.5, 0]) for t in (-1, -0.5, 0)] == ["\u22121.0", "\u22120.5", "0.0"]
    assert tick_text(0.003, [0.001, 0.002, 0.003]) == "0.003"
    assert tick_text(10, [0, 5, 10]) == "10"


def test_weekly_change_bars_stand_on_zero_in_proportion():
    svg = parsed(weekly_change_chart(["a", "b", "c"], [2.0, -1.0, None], [None, 0.5, 0.25]))
    labels = texts(svg)
    assert {"\u22121", "0", "1", "2", "a", "b", "c", "Weekly change", "4-week moving average"} <= set(labels)
    title = labels["points per prospect"]
    assert title.get("transform") == f"rotate(-90 {title.get('x')} {title.get('y')})"  # read upwards
    zero = float(labels["0"].get("y")) - 2.3  # a tick label sits 2.3 pt under its tick
    rising, falling, missing, swatch = shapes(svg, "rect")  # the legend's swatch is drawn last
    assert swatch.get("fill") == INK
    assert rising.get("fill") == INK and falling.get("fill") == MUTED
    assert float(rising.get("y")) + float(rising.get("height")) == pytest.approx(zero, abs=0.01)
    assert float(falling.get("y")) == pytest.approx(zero, abs=0.01)
    assert float(rising.get("height")) == pytest.approx(2 * float(falling.get("height")), abs=0.02)
    assert float(missing.get("height")) == 0
    (average,) = [p for p in shapes(svg, "polyline") if p.get("stroke") == TARGET]
    assert len(average.get("points").split()) == 2  # weeks b and c; week a has no average yet


def test_funnel_bars_and_targets_sit_on_the_axis_ticks():
    svg = parsed(funnel_chart(["A & B", "<b>C</b>"], [0.5, None], [0.25, None]))
    labels = texts(svg)
    assert {"A & B", "<b>C</b>", "50.0%", "no data"} <= set(labels)  # names are text, not markup
    x = {tick: float(labels[str(tick)].get("x")) for tick in (0, 20, 40, 60)}
    half, empty = shapes(svg, "rect")
    assert float(half.get("x")) == pytest.approx(x[0], abs=0.01)
    assert float(half.get("width")) == pytest.approx((x[40] + x[60]) / 2 - x[0], abs=0.02)
    assert float(empty.get("width")) == 0
    (target,) = [line for line in shapes(svg, "line") if line.get("stroke") == TARGET]
    assert float(target.get("x1")) == pytest.approx(x[20] + (x[40] - x[20]) / 4, abs=0.02)


def test_a_rate_over_the_axis_is_labelled_but_drawn_to_its_end():
    svg = parsed(funnel_chart(["a", "b"], [1.3, 1.0], [None, None]))
    over, full = shapes(svg, "rect")
    assert over.get("width") == full.get("width")
    assert "130.0%" in texts(svg)


def rendered(chart: str, width_pt: float) -> np.ndarray:
    """The chart laid out by WeasyPrint at its own width and rasterised: what a reader sees."""
    html = f'<img src="{chart}" style="display: block; width: {width_pt}pt">'
    page = CSS(string=f"@page {{ size: {width_pt + 20}pt 200pt; margin: 10pt }}")
    pdf = HTML(string=html).write_pdf(stylesheets=[page])
    return np.asarray(pypdfium2.PdfDocument(pdf)[0].render(scale=2).to_pil().convert("L"))


def longest_dark_run(row: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest stretch of dark pixels in one pixel row."""
    best, start = (0, 0), None
    for x, dark in enumerate([*(row < 100), False]):
        if dark and start is None:
            start = x
        elif not dark and start is not None:
            best = max(best, (start, x - start), key=lambda run: run[1])
            start = None
    return best


def test_weasyprint_draws_the_funnel_bars_in_proportion_with_their_labels():
    pixels = rendered(funnel_chart(["A long step name", "B"], [1.0, 0.5], [None, None]), 511)
    runs = [longest_dark_run(row) for row in pixels]
    long_rows = [y for y, (_, length) in enumerate(runs) if length > 100]
    bands = [[long_rows[0]]]  # runs of adjacent rows: the two bars, then the x axis's line
    for y in long_rows[1:]:
        if y == bands[-1][-1] + 1:
            bands[-1].append(y)
        else:
            bands.append([y])
    full, half, _x_axis = bands
    # A quarter of the way into each bar: its middle row also holds the axis's tick mark.
    (full_start, full_length), (half_start, half_length) = (
        runs[full[len(full) // 4]],
        runs[half[len(half) // 4]],
    )
    assert full_start == pytest.approx(half_start, abs=2)  # both bars start on the axis
    assert full_length / half_length == pytest.approx(2.0, abs=0.05)
    label = pixels[full[0] : full[-1] + 1, : full_start - 8]  # the step's name, left of the axis
    assert (label < 128).sum() > 50
