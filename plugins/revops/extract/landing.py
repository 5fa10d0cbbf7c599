"""Landing extracted records in the raw layer as one append-only batch.

A batch is the unit of provenance: which source and object, which window, how many records,
the sha256 of its content, and whether it is complete. Records keep their payload as JSON
exactly as the source sent it (after header renaming for label-headed CSV exports).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from revops.warehouse import append_frame
from revops.warehouse.schema import extract_batches, raw_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """What the extract of one object produced, before it is landed."""

    source: str
    object: str
    records: list[dict]
    id_field: str
    extract_mode: str  # "full" snapshot or "incremental" changes
    window_start: datetime | None
    window_end: datetime | None
    origin: str
    status: str = "complete"
    status_reason: str | None = None
    deleted_field: str | None = None


@dataclass(frozen=True)
class LandedBatch:
    batch_id: str
    source: str
    object: str
    record_count: int
    content_sha256: str
    status: str
    already_landed: bool


def record_payload(record: dict) -> str:
    """Canonical JSON of a record (sorted keys), so equal records hash equally."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def land_batch(conn: sa.Connection, batch: Batch, run_id: str, extracted_at: datetime) -> LandedBatch:
    """Append `batch` to the raw layer, unless an identical batch is already there.

    Identity is (source, object, window, content hash): re-running an extract for the same
    window with the same data lands nothing new, so re-runs never duplicate.
    """
    payloads = [record_payload(r) for r in batch.records]
    content_sha256 = hashlib.sha256("\n".join(payloads).encode()).hexdigest()
    batch_id = _batch_id(batch, content_sha256)
    existing = conn.execute(
        sa.select(extract_batches.c.batch_id).where(extract_batches.c.batch_id == batch_id)
    ).first()
    if existing:
        log.info("%s.%s: batch %s already landed, nothing to do", batch.source, batch.object, batch_id)
        return _landed(batch, batch_id, content_sha256, already_landed=True)
    records = pd.DataFrame(
        {
            "batch_id": batch_id,
            "source": batch.source,
            "object": batch.object,
            "record_id": [_record_id(r, batch.id_field, n) for n, r in enumerate(batch.records)],
            "record_hash": [hashlib.sha256(p.encode()).hexdigest() for p in payloads],
            "is_deleted": [_is_deleted(r, batch.deleted_field) for r in batch.records],
            "payload": payloads,
        }
    )
    append_frame(conn, raw_records, records)
    conn.execute(
        extract_batches.insert().values(
            batch_id=batch_id,
            source=batch.source,
            object=batch.object,
            extract_mode=batch.extract_mode,
            run_id=run_id,
            extracted_at=extracted_at,
            window_start=batch.window_start,
            window_end=batch.window_end,
            record_count=len(batch.records),
            content_sha256=content_sha256,
            status=batch.status,
            status_reason=batch.status_reason,
            origin=batch.origin,
        )
    )
    log.info(
        "%s.%s: landed batch %s with %d records (%s)",
        batch.source,
        batch.object,
        batch_id,
        len(batch.records),
        batch.status,
    )
    return _landed(batch, batch_id, content_sha256, already_landed=False)


def _batch_id(batch: Batch, content_sha256: str) -> str:
    key = "|".join(
        [
            batch.source,
            batch.object,
            batch.extract_mode,
            str(batch.window_start),
            str(batch.window_end),
            batch.status,
            content_sha256,
        ]
    )
    return f"{batch.source}-{batch.object}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _record_id(record: dict, id_field: str, position: int) -> str:
    """The record's id; a record without one keeps its position so it can be quarantined."""
    value = record.get(id_field)
    return str(value) if value not in (None, "") else f"<missing id: row {position + 1}>"


def _is_deleted(record: dict, deleted_field: str | None) -> bool:
    if deleted_field is None:
        return False
    return str(record.get(deleted_field, "")).lower() == "true"


def _landed(batch: Batch, batch_id: str, sha: str, already_landed: bool) -> LandedBatch:
    return LandedBatch(
        batch_id=batch_id,
        source=batch.source,
        object=batch.object,
        record_count=len(batch.records),
        content_sha256=sha,
        status=batch.status,
        already_landed=already_landed,
    )
