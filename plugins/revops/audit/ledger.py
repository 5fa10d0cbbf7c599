"""The run ledger: one entry per DAG run, saying what went in, what came out, and how.

Entries are only ever appended. `details` is canonical JSON (sorted keys) so it can be
hashed and compared.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from functools import cache

import sqlalchemy as sa

import revops
from revops.settings import PROJECT_ROOT
from revops.warehouse.schema import extract_batches, run_ledger


@cache
def code_version() -> str:
    """Package version plus the git commit when the code runs from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"{revops.__version__}+{commit}"


def record_run(
    engine: sa.Engine,
    *,
    run_id: str,
    dag_id: str,
    logical_date: datetime | None,
    data_interval: tuple[datetime | None, datetime | None],
    details: dict,
    outcome: str,
) -> str:
    """Append one ledger entry; returns its id."""
    recorded_at = datetime.now(UTC).replace(tzinfo=None)
    body = json.dumps(details, sort_keys=True, default=str)
    entry_id = hashlib.sha256(f"{dag_id}|{run_id}|{recorded_at.isoformat()}|{body}".encode()).hexdigest()[:24]
    with engine.begin() as conn:
        conn.execute(
            run_ledger.insert().values(
                entry_id=entry_id,
                run_id=run_id,
                dag_id=dag_id,
                logical_date=_iso(logical_date),
                data_interval_start=_iso(data_interval[0]),
                data_interval_end=_iso(data_interval[1]),
                code_version=code_version(),
                details=body,
                outcome=outcome,
                recorded_at=recorded_at,
            )
        )
    return entry_id


def batch_provenance(conn: sa.Connection, batch_ids: list[str]) -> list[dict]:
    """Id, object, row count and content hash of each batch, for a ledger entry."""
    rows = conn.execute(
        sa.select(
            extract_batches.c.batch_id,
            extract_batches.c.source,
            extract_batches.c.object,
            extract_batches.c.record_count,
            extract_batches.c.content_sha256,
        )
        .where(extract_batches.c.batch_id.in_(batch_ids))
        .order_by(extract_batches.c.batch_id)
    )
    return [dict(row._mapping) for row in rows]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
