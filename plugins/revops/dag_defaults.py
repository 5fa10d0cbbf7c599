"""Defaults every DAG shares: owner, retries, start date, tags, and the Assets between stages.

Imported by DAG files at parse time, so it must stay light: no pandas, no database.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset


def alert_on_failure(context: dict) -> None:
    """A task failed for good (its retries are spent): tell the data engineers, by e-mail and
    on the alerts webhook, with where to look. Never raises: a failed alert is logged."""
    from revops.notify import alert_data_engineers

    ti = context["ti"]
    error = context.get("exception")
    alert_data_engineers(
        f"{ti.dag_id}.{ti.task_id} failed",
        [
            f"Run {ti.run_id}, try {ti.try_number}.",
            f"Error: {type(error).__name__}: {error}" if error else "No exception was given.",
            f"Log: {getattr(ti, 'log_url', None) or 'see the task log in the Airflow UI'}",
        ],
    )


OWNER = "revops-data-eng"

START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
TAGS = ("revops",)

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    # First retry after 5 minutes, doubling after; REVOPS_RETRY_DELAY_SECONDS shortens it where
    # waiting makes no sense (the native production test).
    "retry_delay": timedelta(seconds=float(os.environ.get("REVOPS_RETRY_DELAY_SECONDS", 300))),
    "retry_exponential_backoff": True,
    "on_failure_callback": alert_on_failure,
}


# Data-aware scheduling: each stage publishes the Asset the next stage is scheduled on.
RAW_CRM = Asset(name="revops_raw_crm", uri="revops://warehouse/raw")
STAGING = Asset(name="revops_staging", uri="revops://warehouse/staging")
KPI_RESULTS = Asset(name="revops_kpi_results", uri="revops://warehouse/marts/kpi_results")


def context_interval(context: dict) -> tuple:
    """(data_interval_start, data_interval_end) of a run, None for asset-triggered runs."""
    return context.get("data_interval_start"), context.get("data_interval_end")
