"""What each KPI family costs the KPI DAG: the seconds to compute it, with every variant and
dimension, over the horizon the DAG keeps fresh (13 weeks, 13 months, 6 quarters) in every
scope it computes, on the synthetic world's CSV exports.

    .venv/bin/python -m benchmarks.kpi_families [--prospects 1500] [--postgres]

With --postgres the warehouse is a scratch database on the local PostgreSQL server instead
of an embedded DuckDB file. Prints one line per family, slowest first, with its seconds in
each scope (the periods and scopes are the DAG's own: `pipeline.horizon_periods` and
`horizon_scopes`), and the totals.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from revops.devtools.postgres import scratch_warehouse
from revops.kpis.engine import compute_kpis, current_build
from revops.kpis.registry import load_registry
from revops.pipeline import horizon_periods, horizon_scopes
from revops.synthetic.exports import write_csv_exports
from revops.synthetic.world import WorldConfig, generate_world
from tests.helpers import stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, default=1_500)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    world = generate_world(WorldConfig(n_prospects=args.prospects, seed=11))
    kind = "postgresql" if args.postgres else "duckdb"
    with tempfile.TemporaryDirectory() as directory, scratch_warehouse(kind, Path(directory)) as url:
        write_csv_exports(world, Path(directory) / "exports")
        engine, _ = stage(url, Path(directory) / "exports")
        seconds = _seconds_per_family(engine)
    scopes = sorted({key for family in seconds.values() for key in family})
    print(f"{'family':40s} " + " ".join(f"{key:>12s}" for key in scopes))
    for family, spent in sorted(seconds.items(), key=lambda item: -sum(item[1].values())):
        print(f"{family:40s} " + " ".join(f"{spent.get(key, 0.0):10.1f} s" for key in scopes))
    totals = [sum(family.get(key, 0.0) for family in seconds.values()) for key in scopes]
    print(f"{'total':40s} " + " ".join(f"{total:10.1f} s" for total in totals))


def _seconds_per_family(engine) -> dict[str, dict[str, float]]:
    """Seconds per family and scope, each KPI computed alone over the DAG's horizon."""
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    registry = load_registry().values()
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for scope, timezone in horizon_scopes():
        periods = horizon_periods(cutoff, timezone)
        for kpi in registry:
            started = time.perf_counter()
            compute_kpis(engine, periods, "benchmark", scope, kpi_ids=[kpi.id])
            seconds[kpi.family_id][scope.key] += time.perf_counter() - started
    return seconds


if __name__ == "__main__":
    main()
