"""The deadline alert: a scorecard not sent within `deliver_within_hours` of its scheduled time
is reported to the data engineers once, through the watch DAG run by Airflow."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from revops import pipeline
from revops.audit.history import HistoryFilter
from revops.audit.history import history as audit_history
from revops.audit.verify import verify
from revops.devtools.airflow_runner import run_dag
from revops.devtools.mail_sink import mail_sink
from revops.scorecards.audiences import load_audiences
from revops.scorecards.lateness import LATE_KIND, last_due
from revops.settings import SMTP_CONN_ID
from revops.warehouse import get_engine
from revops.warehouse.schema import deliveries, run_ledger

OPS = "data-eng@revops-demo.com"


@pytest.mark.parametrize(
    ("audience", "now", "scheduled"),
    [
        # Mondays 07:00 UTC, due within 2 hours: at 08:59 this Monday's is not due yet.
        ("executive_weekly", datetime(2026, 11, 23, 8, 59), datetime(2026, 11, 16, 7)),
        ("executive_weekly", datetime(2026, 11, 23, 9, 0), datetime(2026, 11, 23, 7)),
        # The 1st at 07:00 London time, due within 3 hours: 06:00 UTC in summer, 07:00 in winter.
        ("emea_vp_monthly", datetime(2026, 7, 1, 9, 0), datetime(2026, 7, 1, 6)),
        ("emea_vp_monthly", datetime(2026, 7, 1, 8, 59), datetime(2026, 6, 1, 6)),
        ("emea_vp_monthly", datetime(2026, 12, 1, 10, 0), datetime(2026, 12, 1, 7)),
    ],
)
def test_the_newest_due_scorecard_is_the_last_schedule_past_its_deadline(audience, now, scheduled):
    due = last_due(load_audiences()[audience], now)
    assert due.scheduled_at == scheduled
    assert due.due_by > scheduled and due.due_by <= now


def _attempt(engine: sa.Engine, audience: str, at: datetime, status: str = "sent") -> None:
    row = {"run_id": f"r-{at:%Y%m%d}", "audience": audience, "recipient": "someone@revops-demo.com"}
    artifact = {"artifact_path": "x.pdf", "artifact_sha256": "0" * 64}
    with engine.begin() as conn:
        conn.execute(deliveries.insert(), {**row, **artifact, "status": status, "attempted_at": at})


def _late_entries(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        query = sa.select(run_ledger.c.run_id).where(run_ledger.c.kind == LATE_KIND)
        return list(conn.execute(query).scalars())


@pytest.fixture
def history(warehouse_url, monkeypatch):
    """Executive and marketing scorecards went out on 16 November; only marketing's on the
    23rd. The EMEA and sales audiences never had one, so nothing is expected of them yet."""
    monkeypatch.setenv("REVOPS_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("REVOPS_OPS_EMAIL", OPS)
    engine = get_engine(warehouse_url)
    _attempt(engine, "executive_weekly", datetime(2026, 11, 16, 7, 20))
    _attempt(engine, "marketing_weekly", datetime(2026, 11, 16, 7, 20))
    _attempt(engine, "marketing_weekly", datetime(2026, 11, 23, 7, 30), status="held")
    return engine


def test_a_late_scorecard_is_reported_once_by_the_watch_dag(history, airflow_metadata, tmp_path, monkeypatch):

    with mail_sink(tmp_path / "outbox") as sink:
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", sink.airflow_connection())
        run_dag("revops_scorecard_watch", datetime(2026, 11, 23, 8, 5))  # executive due at 09:00
        assert sink.messages() == []
        run_dag("revops_scorecard_watch", datetime(2026, 11, 23, 9, 5))
        run_dag("revops_scorecard_watch", datetime(2026, 11, 23, 10, 5))  # still late: no repeat
        messages = sink.messages()
    assert [m["Subject"] for m in messages] == ["[revops] executive_weekly scorecard is late"]
    assert messages[0]["To"] == OPS
    body = messages[0].get_body(("html",)).get_content()
    assert "Scheduled 2026-11-23 07:00 UTC, due by 2026-11-23 09:00 UTC" in body
    assert _late_entries(history) == ["late__executive_weekly__2026-11-23T07:00"]
    assert verify(history).ok
    with history.connect() as conn:  # what an auditor reads in `audit history` and the UI page
        entries = audit_history(conn, HistoryFilter(audience="executive_weekly", kinds=(LATE_KIND,)))
    assert entries["what"].tolist() == [
        "executive_weekly scorecard late: scheduled 2026-11-23 07:00 UTC, not sent, held or failed "
        "by 2026-11-23 09:00 UTC; the data engineers were alerted"
    ]


def test_an_alert_that_could_not_be_sent_is_tried_again(history, tmp_path, monkeypatch):
    refused = '{"conn_type": "smtp", "host": "127.0.0.1", "port": 9, "extra": {"disable_tls": true}}'
    monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", refused)
    with pytest.raises(RuntimeError, match="late-scorecard alert not delivered: \\['executive_weekly"):
        pipeline.alert_late_scorecards("revops_scorecard_watch", datetime(2026, 11, 23, 9, 5))
    assert _late_entries(history) == []
    with mail_sink(tmp_path / "outbox") as sink:
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", sink.airflow_connection())
        summary = pipeline.alert_late_scorecards("revops_scorecard_watch", datetime(2026, 11, 23, 9, 5))
        assert len(sink.messages()) == 1
    assert summary == {"reported": ["late__executive_weekly__2026-11-23T07:00"]}


def test_a_delivery_after_the_scheduled_time_is_on_time_even_if_slow(history):
    _attempt(history, "executive_weekly", datetime(2026, 11, 23, 8, 55))
    assert pipeline.alert_late_scorecards("revops_scorecard_watch", datetime(2026, 11, 23, 9, 5)) == {
        "reported": []
    }
