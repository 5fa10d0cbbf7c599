"""Each KPI version over the KPI DAG's periods, one statement per period against one for all
(`engine.every_period_sql`): how `periods_together` in a definition was chosen.

    .venv/bin/python -m benchmarks.kpi_periods_together WAREHOUSE [--kpi lead_to_opportunity_rate ...]

WAREHOUSE is a DuckDB file reconcile has built (the harness's --dir holds one). Every
published version in effect over the horizon, for the whole company, on one connection (so
each figure is that statement's own). Both ways must give the same rows; a version DuckDB
cannot run together is reported as such. Prints one line per KPI version, then a JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import EVERYTHING, Build, current_build, query_periods
from revops.kpis.registry import Kpi, KpiVersion, load_registry
from revops.periods import Period
from revops.pipeline import horizon_periods
from revops.warehouse import get_engine

KEY = ["dimension", "segment"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--kpi", nargs="+", help="only these KPIs (ids or families)")
    args = parser.parse_args()
    engine = get_engine(f"duckdb:///{args.warehouse}")
    measured = []
    with engine.connect() as conn:
        build = current_build(conn)
        periods = horizon_periods(build.data_cutoff)
        for kpi in load_registry().values():
            if args.kpi and not {kpi.id, kpi.family_id} & set(args.kpi):
                continue
            for version, its_periods in versions_in_effect(kpi, periods).items():
                measured.append(measure(conn, kpi, version, its_periods, build))
                print(json.dumps(measured[-1]), flush=True)
    print(json.dumps({"versions": len(measured)}))


def versions_in_effect(kpi: Kpi, periods: list[Period]) -> dict[KpiVersion, list[Period]]:
    by_version: dict[KpiVersion, list[Period]] = {}
    for period in periods:
        version = kpi.version_for(period.start)
        if version is not None:
            by_version.setdefault(version, []).append(period)
    return by_version


def measure(conn: sa.Connection, kpi: Kpi, version: KpiVersion, periods: list[Period], build: Build) -> dict:
    """The engine's `query_periods` both ways (the version's `periods_together` set each way),
    the same rows required; the seconds of each."""
    report = {"kpi": kpi.id, "version": version.version, "periods": len(periods)}
    report["says_together"] = version.periods_together
    alone, together = (replace(version, periods_together=flag) for flag in (False, True))
    started = time.perf_counter()
    one_by_one = query_periods(conn, kpi, alone, periods, EVERYTHING, build)
    report["per_period_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    try:
        all_at_once = query_periods(conn, kpi, together, periods, EVERYTHING, build)
    except sa.exc.DBAPIError as error:
        conn.rollback()
        return report | {"together": f"failed: {str(error.orig).splitlines()[0][:100]}"}
    report["together_s"] = round(time.perf_counter() - started, 2)
    for period_alone, period_with_the_rest in zip(one_by_one, all_at_once, strict=True):
        pd.testing.assert_frame_equal(
            _sorted(period_alone), _sorted(period_with_the_rest), check_dtype=False, rtol=1e-9
        )
    return report | {"ratio": round(report["per_period_s"] / max(report["together_s"], 1e-3), 2)}


def _sorted(rows: pd.DataFrame) -> pd.DataFrame:
    columns = [*KEY, "numerator", "denominator", "volume"]
    typed = rows[columns].astype({"dimension": str, "segment": str, "numerator": float})
    return typed.sort_values(KEY, ignore_index=True)


if __name__ == "__main__":
    main()
