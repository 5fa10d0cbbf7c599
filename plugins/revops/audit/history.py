"""The run history as auditors read it: ledger entries filtered by date, DAG, audience or
KPI, and every KPI definition version as it entered the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from revops.audit.ledger import record_run
from revops.kpis.registry import load_registry
from revops.warehouse import read_frame

HISTORY_COLUMNS = [
    "sequence",
    "entry_id",
    "kind",
    "dag_id",
    "run_id",
    "outcome",
    "recorded_at",
    "code_version",
]


@dataclass(frozen=True)
class HistoryFilter:
    since: date | None = None
    until: date | None = None  # inclusive
    dag_id: str | None = None
    audience: str | None = None
    kpi: str | None = None
    kinds: tuple[str, ...] = ()


def history(conn: sa.Connection, wanted: HistoryFilter = HistoryFilter()) -> pd.DataFrame:
    """Ledger entries, oldest first, with the artifact and definitions each names."""
    entries = read_frame(conn, "select * from audit.run_ledger order by sequence")
    if entries.empty:
        return entries
    details = entries["details"].map(json.loads)
    keep = pd.Series(True, index=entries.index)
    if wanted.since:
        keep &= entries["recorded_at"] >= pd.Timestamp(wanted.since)
    if wanted.until:
        keep &= entries["recorded_at"] < pd.Timestamp(wanted.until + timedelta(days=1))
    if wanted.dag_id:
        keep &= entries["dag_id"] == wanted.dag_id
    if wanted.audience:
        keep &= details.map(lambda d: d.get("audience")) == wanted.audience
    if wanted.kpi:
        keep &= details.map(
            lambda d: wanted.kpi in d.get("kpi_definitions", {}) or d.get("kpi_id") == wanted.kpi
        )
    if wanted.kinds:
        keep &= entries["kind"].isin(wanted.kinds)
    frame = entries.loc[keep, HISTORY_COLUMNS].copy()
    frame["what"] = details[keep].map(describe)
    return frame.reset_index(drop=True)


def describe(details: dict) -> str:
    """One line an auditor can read: what the entry is about."""
    if "kpi_id" in details and "rationale" in details:
        return (
            f"{details['kpi_id']} v{details['version']} {details['status']}, in effect from "
            f"{details['effective_from']}, published {details['published_on']} by {details['approved_by']}: "
            f"{details['rationale']}"
        )
    if "due_by" in details:
        return (
            f"{details['audience']} scorecard late: scheduled {details['scheduled_at']} UTC, not sent, "
            f"held or failed by {details['due_by']} UTC; the data engineers were alerted"
        )
    if "audience" in details:
        outputs = ", ".join(f"{o['path']} (sha256 {o['sha256'][:12]})" for o in details.get("outputs", []))
        versions = ", ".join(f"{k} v{v['version']}" for k, v in details.get("kpi_definitions", {}).items())
        return f"{details['audience']} {details['period']['start']}: {outputs}; {versions}"
    if "run_type" in details:
        span = f"{details['start_date']} to {details['end_date']}"
        return f"DAG run ({details['run_type']}), {span}: {details['message']}"

    if "task_id" in details:
        return f"task {details['task_id']} try {details['try_number']}" + (
            f": {details['error']}" if details.get("error") else ""
        )
    return ", ".join(f"{k}={v}" for k, v in sorted(details.items()) if not isinstance(v, dict | list))[:200]


def record_definition_changes(engine: sa.Engine, run_id: str, dag_id: str) -> int:
    """Add a ledger entry for every KPI version (published, proposed or retired) the ledger
    has not seen in that state, with its rationale and dates; returns how many were new."""
    with engine.connect() as conn:
        seen = {
            (d["kpi_id"], d["version"], d["status"])
            for d in read_frame(conn, "select details from audit.run_ledger where kind = 'kpi_version'")[
                "details"
            ].map(json.loads)
        }
    new = 0
    for kpi in load_registry().values():
        for version in kpi.versions:
            key = (kpi.id, version.version, version.status)
            if key in seen:
                continue
            record_run(
                engine,
                kind="kpi_version",
                run_id=run_id,
                dag_id=dag_id,
                logical_date=None,
                data_interval=(None, None),
                outcome=version.status,
                details={
                    "kpi_id": kpi.id,
                    "version": version.version,
                    "status": version.status,
                    "effective_from": version.effective_from,
                    "published_on": version.published_on,
                    "approved_by": version.approved_by,
                    "rationale": version.rationale,
                    "sql_sha256": version.sql_sha256,
                },
            )
            new += 1
    return new
