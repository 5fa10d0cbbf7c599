"""E-mail delivery of an archived scorecard through Airflow's SMTP connection.

The message (subject and HTML body) is composed when the PDF is rendered and archived next
to it, so a delivery, a retry and a re-send weeks later all send the same bytes. One message
per recipient, so one bad address cannot block the others, and every attempt leaves a row
in audit.deliveries. A recipient already sent this exact PDF is skipped: a retried task
never e-mails anyone twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import sqlalchemy as sa

from revops.notify import send_email
from revops.scorecards.view_model import ScorecardView
from revops.settings import SMTP_CONN_ID, TEMPLATES_DIR
from revops.warehouse.schema import deliveries

log = logging.getLogger(__name__)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "scorecard"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class ArchiveMismatchError(RuntimeError):
    """The archived PDF is not the one the run recorded: it is never sent."""


@dataclass(frozen=True)
class Message:
    subject: str
    html: str


@dataclass(frozen=True)
class DeliveryOutcome:
    recipient: str
    status: str  # sent | skipped_already_sent | failed | held
    error: str | None = None


def compose(view: ScorecardView) -> Message:
    """Subject and an HTML body with the headline numbers, readable without the PDF."""
    prefix = "[Incomplete data] " if view.banner else ""
    return Message(
        subject=f"{prefix}{view.title} · {view.period_label}",
        html=_environment.get_template("email.html.j2").render(view=view),
    )


def message_path(pdf_path: Path) -> Path:
    return pdf_path.with_suffix(".email.json")


def archive_message(pdf_path: Path, message: Message) -> Path:
    path = message_path(pdf_path)
    path.write_text(json.dumps(asdict(message), sort_keys=True))
    return path


def load_archived(pdf_path: Path, sha256: str) -> Message:
    """The archived message for a PDF, after checking the PDF still has its recorded hash."""
    actual = hashlib.sha256(pdf_path.read_bytes()).hexdigest()
    if actual != sha256:
        raise ArchiveMismatchError(f"{pdf_path}: sha256 {actual} is not the recorded {sha256}")
    return Message(**json.loads(message_path(pdf_path).read_text()))


def deliver(
    engine: sa.Engine,
    message: Message,
    pdf_path: Path,
    pdf_sha256: str,
    recipients: tuple[str, ...],
    run_id: str,
    audience: str,
    smtp_conn_id: str = SMTP_CONN_ID,
) -> list[DeliveryOutcome]:
    """Send the PDF to each recipient not yet sent it; record every attempt."""
    already_sent = sent_to(engine, audience, pdf_sha256)
    outcomes = [DeliveryOutcome(r, "skipped_already_sent") for r in recipients if r in already_sent]
    for recipient in (r for r in recipients if r not in already_sent):
        error = send_email(
            recipient, message.subject, message.html, files=[str(pdf_path)], smtp_conn_id=smtp_conn_id
        )
        outcomes.append(DeliveryOutcome(recipient, "failed" if error else "sent", error))
        if not error:
            log.info("sent %s to recipient %d of %d", pdf_path.name, len(outcomes), len(recipients))
    record(
        engine,
        run_id,
        audience,
        pdf_path,
        pdf_sha256,
        [o for o in outcomes if o.status != "skipped_already_sent"],
    )
    return outcomes


def sent_to(engine: sa.Engine, audience: str, sha256: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.recipient).where(
                (deliveries.c.audience == audience)
                & (deliveries.c.artifact_sha256 == sha256)
                & (deliveries.c.status == "sent")
            )
        )
        return {row.recipient for row in rows}


def record(
    engine: sa.Engine,
    run_id: str,
    audience: str,
    pdf_path: Path,
    sha256: str,
    outcomes: list[DeliveryOutcome],
) -> None:
    if not outcomes:
        return
    attempted_at = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            deliveries.insert(),
            [
                {
                    "run_id": run_id,
                    "audience": audience,
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


def latest_artifact(engine: sa.Engine, audience: str, period_key: str) -> tuple[Path, str] | None:
    """The newest scorecard PDF recorded for an audience and period: (path, sha256)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(deliveries.c.artifact_path, deliveries.c.artifact_sha256)
            .where(
                (deliveries.c.audience == audience) & deliveries.c.artifact_path.contains(f"/{period_key}/")
            )
            .order_by(deliveries.c.attempted_at.desc())
            .limit(1)
        ).first()
    return None if row is None else (Path(row.artifact_path), row.artifact_sha256)
