"""Landing extracted records in the raw layer as append-only batches.

A batch is the unit of provenance: one object from one source for one window, with its
record count, the sha256 of its content, and whether it is complete. Pages are written as
they arrive (memory stays flat); the batch row and the new watermark are written last, in
one transaction, so a crash in between leaves records that no complete batch owns: reconcile
ignores them and the watermark has not moved, so a re-run loses and duplicates nothing.

- A **full** batch is a snapshot: every record, no de-duplication. Landing a snapshot
  identical to the newest one lands nothing.
- An **incremental** batch holds changes: a record whose (id, version) a complete batch
  already holds is skipped, so overlapping windows never duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from revops.warehouse import append_frame
from revops.warehouse.schema import extract_batches, raw_records, watermarks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSpec:
    """What is being extracted: object, window and how its records are keyed."""

    source: str
    object: str
    extract_mode: str  # "full" snapshot or "incremental" changes
    window_start: datetime | None
    window_end: datetime | None
    origin: str
    id_field: str
    version_field: str | None = None  # e.g. SystemModstamp; None: the record's hash
    deleted_field: str | None = None  # e.g. IsDeleted / archived


@dataclass(frozen=True)
class LandedBatch:
    batch_id: str
    source: str
    object: str
    record_count: int
    records_seen: int
    content_sha256: str
    status: str
    status_reason: str | None = None
    already_landed: bool = False


def record_payload(record: dict) -> str:
    """Canonical JSON of a record (sorted keys), so equal records hash equally."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def batch_content_sha256(payloads: Iterable[str]) -> str:
    """A batch's content hash: its records' payloads, one per line, in landing order."""
    digest = hashlib.sha256()
    for payload in payloads:
        digest.update(payload.encode() + b"\n")
    return digest.hexdigest()


class BatchWriter:
    """Streams pages of one extract into the raw layer, then completes or fails the batch."""

    def __init__(self, engine: sa.Engine, spec: BatchSpec, run_id: str):
        self.engine = engine
        self.spec = spec
        self.run_id = run_id
        self.batch_id = f"{spec.source}-{spec.object}-{uuid.uuid4().hex[:16]}"
        self.records_seen = 0
        self.records_landed = 0
        self._digest = hashlib.sha256()
        self._started_at = _now()

    def write_page(self, records: list[dict]) -> int:
        """Land one page; returns how many of its records were new."""
        if not records:
            return 0
        frame = self._frame(records)
        self.records_seen += len(frame)
        with self.engine.begin() as conn:
            if self.spec.extract_mode == "incremental":
                frame = _drop_known_versions(conn, self.spec, frame)
            append_frame(conn, raw_records, frame)
        for payload in frame["payload"]:
            self._digest.update(payload.encode() + b"\n")
        self.records_landed += len(frame)
        return len(frame)

    def complete(self, high_water: datetime | None) -> LandedBatch:
        """Record the batch as complete and move the watermark, atomically."""
        with self.engine.begin() as conn:
            self._insert_batch(conn, "complete", None)
            if high_water is not None:
                _set_watermark(conn, self.spec, high_water, self.batch_id)
        log.info(
            "%s.%s: batch %s complete, %d new of %d records seen",
            self.spec.source,
            self.spec.object,
            self.batch_id,
            self.records_landed,
            self.records_seen,
        )
        return self._landed("complete", None)

    def fail(self, reason: str) -> LandedBatch:
        """Record the batch as incomplete, with why; the watermark stays where it was."""
        with self.engine.begin() as conn:
            self._insert_batch(conn, "incomplete", reason)
        log.error("%s.%s: batch %s INCOMPLETE: %s", self.spec.source, self.spec.object, self.batch_id, reason)
        return self._landed("incomplete", reason)

    def _frame(self, records: list[dict]) -> pd.DataFrame:
        spec = self.spec
        payloads = [record_payload(r) for r in records]
        hashes = [hashlib.sha256(p.encode()).hexdigest() for p in payloads]
        position = self.records_seen
        return pd.DataFrame(
            {
                "batch_id": self.batch_id,
                "source": spec.source,
                "object": spec.object,
                "record_id": [_record_id(r, spec.id_field, position + n) for n, r in enumerate(records)],
                "record_version": [
                    str(r.get(spec.version_field)) if spec.version_field else h
                    for r, h in zip(records, hashes, strict=True)
                ],
                "record_hash": hashes,
                "is_deleted": [_is_deleted(r, spec.deleted_field) for r in records],
                "payload": payloads,
            }
        )

    def _insert_batch(self, conn: sa.Connection, status: str, reason: str | None) -> None:
        conn.execute(
            extract_batches.insert().values(
                batch_id=self.batch_id,
                source=self.spec.source,
                object=self.spec.object,
                extract_mode=self.spec.extract_mode,
                run_id=self.run_id,
                extracted_at=self._started_at,
                window_start=self.spec.window_start,
                window_end=self.spec.window_end,
                record_count=self.records_landed,
                records_seen=self.records_seen,
                content_sha256=self._digest.hexdigest(),
                status=status,
                status_reason=reason,
                origin=self.spec.origin,
            )
        )

    def _landed(self, status: str, reason: str | None) -> LandedBatch:
        return LandedBatch(
            batch_id=self.batch_id,
            source=self.spec.source,
            object=self.spec.object,
            record_count=self.records_landed,
            records_seen=self.records_seen,
            content_sha256=self._digest.hexdigest(),
            status=status,
            status_reason=reason,
        )


def land_snapshot(engine: sa.Engine, spec: BatchSpec, records: list[dict], run_id: str) -> LandedBatch:
    """Land a full snapshot, unless it is identical to the newest complete snapshot."""
    content = batch_content_sha256(record_payload(r) for r in records)

    with engine.connect() as conn:
        newest = conn.execute(
            sa.select(extract_batches.c.batch_id, extract_batches.c.content_sha256)
            .where(
                (extract_batches.c.source == spec.source)
                & (extract_batches.c.object == spec.object)
                & (extract_batches.c.extract_mode == "full")
                & (extract_batches.c.status == "complete")
            )
            .order_by(extract_batches.c.extracted_at.desc())
            .limit(1)
        ).first()
    if newest is not None and newest.content_sha256 == content:
        log.info(
            "%s.%s: same snapshot as batch %s, nothing to land", spec.source, spec.object, newest.batch_id
        )
        return LandedBatch(
            newest.batch_id,
            spec.source,
            spec.object,
            len(records),
            len(records),
            content,
            "complete",
            None,
            already_landed=True,
        )
    writer = BatchWriter(engine, spec, run_id)
    writer.write_page(records)
    return writer.complete(high_water=None)


def read_watermark(engine: sa.Engine, source: str, object_name: str) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(watermarks.c.high_water).where(
                (watermarks.c.source == source) & (watermarks.c.object == object_name)
            )
        ).scalar_one_or_none()


def _set_watermark(conn: sa.Connection, spec: BatchSpec, high_water: datetime, batch_id: str) -> None:
    key = (watermarks.c.source == spec.source) & (watermarks.c.object == spec.object)
    conn.execute(watermarks.delete().where(key))
    conn.execute(
        watermarks.insert().values(
            source=spec.source,
            object=spec.object,
            high_water=high_water,
            batch_id=batch_id,
            updated_at=_now(),
        )
    )


def _drop_known_versions(conn: sa.Connection, spec: BatchSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Records whose (id, version) a complete batch already holds are not landed again."""
    frame = frame.drop_duplicates(["record_id", "record_version"])
    ids = frame["record_id"].tolist()
    known = set()
    for start in range(0, len(ids), 1000):
        rows = conn.execute(
            sa.select(raw_records.c.record_id, raw_records.c.record_version)
            .join(extract_batches, extract_batches.c.batch_id == raw_records.c.batch_id)
            .where(
                (raw_records.c.source == spec.source)
                & (raw_records.c.object == spec.object)
                & (extract_batches.c.status == "complete")
                & raw_records.c.record_id.in_(ids[start : start + 1000])
            )
        )
        known.update((row.record_id, row.record_version) for row in rows)
    if not known:
        return frame
    keys = list(zip(frame["record_id"], frame["record_version"], strict=True))
    return frame[[key not in known for key in keys]]


def _record_id(record: dict, id_field: str, position: int) -> str:
    """The record's id; a record without one keeps its position so it can be quarantined."""
    value = record.get(id_field)
    return str(value) if value not in (None, "") else f"<missing id: row {position + 1}>"


def _is_deleted(record: dict, deleted_field: str | None) -> bool:
    if deleted_field is None:
        return False
    return str(record.get(deleted_field, "")).lower() == "true"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
