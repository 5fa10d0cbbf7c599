"""Each KPI's version in effect, one slice at a time, for the whole company and under every
audience's scope: the slices that take long, on a built warehouse (DuckDB or PostgreSQL).

    .venv/bin/python -m benchmarks.kpi_scopes WAREHOUSE_URL [--over 0.4]

A statement that is fast for the whole company can be slow under a scope: on PostgreSQL a
scope filter may make the planner take a cohort for one row and join it in nested loops.
`benchmarks.kpi_families` sums each family over the whole horizon; this one runs the latest
full week and month of every KPI, one slice at a time, in every scope the KPI DAG computes,
and prints each slice over `--over` seconds, then the slowest slice of each scope. Nothing is
stored.
"""

from __future__ import annotations

import argparse
import time

from revops.kpis.engine import current_build, query_slice
from revops.kpis.registry import load_registry
from revops.periods import local_date, period_containing
from revops.pipeline import horizon_scopes
from revops.warehouse import get_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse_url")
    parser.add_argument("--over", type=float, default=0.4, help="print slices slower than this (seconds)")
    args = parser.parse_args()
    registry = load_registry()
    slowest: dict[str, tuple[float, str]] = {}
    with get_engine(args.warehouse_url).connect() as conn:
        build = current_build(conn)
        for scope, timezone in horizon_scopes():
            today = local_date(build.data_cutoff, timezone)
            for grain in ("week", "month"):
                period = period_containing(grain, today, timezone).previous()
                for kpi_id, kpi in registry.items():
                    version = kpi.version_for(period.start)
                    if version is None:
                        continue
                    started = time.perf_counter()
                    query_slice(conn, kpi, version, period, scope, build)
                    seconds = time.perf_counter() - started
                    label = f"{grain} {kpi_id} v{version.version} {scope.key} ({timezone})"
                    if seconds > args.over:
                        print(f"{label}: {seconds:.2f} s", flush=True)
                    if seconds > slowest.get(scope.key, (0.0, ""))[0]:
                        slowest[scope.key] = (seconds, label)
    for key, (seconds, label) in slowest.items():
        print(f"slowest in {key}: {label}, {seconds:.2f} s")


if __name__ == "__main__":
    main()
