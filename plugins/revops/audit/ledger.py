"""The run ledger: what went in, what came out, and how, for every run and every artifact.

Entries are only ever appended, and each carries the hash of its content and of the entry
before it, so editing or deleting any entry is detectable (`revops.audit.verify`). `details`
is canonical JSON (sorted keys) so it can be hashed and compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from datetime import UTC, datetime
from functools import cache

import duckdb
import sqlalchemy as sa

import revops
from revops.settings import PROJECT_ROOT
from revops.warehouse.schema import extract_batches, run_ledger

log = logging.getLogger(__name__)


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


GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "sequence",
    "kind",
    "run_id",
    "dag_id",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "code_version",
    "details",
    "outcome",
    "recorded_at",
    "previous_hash",
)
APPEND_ATTEMPTS = 20


def entry_hash(entry: dict) -> str:
    """sha256 over an entry's content and its predecessor's hash (canonical JSON)."""
    content = {name: entry[name] for name in HASHED_FIELDS}
    content["recorded_at"] = _iso(content["recorded_at"])
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def record_run(
    engine: sa.Engine,
    *,
    run_id: str,
    dag_id: str,
    logical_date: datetime | None,
    data_interval: tuple[datetime | None, datetime | None],
    details: dict,
    outcome: str,
    kind: str = "run",
) -> str:
    """Append one ledger entry, chained to the newest one; returns its id.

    Two writers may race for the next sequence number; the primary key lets only one win and
    the other retries on top of it. On the embedded DuckDB file another process may hold the
    lock for a moment (a task, the scheduler's listener): that is retried too.
    """
    entry = {
        "kind": kind,
        "run_id": run_id,
        "dag_id": dag_id,
        "logical_date": _iso(logical_date),
        "data_interval_start": _iso(data_interval[0]),
        "data_interval_end": _iso(data_interval[1]),
        "code_version": code_version(),
        "details": json.dumps(details, sort_keys=True, default=str),
        "outcome": outcome,
    }
    for attempt in range(APPEND_ATTEMPTS):
        try:
            return _append(engine, entry)
        except (sa.exc.IntegrityError, sa.exc.OperationalError, duckdb.IOException) as error:
            if attempt == APPEND_ATTEMPTS - 1:
                raise
            log.info("ledger append retried (%s)", type(error).__name__)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _append(engine: sa.Engine, entry: dict) -> str:
    with engine.begin() as conn:
        last = conn.execute(
            sa.select(run_ledger.c.sequence, run_ledger.c.entry_hash)
            .order_by(run_ledger.c.sequence.desc())
            .limit(1)
        ).first()
        chained = {
            **entry,
            "sequence": last.sequence + 1 if last else 1,
            "previous_hash": last.entry_hash if last else GENESIS_HASH,
            "recorded_at": datetime.now(UTC).replace(tzinfo=None),
        }
        digest = entry_hash(chained)
        conn.execute(run_ledger.insert().values(**chained, entry_hash=digest, entry_id=digest[:24]))
    return digest[:24]


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
