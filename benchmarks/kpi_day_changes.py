"""Which KPI slices a working day changes: the bound on skipping unchanged slices.

    .venv/bin/python -m benchmarks.kpi_day_changes WAREHOUSE [--every 100]

WAREHOUSE is a DuckDB file reconcile has built. On a copy, the KPI DAG's horizon is computed,
then a working day is landed (`harness.land_a_working_day`), staging is updated by an
incremental build and the horizon is computed again. A slice (KPI, version, period, scope)
changed if any of its rows (a segment's numerator, denominator or volume) differs between
the two. Prints one JSON line: the times, how many slices changed, by grain, by period and
by KPI. However a daily KPI run found the unchanged slices, it would still have to compute
the changed ones: this share is what skipping can save at most.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from benchmarks.harness import land_a_working_day
from revops.pipeline import kpi_horizon
from revops.reconcile.build import build_staging
from revops.warehouse import get_engine

SLICE = "kpi_id, kpi_version, grain, timezone, period_start, scope"
# Rounded: attribution's fractional sums differ in the last bits between runs of the same
# data (DuckDB's parallel aggregation), which is no change.
ROW = "dimension, segment, round(numerator, 9) as numerator, round(denominator, 9) as denominator, volume"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--every", type=int, default=100, help="every N-th lead changes (100: 1%%)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.warehouse.parent) as directory:
        copy = Path(directory) / "warehouse.duckdb"
        shutil.copy(args.warehouse, copy)
        report = _before_and_after(copy, Path(directory), args.every)
        report.update(_changed_slices(Path(directory) / "before.parquet", Path(directory) / "after.parquet"))
    print(json.dumps(report, default=str))


def _before_and_after(warehouse: Path, directory: Path, every: int) -> dict:
    engine = get_engine(f"duckdb:///{warehouse}")
    report = {}
    for moment in ("before", "after"):
        if moment == "after":
            report["landed"] = land_a_working_day(engine, every)
            started = time.perf_counter()
            report["build"] = build_staging(engine, "kpi-day-changes").update
            if report["build"] is None:
                raise SystemExit("the day was built in full: build WAREHOUSE with this reconcile code first")
            report["build_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        report[f"horizon_{moment}_rows"] = kpi_horizon(engine, f"kpi-day-changes-{moment}")["rows"]
        report[f"horizon_{moment}_seconds"] = round(time.perf_counter() - started, 1)
        engine.dispose()  # DuckDB lets one process hold the file: the export below opens it
        with duckdb.connect(str(warehouse)) as conn:
            conn.execute(f"copy marts.kpi_results to '{directory / f'{moment}.parquet'}' (format parquet)")
    return report


def _changed_slices(before: Path, after: Path) -> dict:
    with duckdb.connect() as conn:
        conn.execute(f"create view before as select * from '{before}'")
        conn.execute(f"create view after as select * from '{after}'")
        conn.execute(
            f"""
            create table changed as
            select distinct {SLICE} from (
                (select {SLICE}, {ROW} from before except all select {SLICE}, {ROW} from after)
                union all
                (select {SLICE}, {ROW} from after except all select {SLICE}, {ROW} from before)
            )"""
        )
        conn.execute(f"create table slices as select distinct {SLICE} from after")

        def counted(by: str) -> dict:
            rows = conn.execute(
                f"""
                select {by}, count(*), count(changed.kpi_id)
                from slices left join changed using ({SLICE})
                group by {by} order by {by}"""
            ).fetchall()
            return {str(key): {"slices": total, "changed": changed} for key, total, changed in rows}

        total, changed = conn.execute(
            f"select count(*), count(changed.kpi_id) from slices left join changed using ({SLICE})"
        ).fetchone()
        return {
            "slices": total,
            "changed_slices": changed,
            "changed_share": round(changed / total, 3),
            "by_grain": counted("grain"),
            "by_period": counted("grain || ' ' || period_start"),
            "by_kpi": counted("kpi_id"),
        }


if __name__ == "__main__":
    main()
