"""Alerts: breaches become records once, owners hear by e-mail and webhook, failures retry."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.devtools.mail_sink import mail_sink
from revops.kpis.alerts import detect_alerts, notify_pending
from revops.settings import SMTP_CONN_ID
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import kpi_control_limits, kpi_results
from tests.helpers import table, webhook_receiver

WEEK = date(2026, 10, 19)


def _result(kpi_id: str, value: float, volume: int = 100, flags: str = "", period_start=WEEK, version=1):
    return {
        "run_id": "seed",
        "build_id": "B1",
        "kpi_id": kpi_id,
        "kpi_version": version,
        "sql_sha256": "x",
        "grain": "week",
        "timezone": "UTC",
        "period_start": period_start,
        "period_end": period_start + pd.Timedelta(days=7),
        "scope": "all",
        "dimension": "total",
        "segment": "all",
        "numerator": value * volume,
        "denominator": volume,
        "value": value,
        "ci_low": None,
        "ci_high": None,
        "volume": volume,
        "flags": flags,
        "data_cutoff": pd.Timestamp("2026-11-02"),
    }


@pytest.fixture
def engine(warehouse_url):
    engine = get_engine(warehouse_url)
    results = pd.DataFrame(
        [
            _result("win_rate_count", 0.20),  # below its warning (0.25)
            _result("win_rate_count", 0.50, period_start=date(2026, 10, 12)),  # older week: not judged
            _result("opportunity_stage_conversion.demo_to_proposal", 0.35),  # below the 0.40 escalation
            _result("average_won_deal_size", 10_000, volume=5, flags="insufficient_volume"),  # too thin
            _result("funnel_stage_conversion.mql_to_sal", 0.80),  # above target: fine
        ]
    )
    limits = pd.DataFrame(
        [
            {
                "kpi_id": "funnel_stage_conversion.mql_to_sal",
                "kpi_version": 1,
                "grain": "week",
                "timezone": "UTC",
                "scope": "all",
                "dimension": "region",
                "segment": "EMEA",
                "period_start": WEEK,
                "value": 0.42,
                "volume": 60,
                "centre": 0.75,
                "lower": 0.58,
                "upper": 0.92,
                "signal": "below_lower",
            }
        ]
    )
    with engine.begin() as conn:
        append_frame(conn, kpi_results, results)
        append_frame(conn, kpi_control_limits, limits)
    return engine


def test_breaches_are_recorded_once_with_their_rule(engine):
    new = detect_alerts(engine, "run-1")
    got = {(a["kpi_id"], a["rule"], a["segment"]) for a in new.to_dict("records")}
    assert got == {
        ("win_rate_count", "warning", "all"),
        ("opportunity_stage_conversion.demo_to_proposal", "escalation", "all"),
        ("funnel_stage_conversion.mql_to_sal", "control_limit", "EMEA"),
    }
    limit = new.set_index("kpi_id").loc["opportunity_stage_conversion.demo_to_proposal", "limit_value"]
    assert limit == 0.40
    assert detect_alerts(engine, "run-2").empty  # the same breaches: nothing new
    assert len(table(engine, "marts.alerts", "alert_id")) == 3


def test_owners_hear_by_email_and_webhook_and_a_failed_notice_is_retried(engine, tmp_path, monkeypatch):
    detect_alerts(engine, "run-1")
    with mail_sink(tmp_path / "outbox") as sink, webhook_receiver(status=500) as hook:
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", sink.airflow_connection())
        first = notify_pending(engine, SMTP_CONN_ID, hook.url, "alerts@revops-demo.com")
        assert first["failed"] == 3 and first["notified"] == 0
        with engine.connect() as conn:
            errors = conn.execute(sa.text("select notification_error from marts.alerts")).scalars().all()
        assert all("500" in e for e in errors)
        hook.status = 200  # the webhook is back
        second = notify_pending(engine, SMTP_CONN_ID, hook.url, "alerts@revops-demo.com")
        third = notify_pending(engine, SMTP_CONN_ID, hook.url, "alerts@revops-demo.com")
    assert second == {"notified": 3, "failed": 0} and third == {"notified": 0, "failed": 0}
    # One e-mail per owner, sent the first time: the retry only re-posted to the webhook.
    owners = sorted(m["To"] for m in sink.messages())
    assert owners == ["revenue-ops@revops-demo.com", "sales-ops@revops-demo.com"]
    posted = "\n".join(p["text"] for p in hook.received[-2:])
    assert "Demo to proposal fell below its escalation level: 0.35 against 0.4" in posted
    assert "MQL to SAL (acceptance) left its control limits" in posted and "region = EMEA" in posted
