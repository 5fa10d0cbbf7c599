"""E-mail delivery of a rendered scorecard through Airflow's SMTP connection.

One message per recipient, so one bad address cannot block the others and every recipient
gets a delivery record. A recipient already sent this exact PDF is skipped, so a retried
task never e-mails anyone twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import sqlalchemy as sa

from revops.scorecards.view_model import ScorecardView
from revops.settings import TEMPLATES_DIR
from revops.warehouse.schema import deliveries

log = logging.getLogger(__name__)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "scorecard"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class DeliveryOutcome:
    recipient: str
    status: str  # sent | skipped_already_sent | failed
    error: str | None = None


def email_subject(view: ScorecardView) -> str:
    return f"{view.title} · {view.period_label}"


def email_body(view: ScorecardView) -> str:
    return _environment.get_template("email.html.j2").render(view=view)


def deliver(
    engine: sa.Engine,
    smtp_conn_id: str,
    view: ScorecardView,
    pdf_path: Path,
    pdf_sha256: str,
    recipients: tuple[str, ...],
    mail_from: str,
) -> list[DeliveryOutcome]:
    """Send the PDF to each recipient not yet sent it; record every attempt."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    already_sent = _already_sent(engine, view.audience, pdf_sha256)
    outcomes = []
    pending = [r for r in recipients if r not in already_sent]
    outcomes += [DeliveryOutcome(r, "skipped_already_sent") for r in recipients if r in already_sent]
    if pending:
        try:
            with SmtpHook(smtp_conn_id=smtp_conn_id) as smtp:
                for recipient in pending:
                    outcomes.append(_send_one(smtp, view, pdf_path, recipient, mail_from))
        except Exception as error:
            log.error("SMTP connection %s failed: %s", smtp_conn_id, type(error).__name__)
            done = {o.recipient for o in outcomes}
            outcomes += [
                DeliveryOutcome(r, "failed", f"{type(error).__name__}: {error}")
                for r in pending
                if r not in done
            ]
    _record(engine, view, pdf_path, pdf_sha256, [o for o in outcomes if o.status != "skipped_already_sent"])
    return outcomes


def _send_one(smtp, view, pdf_path: Path, recipient: str, mail_from: str) -> DeliveryOutcome:
    try:
        smtp.send_email_smtp(
            to=recipient,
            from_email=mail_from,
            subject=email_subject(view),
            html_content=email_body(view),
            files=[str(pdf_path)],
        )
    except Exception as error:
        log.error("delivery to %s failed: %s", recipient, type(error).__name__)
        return DeliveryOutcome(recipient, "failed", f"{type(error).__name__}: {error}")
    log.info("sent %s to %s", pdf_path.name, recipient)
    return DeliveryOutcome(recipient, "sent")


def _already_sent(engine: sa.Engine, audience: str, sha256: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.recipient).where(
                (deliveries.c.audience == audience)
                & (deliveries.c.artifact_sha256 == sha256)
                & (deliveries.c.status == "sent")
            )
        )
        return {row.recipient for row in rows}


def _record(engine, view: ScorecardView, pdf_path: Path, sha256: str, outcomes) -> None:
    if not outcomes:
        return
    attempted_at = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            deliveries.insert(),
            [
                {
                    "run_id": view.run_id,
                    "audience": view.audience,
                    "recipient": o.recipient,
                    "artifact_path": str(pdf_path),
                    "artifact_sha256": sha256,
                    "status": o.status,
                    "error": o.error,
                    "attempted_at": attempted_at,
                }
                for o in outcomes
            ],
        )
