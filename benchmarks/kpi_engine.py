"""KPI engine speed: every published KPI (variants included) for one month, total and every
allowed dimension, against one full scan of the staging tables the KPIs read.

    .venv/bin/python -m benchmarks.kpi_engine [--prospects 100000 1000000]

Staging is built once per size through the real path (CSV exports -> raw -> reconcile); its
time is reported too, but the ratio is about the engine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from revops.kpis.engine import compute_kpis
from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.reconcile.build import build_staging
from revops.synthetic.exports import write_csv_exports
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import land_exports

STAGING_TABLES = (
    "prospects",
    "prospect_stages",
    "stage_first_entries",
    "opportunities",
    "opportunity_stages",
)
MONTH = period_containing("month", date(2026, 9, 1))


def full_scan_seconds(engine: sa.Engine) -> float:
    """Read every row and column of the staging tables the KPIs read, once."""
    started = time.perf_counter()
    with engine.connect() as conn:
        duck = conn.connection.dbapi_connection
        for name in STAGING_TABLES:
            duck.execute(f"select * from staging.{name}").to_arrow_table()
    return time.perf_counter() - started


def measure(prospects: int, directory: Path) -> dict:
    world = generate_world(WorldConfig(n_prospects=prospects, seed=5))
    write_csv_exports(world, directory / "exports")
    engine = get_engine(f"duckdb:///{directory / 'warehouse.duckdb'}")
    land_exports(engine, directory / "exports")
    started = time.perf_counter()
    build_staging(engine, "benchmark")
    reconcile_seconds = time.perf_counter() - started
    scan = min(full_scan_seconds(engine) for _ in range(3))
    started = time.perf_counter()
    rows = compute_kpis(engine, [MONTH], "benchmark")
    kpi_seconds = time.perf_counter() - started
    with engine.connect() as conn:
        leads = conn.execute(sa.text("select count(*) from staging.prospects")).scalar_one()
    return {
        "prospects": leads,
        "reconcile": reconcile_seconds,
        "scan": scan,
        "kpis": kpi_seconds,
        "rows": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prospects", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    kpis = len(load_registry())
    print(f"{kpis} KPIs, one month, total + every allowed dimension\n")
    print("| Prospects | Result rows | Full scan (s) | KPIs (s) | KPIs / scan | Reconcile (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.prospects:
        with tempfile.TemporaryDirectory() as scratch:
            r = measure(size, Path(scratch))
        print(
            f"| {r['prospects']:,} | {r['rows']:,} | {r['scan']:.2f} | {r['kpis']:.2f} | "
            f"{r['kpis'] / r['scan']:.1f}x | {r['reconcile']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
