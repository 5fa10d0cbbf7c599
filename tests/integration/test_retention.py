"""Retention purges old raw extracts, never what a retained scorecard needs to be reproduced,
and says explicitly which older scorecards can no longer be."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from revops.audit.ledger import record_run
from revops.audit.reproduce import NotReproducibleError, reproduce
from revops.audit.retention import RetentionPolicy, apply_retention
from revops.audit.verify import verify
from revops.warehouse.schema import engagement_trend, extract_batches, raw_records, score_velocity
from tests.helpers import stage

POLICY = RetentionPolicy(raw_extract_days=400, reproducible_days=730, score_velocity_days=100)
LONG_AGO = datetime(2024, 1, 1)


@pytest.fixture
def warehouse(small_exports, warehouse_url):
    """Staged CSV exports (today's batches, the live build) plus one old, superseded Lead
    snapshot that a scorecard sent today read."""
    engine, _build = stage(warehouse_url, small_exports)
    with engine.begin() as conn:
        conn.execute(
            extract_batches.insert(),
            {
                "batch_id": "old-leads",
                "source": "salesforce",
                "object": "Lead",
                "extract_mode": "full",
                "extracted_at": LONG_AGO,
                "record_count": 1,
                "records_seen": 1,
                "content_sha256": "-",
                "status": "complete",
            },
        )
        conn.execute(
            raw_records.insert(),
            {
                "batch_id": "old-leads",
                "source": "salesforce",
                "object": "Lead",
                "record_id": "00Q1",
                "record_version": "v1",
                "record_hash": "h",
                "is_deleted": False,
                "payload": "{}",
            },
        )
        live = [r.batch_id for r in conn.execute(sa.text("select batch_id from raw.extract_batches"))]
    entry = record_run(
        engine,
        kind="artifact",
        run_id="scorecard-run",
        dag_id="revops_scorecard__executive_weekly",
        logical_date=None,
        data_interval=(None, None),
        details={"input_batches": [{"batch_id": "old-leads"}], "outputs": []},
        outcome="success",
    )
    return engine, entry, [b for b in live if b != "old-leads"]


def _records(engine, batch_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select count(*) from raw.records where batch_id = :b"), {"b": batch_id}
        ).scalar()


def test_a_batch_a_recent_scorecard_needs_is_kept_however_old(warehouse):
    engine, _entry, live = warehouse
    summary = apply_retention(
        engine, datetime.now() + timedelta(days=500), POLICY, "retention-1", "revops_retention"
    )
    assert summary["purged_batches"] == []  # everything is either live or needed
    assert "old-leads" in summary["kept_for_reproducibility"]
    assert _records(engine, "old-leads") == 1 and all(_records(engine, b) > 0 for b in live)


def test_past_the_reproducible_window_the_batch_goes_and_the_ledger_says_so(warehouse, tmp_path):
    engine, entry, live = warehouse
    summary = apply_retention(
        engine, datetime.now() + timedelta(days=1000), POLICY, "retention-2", "revops_retention"
    )
    assert summary["purged_batches"] == ["old-leads"]
    assert summary["no_longer_reproducible"] == [entry]
    assert _records(engine, "old-leads") == 0
    assert all(_records(engine, b) > 0 for b in live)  # today's data is never purged
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from raw.extract_batches where batch_id = 'old-leads'")
        ).scalar()
    assert status == "purged"
    with pytest.raises(
        NotReproducibleError, match="no longer reproducible: retention purged its raw batches"
    ):
        reproduce(engine, entry, f"duckdb:///{tmp_path / 'scratch.duckdb'}")
    assert verify(engine).ok  # retention appends to the ledger; it never edits it


def test_retention_is_idempotent(warehouse):
    engine, _entry, _live = warehouse
    later = datetime.now() + timedelta(days=1000)
    apply_retention(engine, later, POLICY, "retention-3", "revops_retention")
    again = apply_retention(engine, later, POLICY, "retention-4", "revops_retention")
    assert again["purged_batches"] == [] and again["no_longer_reproducible"] == []


def _velocity_day(conn, as_of: datetime) -> None:
    """One prospect's velocity row and one trend week, as a refresh as of `as_of` writes them."""
    conn.execute(
        score_velocity.insert(),
        {"as_of": as_of, "prospect_id": "p1", "model_change_points_14d": 0.0, "created_at": LONG_AGO},
    )
    conn.execute(
        engagement_trend.insert(),
        {
            "as_of": as_of,
            "week_start": as_of - timedelta(days=7),
            "week_end": as_of,
            "eligible_prospects": 1,
            "net_change": 0.0,
            "model_change_points": 0.0,
            "surging_prospects": 0,
        },
    )


def _velocity_days(engine) -> dict[str, list[datetime]]:
    with engine.connect() as conn:
        return {
            table: [
                row[0] for row in conn.execute(sa.text(f"select as_of from marts.{table} order by as_of"))
            ]
            for table in ("score_velocity", "engagement_trend")
        }


def test_old_velocity_days_go_but_not_the_newest_nor_a_recent_scorecards(warehouse, tmp_path):
    engine, raw_entry, _live = warehouse
    today = datetime.now().replace(microsecond=0)
    shown, unused, recent, newest = (today - timedelta(days=d) for d in (200, 150, 10, 1))
    with engine.begin() as conn:
        for day in (shown, unused, recent, newest):
            _velocity_day(conn, day)
    entry = record_run(
        engine,
        kind="artifact",
        run_id="marketing-scorecard-run",
        dag_id="revops_scorecard__marketing_weekly",
        logical_date=None,
        data_interval=(None, None),
        details={"input_batches": [], "velocity_as_of": shown, "outputs": []},
        outcome="success",
    )

    # Tomorrow: the days older than 100 days go, but the one a scorecard sent today showed.
    first = apply_retention(engine, today + timedelta(days=1), POLICY, "retention-5", "revops_retention")
    assert first["purged_velocity_days"] == [unused]
    assert first["velocity_days_kept_for_reproducibility"] == [shown]
    assert first["no_longer_reproducible"] == []
    expected = [shown, recent, newest]
    assert _velocity_days(engine) == {"score_velocity": expected, "engagement_trend": expected}

    # Past the reproducible window every day goes but the newest, and the ledger says which
    # scorecards lost what.
    later = apply_retention(engine, today + timedelta(days=1000), POLICY, "retention-6", "revops_retention")
    assert later["purged_velocity_days"] == [shown, recent]
    assert later["lost_inputs"] == {
        entry: [f"score velocity of {shown:%Y-%m-%d}"],
        raw_entry: ["raw batches"],
    }
    assert later["no_longer_reproducible"] == sorted([entry, raw_entry])
    assert _velocity_days(engine) == {"score_velocity": [newest], "engagement_trend": [newest]}
    scratch = f"duckdb:///{tmp_path / 'scratch.duckdb'}"
    with pytest.raises(
        NotReproducibleError, match=f"retention purged its score velocity of {shown:%Y-%m-%d}"
    ):
        reproduce(engine, entry, scratch)
    again = apply_retention(engine, today + timedelta(days=1000), POLICY, "retention-7", "revops_retention")
    assert again["purged_velocity_days"] == [] and again["no_longer_reproducible"] == []
    assert verify(engine).ok
