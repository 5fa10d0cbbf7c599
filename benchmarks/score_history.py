"""Lead score history at scale: a year of daily snapshots of a million leads.

    .venv/bin/python -m benchmarks.score_history [--leads 1000000] [--days 365] [--keep DIR]

Every day is a full, narrow pull (every lead's id and score) applied through the product's
`apply_snapshot` to an embedded DuckDB warehouse. Each day a realistic share of leads
changes score (engagement: mostly small gains, some decay), a few leads arrive and a few are
deleted, and on one day a scoring-model change moves most scores at once (nobody configured
it: detection must find it). Reported:

- storage of the change-only store against full daily snapshots (rows, and bytes: the full
  snapshots' bytes are measured on a sample of days written to their own DuckDB file, then
  scaled to the year);
- time to apply one daily snapshot (median);
- time and peak memory to compute the weekly velocity for every lead (score changes, model
  changes, 7/14-day change, decay, 13-week trend), in a fresh process; against a naive
  7-day change on full snapshots (join of two whole days), measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from revops.snapshots.store import ScoreCapture, apply_snapshot, scores_as_of
from revops.snapshots.velocity import VelocitySettings, refresh_velocity
from revops.warehouse import get_engine
from revops.warehouse.load import read_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import child_report
from tests.helpers import add_prospects

FIRST_DAY = datetime(2025, 11, 3)
DAILY_CHANGE_SHARE = 0.02  # leads whose score moves on a given day
DAILY_NEW_SHARE = 0.0005  # new leads per day, as a share of the starting population
DAILY_DELETED_SHARE = 0.0002
STEPS, STEP_WEIGHTS = np.array([5, 10, 15, -5]), np.array([0.5, 0.3, 0.1, 0.1])
SAMPLE_DAYS = 7  # full snapshots actually written, to measure their bytes per day


class Population:
    """The leads of the simulated CRM and their scores, evolving day by day."""

    def __init__(self, leads: int, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.ids = self._new_ids(leads)
        self.scores = self.rng.choice(STEPS[:3], leads).astype(np.int64) * 2
        self.created = np.full(leads, np.datetime64(FIRST_DAY - timedelta(days=400), "us"))

    def _new_ids(self, count: int) -> np.ndarray:
        ids = np.array([f"00Q{n:012d}" for n in range(self.next_id, self.next_id + count)], dtype=object)
        self.next_id += count
        return ids

    def advance(self, day: datetime, model_change: bool) -> None:
        n = len(self.ids)
        if model_change:
            moved = self.rng.random(n) < 0.8
            self.scores[moved] += 10
        moving = self.rng.random(n) < DAILY_CHANGE_SHARE
        self.scores[moving] += self.rng.choice(STEPS, moving.sum(), p=STEP_WEIGHTS)
        np.clip(self.scores, 0, None, out=self.scores)
        kept = self.rng.random(n) >= DAILY_DELETED_SHARE
        arriving = int(self.rng.poisson(DAILY_NEW_SHARE * n))
        self.ids = np.concatenate([self.ids[kept], self._new_ids(arriving)])
        self.scores = np.concatenate([self.scores[kept], np.full(arriving, 10)])
        self.created = np.concatenate([self.created[kept], np.full(arriving, np.datetime64(day, "us"))])

    def capture(self, at: datetime) -> ScoreCapture:
        return ScoreCapture(
            "salesforce", "Lead", at, pd.DataFrame({"record_id": self.ids, "score": self.scores})
        )


def build_store(directory: Path, leads: int, days: int) -> dict:
    engine = get_engine(f"duckdb:///{directory / 'store.duckdb'}")
    population = Population(leads)
    model_change_day = days // 2
    apply_seconds, full_snapshot_rows = [], 0
    sample = duckdb.connect(str(directory / "full_snapshots_sample.duckdb"))
    sample.execute("create table full_snapshots (snapshot_date date, record_id varchar, score double)")
    for day_number in range(days):
        at = FIRST_DAY + timedelta(days=day_number)
        if day_number:
            population.advance(at, model_change=day_number == model_change_day)
        captured = population.capture(at)
        started = time.perf_counter()
        apply_snapshot(engine, captured, f"day-{day_number}")
        apply_seconds.append(time.perf_counter() - started)
        full_snapshot_rows += len(captured.scores)
        if day_number < SAMPLE_DAYS:
            frame = captured.scores.assign(snapshot_date=at.date())  # noqa: F841 - read by DuckDB
            sample.execute("insert into full_snapshots select snapshot_date, record_id, score from frame")
        if day_number % 30 == 0:
            print(
                f"  day {day_number}: {len(captured.scores):,} leads, last apply {apply_seconds[-1]:.2f}s",
                flush=True,
            )
    sample.execute("checkpoint")
    sample.close()
    created = dict(zip(population.ids, population.created, strict=True))
    add_prospects(engine, created, source="salesforce", object_name="Lead", region="EMEA")
    engine.dispose()
    with duckdb.connect(str(directory / "store.duckdb")) as conn:
        conn.execute("checkpoint")
        intervals = conn.execute("select count(*) from snapshots.score_intervals").fetchone()[0]
        store_bytes = _table_bytes(conn, "snapshots.score_intervals")
    with duckdb.connect(str(directory / "full_snapshots_sample.duckdb")) as conn:
        sample_bytes = _table_bytes(conn, "full_snapshots")
    sampled_rows = full_snapshot_rows if days <= SAMPLE_DAYS else None
    return {
        "leads_at_start": leads,
        "leads_at_end": len(population.ids),
        "days": days,
        "model_change_day": (FIRST_DAY + timedelta(days=model_change_day)).date().isoformat(),
        "interval_rows": intervals,
        "full_snapshot_rows": full_snapshot_rows,
        "row_ratio": full_snapshot_rows / intervals,
        "store_bytes": store_bytes,
        "full_snapshot_bytes_estimate": sample_bytes * days / min(days, SAMPLE_DAYS),
        "sampled_full_rows": sampled_rows,
        "median_apply_seconds": statistics.median(apply_seconds),
        "total_apply_seconds": sum(apply_seconds),
        "as_of": (FIRST_DAY + timedelta(days=days - 1)).isoformat(),
    }


def _table_bytes(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Bytes of a table's compressed column segments (what it takes on disk)."""
    blocks = conn.execute(
        "select count(distinct block_id) from pragma_storage_info(?) where persistent", [table]
    ).fetchone()[0]
    block_size = conn.execute("select block_size from pragma_database_size()").fetchone()[0]
    return blocks * block_size


def measure_velocity(directory: Path, as_of: datetime) -> dict:
    """The product's velocity, then the naive full-snapshot 7-day change, same warehouse."""
    engine = get_engine(f"duckdb:///{directory / 'store.duckdb'}")
    settings = replace(VelocitySettings.from_config(), model_changes=())  # detection must find it
    started = time.perf_counter()
    summary = refresh_velocity(engine, as_of, settings)
    velocity_seconds = time.perf_counter() - started
    velocity_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the checks
    engine.dispose()
    with duckdb.connect(str(directory / "store.duckdb")) as conn:
        for day in (as_of, as_of - timedelta(days=7)):  # what a full-snapshot store would hold
            conn.execute(
                f"create or replace table snapshot_{day:%Y%m%d} as select record_id, score "
                "from snapshots.score_intervals where valid_from <= ? and (valid_to is null or valid_to > ?)",
                [day, day],
            )
        started = time.perf_counter()
        conn.execute(
            f"create or replace table naive_change as select t.record_id, t.score - coalesce(w.score, 0) "
            f"as change_7d from snapshot_{as_of:%Y%m%d} t left join "
            f"snapshot_{as_of - timedelta(days=7):%Y%m%d} w using (record_id)"
        )
        naive_seconds = time.perf_counter() - started
        agree = conn.execute(
            "select count(*) from naive_change n join marts.score_velocity v on v.prospect_id = n.record_id "
            "where v.as_of = ? and v.change_7d = n.change_7d",
            [as_of],
        ).fetchone()[0]
    return {
        "velocity_seconds": velocity_seconds,
        **measure_next_day(directory, as_of, settings),
        "naive_7d_change_seconds": naive_seconds,
        "prospects_scored": summary.prospects_scored,
        "surging_prospects": summary.surging_prospects,
        "model_changes": summary.model_changes,
        "naive_agrees_for": agree,
        "peak_rss_mib": velocity_peak_mib,
        "peak_rss_mib_with_checks": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_next_day(directory: Path, as_of: datetime, settings: VelocitySettings) -> dict:
    """The daily run after that: one more snapshot with 1% of the scores moved and a few
    leads deleted, then the refresh, which rebuilds only the prospects it touched; checked
    against a full rebuild."""
    engine = get_engine(f"duckdb:///{directory / 'store.duckdb'}")
    with engine.connect() as conn:
        scores = scores_as_of(conn, as_of, "salesforce", "Lead")[["record_id", "score"]]
    rng = np.random.default_rng(11)
    moved = rng.random(len(scores)) < 0.01
    scores.loc[moved, "score"] += 5
    scores = scores[rng.random(len(scores)) >= DAILY_DELETED_SHARE].reset_index(drop=True)
    next_day = as_of + timedelta(days=1)
    apply_snapshot(engine, ScoreCapture("salesforce", "Lead", next_day, scores), "next-day")
    started = time.perf_counter()
    daily = refresh_velocity(engine, next_day, settings)
    daily_seconds = time.perf_counter() - started
    written = _velocity_outputs(engine, next_day)
    started = time.perf_counter()
    refresh_velocity(engine, next_day, settings, full=True)
    full_seconds = time.perf_counter() - started
    return {
        "next_day_scores_moved": int(moved.sum()),
        "next_day_prospects_rebuilt": daily.changes_rebuilt_for,
        "next_day_seconds": daily_seconds,
        "next_day_full_rebuild_seconds": full_seconds,
        "next_day_equals_full_rebuild": _velocity_outputs(engine, next_day) == written,
    }


def _velocity_outputs(engine, as_of: datetime) -> list[int]:
    """A digest of every score change, and of velocity and trend as of `as_of`: the sum of
    the rows' hashes, which does not depend on their order."""
    queries = [
        "select prospect_id, changed_at, delta, kind from marts.score_changes",
        "select * from marts.score_velocity where as_of = :as_of",
        "select * from marts.engagement_trend where as_of = :as_of",
    ]
    with engine.connect() as conn:
        frames = [read_frame(conn, query, {"as_of": as_of}) for query in queries]
    return [int(pd.util.hash_pandas_object(frame, index=False).sum()) for frame in frames]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the store in this directory and keep it (store.duckdb, with the measured next day)",
    )
    parser.add_argument("--velocity-only", type=Path, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.velocity_only:
        print(json.dumps(measure_velocity(args.velocity_only, datetime.fromisoformat(args.as_of))))
        return
    kept = contextlib.nullcontext(args.keep) if args.keep else None
    with kept or tempfile.TemporaryDirectory(prefix="score-history-") as chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        print(f"Applying {args.days} daily snapshots of {args.leads:,} leads ...", flush=True)
        store = build_store(directory, args.leads, args.days)
        velocity = child_report(
            "benchmarks.score_history", "--velocity-only", str(directory), "--as-of", store["as_of"]
        )
    report(store, velocity)


def report(store: dict, velocity: dict) -> None:
    print(json.dumps({**store, **velocity}, indent=2, default=str))
    print(
        f"\nStorage: {store['interval_rows']:,} intervals vs "
        f"{store['full_snapshot_rows']:,} full-snapshot rows "
        f"({store['row_ratio']:.1f}x fewer rows); {store['store_bytes'] / 2**20:,.0f} MiB vs "
        f"~{store['full_snapshot_bytes_estimate'] / 2**20:,.0f} MiB "
        f"({store['full_snapshot_bytes_estimate'] / store['store_bytes']:.1f}x smaller)."
    )
    print(
        f"Daily snapshot apply: median {store['median_apply_seconds']:.2f}s "
        f"({store['leads_at_end']:,} leads)."
    )
    print(
        f"Weekly velocity for {velocity['prospects_scored']:,} leads: {velocity['velocity_seconds']:.1f}s "
        f"(naive 7-day change from two full snapshots: {velocity['naive_7d_change_seconds']:.2f}s, "
        f"{velocity['velocity_seconds'] / velocity['naive_7d_change_seconds']:.1f}x); "
        f"peak memory {velocity['peak_rss_mib']:,.0f} MiB."
    )
    print(
        f"The next day ({velocity['next_day_scores_moved']:,} scores moved): the refresh rebuilt "
        f"{velocity['next_day_prospects_rebuilt']:,} prospects' changes in "
        f"{velocity['next_day_seconds']:.1f}s, "
        f"against {velocity['next_day_full_rebuild_seconds']:.1f}s for a full rebuild "
        f"({velocity['next_day_full_rebuild_seconds'] / velocity['next_day_seconds']:.1f}x); "
        f"same results: {velocity['next_day_equals_full_rebuild']}."
    )


if __name__ == "__main__":
    main()
