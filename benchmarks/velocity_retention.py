"""Retention of score velocity at scale: a year of daily velocity rows, pruned to the policy.

    .venv/bin/python -m benchmarks.velocity_retention [--prospects 1000000] [--days 365]

`marts.score_velocity` gains a row per prospect per day. This fills an embedded warehouse
with that many days (synthetic values, written in day order as the daily refresh writes
them), records one delivered scorecard that showed an old day, and times the product's
`apply_retention` with the configured policy: listing the days, deleting the old ones and
recording the ledger entry. Reported: the rows and the file's size before and after (after
DuckDB's checkpoint), the retention run's seconds, and a naive baseline measured in the same
run: the same days deleted one `delete ... where as_of = day` statement at a time. DuckDB
does not shrink its file; it reuses the freed blocks. So the next `--more-days` days are
then written both to the pruned warehouse and to a copy that was never pruned, and their
sizes compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from revops.audit.ledger import record_run
from revops.audit.retention import RetentionPolicy, apply_retention
from revops.warehouse import get_engine

NOW = datetime(2026, 12, 1)


def fill(engine: sa.Engine, prospects: int, days: int, newest: datetime = NOW) -> None:
    """`days` days of velocity rows for `prospects` prospects, the newest the day before
    `newest`."""
    with engine.begin() as conn:
        for day in range(days, 0, -1):  # oldest first, one day per statement, as refreshes write
            conn.execute(
                sa.text(
                    """
                    insert into marts.score_velocity
                        (as_of, prospect_id, score, change_7d, change_14d, model_change_points_14d,
                         created_at)
                    select :as_of, 'p' || i, i % 100, i % 7, i % 14, 0, :created
                    from range(:prospects) as t(i)
                    """
                ),
                {
                    "as_of": newest - timedelta(days=day),
                    "prospects": prospects,
                    "created": NOW - timedelta(days=400),
                },
            )


def record_scorecard(engine: sa.Engine, days: int) -> None:
    """A scorecard sent today that showed the oldest day but one: kept, being reproducible."""
    record_run(
        engine,
        kind="artifact",
        run_id="benchmark-scorecard",
        dag_id="revops_scorecard__sales_leader_weekly",
        logical_date=None,
        data_interval=(None, None),
        details={"input_batches": [], "velocity_as_of": NOW - timedelta(days=days - 1), "outputs": []},
        outcome="success",
    )


def rows_and_bytes(engine: sa.Engine, path: Path) -> tuple[int, int]:
    with engine.begin() as conn:
        conn.execute(sa.text("checkpoint"))
        rows = conn.execute(sa.text("select count(*) from marts.score_velocity")).scalar_one()
    return rows, path.stat().st_size


def naive_delete(engine: sa.Engine, days: list[datetime]) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        for day in days:
            conn.execute(sa.text("delete from marts.score_velocity where as_of = :d"), {"d": day})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--more-days", type=int, default=30)
    args = parser.parse_args()
    policy = RetentionPolicy.from_config()
    with tempfile.TemporaryDirectory() as directory:
        path, naive_path, unpruned_path = (
            Path(directory) / f"{n}.duckdb" for n in ("pruned", "naive", "unpruned")
        )
        engine = get_engine(f"duckdb:///{path}")
        started = time.perf_counter()
        fill(engine, args.prospects, args.days)
        record_scorecard(engine, args.days)
        filled_seconds = time.perf_counter() - started
        rows_before, bytes_before = rows_and_bytes(engine, path)
        engine.dispose()
        shutil.copy(path, naive_path)
        shutil.copy(path, unpruned_path)

        engine = get_engine(f"duckdb:///{path}")
        started = time.perf_counter()
        summary = apply_retention(engine, NOW, policy, "benchmark-retention", "revops_retention")
        retention_seconds = time.perf_counter() - started
        rows_after, bytes_after = rows_and_bytes(engine, path)

        naive = get_engine(f"duckdb:///{naive_path}")
        naive_seconds = naive_delete(naive, summary["purged_velocity_days"])
        naive.dispose()

        later = NOW + timedelta(days=args.more_days + 1)
        unpruned = get_engine(f"duckdb:///{unpruned_path}")
        for warehouse in (engine, unpruned):
            fill(warehouse, args.prospects, args.more_days, newest=later)
        (_, pruned_later), (_, unpruned_later) = (
            rows_and_bytes(engine, path),
            rows_and_bytes(unpruned, unpruned_path),
        )
        engine.dispose()
        unpruned.dispose()
    print(
        json.dumps(
            {
                "prospects": args.prospects,
                "days": args.days,
                "fill_seconds": round(filled_seconds, 1),
                "rows_before": rows_before,
                "rows_after": rows_after,
                "mib_before": round(bytes_before / 2**20),
                "mib_after": round(bytes_after / 2**20),
                "purged_days": len(summary["purged_velocity_days"]),
                "kept_for_reproducibility": len(summary["velocity_days_kept_for_reproducibility"]),
                "retention_seconds": round(retention_seconds, 2),
                "naive_delete_seconds": round(naive_seconds, 2),
                f"mib_after_{args.more_days}_more_days": round(pruned_later / 2**20),
                f"mib_after_{args.more_days}_more_days_unpruned": round(unpruned_later / 2**20),
            }
        )
    )


if __name__ == "__main__":
    main()
