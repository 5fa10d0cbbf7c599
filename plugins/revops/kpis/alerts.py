"""Alerts: a KPI beyond its warning or escalation level, or a segment outside its control
limits, becomes one alert record; its owner is told by e-mail and on a Slack-compatible
webhook. An alert's id is the breach itself (KPI, version, slice, period, rule), so the same
breach is never alerted twice, and one whose notification failed is retried next run.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from html import escape

import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import TOTAL
from revops.kpis.registry import Kpi, load_registry
from revops.notify import post_webhook, send_email
from revops.warehouse import read_frame
from revops.warehouse.load import append_frame
from revops.warehouse.schema import alerts

log = logging.getLogger(__name__)

NOT_JUDGED = ("no_data", "insufficient_volume", "partial_period", "window_open")
ALERT_KEYS = [
    "kpi_id",
    "kpi_version",
    "grain",
    "timezone",
    "scope",
    "dimension",
    "segment",
    "period_start",
    "rule",
]


def detect_alerts(engine: sa.Engine, run_id: str) -> pd.DataFrame:
    """Record new breaches of the latest judged period of each series; returns the new ones."""
    registry = load_registry()
    with engine.begin() as conn:
        results = read_frame(conn, "select * from marts.kpi_results where dimension = :d", {"d": TOTAL})
        limits = read_frame(conn, "select * from marts.kpi_control_limits where signal is not null")
        candidates = pd.concat(
            [_threshold_breaches(results, registry), _limit_breaches(limits, registry)], ignore_index=True
        )
        if candidates.empty:
            return candidates
        candidates["alert_id"] = [_alert_id(row) for row in candidates[ALERT_KEYS].itertuples(index=False)]
        known = set(read_frame(conn, "select alert_id from marts.alerts")["alert_id"])
        new = candidates[~candidates["alert_id"].isin(known)].drop_duplicates("alert_id")
        append_frame(
            conn,
            alerts,
            new.assign(detected_run_id=run_id, detected_at=datetime.now(UTC).replace(tzinfo=None)),
        )
    log.info("%d new alerts (%d breaches seen)", len(new), len(candidates))
    return new


def _latest_judged(results: pd.DataFrame) -> pd.DataFrame:
    judged = results[~results["flags"].fillna("").str.contains("|".join(NOT_JUDGED))]
    keys = ["kpi_id", "grain", "timezone", "scope"]
    latest = judged.groupby(keys)["period_start"].transform("max")
    return judged[judged["period_start"] == latest]


def _threshold_breaches(results: pd.DataFrame, registry: dict[str, Kpi]) -> pd.DataFrame:
    rows = []
    for row in _latest_judged(results).itertuples(index=False):
        kpi = registry.get(row.kpi_id)
        if kpi is None or row.value is None or pd.isna(row.value):
            continue
        sign = 1 if kpi.direction == "higher_is_better" else -1
        for rule in ("escalation", "warning"):  # the most severe level that applies
            level = kpi.thresholds.get(rule)
            if level is not None and sign * (row.value - level) < 0:
                rows.append(_alert(row, rule, row.value, level, kpi.owner))
                break
    return pd.DataFrame(rows)


def _limit_breaches(limits: pd.DataFrame, registry: dict[str, Kpi]) -> pd.DataFrame:
    if limits.empty:
        return pd.DataFrame()
    latest = limits.groupby(["kpi_id", "grain", "timezone", "scope"])["period_start"].transform("max")
    rows = []
    for row in limits[limits["period_start"] == latest].itertuples(index=False):
        kpi = registry.get(row.kpi_id)
        if kpi is None:
            continue
        limit = row.upper if row.signal == "above_upper" else row.lower
        rows.append(_alert(row, "control_limit", row.value, limit, kpi.owner))
    return pd.DataFrame(rows)


def _alert(row, rule: str, value: float, limit: float, owner: str) -> dict:
    return {
        "kpi_id": row.kpi_id,
        "kpi_version": int(row.kpi_version),
        "grain": row.grain,
        "timezone": row.timezone,
        "scope": row.scope,
        "dimension": row.dimension,
        "segment": row.segment,
        "period_start": row.period_start,
        "rule": rule,
        "value": float(value),
        "limit_value": float(limit),
        "owner": owner,
    }


def _alert_id(key) -> str:
    return hashlib.sha256("|".join(str(part) for part in key).encode()).hexdigest()[:24]


def alert_text(alert) -> str:
    name = load_registry()[alert["kpi_id"]].name
    where = "overall" if alert["dimension"] == TOTAL else f"{alert['dimension']} = {alert['segment']}"
    reason = {
        "warning": "fell below its warning level",
        "escalation": "fell below its escalation level",
        "control_limit": "left its control limits",
    }[alert["rule"]]
    return (
        f"{name} {reason}: {alert['value']:.3g} against {alert['limit_value']:.3g} "
        f"({where}, {alert['grain']} of {alert['period_start']}, scope {alert['scope']})."
    )


def notify_pending(engine: sa.Engine, smtp_conn_id: str, webhook_url: str | None, mail_from: str) -> dict:
    """Tell owners about every alert a channel has not carried yet; record each success or
    the error. Each channel is tracked on its own, so a retry never repeats a sent e-mail."""
    with engine.connect() as conn:
        pending = read_frame(
            conn,
            """
            select * from marts.alerts
            where emailed_at is null or (posted_at is null and :webhook)
            order by alert_id
        """,
            {"webhook": webhook_url is not None},
        )
    outcome = {"notified": 0, "failed": 0}
    for owner, group in pending.groupby("owner", sort=True):
        errors = []
        unmailed = group[group["emailed_at"].isna()]
        if not unmailed.empty:
            error = _email(owner, _texts(unmailed), smtp_conn_id, mail_from)
            _mark(engine, unmailed["alert_id"].tolist(), "emailed_at", error)
            errors.append(error)
        unposted = group[group["posted_at"].isna()]
        if webhook_url and not unposted.empty:
            error = post_webhook(webhook_url, _texts(unposted))
            _mark(engine, unposted["alert_id"].tolist(), "posted_at", error)
            errors.append(error)
        outcome["failed" if any(errors) else "notified"] += len(group)
    return outcome


def _texts(group: pd.DataFrame) -> list[str]:
    return [alert_text(a) for a in group.to_dict("records")]


def _email(owner: str, texts: list[str], smtp_conn_id: str, mail_from: str) -> str | None:
    html = "<ul>" + "".join(f"<li>{escape(t)}</li>" for t in texts) + "</ul>"
    error = send_email(
        owner, f"KPI alerts: {len(texts)} new", html, smtp_conn_id=smtp_conn_id, mail_from=mail_from
    )
    return f"e-mail: {error}" if error else None


def _mark(engine: sa.Engine, alert_ids: list[str], channel: str, error: str | None) -> None:
    values = {"notification_error": error}
    if error is None:
        values[channel] = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(alerts.update().where(alerts.c.alert_id.in_(alert_ids)).values(**values))
