"""The KPI DAG's horizon on a built warehouse, as after a new build (nothing to reuse): every
KPI for the recent weeks, months and quarters, for every audience scope. With --family and
--version, one family in one version, to compare a rewrite with the version it replaced; with
--scorecard, an audience's scorecard KPI step instead (its shown periods, trends and
restatements), for the week before the cut-off.

    .venv/bin/python -m benchmarks.kpi_horizon WAREHOUSE [--family attribution --version 1]
    .venv/bin/python -m benchmarks.kpi_horizon WAREHOUSE --scorecard marketing_weekly

WAREHOUSE is a DuckDB file reconcile has built (the harness's --dir holds one). The benchmark
works on a copy and prints one JSON line: seconds, result rows, peak RSS.
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
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--family", help="only this KPI family, e.g. attribution")
    parser.add_argument("--version", type=int, help="the family's version to compute")
    parser.add_argument("--scorecard", help="an audience: its scorecard KPI step instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.warehouse.parent) as directory:
        copy = Path(directory) / "warehouse.duckdb"
        shutil.copy(args.warehouse, copy)
        engine = get_engine(f"duckdb:///{copy}")
        started = time.perf_counter()
        rows = _scorecard_rows(engine, args.scorecard) if args.scorecard else _horizon_rows(engine, args)
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 1), "rows": rows, "peak_rss_mib": round(high_water_mib())}))


def _horizon_rows(engine: sa.Engine, args: argparse.Namespace) -> int:
    kpi_ids = [k for k in load_registry() if k.split(".")[0] == args.family] if args.family else None
    return kpi_horizon(engine, "benchmark", kpi_ids, args.version)["rows"]


def _scorecard_rows(engine: sa.Engine, audience_name: str) -> int:
    audience, week = scorecard_week(engine, audience_name)
    return compute_scorecard_results(engine, audience, week, "benchmark")


if __name__ == "__main__":
    main()
