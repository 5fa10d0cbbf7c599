"""The KPI DAG's horizon on a built warehouse, as after a new build (nothing to reuse): every
KPI for the recent weeks, months and quarters, for every audience scope. With --family and
--version, one family in one version, to compare a rewrite with the version it replaced; with
--scorecard, an audience's scorecard KPI step instead (its shown periods, trends and
restatements), for the week before the cut-off.

    .venv/bin/python -m benchmarks.kpi_horizon WAREHOUSE [--family attribution --version 1]
    .venv/bin/python -m benchmarks.kpi_horizon WAREHOUSE --scorecard marketing_weekly

WAREHOUSE is a DuckDB file reconcile has built (the harness's --dir holds one), on a copy; or
the URL of a PostgreSQL warehouse (`benchmarks.first_run --into URL` builds one), computed in
place with nothing reused. Prints one JSON line: seconds, result rows, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks.harness import high_water_mib, scorecard_week
from revops.kpis.registry import load_registry
from revops.pipeline import kpi_horizon
from revops.scorecards.view_model import compute_scorecard_results
from revops.warehouse import get_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", help="a DuckDB file, or a PostgreSQL URL")
    parser.add_argument("--family", help="only this KPI family, e.g. attribution")
    parser.add_argument("--version", type=int, help="the family's version to compute")
    parser.add_argument("--scorecard", help="an audience: its scorecard KPI step instead")
    args = parser.parse_args()
    if args.warehouse.startswith("postgresql"):
        print(json.dumps(_timed(get_engine(args.warehouse), args)))
        return
    warehouse = Path(args.warehouse)
    with tempfile.TemporaryDirectory(dir=warehouse.parent) as directory:
        copy = Path(directory) / "warehouse.duckdb"
        shutil.copy(warehouse, copy)
        print(json.dumps(_timed(get_engine(f"duckdb:///{copy}"), args)))


def _timed(engine: sa.Engine, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    rows = _scorecard_rows(engine, args.scorecard) if args.scorecard else _horizon_rows(engine, args)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 1), "rows": rows, "peak_rss_mib": round(high_water_mib())}


def _horizon_rows(engine: sa.Engine, args: argparse.Namespace) -> int:
    """Nothing reused: the copy of a DuckDB file has its stored results, PostgreSQL its own."""
    registry = load_registry().values()
    kpi_ids = [k.id for k in registry if k.family_id == args.family] if args.family else None
    return kpi_horizon(engine, "benchmark", kpi_ids, args.version, reuse=False)["rows"]


def _scorecard_rows(engine: sa.Engine, audience_name: str) -> int:
    audience, week = scorecard_week(engine, audience_name)
    return compute_scorecard_results(engine, audience, week, "benchmark")


if __name__ == "__main__":
    main()
