"""Telling people: one e-mail through Airflow's SMTP connection, one post to a webhook.

KPI alerts (to KPI owners) and operational alerts (to the data engineers) both go through
here. Each function returns the error as text instead of raising, so the caller can record
the failure next to what it tried to send and carry on with the next recipient.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import requests

from revops.settings import SMTP_CONN_ID, Settings

log = logging.getLogger(__name__)


def send_email(
    to: str,
    subject: str,
    html: str,
    files: Sequence[str] = (),
    smtp_conn_id: str = SMTP_CONN_ID,
    mail_from: str | None = None,
) -> str | None:
    """Send one message; None on success, else the error (recipients and secrets not logged)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    try:
        with SmtpHook(smtp_conn_id=smtp_conn_id) as smtp:
            smtp.send_email_smtp(
                to=to,
                from_email=mail_from or Settings.from_env().mail_from,
                subject=subject,
                html_content=html,
                files=list(files),
            )
    except Exception as error:
        log.error("e-mail %r failed: %s", subject, type(error).__name__)
        return f"{type(error).__name__}: {error}"
    return None


def post_webhook(url: str, lines: Sequence[str]) -> str | None:
    """Post to a Slack-compatible incoming webhook; None on success, else the error."""
    try:
        response = requests.post(
            url,
            data=json.dumps({"text": "\n".join(lines)}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException as error:
        log.error("webhook post failed: %s", type(error).__name__)
        return f"webhook: {type(error).__name__}: {error}"
    return None


def alert_data_engineers(subject: str, lines: Sequence[str]) -> list[str]:
    """Tell the data engineers (REVOPS_OPS_EMAIL, and the alerts webhook if one is set up)
    that something needs a person; returns the errors, empty when every channel worked."""
    from html import escape

    settings = Settings.from_env()
    lines = [redacted(line) for line in lines]
    log.warning("ops alert: %s — %s", subject, " | ".join(lines))
    html = "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
    errors = [send_email(settings.ops_email, f"[revops] {subject}", html)]
    webhook = webhook_url()
    if webhook:
        errors.append(post_webhook(webhook, [subject, *lines]))
    return [error for error in errors if error]


def webhook_url() -> str | None:
    """The alerts webhook from its Airflow connection, or None when none is configured."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from revops.settings import ALERTS_WEBHOOK_CONN_ID

    try:
        return BaseHook.get_connection(ALERTS_WEBHOOK_CONN_ID).extra_dejson.get("url")
    except AirflowNotFoundException:
        log.info("no %s connection: alerts go by e-mail only", ALERTS_WEBHOOK_CONN_ID)
        return None


def redacted(text: str) -> str:
    """Text with every secret Airflow knows of masked, as Airflow masks its task logs."""
    try:
        from airflow.sdk.log import redact
    except ImportError:
        return text
    return str(redact(text))
