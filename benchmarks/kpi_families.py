"""What each KPI family costs the KPI DAG: the seconds to compute it, with every variant and
dimension, over the horizon the DAG keeps fresh (13 weeks, 13 months, 6 quarters), for one
scope, on the synthetic world's CSV exports.

    .venv/bin/python -m benchmarks.kpi_families [--prospects 1500] [--postgres]

With --postgres the warehouse is a scratch database on the local PostgreSQL server instead
of an embedded DuckDB file. Prints one line per family, slowest first, and the total.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from revops.devtools.postgres import scratch_warehouse
from revops.kpis.engine import compute_kpis
from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.pipeline import KPI_HORIZON
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
        seconds = _seconds_per_family(engine, world.config.as_of.date())
    for family, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"{family:40s} {spent:6.1f} s")
    print(f"{'total':40s} {sum(seconds.values()):6.1f} s")


def _seconds_per_family(engine, as_of) -> dict[str, float]:
    periods = [
        period
        for grain, count in KPI_HORIZON.items()
        for period in period_containing(grain, as_of).previous().history(count)
    ]
    seconds: dict[str, float] = defaultdict(float)
    for kpi_id in load_registry():
        started = time.perf_counter()
        compute_kpis(engine, periods, "benchmark", kpi_ids=[kpi_id])
        seconds[kpi_id.split(".")[0]] += time.perf_counter() - started
    return seconds


if __name__ == "__main__":
    main()
