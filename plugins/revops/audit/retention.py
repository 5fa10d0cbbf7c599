"""Retention for raw extracts and score velocity: purge what is old, but never what a
retained audit entry needs to reproduce its scorecard, and never today's data.

A purged batch keeps its metadata row in raw.extract_batches (status `purged`: its id,
counts and content hash stay readable) and loses its records. A purged day of score velocity
loses its rows in `marts.score_velocity` (a row per prospect, a million a day at 1M leads)
and `marts.engagement_trend`; the score history it was derived from stays, so any day can be
computed again (`refresh_velocity`). Scorecards older than the reproducible window whose
inputs go are named in a `retention` ledger entry, explicitly no longer reproducible;
`reproduce` refuses them with that reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from revops.audit.ledger import record_run
from revops.configuration import read_config
from revops.periods import naive_utc
from revops.warehouse import read_frame
from revops.warehouse.schema import engagement_trend, extract_batches, raw_records, score_velocity

RAW_BATCHES = "raw batches"


@dataclass(frozen=True)
class RetentionPolicy:
    raw_extract_days: int
    reproducible_days: int
    score_velocity_days: int

    @classmethod
    def from_config(cls) -> RetentionPolicy:
        config = read_config("retention")
        return cls(
            int(config["raw_extract_days"]),
            int(config["reproducible_days"]),
            int(config["score_velocity_days"]),
        )


@dataclass(frozen=True)
class Plan:
    """What one kind of input loses and keeps, and the scorecards each loss makes
    unreproducible."""

    purge: list
    kept_for_reproducibility: list
    lost: dict[str, str]  # entry id -> what of its inputs goes


def apply_retention(
    engine: sa.Engine, now: datetime, policy: RetentionPolicy, run_id: str, dag_id: str
) -> dict:
    """Purge what the policy allows as of `now`; returns what was purged and why it was safe."""
    with engine.connect() as conn:
        artifacts = read_frame(
            conn, "select entry_id, recorded_at, details from audit.run_ledger where kind = 'artifact'"
        )
        artifacts["details"] = artifacts["details"].map(json.loads)
        recent = artifacts[artifacts["recorded_at"] >= now - timedelta(days=policy.reproducible_days)]
        raw = _plan_raw(conn, now - timedelta(days=policy.raw_extract_days), artifacts, recent)
        velocity = _plan_velocity(conn, now - timedelta(days=policy.score_velocity_days), artifacts, recent)
    with engine.begin() as conn:
        _purge_raw(conn, raw.purge, run_id)
        _purge_velocity(conn, velocity.purge)
    entries = sorted({*raw.lost, *velocity.lost})
    lost = {entry: [plan.lost[entry] for plan in (raw, velocity) if entry in plan.lost] for entry in entries}
    summary = {
        "purged_batches": raw.purge,
        "kept_for_reproducibility": raw.kept_for_reproducibility,
        "purged_velocity_days": velocity.purge,
        "velocity_days_kept_for_reproducibility": velocity.kept_for_reproducibility,
        "no_longer_reproducible": sorted(lost),
        "lost_inputs": lost,
        "policy": {
            "raw_extract_days": policy.raw_extract_days,
            "reproducible_days": policy.reproducible_days,
            "score_velocity_days": policy.score_velocity_days,
        },
        "as_of": now,
    }
    record_run(
        engine,
        kind="retention",
        run_id=run_id,
        dag_id=dag_id,
        logical_date=now,
        data_interval=(None, now),
        details=summary,
        outcome="success",
    )
    return summary


def _plan_raw(conn: sa.Connection, cutoff: datetime, artifacts: pd.DataFrame, recent: pd.DataFrame) -> Plan:
    """Batches extracted before `cutoff`, but not the newest build's nor a recent scorecard's."""
    batches = read_frame(
        conn, "select batch_id, extracted_at from raw.extract_batches where status <> 'purged'"
    )
    newest_build = sa.text("select batch_ids from staging.builds order by built_at desc limit 1")
    live = json.loads(conn.execute(newest_build).scalar() or "[]")
    needs = {row.entry_id: _input_batches(row.details) for row in artifacts.itertuples()}
    protected = set(live).union(*(needs[entry] for entry in recent["entry_id"]))
    old = set(batches.loc[batches["extracted_at"] < cutoff, "batch_id"])
    purge = sorted(old - protected)
    lost = {entry: RAW_BATCHES for entry, ids in needs.items() if ids & set(purge)}
    return Plan(purge, sorted(old & protected), lost)


def _plan_velocity(
    conn: sa.Connection, cutoff: datetime, artifacts: pd.DataFrame, recent: pd.DataFrame
) -> Plan:
    """Velocity days before `cutoff`, but not the newest day nor a recent scorecard's."""
    days = {
        day
        for table in (score_velocity, engagement_trend)
        for day in conn.execute(sa.select(table.c.as_of).group_by(table.c.as_of)).scalars()
    }
    used = {row.entry_id: naive_utc(row.details.get("velocity_as_of")) for row in artifacts.itertuples()}
    protected = {used[entry] for entry in recent["entry_id"]} | ({max(days)} if days else set())
    old = {day for day in days if day < cutoff}
    purge = sorted(old - protected)
    lost = {entry: f"score velocity of {day:%Y-%m-%d}" for entry, day in used.items() if day in purge}
    return Plan(purge, sorted(old & protected), lost)


def _input_batches(details: dict) -> set[str]:
    return {batch["batch_id"] for batch in details.get("input_batches", [])}


def _purge_raw(conn: sa.Connection, purge: list[str], run_id: str) -> None:
    if not purge:
        return
    conn.execute(raw_records.delete().where(raw_records.c.batch_id.in_(purge)))
    conn.execute(
        extract_batches.update()
        .where(extract_batches.c.batch_id.in_(purge))
        .values(status="purged", status_reason=f"raw records purged by retention ({run_id})")
    )


def _purge_velocity(conn: sa.Connection, purge: list[datetime]) -> None:
    if not purge:
        return
    for table in (score_velocity, engagement_trend):
        conn.execute(table.delete().where(table.c.as_of.in_(purge)))


def purged_by(conn: sa.Connection, entry_id: str) -> dict | None:
    """The retention entry that made `entry_id` unreproducible, if one did, with what of the
    entry's inputs it purged (`lost`)."""
    rows = read_frame(
        conn, "select sequence, details from audit.run_ledger where kind = 'retention' order by sequence"
    )
    for row in rows.itertuples():
        details = json.loads(row.details)
        if entry_id in details["no_longer_reproducible"]:
            # Entries written before velocity retention name raw batches only.
            lost = details.get("lost_inputs", {}).get(entry_id, [RAW_BATCHES])
            return {"sequence": row.sequence, **details, "lost": lost}
    return None
