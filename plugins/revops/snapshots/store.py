"""The lead score history: every record's score as change-only intervals.

A snapshot is a full, narrow pull of (record id, score) for every live record of an object.
Applying it writes only what changed:
- a score equal to its open interval's: nothing;
- a changed score: the open interval is closed at the snapshot time and a new one opened;
- a record missing from the pull (deleted upstream) or whose score was cleared: closed;
- a malformed score: quarantined with its reason, and the open interval left alone (the
  new value is unknown, so nothing is claimed about it).

The first snapshot of an object backfills intervals from field history (HubSpot
`propertiesWithHistory`, Salesforce field history) where the CRM keeps it.

Snapshots are applied in time order. Re-running the latest one first undoes it (every row it
recorded, every interval it closed), so a re-run equals a clean run; an older one is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from revops.reconcile.frames import is_in, sorted_rows
from revops.reconcile.parsing import parse_numbers, plain_numbers
from revops.warehouse.engine import refresh_statistics
from revops.warehouse.load import append_frame, empty_work_table, read_frame
from revops.warehouse.schema import quarantine, score_capture, score_intervals, snapshot_runs

INTERVAL_COLUMNS = [
    "source",
    "object",
    "record_id",
    "score",
    "valid_from",
    "valid_to",
    "origin",
    "recorded_at",
]


class SnapshotOutOfOrder(RuntimeError):  # noqa: N818 - names the outcome an engineer sees
    pass


class SnapshotLooksIncomplete(RuntimeError):  # noqa: N818
    pass


@dataclass(frozen=True)
class ScoreCapture:
    """What one snapshot saw. Times are naive UTC."""

    source: str
    object: str
    snapshot_at: datetime
    scores: pd.DataFrame  # record_id, score (as the API sent it: number, text or null)
    history: pd.DataFrame | None = None  # record_id, changed_at, score: versions before the snapshot


@dataclass(frozen=True)
class SnapshotResult:
    source: str
    object: str
    snapshot_at: datetime
    records_seen: int
    scores_changed: int
    records_gone: int
    history_intervals: int
    quarantined: int
    content_sha256: str
    replaced_previous_run: bool


@dataclass(frozen=True)
class CompletenessGuard:
    """Refuse a pull that would close more than `max_gone_share` of the current scores, once
    at least `min_gone` would close (small objects lose a few records legitimately)."""

    max_gone_share: float = 0.2
    min_gone: int = 100


def apply_snapshot(
    engine: sa.Engine, capture: ScoreCapture, run_id: str, guard: CompletenessGuard = CompletenessGuard()
) -> SnapshotResult:
    """Record one snapshot in the interval store, atomically."""
    scores = _normalised(capture.scores)
    numbers, problems = parse_scores(scores["score"])
    rejected = _rejected(scores[problems.notna()], "score", problems, "the previous score stays current")
    with engine.begin() as conn:
        replaced = _undo_if_rerun(conn, capture)
        _refuse_if_incomplete(conn, capture, len(scores), guard)
        history_rows = 0
        if capture.history is not None and not _has_intervals(conn, capture.source, capture.object):
            history, rejected_history = _history_intervals(capture, scores["record_id"])
            history_rows = append_frame(conn, score_intervals, history, _history_constants(capture))
            # Planned as still empty, the close below ran on PostgreSQL as a nested loop over
            # every open interval and every pulled row: not done after 12 minutes at a
            # million leads (12.5M versions), 1.1 s with the backfill analysed.
            refresh_statistics(conn, score_intervals)
            rejected = pd.concat([rejected, rejected_history], ignore_index=True)
        opened, gone = _write_changes(conn, capture, scores["record_id"], numbers, keep=problems.notna())
        result = SnapshotResult(
            capture.source,
            capture.object,
            capture.snapshot_at,
            records_seen=len(scores),
            scores_changed=opened,
            records_gone=gone,
            history_intervals=history_rows,
            quarantined=_quarantine(conn, capture, rejected, run_id),
            content_sha256=_content_sha256(scores["record_id"], numbers),
            replaced_previous_run=replaced,
        )
        _record_run(conn, result, run_id)
    return result


def parse_scores(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(numbers, problems) like `parse_numbers`, fast for a million plain numbers: only the
    values a plain numeric read rejects go through the full parser (and its reasons)."""
    numbers = plain_numbers(values)
    problems = pd.Series(None, index=values.index, dtype=object)
    odd = numbers.isna() & values.notna()
    if odd.any():
        numbers[odd], problems[odd] = parse_numbers(values[odd])
    return numbers, problems


def _write_changes(
    conn: sa.Connection, capture: ScoreCapture, record_ids: pd.Series, scores: pd.Series, keep: pd.Series
) -> tuple[int, int]:
    """Close the intervals this snapshot ends, open the new ones: (opened, gone).

    The pull goes through `snapshots.score_capture`, emptied again before the transaction
    commits, so no other transaction ever sees its rows. It is emptied first with
    `empty_work_table` (a truncate on PostgreSQL), which also drops the rows the last pull's
    closing delete left dead; that delete keeps the row estimate the pull was planned with,
    which a test reads."""
    key = {"source": capture.source, "object": capture.object, "at": capture.snapshot_at}
    empty_work_table(conn, score_capture)
    append_frame(conn, score_capture, pd.DataFrame({"record_id": record_ids, "score": scores, "keep": keep}))
    # PostgreSQL plans these with nested loops over tables it takes for a row or two: the
    # pull, emptied after every snapshot, and a store without statistics yet (at 100k leads,
    # minutes per statement). The store's are refreshed after it grew, for the next snapshot:
    # an empty store analysed looks empty to the plan that fills it.
    refresh_statistics(conn, score_capture)
    conn.execute(sa.text(_CLOSE_CHANGED), key)
    conn.execute(sa.text(_OPEN_NEW), key)
    refresh_statistics(conn, score_intervals)
    conn.execute(score_capture.delete())
    opened, gone = conn.execute(sa.text(_COUNT_CHANGES), key).one()
    return opened, gone


# Open intervals that this snapshot ends: the record is missing, or its score differs.
# A kept (malformed) row leaves its interval alone.
_CLOSE_CHANGED = """
update snapshots.score_intervals as i set valid_to = :at
where i.source = :source and i.object = :object and i.valid_to is null
  and not exists (
    select 1 from snapshots.score_capture c
    where c.record_id = i.record_id and (c.keep or c.score = i.score)
  )
"""

_OPEN_NEW = """
insert into snapshots.score_intervals
    (source, object, record_id, score, valid_from, valid_to, origin, recorded_at)
select :source, :object, c.record_id, c.score, :at, null, 'snapshot', :at
from snapshots.score_capture c
where not c.keep and c.score is not null
  and not exists (
    select 1 from snapshots.score_intervals i
    where i.source = :source and i.object = :object and i.record_id = c.record_id
      and i.valid_to is null
  )
"""

# Opened at this snapshot; and closed by it without a successor (deleted or cleared).
_COUNT_CHANGES = """
select
    (select count(*) from snapshots.score_intervals
     where source = :source and object = :object and valid_from = :at and origin = 'snapshot'),
    (select count(*) from snapshots.score_intervals i
     where i.source = :source and i.object = :object and i.valid_to = :at
       and not exists (
         select 1 from snapshots.score_intervals n
         where n.source = i.source and n.object = i.object and n.record_id = i.record_id
           and n.valid_from = :at
       ))
"""


def _same_object(table: sa.Table, capture: ScoreCapture):
    return sa.and_(table.c.source == capture.source, table.c.object == capture.object)


def _normalised(scores: pd.DataFrame) -> pd.DataFrame:
    scores = scores[["record_id", "score"]].astype({"record_id": "string"})
    duplicated = scores["record_id"].duplicated(keep=False)
    if duplicated.any():
        raise ValueError(
            f"snapshot holds {int(duplicated.sum())} rows for repeated record ids "
            f"(e.g. {scores.loc[duplicated, 'record_id'].iloc[0]}): the pull is not one row per record"
        )
    return scores.reset_index(drop=True)


def latest_snapshot_at(conn: sa.Connection, source: str, object_name: str) -> datetime | None:
    return _snapshot_bound(conn, sa.func.max, source, object_name)


def first_snapshot_at(conn: sa.Connection, source: str, object_name: str) -> datetime | None:
    """When the store began for this object (None: no snapshot yet)."""
    return _snapshot_bound(conn, sa.func.min, source, object_name)


def _snapshot_bound(conn: sa.Connection, bound, source: str, object_name: str) -> datetime | None:
    return conn.execute(
        sa.select(bound(snapshot_runs.c.snapshot_at)).where(
            snapshot_runs.c.source == source, snapshot_runs.c.object == object_name
        )
    ).scalar_one()


def _undo_if_rerun(conn: sa.Connection, capture: ScoreCapture) -> bool:
    latest = latest_snapshot_at(conn, capture.source, capture.object)
    if latest is None or capture.snapshot_at > latest:
        return False
    if capture.snapshot_at < latest:
        raise SnapshotOutOfOrder(
            f"{capture.source}.{capture.object}: snapshot at {capture.snapshot_at:%Y-%m-%d %H:%M} is older "
            f"than the latest one ({latest:%Y-%m-%d %H:%M}). A CRM only says what scores are now, so a "
            "past day cannot be re-captured; history before the store began comes from field history."
        )
    at = capture.snapshot_at
    same = _same_object(score_intervals, capture)
    conn.execute(score_intervals.delete().where(same, score_intervals.c.recorded_at == at))
    conn.execute(score_intervals.update().where(same, score_intervals.c.valid_to == at).values(valid_to=None))
    conn.execute(
        snapshot_runs.delete().where(_same_object(snapshot_runs, capture), snapshot_runs.c.snapshot_at == at)
    )
    conn.execute(quarantine.delete().where(quarantine.c.batch_id == _batch_id(capture)))
    return True


def _refuse_if_incomplete(
    conn: sa.Connection, capture: ScoreCapture, seen: int, guard: CompletenessGuard
) -> None:
    """A pull that returns far fewer records than are live would close most intervals: that
    is an outage or a permissions change, not a mass deletion."""
    live = conn.execute(
        sa.select(sa.func.count()).where(
            _same_object(score_intervals, capture), score_intervals.c.valid_to.is_(None)
        )
    ).scalar_one()
    missing = live - seen
    if missing >= guard.min_gone and missing > guard.max_gone_share * live:
        raise SnapshotLooksIncomplete(
            f"{capture.source}.{capture.object}: the pull returned {seen} records but {live} have a "
            f"current score; more than {guard.max_gone_share:.0%} would be closed. Nothing was recorded."
        )


def _has_intervals(conn: sa.Connection, source: str, object_name: str) -> bool:
    found = conn.execute(
        sa.select(score_intervals.c.record_id)
        .where(score_intervals.c.source == source, score_intervals.c.object == object_name)
        .limit(1)
    ).first()
    return found is not None


def _history_intervals(capture: ScoreCapture, live_ids: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Field-history versions as intervals (record_id, score, valid_from, valid_to), each
    lasting until the next version; and the versions rejected as malformed. Only records in
    this snapshot, only versions before it; a cleared score ends an interval. At a million
    leads (12.5M HubSpot versions) this took 21 s in pandas' own sort, isin and group-by;
    sorted by DuckDB and shifted, 6 s; read in the order HubSpot sends, 3.2 to 4.3 s."""
    history = capture.history
    history = history[is_in(history["record_id"], live_ids) & (history["changed_at"] < capture.snapshot_at)]
    history, newest_first = _by_record(history)
    history = history.reset_index(drop=True)
    numbers, problems = parse_scores(history["score"])
    rejected = _rejected(history[problems.notna()], "history version", problems, "skipped in the backfill")
    history = history.assign(score=numbers)[problems.isna()]
    earlier = -1 if newest_first else 1  # shifted by `earlier`, each row sees the version before it
    same_record = history["record_id"].eq(history["record_id"].shift(earlier))
    unchanged = history["score"].eq(history["score"].shift(earlier)) | (
        history["score"].isna() & history["score"].shift(earlier).isna()
    )
    history = history[~(same_record & unchanged)]
    next_is_same_record = history["record_id"].eq(history["record_id"].shift(-earlier))
    next_change = history["changed_at"].shift(-earlier).where(next_is_same_record)
    history = history.assign(valid_to=next_change)[history["score"].notna()]
    intervals = pd.DataFrame(
        {
            "record_id": history["record_id"],
            "score": history["score"],
            "valid_from": history["changed_at"],
            "valid_to": history["valid_to"],
        }
    )
    return intervals, rejected


def _history_constants(capture: ScoreCapture) -> dict:
    """What every backfilled interval of one capture shares."""
    return {
        "source": capture.source,
        "object": capture.object,
        "origin": "history",
        "recorded_at": capture.snapshot_at,
    }


def _by_record(versions: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """`versions` (record_id, changed_at; neither missing) with each record's rows together,
    in time order, and whether newest first: a stable sort by record and time, or the rows as
    they are where they are so already, as HubSpot sends them (each contact's together, newest
    first), which one pass over the rows can tell. At a million leads, sorting 12.5M versions
    by their text ids took 2.6 s, and reversing them 1.1 s."""
    ids = pa.array(versions["record_id"], type=pa.large_string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    same_record = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    records_together = len(versions) > 0 and 1 + int((~same_record).sum()) == pc.count_distinct(ids).as_py()
    if records_together:
        steps = np.diff(versions["changed_at"].to_numpy().astype("int64"))[same_record]
        # strictly: rows of one record at the same time keep their order only in a sort
        if (steps > 0).all():
            return versions, False
        if (steps < 0).all():
            return versions, True
    return sorted_rows(versions, ["record_id", "changed_at"]), False


def _batch_id(capture: ScoreCapture) -> str:
    return f"snapshot:{capture.source}.{capture.object}@{capture.snapshot_at.isoformat()}"


def _rejected(rows: pd.DataFrame, what: str, problems: pd.Series, consequence: str) -> pd.DataFrame:
    """Malformed rows with their reason, ready for the quarantine."""
    return pd.DataFrame(
        {
            "record_id": rows["record_id"],
            "reason": what + " " + problems[rows.index] + f": {consequence}",
            "payload": [json.dumps(row, default=str) for row in rows.to_dict("records")],
        }
    )


def _quarantine(conn: sa.Connection, capture: ScoreCapture, rejected: pd.DataFrame, run_id: str) -> int:
    frame = rejected.assign(
        build_id=run_id, batch_id=_batch_id(capture), source=capture.source, object=capture.object
    )
    return append_frame(conn, quarantine, frame)


def _content_sha256(record_ids: pd.Series, scores: pd.Series) -> str:
    """sha256 of what the pull saw: record ids in order and their parsed scores (NaN where
    there was none), hashed from their Arrow and float64 buffers (fast for a million rows):
    the ids' offsets and characters, then the scores in the ids' order."""
    ids = pa.array(record_ids, type=pa.large_string())  # ids are never null
    if isinstance(ids, pa.ChunkedArray):  # pandas may hold them in chunks (Parquet row groups)
        ids = ids.combine_chunks()
    order = pc.sort_indices(ids)
    ids = ids.take(order)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64, count=len(ids) + 1, offset=ids.offset * 8)
    digest = hashlib.sha256(offsets.tobytes())
    digest.update(memoryview(ids.buffers()[2])[offsets[0] : offsets[-1]])
    digest.update(scores.to_numpy(dtype="float64")[order.to_numpy()].tobytes())
    return digest.hexdigest()


def _record_run(conn: sa.Connection, result: SnapshotResult, run_id: str) -> None:
    conn.execute(
        snapshot_runs.insert().values(
            source=result.source,
            object=result.object,
            snapshot_at=result.snapshot_at,
            run_id=run_id,
            records_seen=result.records_seen,
            scores_changed=result.scores_changed,
            records_gone=result.records_gone,
            history_intervals=result.history_intervals,
            quarantined=result.quarantined,
            content_sha256=result.content_sha256,
            recorded_at=datetime.now(UTC).replace(tzinfo=None),
        )
    )


def scores_as_of(
    conn: sa.Connection, at: datetime, source: str | None = None, object_name: str | None = None
) -> pd.DataFrame:
    """Every record's score at `at` (naive UTC): the interval that covers that instant."""
    query = sa.select(
        score_intervals.c.source,
        score_intervals.c.object,
        score_intervals.c.record_id,
        score_intervals.c.score,
    ).where(
        score_intervals.c.valid_from <= at,
        sa.or_(score_intervals.c.valid_to.is_(None), score_intervals.c.valid_to > at),
    )
    if source:
        query = query.where(score_intervals.c.source == source)
    if object_name:
        query = query.where(score_intervals.c.object == object_name)
    return read_frame(
        conn, query.order_by(score_intervals.c.source, score_intervals.c.object, score_intervals.c.record_id)
    )


def read_intervals(conn: sa.Connection) -> pd.DataFrame:
    """The whole store, ordered (for tests and audits)."""
    return read_frame(
        conn,
        sa.select(*[score_intervals.c[c] for c in INTERVAL_COLUMNS]).order_by(
            score_intervals.c.source,
            score_intervals.c.object,
            score_intervals.c.record_id,
            score_intervals.c.valid_from,
        ),
    )
