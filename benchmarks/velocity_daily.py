"""Daily velocity refreshes on a built warehouse: each day one more Salesforce lead snapshot
with 1% of the scores moved, then the snapshot DAG's velocity refresh, which rebuilds only the
prospects that day touched. Times the refresh and each of its steps.

    .venv/bin/python -m benchmarks.velocity_daily URL [--days 4]

URL is a warehouse a first run has filled (`benchmarks.first_run --into URL`, or a DuckDB file
as `duckdb:///path`); each day is written to it. Prints one JSON line per day.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from datetime import timedelta

import numpy as np
import sqlalchemy as sa

from revops.snapshots.store import ScoreCapture, apply_snapshot, scores_as_of
from revops.snapshots.velocity import VelocitySettings, refresh_velocity
from revops.warehouse import get_engine

MOVED_SHARE = 0.01
STEP = re.compile(r"score velocity: (.+) in ([\d.]+)s")


class _Steps(logging.Handler):
    """Collects the refresh's own step timings from its log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if found := STEP.match(record.getMessage()):
            self.seconds[found[1]] = float(found[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--days", type=int, default=4)
    args = parser.parse_args()
    engine, settings = get_engine(args.url), VelocitySettings.from_config()
    velocity_log = logging.getLogger("revops.snapshots.velocity")
    velocity_log.setLevel(logging.INFO)
    for day in range(args.days):
        steps = _Steps()
        velocity_log.addHandler(steps)
        print(json.dumps(next_day(engine, settings, seed=day) | {"steps": steps.seconds}), flush=True)
        velocity_log.removeHandler(steps)


def next_day(engine: sa.Engine, settings: VelocitySettings, seed: int) -> dict:
    """The day after the latest Salesforce lead snapshot: its capture applied, then the refresh."""
    with engine.connect() as conn:
        latest = "select max(snapshot_at) from snapshots.snapshot_runs where source = 'salesforce'"
        last = conn.execute(sa.text(latest)).scalar_one()
        scores = scores_as_of(conn, last, "salesforce", "Lead")[["record_id", "score"]]
    moved = np.random.default_rng(seed).random(len(scores)) < MOVED_SHARE
    scores.loc[moved, "score"] += 5
    day = last + timedelta(days=1)
    started = time.perf_counter()
    apply_snapshot(engine, ScoreCapture("salesforce", "Lead", day, scores), "velocity-daily")
    applied = time.perf_counter() - started
    started = time.perf_counter()
    summary = refresh_velocity(engine, day, settings)
    return {
        "day": day.isoformat(),
        "scores_moved": int(moved.sum()),
        "apply_seconds": round(applied, 1),
        "refresh_seconds": round(time.perf_counter() - started, 1),
        "prospects_rebuilt": summary.changes_rebuilt_for,
    }


if __name__ == "__main__":
    main()
