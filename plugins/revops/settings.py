"""Every setting, path and connection id of the product, in one place.

Values come from environment variables (see `.env.example`); secrets never live here, only
the *names* of the Airflow connections that hold them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"
CONFIG_DIR = INCLUDE_DIR / "config"


def config_dir() -> Path:
    """Where the YAML configuration is read from: include/config, unless REVOPS_CONFIG_DIR
    names a deployment's own copy (read on every call, like the warehouse URL)."""
    return Path(os.environ.get("REVOPS_CONFIG_DIR", CONFIG_DIR))


# Airflow connection ids. The connections themselves come from the Airflow metastore or
# AIRFLOW_CONN_* environment variables; code only ever refers to these names.
SMTP_CONN_ID = "revops_smtp"
SALESFORCE_CONN_ID = "revops_salesforce"
HUBSPOT_CONN_ID = "revops_hubspot"
ALERTS_WEBHOOK_CONN_ID = "revops_alerts_webhook"  # Slack-compatible incoming webhook: extra {"url": ...}

# Sources the extract DAG reads: any of "salesforce", "hubspot" (their APIs) and "csv".
EXTRACT_SOURCES = ("salesforce", "hubspot", "csv")

# Pool that serialises warehouse writers: the embedded DuckDB file takes one writer at a time.
WAREHOUSE_POOL = "revops_warehouse"

# At most this many extract tasks of one run talk to the CRM APIs at once (their rate quotas).
CRM_API_CONCURRENCY = 4


@dataclass(frozen=True)
class Settings:
    """Runtime settings read from the environment."""

    data_dir: Path
    warehouse_url: str
    csv_export_dir: Path
    archive_dir: Path
    mail_from: str
    ops_email: str  # the data engineers: delivery failures, held scorecards
    extract_sources: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("REVOPS_DATA_DIR", PROJECT_ROOT / "var")).resolve()
        return cls(
            data_dir=data_dir,
            warehouse_url=os.environ.get(
                "REVOPS_WAREHOUSE_URL", f"duckdb:///{data_dir / 'warehouse.duckdb'}"
            ),
            csv_export_dir=Path(os.environ.get("REVOPS_CSV_EXPORT_DIR", data_dir / "exports")),
            archive_dir=Path(os.environ.get("REVOPS_ARCHIVE_DIR", data_dir / "archive")),
            mail_from=os.environ.get("REVOPS_MAIL_FROM", "scorecards@revops.local"),
            ops_email=os.environ.get("REVOPS_OPS_EMAIL", "data-eng@revops-demo.com"),
            extract_sources=tuple(
                s.strip()
                for s in os.environ.get("REVOPS_EXTRACT_SOURCES", "salesforce,hubspot").split(",")
                if s.strip()
            ),
        )


def airflow_environment(data_dir: Path | None = None) -> dict[str, str]:
    """Environment that points a local Airflow at this project's DAGs and plugins.

    Used by `make demo`, `make airflow` and the tests, so all three see the same Airflow.
    """
    data_dir = data_dir or Settings.from_env().data_dir
    return {
        "AIRFLOW_HOME": str(data_dir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "REVOPS_DATA_DIR": str(data_dir),
    }
