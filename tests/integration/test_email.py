"""Scorecard e-mail through Airflow's SMTP hook to a real (local) SMTP server."""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import socket
import threading
from datetime import date

import pytest
import sqlalchemy as sa

from revops import pipeline
from revops.devtools.mail_sink import mail_sink
from revops.periods import period_containing
from revops.scorecards.audiences import load_audiences
from revops.scorecards.delivery import (
    ArchiveMismatchError,
    archive_message,
    compose,
    deliver,
    latest_artifact,
    load_archived,
)
from revops.scorecards.render import archive_pdf, render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results
from revops.settings import SMTP_CONN_ID
from tests.helpers import stage, webhook_receiver

PERIOD = period_containing("week", date(2026, 10, 26))
CONN_ENV = f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"


@pytest.fixture(scope="module")
def rendered(small_exports, tmp_path_factory):
    directory = tmp_path_factory.mktemp("email")
    engine, _build = stage(f"duckdb:///{directory / 'warehouse.duckdb'}", small_exports)
    audience = load_audiences()["executive_weekly"]
    compute_scorecard_results(engine, audience, PERIOD, "email-test")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REVOPS_EXTRACT_SOURCES", "csv")  # this warehouse was filled from CSV exports
        with engine.connect() as conn:
            view = build_view(conn, audience, PERIOD, "email-test")
    path, digest = archive_pdf(render_pdf(view), directory, audience.name, "week-2026-10-26")
    message = compose(view)
    archive_message(path, message)
    return engine, view, message, path, digest, audience


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    with mail_sink(tmp_path / "outbox") as sink:
        monkeypatch.setenv(CONN_ENV, sink.airflow_connection())
        yield sink


def _deliver(rendered, recipients, run_id="email-test"):
    engine, _view, message, path, digest, audience = rendered
    return deliver(engine, message, path, digest, recipients, run_id, audience.name)


def test_each_recipient_gets_the_archived_pdf_and_a_readable_body(rendered, smtp):
    engine, view, message, _path, digest, audience = rendered
    outcomes = _deliver(rendered, audience.recipients)
    assert [o.status for o in outcomes] == ["sent"] * len(audience.recipients)
    messages = smtp.messages()
    assert sorted(m["To"] for m in messages) == sorted(audience.recipients)
    for received in messages:
        assert received["Subject"] == message.subject == f"{view.title} · {view.period_label}"
        body = received.get_body(("html",)).get_content()
        for tile in view.tiles:
            assert tile.name in body and tile.value_text in body
        assert view.narrative and all(html.escape(sentence) in body for sentence in view.narrative)
        (attachment,) = list(received.iter_attachments())
        assert hashlib.sha256(attachment.get_content()).hexdigest() == digest
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text(
                "select recipient, status, artifact_sha256 from audit.deliveries where run_id = 'email-test'"
            )
        ).all()
    assert sorted(recorded) == sorted((r, "sent", digest) for r in audience.recipients)


def test_a_retry_never_emails_anyone_twice(rendered, smtp):
    _deliver(rendered, rendered[-1].recipients)
    outcomes = _deliver(rendered, rendered[-1].recipients)
    assert {o.status for o in outcomes} == {"skipped_already_sent"}
    assert len(smtp.messages()) <= len(rendered[-1].recipients)


def test_an_unreachable_server_is_recorded_as_failed_and_the_pdf_stays(rendered, monkeypatch):
    engine, _view, _message, path, digest, _audience = rendered
    with mail_sink(path.parent / "unused") as sink:
        connection = sink.airflow_connection()
    monkeypatch.setenv(CONN_ENV, connection)  # the sink has stopped: nothing listens there
    outcomes = _deliver(rendered, ("late@revops-demo.com",))
    assert [o.status for o in outcomes] == ["failed"]
    assert "Error" in outcomes[0].error
    assert path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from audit.deliveries where recipient = 'late@revops-demo.com'")
        ).scalar_one()
    assert status == "failed"


@contextlib.contextmanager
def _hanging_up_smtp_server():
    """A server that greets, hears EHLO, then drops the connection: a relay that dies mid-session."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                with client:
                    client.sendall(b"220 relay ready\r\n")
                    client.recv(1024)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_relay_that_drops_the_connection_mid_session_is_a_recorded_failure(rendered, monkeypatch):
    engine, _view, _message, path, digest, _audience = rendered
    with _hanging_up_smtp_server() as port:
        plain = {"disable_tls": True, "disable_ssl": True}
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": plain}

        monkeypatch.setenv(CONN_ENV, json.dumps(connection))
        outcomes = _deliver(rendered, ("dropped@revops-demo.com",), run_id="drop-test")
    assert [o.status for o in outcomes] == ["failed"]
    assert "closed" in outcomes[0].error.lower() or "disconnected" in outcomes[0].error.lower()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from audit.deliveries where run_id = 'drop-test'")
        ).scalar_one()
    assert status == "failed"


def test_a_failed_delivery_is_re_sent_later_with_the_identical_bytes(rendered, smtp):
    engine, _view, message, path, digest, audience = rendered
    assert latest_artifact(engine, audience.name, "week-2026-10-26") == (path, digest)
    again = load_archived(path, digest)
    assert again == message
    outcomes = deliver(engine, again, path, digest, ("late@revops-demo.com",), "resend-test", audience.name)
    assert [o.status for o in outcomes] == ["sent"]
    (received,) = smtp.messages()
    (attachment,) = list(received.iter_attachments())
    assert attachment.get_content() == path.read_bytes()
    assert received["Subject"] == message.subject


def test_a_tampered_archive_is_never_sent(rendered, tmp_path):
    _engine, _view, _message, path, digest, _audience = rendered
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes() + b"%tampered")
    archive_message(copy, compose(rendered[1]))
    with pytest.raises(ArchiveMismatchError, match="is not the recorded"):
        load_archived(copy, digest)


@pytest.fixture
def pipeline_env(rendered, monkeypatch):
    """pipeline.* reads the warehouse from the environment: point it at this module's."""
    engine = rendered[0]
    monkeypatch.setenv("REVOPS_WAREHOUSE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("REVOPS_OPS_EMAIL", "data-eng@revops-demo.com")
    _engine, _view, _message, path, digest, _audience = rendered
    return {"pdf_path": str(path), "pdf_sha256": digest}


def test_incomplete_data_holds_the_send_and_alerts_the_data_engineers(rendered, pipeline_env, smtp):
    problems = ["Salesforce Lead: data is 50 hours old (allowed: 36)."]
    result = pipeline.send_scorecard(
        "emea_vp_monthly", "hold-test", {**pipeline_env, "completeness_problems": problems}, False, False
    )
    assert result == {"deliveries": {"vp-emea@revops-demo.com": "held"}}
    (alert,) = smtp.messages()  # nothing went to the VP; one alert went to the data engineers
    assert alert["To"] == "data-eng@revops-demo.com"
    assert "emea_vp_monthly scorecard held" in alert["Subject"]
    assert problems[0] in alert.get_body(("html",)).get_content()
    with rendered[0].connect() as conn:
        status, error = conn.execute(
            sa.text("select status, error from audit.deliveries where run_id = 'hold-test'")
        ).one()
    assert status == "held" and "50 hours old" in error


def test_a_banner_audience_sends_incomplete_data_anyway(rendered, pipeline_env, smtp):
    problems = ["HubSpot contacts: data is 40 hours old (allowed: 36)."]
    result = pipeline.send_scorecard(
        "marketing_weekly", "banner-test", {**pipeline_env, "completeness_problems": problems}, False, False
    )
    assert result == {"deliveries": {"vp-marketing@revops-demo.com": "sent"}}
    assert [m["To"] for m in smtp.messages()] == ["vp-marketing@revops-demo.com"]


def test_a_dry_run_sends_and_records_nothing(rendered, pipeline_env, smtp):
    result = pipeline.send_scorecard(
        "executive_weekly", "dry-run-test", {**pipeline_env, "completeness_problems": []}, True, False
    )
    assert set(result["deliveries"].values()) == {"dry_run"}
    assert smtp.messages() == []
    with rendered[0].connect() as conn:
        rows = conn.execute(sa.text("select count(*) from audit.deliveries where run_id = 'dry-run-test'"))
        assert rows.scalar_one() == 0


def test_the_final_failed_try_alerts_the_data_engineers_and_earlier_tries_do_not(
    rendered, pipeline_env, monkeypatch, tmp_path
):
    with mail_sink(tmp_path / "gone") as sink:
        monkeypatch.setenv(CONN_ENV, sink.airflow_connection())  # stopped below: sends fail
    with webhook_receiver() as hook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_REVOPS_ALERTS_WEBHOOK",
            json.dumps({"conn_type": "http", "extra": {"url": hook.url}}),
        )
        rendered_ok = {**pipeline_env, "completeness_problems": []}
        with pytest.raises(RuntimeError, match="not delivered to 1 recipient"):
            pipeline.send_scorecard("sales_leader_weekly", "retry-1", rendered_ok, False, final_try=False)
        assert hook.received == []
        with pytest.raises(RuntimeError, match="not delivered to 1 recipient"):
            pipeline.send_scorecard("sales_leader_weekly", "retry-4", rendered_ok, False, final_try=True)
    (posted,) = hook.received
    assert "sales_leader_weekly scorecard not delivered to 1 recipient(s)" in posted["text"]
    assert pipeline_env["pdf_path"] in posted["text"]


def test_a_task_that_fails_for_good_mails_the_data_engineers(smtp, monkeypatch):
    from types import SimpleNamespace

    from revops.dag_defaults import alert_on_failure

    monkeypatch.setenv("REVOPS_OPS_EMAIL", "data-eng@revops-demo.com")
    ti = SimpleNamespace(
        dag_id="revops_extract", task_id="salesforce.extract_lead", run_id="scheduled__x", try_number=3
    )
    alert_on_failure({"ti": ti, "exception": ConnectionError("sandbox went away")})
    (failed,) = smtp.messages()
    assert failed["To"] == "data-eng@revops-demo.com"
    assert failed["Subject"] == "[revops] revops_extract.salesforce.extract_lead failed"
    assert "ConnectionError: sandbox went away" in failed.get_body(("html",)).get_content()
