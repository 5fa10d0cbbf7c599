"""Defaults every DAG shares: owner, retries, start date, tags, and the Assets between stages.

Imported by DAG files at parse time, so it must stay light: no pandas, no database.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset

OWNER = "revops-data-eng"
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
TAGS = ("revops",)

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
}

# Data-aware scheduling: each stage publishes the Asset the next stage is scheduled on.
RAW_CRM = Asset(name="revops_raw_crm", uri="revops://warehouse/raw")
STAGING = Asset(name="revops_staging", uri="revops://warehouse/staging")
KPI_RESULTS = Asset(name="revops_kpi_results", uri="revops://warehouse/marts/kpi_results")


def context_interval(context: dict) -> tuple:
    """(data_interval_start, data_interval_end) of a run, None for asset-triggered runs."""
    return context.get("data_interval_start"), context.get("data_interval_end")
