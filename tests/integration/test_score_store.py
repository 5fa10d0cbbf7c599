"""The score history store, on hand-made snapshots, on DuckDB and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from revops.snapshots.store import (
    CompletenessGuard,
    ScoreCapture,
    SnapshotLooksIncomplete,
    SnapshotOutOfOrder,
    apply_snapshot,
    read_intervals,
    scores_as_of,
)
from revops.warehouse import get_engine
from revops.warehouse.load import read_frame
from tests.helpers import probed_before, row_estimate

DAY1, DAY2, DAY3, DAY4 = (datetime(2026, 3, d) for d in (1, 2, 3, 4))


def capture(at: datetime, scores: dict, history: list[tuple] | None = None) -> ScoreCapture:
    frame = pd.DataFrame({"record_id": list(scores), "score": list(scores.values())})
    versions = None
    if history is not None:
        versions = pd.DataFrame(history, columns=["record_id", "changed_at", "score"])
    return ScoreCapture("salesforce", "Lead", at, frame, versions)


def intervals(engine) -> list[tuple]:
    with engine.connect() as conn:
        frame = read_intervals(conn)
    return [
        (r.record_id, r.score, r.valid_from, None if pd.isna(r.valid_to) else r.valid_to, r.origin)
        for r in frame.itertuples()
    ]


@pytest.fixture
def engine(any_warehouse_url):
    return get_engine(any_warehouse_url)


def test_only_changes_are_stored(engine):
    first = apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 20}), "run-1")
    second = apply_snapshot(engine, capture(DAY2, {"A": 10, "B": 25, "C": 5}), "run-2")
    third = apply_snapshot(engine, capture(DAY3, {"B": 25, "C": 5}), "run-3")

    assert intervals(engine) == [
        ("A", 10, DAY1, DAY3, "snapshot"),
        ("B", 20, DAY1, DAY2, "snapshot"),
        ("B", 25, DAY2, None, "snapshot"),
        ("C", 5, DAY2, None, "snapshot"),
    ]
    assert (first.scores_changed, first.records_gone) == (2, 0)
    assert (second.scores_changed, second.records_gone) == (2, 0)  # B changed, C is new
    assert (third.scores_changed, third.records_gone) == (0, 1)  # A deleted upstream


def test_as_of_reads_the_interval_covering_the_instant(engine):
    apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 20}), "run-1")
    apply_snapshot(engine, capture(DAY2, {"A": 10, "B": 25}), "run-2")
    apply_snapshot(engine, capture(DAY3, {"B": 25}), "run-3")

    def as_of(at):
        with engine.connect() as conn:
            frame = scores_as_of(conn, at, "salesforce", "Lead")
        return dict(zip(frame["record_id"], frame["score"], strict=True))

    assert as_of(DAY1 - timedelta(microseconds=1)) == {}
    assert as_of(DAY1) == {"A": 10, "B": 20}
    assert as_of(DAY2 - timedelta(microseconds=1)) == {"A": 10, "B": 20}
    assert as_of(DAY2) == {"A": 10, "B": 25}  # a boundary belongs to the new interval
    assert as_of(DAY3) == {"B": 25}  # A was gone by then
    assert as_of(DAY4 + timedelta(days=300)) == {"B": 25}


def test_rerunning_the_latest_snapshot_equals_a_clean_run(engine, any_warehouse_url):
    apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 20}), "run-1")
    apply_snapshot(engine, capture(DAY2, {"A": 99, "C": "oops"}), "run-2")  # a bad first attempt
    result = apply_snapshot(engine, capture(DAY2, {"A": 10, "B": 25}), "run-2-retry")
    again = apply_snapshot(engine, capture(DAY2, {"A": 10, "B": 25}), "run-2-retry-2")

    assert result.replaced_previous_run and again.replaced_previous_run
    assert intervals(engine) == [
        ("A", 10, DAY1, None, "snapshot"),
        ("B", 20, DAY1, DAY2, "snapshot"),
        ("B", 25, DAY2, None, "snapshot"),
    ]
    with engine.connect() as conn:
        runs = read_frame(
            conn, "select snapshot_at, run_id from snapshots.snapshot_runs order by snapshot_at"
        )
        quarantined = read_frame(conn, "select record_id from staging.quarantine")
    assert list(runs["run_id"]) == ["run-1", "run-2-retry-2"]
    assert quarantined.empty  # the bad attempt's quarantine went with it


def test_an_older_snapshot_is_refused(engine):
    apply_snapshot(engine, capture(DAY2, {"A": 10}), "run-2")
    with pytest.raises(SnapshotOutOfOrder, match="older than the latest"):
        apply_snapshot(engine, capture(DAY1, {"A": 5}), "run-1")
    assert intervals(engine) == [("A", 10, DAY2, None, "snapshot")]


def test_a_pull_missing_most_records_records_nothing(engine):
    apply_snapshot(engine, capture(DAY1, {f"L{i}": i for i in range(10)}), "run-1")
    before = intervals(engine)
    with pytest.raises(SnapshotLooksIncomplete, match="returned 7 records but 10"):
        apply_snapshot(
            engine,
            capture(DAY2, {f"L{i}": i + 1 for i in range(7)}),
            "run-2",
            CompletenessGuard(0.2, min_gone=3),
        )
    assert intervals(engine) == before


def test_malformed_scores_are_quarantined_and_cleared_scores_close(engine):
    apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 20, "C": 30}), "run-1")
    result = apply_snapshot(engine, capture(DAY2, {"A": "n/a", "B": "", "C": "31"}), "run-2")

    assert result.quarantined == 1
    assert intervals(engine) == [
        ("A", 10, DAY1, None, "snapshot"),  # unknown new value: the old one stays current
        ("B", 20, DAY1, DAY2, "snapshot"),  # cleared
        ("C", 30, DAY1, DAY2, "snapshot"),
        ("C", 31, DAY2, None, "snapshot"),  # text from the API is read as a number
    ]
    with engine.connect() as conn:
        row = conn.execute(sa.text("select record_id, reason from staging.quarantine")).one()
    assert row.record_id == "A" and "not a number 'n/a'" in row.reason


def test_first_snapshot_backfills_from_field_history(engine):
    t1, t2, t3 = DAY1 - timedelta(days=20), DAY1 - timedelta(days=10), DAY1 - timedelta(days=3)
    history = [
        ("A", t1, "5"),
        ("A", t2, "5"),  # a version with the same value is no change
        ("A", t3, "10"),
        ("A", DAY1 + timedelta(hours=1), "99"),  # after the snapshot: not history yet
        ("B", t2, "40"),  # B equals its snapshot score: its interval stays open
        ("Z", t1, "70"),  # not in the snapshot (deleted): no history kept for it
    ]
    first = apply_snapshot(engine, capture(DAY1, {"A": 12, "B": 40}, history), "run-1")
    later = apply_snapshot(engine, capture(DAY2, {"A": 12, "B": 40}, [("B", t1, "1")]), "run-2")

    assert intervals(engine) == [
        ("A", 5, t1, t3, "history"),
        ("A", 10, t3, DAY1, "history"),
        ("A", 12, DAY1, None, "snapshot"),
        ("B", 40, t2, None, "history"),
    ]
    assert (first.history_intervals, first.scores_changed) == (3, 1)
    assert later.history_intervals == 0  # history only fills the store before it began


def test_the_backfill_orders_history_itself_and_skips_what_it_cannot_read(engine):
    """History arrives in no particular order; a cleared score ends the interval before it
    and a malformed version is quarantined and skipped (worked out by hand)."""
    t1, t2, t3 = DAY1 - timedelta(days=20), DAY1 - timedelta(days=10), DAY1 - timedelta(days=3)
    history = [
        ("B", t2, "40"),
        ("A", t3, "10"),
        ("A", t1, "5"),
        ("A", t2, None),  # cleared: 5 lasted from t1 to t2
        ("A", t1 + timedelta(days=1), "n/a"),  # unreadable: 5 goes on past it
    ]
    result = apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 40}, history), "run-1")

    assert intervals(engine) == [
        ("A", 5, t1, t2, "history"),
        ("A", 10, t3, None, "history"),  # the snapshot's score: still open
        ("B", 40, t2, None, "history"),
    ]
    assert (result.history_intervals, result.quarantined) == (3, 1)


HISTORY_BY_RECORD = [  # each record's versions together, oldest first
    ("A", DAY1 - timedelta(days=20), "5"),
    ("A", DAY1 - timedelta(days=15), "5"),  # no change
    ("A", DAY1 - timedelta(days=10), None),  # cleared
    ("A", DAY1 - timedelta(days=8), "n/a"),  # unreadable
    ("A", DAY1 - timedelta(days=3), "10"),
    ("B", DAY1 - timedelta(days=12), "30"),
    ("B", DAY1 - timedelta(days=2), "40"),
    ("C", DAY1 - timedelta(days=4), "8"),
]


@pytest.mark.parametrize("arrangement", ["oldest first", "newest first", "shuffled"])
def test_the_backfill_reads_history_in_any_arrangement(engine, arrangement):
    """A CRM sends each record's versions together, oldest or (HubSpot) newest first, which
    the backfill reads as they come; any other order it sorts. The store is the same."""
    history = {
        "oldest first": HISTORY_BY_RECORD,
        "newest first": HISTORY_BY_RECORD[::-1],
        "shuffled": [HISTORY_BY_RECORD[i] for i in (6, 2, 7, 0, 4, 1, 5, 3)],
    }[arrangement]
    result = apply_snapshot(engine, capture(DAY1, {"A": 10, "B": 40, "C": 9}, history), "run-1")

    d = [DAY1 - timedelta(days=n) for n in range(21)]
    assert intervals(engine) == [
        ("A", 5, d[20], d[10], "history"),
        ("A", 10, d[3], None, "history"),
        ("B", 30, d[12], d[2], "history"),
        ("B", 40, d[2], None, "history"),
        ("C", 8, d[4], DAY1, "history"),
        ("C", 9, DAY1, None, "snapshot"),
    ]
    assert (result.history_intervals, result.quarantined) == (5, 1)


def test_versions_at_the_same_time_keep_the_order_they_came_in(engine):
    """Two versions of one record at one instant: the first to arrive lasts no time, as a
    stable sort by time gives, even where the rest of the history came newest first."""
    t1, t2 = DAY1 - timedelta(days=9), DAY1 - timedelta(days=2)
    history = [("A", t2, "10"), ("A", t1, "7"), ("A", t1, "5")]
    apply_snapshot(engine, capture(DAY1, {"A": 10}, history), "run-1")
    by_start_then_end = sorted(intervals(engine), key=lambda row: (row[2], row[3] is None, row[3]))
    assert by_start_then_end == [
        ("A", 7, t1, t1, "history"),
        ("A", 5, t1, t2, "history"),
        ("A", 10, t2, None, "history"),
    ]


def test_rerunning_the_first_snapshot_backfills_once(engine):
    history = [("A", DAY1 - timedelta(days=5), 7)]
    apply_snapshot(engine, capture(DAY1, {"A": 9}, history), "run-1")
    apply_snapshot(engine, capture(DAY1, {"A": 9}, history), "run-1-again")
    assert intervals(engine) == [
        ("A", 7, DAY1 - timedelta(days=5), DAY1, "history"),
        ("A", 9, DAY1, None, "snapshot"),
    ]


def test_a_pull_with_a_repeated_record_is_refused(engine):
    pull = ScoreCapture(
        "salesforce", "Lead", DAY1, pd.DataFrame({"record_id": ["A", "B", "A"], "score": [1, 2, 3]})
    )
    with pytest.raises(ValueError, match=r"2 rows for repeated record ids \(e.g. A\)"):
        apply_snapshot(engine, pull, "run-1")
    assert intervals(engine) == []


def test_the_content_digest_is_of_the_ids_in_order_and_their_scores(engine):
    # by hand: ids sorted (A, B, C) as Arrow large strings (offsets 0 1 2 3, characters
    # "ABC"), then their scores as 8-byte floats in that order; "x" is no number (NaN)
    offsets = np.array([0, 1, 2, 3], dtype=np.int64).tobytes()
    scores = np.array([10.0, np.nan, 30.0]).tobytes()
    expected = hashlib.sha256(offsets + b"ABC" + scores).hexdigest()

    result = apply_snapshot(engine, capture(DAY1, {"C": 30, "A": 10, "B": "x"}), "run-1")
    assert result.content_sha256 == expected


def test_a_pull_read_in_chunks_gets_the_same_digest(engine, tmp_path):
    """A pull whose ids pandas holds as several Arrow chunks (read from Parquet row groups,
    or concatenated pages) is the same pull: same digest, same intervals. The digest once
    read the buffers of a single Arrow array and failed on a chunked one."""
    scores = {f"00Q{n:04d}": n % 7 for n in range(10)}
    whole = capture(DAY1, scores)
    pq.write_table(
        pa.Table.from_pandas(whole.scores, preserve_index=False), tmp_path / "pull.parquet", row_group_size=4
    )
    chunked = pd.read_parquet(tmp_path / "pull.parquet")
    assert pa.array(chunked["record_id"]).num_chunks > 1  # what the test is about

    expected = apply_snapshot(engine, whole, "run-1").content_sha256
    rerun = apply_snapshot(engine, ScoreCapture("salesforce", "Lead", DAY1, chunked), "run-2")
    assert rerun.content_sha256 == expected
    assert rerun.replaced_previous_run


def test_on_postgresql_each_snapshot_is_planned_with_statistics(tmp_path):
    """The pull's table is emptied after every snapshot and a young store has no statistics:
    without fresh ones PostgreSQL plans nested loops over tables it takes for a row or two
    (minutes per snapshot at 100k leads). After a snapshot, both show their real sizes."""
    from revops.devtools.postgres import scratch_warehouse

    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        apply_snapshot(engine, capture(DAY1, {f"R{i}": i for i in range(300)}), "run-1")
        apply_snapshot(engine, capture(DAY2, {f"R{i}": i + (i % 3 == 0) for i in range(300)}), "run-2")
        with engine.connect() as conn:
            pulled = row_estimate(conn, "snapshots.score_capture")
            stored = row_estimate(conn, "snapshots.score_intervals")
    assert pulled == 300  # analysed while it held the second pull
    assert stored == 300 + 100  # every record's first score, and a third of them changed


def test_on_postgresql_the_first_snapshot_is_planned_with_its_backfill(tmp_path):
    """The backfill fills the store in the transaction that then closes and opens intervals.
    Planned with the empty store's statistics, PostgreSQL closed them with a nested loop over
    every open interval and every pulled row: at a million leads, not done after 12 minutes.
    When the close runs, the store's estimate must count the backfilled intervals."""
    from revops.devtools.postgres import scratch_warehouse

    history = [(f"R{i}", DAY1 - timedelta(days=days), str(i + days)) for i in range(300) for days in (9, 5)]
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        at_close = probed_before(
            engine,
            "update snapshots.score_intervals as i set valid_to",
            "select reltuples from pg_class where relname = 'score_intervals'",
        )
        result = apply_snapshot(engine, capture(DAY1, {f"R{i}": i for i in range(300)}, history), "run-1")
    assert result.history_intervals == 600 and result.scores_changed == 300
    assert at_close == [(600,)]


def test_on_postgresql_the_pull_table_does_not_grow_from_snapshot_to_snapshot(tmp_path):
    """Each snapshot empties the pull's table with a TRUNCATE before filling it: rows it
    deleted would stay in the table, dead, until a vacuum, and the next snapshot's
    statements would scan them too (1.7 GB after 30 days of a million leads)."""
    from revops.devtools.postgres import scratch_warehouse

    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        sizes = []
        for day, at in enumerate((DAY1, DAY2, DAY3)):
            apply_snapshot(engine, capture(at, {f"R{i}": i + day for i in range(2000)}), f"run-{day}")
            with engine.connect() as conn:
                size = "select pg_relation_size('snapshots.score_capture')"
                sizes.append(conn.execute(sa.text(size)).scalar_one())
    assert sizes[0] > 0 and sizes[1] == sizes[2] == sizes[0]
