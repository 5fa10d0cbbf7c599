"""Retention for raw extracts: purge old batches, but never the ones a retained audit entry
needs to reproduce its scorecard, and never today's data.

A purged batch keeps its metadata row in raw.extract_batches (status `purged`: its id,
counts and content hash stay readable) and loses its records. Scorecards older than the
reproducible window whose batches go are named in a `retention` ledger entry, explicitly no
longer reproducible; `reproduce` refuses them with that reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from revops.audit.ledger import record_run
from revops.configuration import read_config
from revops.warehouse import read_frame
from revops.warehouse.schema import extract_batches, raw_records


@dataclass(frozen=True)
class RetentionPolicy:
    raw_extract_days: int
    reproducible_days: int

    @classmethod
    def from_config(cls) -> RetentionPolicy:
        config = read_config("retention")
        return cls(int(config["raw_extract_days"]), int(config["reproducible_days"]))


def apply_retention(
    engine: sa.Engine, now: datetime, policy: RetentionPolicy, run_id: str, dag_id: str
) -> dict:
    """Purge what the policy allows as of `now`; returns what was purged and why it was safe."""
    with engine.connect() as conn:
        batches = read_frame(
            conn, "select batch_id, extracted_at from raw.extract_batches where status <> 'purged'"
        )
        artifacts = read_frame(
            conn, "select entry_id, recorded_at, details from audit.run_ledger where kind = 'artifact'"
        )
        live = json.loads(
            conn.execute(
                sa.text("select batch_ids from staging.builds order by built_at desc limit 1")
            ).scalar()
            or "[]"
        )
    needs = {
        row.entry_id: {b["batch_id"] for b in json.loads(row.details)["input_batches"]}
        for row in artifacts.itertuples()
    }
    recent = set(
        artifacts.loc[artifacts["recorded_at"] >= now - timedelta(days=policy.reproducible_days), "entry_id"]
    )
    protected = set(live).union(*(needs[e] for e in recent)) if recent else set(live)
    old = batches.loc[batches["extracted_at"] < now - timedelta(days=policy.raw_extract_days), "batch_id"]
    purge = sorted(set(old) - protected)
    lost = sorted(entry for entry, ids in needs.items() if ids & set(purge))
    if purge:
        with engine.begin() as conn:
            conn.execute(raw_records.delete().where(raw_records.c.batch_id.in_(purge)))
            conn.execute(
                extract_batches.update()
                .where(extract_batches.c.batch_id.in_(purge))
                .values(status="purged", status_reason=f"raw records purged by retention ({run_id})")
            )
    summary = {
        "purged_batches": purge,
        "kept_for_reproducibility": sorted(set(old) & protected),
        "no_longer_reproducible": lost,
        "policy": {
            "raw_extract_days": policy.raw_extract_days,
            "reproducible_days": policy.reproducible_days,
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


def purged_by(conn: sa.Connection, entry_id: str) -> dict | None:
    """The retention entry that made `entry_id` unreproducible, if one did."""
    rows = read_frame(
        conn, "select sequence, details from audit.run_ledger where kind = 'retention' order by sequence"
    )
    for row in rows.itertuples():
        details = json.loads(row.details)
        if entry_id in details["no_longer_reproducible"]:
            return {"sequence": row.sequence, **details}
    return None
