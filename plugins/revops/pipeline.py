"""The unit of work behind each Airflow task: plain functions with plain arguments.

DAG files stay thin by calling these; tests call them directly or through `dag.test()`.
Each returns a small JSON-able summary (it becomes the task's XCom and the task log line).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from revops.audit import retention
from revops.audit.history import record_definition_changes
from revops.audit.ledger import batch_provenance, record_run
from revops.extract import crm
from revops.extract.csv_source import csv_batches
from revops.extract.hubspot import HubSpotSettings
from revops.extract.landing import LandedBatch, land_snapshot
from revops.extract.salesforce import SalesforceSettings
from revops.kpis import alerts, control
from revops.kpis.engine import compute_kpis, current_build
from revops.kpis.scope import Scope
from revops.notify import alert_data_engineers, webhook_url
from revops.periods import GRAINS, Period, local_date, naive_utc, period_containing
from revops.reconcile.build import build_staging
from revops.reconcile.quality import run_check
from revops.scorecards.audiences import Audience, load_audiences
from revops.scorecards.delivery import (
    DeliveryOutcome,
    archive_message,
    compose,
    deliver,
    latest_artifact,
    load_archived,
    sent_to,
)
from revops.scorecards.delivery import record as record_deliveries
from revops.scorecards.lateness import LATE_KIND, late_scorecards
from revops.scorecards.render import archive_pdf, render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results
from revops.settings import (
    HUBSPOT_CONN_ID,
    SALESFORCE_CONN_ID,
    SMTP_CONN_ID,
    Settings,
)
from revops.snapshots import capture, velocity
from revops.snapshots import store as score_store
from revops.snapshots.hot_prospects import hot_prospects, latest_velocity_as_of, write_hot_prospects_csv
from revops.warehouse import get_engine

log = logging.getLogger(__name__)

KPI_HORIZON = {"week": 13, "month": 13, "quarter": 6}  # periods kept fresh by the KPI DAG


def source_enabled(source: str) -> bool:
    """Whether REVOPS_EXTRACT_SOURCES switches this source on for the deployment."""
    return source in Settings.from_env().extract_sources


def extract_salesforce(run_id: str, object_name: str, window_end: datetime) -> dict:
    """Extract one Salesforce object up to the run's window end (full load the first time)."""
    from airflow.sdk import BaseHook

    settings = SalesforceSettings.from_connection(BaseHook.get_connection(SALESFORCE_CONN_ID))
    batch = crm.extract_salesforce_object(get_engine(), settings, object_name, naive_utc(window_end), run_id)
    return _batch_summary(batch)


def extract_hubspot(run_id: str, object_name: str, window_end: datetime) -> dict:
    """Extract one HubSpot object type (and its associations) up to the run's window end."""
    from airflow.sdk import BaseHook

    settings = HubSpotSettings.from_connection(BaseHook.get_connection(HUBSPOT_CONN_ID))
    batches = crm.extract_hubspot_object(get_engine(), settings, object_name, naive_utc(window_end), run_id)
    return {"batches": [_batch_summary(b) for b in batches]}


def _batch_summary(batch: LandedBatch) -> dict:
    return {
        "batch_id": batch.batch_id,
        "object": f"{batch.source}.{batch.object}",
        "records_seen": batch.records_seen,
        "records_landed": batch.record_count,
        "status": batch.status,
    }


def extract_csv_exports(run_id: str) -> dict:
    """Land every configured CSV export as a raw batch (identical files land once)."""
    settings = Settings.from_env()
    engine = get_engine(settings.warehouse_url)
    landed = []
    for spec, records in csv_batches(settings.csv_export_dir):
        result = land_snapshot(engine, spec, records, run_id)
        landed.append(
            {
                "batch_id": result.batch_id,
                "object": f"{result.source}.{result.object}",
                "records": result.record_count,
                "new": not result.already_landed,
            }
        )
    if not landed:
        raise RuntimeError(f"no CSV export found under {settings.csv_export_dir}")
    return {"batches": landed}


def reconcile(run_id: str, full: bool = False) -> dict:
    """Bring staging up to date with raw (only what new increments touch, unless `full`);
    returns the build id, cut-off, data-quality summary and what an incremental build did."""
    result = build_staging(get_engine(), run_id, full)
    return {
        "build_id": result.build_id,
        "data_cutoff": result.data_cutoff.isoformat(),
        "summary": result.summary,
        "update": result.update,
    }


def check_quality(check_name: str, run_time: datetime | None = None) -> dict:
    """Run one data-quality check on the current staging build (raises if it fails)."""
    engine = get_engine()
    with engine.connect() as conn:
        build = current_build(conn)
    result = run_check(engine, check_name, build.build_id, naive_utc(run_time))
    return {
        "check": result.check,
        "status": result.status,
        "message": result.message,
        "measured": result.measured,
    }


def compute_kpi_horizon(run_id: str) -> dict:
    """Every KPI for the recent periods of each grain, for every audience scope. A slice already
    computed from the same build and definition is kept (a re-run with no new data is cheap)."""
    return kpi_horizon(get_engine(), run_id)


def kpi_horizon(
    engine: sa.Engine,
    run_id: str,
    kpi_ids: list[str] | None = None,
    version: int | None = None,
    reuse: bool = True,
) -> dict:
    """The KPI DAG's horizon, for these KPIs in this version if named (benchmarks compare a
    rewrite with the version it replaced this way; without `reuse`, they recompute what the
    same build already stored). A scope's periods of every grain go to the engine at once, so
    a version that runs its periods together reads staging once for all of them: 1.25x to
    1.56x faster at a million prospects than a run per grain."""
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    rows = 0
    for scope, timezone in horizon_scopes():
        periods = horizon_periods(cutoff, timezone)
        rows += len(compute_kpis(engine, periods, run_id, scope, kpi_ids, version, reuse=reuse))
    return {"rows": rows, "data_cutoff": cutoff.isoformat()}


def horizon_scopes() -> list[tuple[Scope, str]]:
    """The scopes the KPI DAG computes, each with the time zone its periods are cut in: the
    whole company in UTC, and every audience's scope in the audience's zone."""
    slices = {(Scope(), "UTC")} | {(a.scope, a.timezone) for a in load_audiences().values()}
    return sorted(slices, key=lambda s: (s[0].key, s[1]))


def horizon_periods(data_cutoff: datetime, timezone: str = "UTC") -> list[Period]:
    """The periods the KPI DAG keeps fresh: of each grain, the latest `KPI_HORIZON[grain]` up to
    the one holding the data cut-off."""
    today = local_date(data_cutoff, timezone)
    return [
        period
        for grain in GRAINS
        for period in period_containing(grain, today, timezone).history(KPI_HORIZON[grain])
    ]


def update_control_limits(run_id: str) -> dict:
    """p-chart limits over the weekly series of every rate KPI, per segment."""
    return {"rows": control.update_control_limits(get_engine(), grain="week")}


def raise_alerts(run_id: str) -> dict:
    """Record new threshold and control-limit breaches; notify owners of every pending one."""
    engine = get_engine()
    new = alerts.detect_alerts(engine, run_id)
    outcome = alerts.notify_pending(engine, SMTP_CONN_ID, webhook_url(), Settings.from_env().mail_from)
    summary = {"new_alerts": len(new), **outcome}
    if outcome["failed"]:
        raise RuntimeError(f"alert notifications failed (kept for the next try): {summary}")
    return summary


def snapshot_scores(source: str, run_id: str, snapshot_at: datetime) -> dict:
    """Record every live record's score in one CRM into the score history store. The store's
    first snapshot of an object also backfills its field history."""
    from airflow.sdk import BaseHook

    spec = capture.score_sources()[source]
    at = naive_utc(snapshot_at)
    engine = get_engine()
    with engine.connect() as conn:
        began = score_store.first_snapshot_at(conn, source, spec.object)
    with_history = began is None or began == at
    if source == "salesforce":
        settings = SalesforceSettings.from_connection(BaseHook.get_connection(SALESFORCE_CONN_ID))
        captured = capture.capture_salesforce(settings, spec, at, with_history)
    else:
        settings = HubSpotSettings.from_connection(BaseHook.get_connection(HUBSPOT_CONN_ID))
        captured = capture.capture_hubspot(settings, spec, at, with_history)
    result = score_store.apply_snapshot(engine, captured, run_id)
    log.info("%s.%s scores at %s: %s", source, spec.object, at, result)
    return {**dataclasses.asdict(result), "snapshot_at": at.isoformat()}


def compute_score_velocity(as_of: datetime) -> dict:
    """Velocity per prospect, model changes and the engagement trend as of the snapshot."""
    summary = velocity.refresh_velocity(
        get_engine(), naive_utc(as_of), velocity.VelocitySettings.from_config()
    )
    return {**dataclasses.asdict(summary), "as_of": summary.as_of.isoformat()}


def export_hot_prospects(as_of: datetime) -> dict:
    """The hot-prospect list as CSV: everyone, and one file per region."""
    at = naive_utc(as_of)
    size = velocity.VelocitySettings.from_config().hot_list_size
    directory = Settings.from_env().archive_dir / "hot_prospects" / f"{at:%Y-%m-%d}"
    with get_engine().connect() as conn:
        regions = conn.execute(
            sa.text("select distinct region from staging.prospects where region is not null order by region")
        ).scalars()
        scopes = [Scope(), *(Scope("region", r) for r in regions)]
        written = {
            scope.key: str(
                write_hot_prospects_csv(
                    hot_prospects(conn, at, size, scope), directory / f"{_file_name(scope)}.csv"
                )
            )
            for scope in scopes
        }
    return {"as_of": at.isoformat(), "files": written}


def _file_name(scope: Scope) -> str:
    return "hot_prospects" if scope.column is None else f"hot_prospects_{scope.column}_{scope.value}".lower()


def audience_period(audience: Audience, data_interval_start: datetime) -> Period:
    """The reporting period a scheduled run covers: the one its data interval starts in."""
    day = local_date(naive_utc(data_interval_start), audience.timezone)
    return period_containing(audience.grain, day, audience.timezone)


def compute_scorecard_kpis(audience_name: str, run_id: str, data_interval_start: datetime) -> dict:
    """Make sure the KPIs the scorecard shows exist for its period, scope and trend."""
    audience = _audience(audience_name)
    period = audience_period(audience, data_interval_start)
    rows = compute_scorecard_results(get_engine(), audience, period, run_id)
    return {"period": period.label, "rows": rows}


def render_scorecard(
    audience_name: str, run_id: str, data_interval_start: datetime, data_interval_end: datetime | None
) -> dict:
    """Render the audience's PDF and its e-mail for the period and archive both; the
    completeness gate is judged at the run's scheduled time (the data interval's end)."""
    audience = _audience(audience_name)
    period = audience_period(audience, data_interval_start)
    checked_at = naive_utc(data_interval_end)
    with get_engine().connect() as conn:
        view = build_view(conn, audience, period, run_id, checked_at=checked_at)
        velocity_as_of = latest_velocity_as_of(conn, period.end_at) if audience.hot_prospects else None
    path, digest = archive_pdf(
        render_pdf(view), Settings.from_env().archive_dir, audience.name, period_key(period)
    )
    archive_message(path, compose(view))
    log.info("scorecard for %s, %s: %s (sha256 %s)", audience.name, period.label, path, digest)
    for problem in view.completeness_problems:
        log.warning("incomplete data: %s", problem)
    return {
        "pdf_path": str(path),
        "pdf_sha256": digest,
        "period": period.label,
        "build_id": view.build_id,
        "completeness_problems": list(view.completeness_problems),
        "kpi_results": {"sha256": view.results_sha256, "rows": view.results_rows},
        "checked_at": checked_at,
        "velocity_as_of": velocity_as_of,
        "definitions": {
            d.kpi_id: {"version": d.version, "sql_sha256": d.sql_sha256} for d in view.definitions
        },
    }


def period_key(period: Period) -> str:
    return f"{period.grain}-{period.start.isoformat()}"


def send_scorecard(audience_name: str, run_id: str, rendered: dict, dry_run: bool, final_try: bool) -> dict:
    """E-mail the archived PDF to the audience, or hold it when the data is incomplete and the
    audience says so. Fails (so Airflow retries) if any send failed; on the final try the
    data engineers are alerted first. A dry run only says what would be sent to whom."""
    audience = _audience(audience_name)
    pdf_path, sha256 = Path(rendered["pdf_path"]), rendered["pdf_sha256"]
    message = load_archived(pdf_path, sha256)
    problems = rendered["completeness_problems"]
    if dry_run:
        plan = {
            "dry_run": True,
            "subject": message.subject,
            "attachment": str(pdf_path),
            "to": audience.recipients,
        }
        log.info("dry run, nothing sent: %s", json.dumps(plan, default=str))
        return {"deliveries": {r: "dry_run" for r in audience.recipients}}
    engine = get_engine()
    if problems and audience.on_incomplete == "hold":
        reason = "held: incomplete data: " + " ".join(problems)
        held = [DeliveryOutcome(r, "held", reason) for r in audience.recipients]
        record_deliveries(engine, run_id, audience.name, pdf_path, sha256, held)
        alert_data_engineers(
            f"{audience.name} scorecard held: incomplete data",
            [
                *problems,
                f"Archived PDF: {pdf_path}",
                "Re-send when fixed: python -m revops.cli scorecards resend",
            ],
        )
        return {"deliveries": {o.recipient: o.status for o in held}}
    outcomes = deliver(engine, message, pdf_path, sha256, audience.recipients, run_id, audience.name)
    summary = {o.recipient: o.status for o in outcomes}
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        if final_try:
            alert_data_engineers(
                f"{audience.name} scorecard not delivered to {len(failed)} recipient(s)",
                [f"{o.recipient}: {o.error}" for o in failed] + [f"Archived PDF (kept): {pdf_path}"],
            )
        raise RuntimeError(f"scorecard not delivered to {len(failed)} recipient(s): {summary}")
    return {"deliveries": summary}


def resend_scorecard(
    audience_name: str, period_start: date, to: tuple[str, ...] = (), dry_run: bool = False
) -> dict:
    """Send the archived PDF of a past run again, byte for byte, to the audience's recipients
    it has not reached yet (or to `to`). Refuses if the archived file's hash has changed."""
    audience = _audience(audience_name)
    period = period_containing(audience.grain, period_start, audience.timezone)
    engine = get_engine()
    found = latest_artifact(engine, audience.name, period_key(period))
    if found is None:
        raise LookupError(f"no scorecard recorded for {audience.name}, {period.label}")
    pdf_path, sha256 = found
    message = load_archived(pdf_path, sha256)
    recipients = to or audience.recipients
    if dry_run:
        pending = sorted(set(recipients) - sent_to(engine, audience.name, sha256))
        return {
            "dry_run": True,
            "pdf": str(pdf_path),
            "sha256": sha256,
            "subject": message.subject,
            "to": pending,
        }
    run_id = f"resend__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    outcomes = deliver(engine, message, pdf_path, sha256, recipients, run_id, audience.name)
    return {"pdf": str(pdf_path), "sha256": sha256, "deliveries": {o.recipient: o.status for o in outcomes}}


def record_scorecard_run(
    audience_name: str,
    run_id: str,
    dag_id: str,
    logical_date,
    data_interval: tuple,
    rendered: dict,
    delivered: dict,
) -> dict:
    """Ledger entry for a scorecard run: inputs, definitions, output and deliveries."""
    audience = _audience(audience_name)
    period = audience_period(audience, data_interval[0])
    engine = get_engine()
    with engine.connect() as conn:
        batch_ids = json.loads(
            conn.execute(
                sa.text("select batch_ids from staging.builds where build_id = :b"),
                {"b": rendered["build_id"]},
            ).scalar_one()
        )
        batches = batch_provenance(conn, batch_ids)
    details = {
        "audience": audience.name,
        "audience_config": audience.as_config(),
        "period": {"grain": period.grain, "start": period.start, "end": period.end},
        "checked_at": rendered["checked_at"],
        "velocity_as_of": rendered["velocity_as_of"],
        "scope": audience.scope.key,
        "build_id": rendered["build_id"],
        "input_batches": batches,
        "kpi_definitions": rendered["definitions"],
        "kpi_results": rendered["kpi_results"],
        "outputs": [{"path": rendered["pdf_path"], "sha256": rendered["pdf_sha256"]}],
        "completeness_problems": rendered["completeness_problems"],
        "deliveries": delivered["deliveries"],
    }
    entry_id = record_run(
        engine,
        run_id=run_id,
        dag_id=dag_id,
        logical_date=logical_date,
        data_interval=data_interval,
        details=details,
        outcome="success",
        kind="artifact",
    )
    return {"ledger_entry": entry_id}


def apply_retention(run_id: str, dag_id: str, now: datetime) -> dict:
    """Purge raw extracts past their retention, keeping what retained scorecards need."""
    summary = retention.apply_retention(
        get_engine(), naive_utc(now), retention.RetentionPolicy.from_config(), run_id, dag_id
    )
    return {key: len(value) if isinstance(value, list) else value for key, value in summary.items()}


def record_kpi_run(run_id: str, dag_id: str, details: dict) -> dict:
    """Ledger entry for a KPI run, after one entry per KPI definition version the ledger has
    not seen yet (with its rationale and dates), so every definition change is in the history."""
    new_versions = record_definition_changes(get_engine(), run_id, dag_id)
    return record_pipeline_run(
        run_id, dag_id, None, (None, None), {**details, "new_definition_versions": new_versions}
    )


def record_pipeline_run(run_id: str, dag_id: str, logical_date, data_interval: tuple, details: dict) -> dict:
    """Ledger entry for an extract, reconcile or KPI run."""
    entry_id = record_run(
        get_engine(),
        run_id=run_id,
        dag_id=dag_id,
        logical_date=logical_date,
        data_interval=data_interval,
        details=details,
        outcome="success",
    )
    return {"ledger_entry": entry_id}


def alert_late_scorecards(dag_id: str, now: datetime) -> dict:
    """Tell the data engineers about each scorecard that is late at `now`, once: a ledger
    entry marks it reported. A failed alert is not recorded, so the next run tries again."""
    engine = get_engine()
    reported, failed = [], []
    for late in late_scorecards(engine, load_audiences().values(), naive_utc(now)):
        errors = alert_data_engineers(
            f"{late.audience} scorecard is late",
            [
                f"Scheduled {late.scheduled_at:%Y-%m-%d %H:%M} UTC, due by {late.due_by:%Y-%m-%d %H:%M} UTC;"
                " nothing has been sent, held or failed since.",
                f"Look at the DAG revops_scorecard__{late.audience}: paused, queued, or never scheduled?",
            ],
        )
        if errors:
            failed.append(f"{late.audience}: {'; '.join(errors)}")
            continue
        record_run(
            engine,
            run_id=late.key,
            dag_id=dag_id,
            logical_date=late.scheduled_at,
            data_interval=(late.scheduled_at, late.due_by),
            details={
                "audience": late.audience,
                "scheduled_at": f"{late.scheduled_at:%Y-%m-%d %H:%M}",
                "due_by": f"{late.due_by:%Y-%m-%d %H:%M}",
            },
            outcome="reported",
            kind=LATE_KIND,
        )
        reported.append(late.key)
    if failed:
        raise RuntimeError(f"late-scorecard alert not delivered: {failed}")
    return {"reported": reported}


def _audience(name: str) -> Audience:
    return load_audiences()[name]
