"""Daily velocity refreshes on a built warehouse: each day one more Salesforce lead snapshot
with 1% of the scores moved, then the snapshot DAG's velocity refresh, which rebuilds only the
prospects that day touched. Times the refresh and each of its steps. (The harness's
`daily_snapshot` stage runs the same day for both CRMs' objects.)

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
from revops.warehouse.schema import snapshot_runs

MOVED_SHARE = 0.01
LEADS = ("salesforce", "Lead")
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


def next_day(
    engine: sa.Engine, settings: VelocitySettings, seed: int, objects: tuple[tuple[str, str], ...] = (LEADS,)
) -> dict:
    """The day after the latest snapshot of `objects`: each one's pull, with 1% of its scores
    moved, applied, then the refresh. The pulls are extraction and are read before the clock."""
    with engine.connect() as conn:
        latest = sa.select(sa.func.max(snapshot_runs.c.snapshot_at)).where(
            sa.or_(*(sa.and_(snapshot_runs.c.source == s, snapshot_runs.c.object == o) for s, o in objects))
        )
        last = conn.execute(latest).scalar_one()
        pulls = {key: scores_as_of(conn, last, *key)[["record_id", "score"]] for key in objects}
    rng, moved = np.random.default_rng(seed), 0
    for scores in pulls.values():
        moving = (rng.random(len(scores)) < MOVED_SHARE) & scores["score"].notna()
        scores.loc[moving, "score"] += 5
        moved += int(moving.sum())
    day = last + timedelta(days=1)
    started = time.perf_counter()
    for (source, object_name), scores in pulls.items():
        apply_snapshot(engine, ScoreCapture(source, object_name, day, scores), "velocity-daily")
    applied = time.perf_counter() - started
    started = time.perf_counter()
    summary = refresh_velocity(engine, day, settings)
    return {
        "day": day.isoformat(),
        "scores_moved": moved,
        "apply_seconds": round(applied, 3),
        "refresh_seconds": round(time.perf_counter() - started, 3),
        "prospects_rebuilt": summary.changes_rebuilt_for,
    }


if __name__ == "__main__":
    main()
