"""Scorecard e-mail through Airflow's SMTP hook to a real (local) SMTP server."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
import sqlalchemy as sa

from revops.devtools.mail_sink import mail_sink
from revops.periods import period_containing
from revops.scorecards.audiences import load_audiences
from revops.scorecards.delivery import deliver, email_subject
from revops.scorecards.render import archive_pdf, render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results
from revops.settings import SMTP_CONN_ID
from tests.helpers import stage

PERIOD = period_containing("week", date(2026, 10, 26))
CONN_ENV = f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"


@pytest.fixture(scope="module")
def rendered(small_exports, tmp_path_factory):
    directory = tmp_path_factory.mktemp("email")
    engine, _build = stage(f"duckdb:///{directory / 'warehouse.duckdb'}", small_exports)
    audience = load_audiences()["executive_weekly"]
    compute_scorecard_results(engine, audience, PERIOD, "email-test")
    with engine.connect() as conn:
        view = build_view(conn, audience, PERIOD, "email-test")
    path, digest = archive_pdf(render_pdf(view), directory, audience.name, "week-2026-10-26")
    return engine, view, path, digest, audience


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    with mail_sink(tmp_path / "outbox") as sink:
        monkeypatch.setenv(CONN_ENV, sink.airflow_connection())
        yield sink


def test_each_recipient_gets_the_archived_pdf_and_a_readable_body(rendered, smtp):
    engine, view, path, digest, audience = rendered
    outcomes = deliver(
        engine, SMTP_CONN_ID, view, path, digest, audience.recipients, "scorecards@revops-demo.com"
    )
    assert [o.status for o in outcomes] == ["sent"] * len(audience.recipients)
    messages = smtp.messages()
    assert sorted(m["To"] for m in messages) == sorted(audience.recipients)
    for message in messages:
        assert message["Subject"] == email_subject(view)
        body = message.get_body(("html",)).get_content()
        for tile in view.tiles:
            assert tile.name in body and tile.value_text in body
        (attachment,) = list(message.iter_attachments())
        assert hashlib.sha256(attachment.get_content()).hexdigest() == digest
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text(
                "select recipient, status, artifact_sha256 from audit.deliveries where run_id = 'email-test'"
            )
        ).all()
    assert sorted(recorded) == sorted((r, "sent", digest) for r in audience.recipients)


def test_a_retry_never_emails_anyone_twice(rendered, smtp):
    engine, view, path, digest, audience = rendered
    deliver(engine, SMTP_CONN_ID, view, path, digest, audience.recipients, "scorecards@revops-demo.com")
    outcomes = deliver(
        engine, SMTP_CONN_ID, view, path, digest, audience.recipients, "scorecards@revops-demo.com"
    )
    assert {o.status for o in outcomes} == {"skipped_already_sent"}
    assert len(smtp.messages()) <= len(audience.recipients)


def test_an_unreachable_server_is_recorded_as_failed_and_the_pdf_stays(rendered, monkeypatch):
    engine, view, path, digest, _audience = rendered
    with mail_sink(path.parent / "unused") as sink:
        connection = sink.airflow_connection()
    monkeypatch.setenv(CONN_ENV, connection)  # the sink has stopped: nothing listens there
    outcomes = deliver(
        engine, SMTP_CONN_ID, view, path, digest, ("late@revops-demo.com",), "scorecards@revops-demo.com"
    )
    assert [o.status for o in outcomes] == ["failed"]
    assert "Error" in outcomes[0].error
    assert path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from audit.deliveries where recipient = 'late@revops-demo.com'")
        ).scalar_one()
    assert status == "failed"
