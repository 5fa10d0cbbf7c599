"""How an incremental build's cost grows with the size of the day's change, against a full
build of the same landed data: where the two cross is where reconcile should stop updating
in place and build in full (`incremental.FULL_BUILD_SHARE`).

    .venv/bin/python -m benchmarks.incremental_scale WAREHOUSE [--every 100 20 10 4 2]

WAREHOUSE is a DuckDB file reconcile has built (the harness's prepare and reconcile stages
leave one). For each N in --every, a copy gets a working day in which every N-th Salesforce
lead changed upstream (`harness.land_a_working_day`, with new leads, MQLs and deals in
proportion), and is brought up to date twice, each in a fresh process on its own copy: as
reconcile would (`build_staging`), and with a full build forced. Prints one JSON line per N:
the records landed, what the build did, seconds and peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.harness import child_report, high_water_mib, land_a_working_day
from revops.reconcile.build import build_staging
from revops.warehouse import get_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--every", type=int, nargs="+", default=[100, 20, 10, 4, 2])
    parser.add_argument("--build", choices=["as_reconcile_would", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:  # a child: bring the copy up to date, once
        print(json.dumps(_build(args.warehouse, full=args.build == "full")))
        return
    for every in args.every:
        with tempfile.TemporaryDirectory(dir=args.warehouse.parent) as directory:
            landed = Path(directory) / "landed.duckdb"
            shutil.copy(args.warehouse, landed)
            engine = get_engine(f"duckdb:///{landed}")
            landed = land_a_working_day(engine, every)
            engine.dispose()
            report = {"every": every, "landed": landed}
            for build in ("as_reconcile_would", "full"):
                copy = Path(directory) / f"{build}.duckdb"
                shutil.copy(landed, copy)
                report[build] = child_report("benchmarks.incremental_scale", str(copy), "--build", build)
            print(json.dumps(report), flush=True)


def _build(warehouse: Path, full: bool) -> dict:
    engine = get_engine(f"duckdb:///{warehouse}")
    started = time.perf_counter()
    result = build_staging(engine, "benchmark-day-2", full=full)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(high_water_mib()),
        "update": result.update or "full",
    }


if __name__ == "__main__":
    main()
