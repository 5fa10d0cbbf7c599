"""A new warehouse's first run, step by step, on PostgreSQL (what production runs) or DuckDB:
land the CSV exports, a full reconcile, the first score snapshot of each object (with its
backfill of field history) and the first velocity refresh.

    .venv/bin/python -m benchmarks.first_run [--prospects 1000000] [--duckdb | --into URL]

On the harness's synthetic world (its CSV exports and the score captures of its `snapshots`
stage, written to a temporary directory; not timed). The warehouse is a scratch database on
the local PostgreSQL server, dropped afterwards (with --duckdb, an embedded file; with --into,
the empty database at URL, kept for other benchmarks such as `postgres_planner`). Prints one
JSON line per step.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import read_score_captures, write_world
from revops.devtools.postgres import scratch_warehouse
from revops.reconcile.build import build_staging
from revops.snapshots.store import apply_snapshot
from revops.snapshots.velocity import VelocitySettings, refresh_velocity
from revops.warehouse import get_engine
from tests.helpers import land_exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, default=1_000_000)
    parser.add_argument("--duckdb", action="store_true")
    parser.add_argument("--into", metavar="URL", help="build in this empty database and keep it")
    args = parser.parse_args()
    kind = "duckdb" if args.duckdb else "postgresql"
    with tempfile.TemporaryDirectory() as directory:
        if args.into:
            first_run(args.into, args.prospects, Path(directory))
            return
        with scratch_warehouse(kind, Path(directory)) as url:
            first_run(url, args.prospects, Path(directory))


def first_run(url: str, prospects: int, world_dir: Path) -> None:
    """The world written to `world_dir`, then a first run into the warehouse at `url`, timed."""
    write_world(prospects, world_dir)
    captures = read_score_captures(world_dir)
    engine = get_engine(url)
    _timed("land", lambda: land_exports(engine, world_dir / "exports", "first-run"))
    _timed("reconcile", lambda: build_staging(engine, "first-run", full=True))
    for capture in captures:
        applied = _timed(
            f"snapshot {capture.source}.{capture.object}",
            lambda capture=capture: apply_snapshot(engine, capture, "first-run"),
        )
        counts = {"history_intervals": applied.history_intervals, "scores": applied.scores_changed}
        print(json.dumps(counts))
    settings = VelocitySettings.from_config()
    _timed("velocity", lambda: refresh_velocity(engine, captures[0].snapshot_at, settings))


def _timed(step: str, work: Callable):
    started = time.perf_counter()
    result = work()
    print(json.dumps({"step": step, "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return result


if __name__ == "__main__":
    main()
