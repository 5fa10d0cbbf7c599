"""Scorecard render time per audience at demo scale: the view model (reading results, judging,
drawing the SVG charts) and WeasyPrint's layout of the PDF. What the charts cost is
measured against the same steps with every chart replaced by an empty SVG.

    .venv/bin/python -m benchmarks.render_scorecard [--prospects 12000] [--repeat 5]

Staging and the KPI results are built once through the real path (CSV exports -> raw ->
reconcile -> KPIs); only the scorecard steps are timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import pypdfium2

from revops.periods import period_containing
from revops.reconcile.build import build_staging
from revops.scorecards import sections, view_model
from revops.scorecards.audiences import load_audiences
from revops.scorecards.render import render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results
from revops.synthetic.exports import write_csv_exports
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import land_exports

BLANK_SVG = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="


@contextmanager
def charts_left_out():
    """Every chart function returns an empty SVG while inside: the no-charts baseline."""
    blank = lambda *args, **kwargs: BLANK_SVG  # noqa: E731
    saved = view_model.sparkline, view_model.weekly_change_chart, sections.funnel_chart
    view_model.sparkline = view_model.weekly_change_chart = sections.funnel_chart = blank
    try:
        yield
    finally:
        view_model.sparkline, view_model.weekly_change_chart, sections.funnel_chart = saved


def timed(function, repeat: int):
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def measure(prospects: int, repeat: int, directory: Path) -> list[dict]:
    world = generate_world(WorldConfig(n_prospects=prospects, seed=7, as_of=datetime(2026, 11, 2)))
    write_csv_exports(world, directory / "exports")
    engine = get_engine(f"duckdb:///{directory / 'warehouse.duckdb'}")
    land_exports(engine, directory / "exports")
    build_staging(engine, "benchmark")
    os.environ["REVOPS_EXTRACT_SOURCES"] = "csv"
    rows = []
    for name, audience in load_audiences().items():
        period = period_containing(audience.grain, date(2026, 10, 26), audience.timezone)
        compute_scorecard_results(engine, audience, period, "benchmark")

        def build(audience=audience, period=period):
            with engine.connect() as conn:
                return build_view(conn, audience, period, "benchmark")

        view_seconds, view = timed(build, repeat)
        render_seconds, pdf = timed(lambda view=view: render_pdf(view), repeat)
        with charts_left_out():
            plain_view_seconds, plain_view = timed(build, repeat)
            plain_render_seconds, _ = timed(lambda view=plain_view: render_pdf(view), repeat)
        rows.append(
            {
                "audience": name,
                "pages": len(pypdfium2.PdfDocument(pdf)),
                "view_s": view_seconds,
                "render_s": render_seconds,
                "no_charts_s": plain_view_seconds + plain_render_seconds,
                "total_s": view_seconds + render_seconds,
                "kib": len(pdf) / 1024,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prospects", type=int, default=12_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(args.prospects, args.repeat, Path(directory))
    print(f"Scorecard render at {args.prospects:,} prospects (median of {args.repeat} runs)")
    print(
        "| Audience | Pages | View model (s) | PDF render (s) | Total (s) "
        "| Same without charts (s) | Charts' share of the total | PDF KiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = 1 - r["no_charts_s"] / r["total_s"]
        print(
            f"| {r['audience']} | {r['pages']} | {r['view_s']:.2f} | {r['render_s']:.2f} "
            f"| {r['total_s']:.2f} | {r['no_charts_s']:.2f} | {share:.0%} | {r['kib']:.0f} |"
        )


if __name__ == "__main__":
    main()
