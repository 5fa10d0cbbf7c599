"""Production mode, natively: the Celery executor with Redis, Airflow's metadata and the
warehouse on PostgreSQL, each Airflow component its own process. The scheduler runs the
extract DAG on its schedule, the Asset chain runs reconcile and KPIs, and the warehouse on
PostgreSQL ends up with the same KPI results as the embedded run of the same data."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml

from revops.devtools.airflow_runner import prepare_airflow, run_dag
from revops.devtools.mail_sink import mail_sink
from revops.devtools.postgres import scratch_database
from revops.devtools.production_stack import production_stack
from revops.sandbox.server import running_sandbox
from revops.settings import PROJECT_ROOT, SMTP_CONN_ID, Settings
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine, read_frame

KEYS = ["kpi_id", "kpi_version", "grain", "timezone", "period_start", "scope", "dimension", "segment"]
PIPELINE = ("revops_extract", "revops_reconcile", "revops_kpis")


def _results(url: str) -> pd.DataFrame:
    with get_engine(url).connect() as conn:
        frame = read_frame(
            conn, f"select {', '.join(KEYS)}, numerator, denominator, value from marts.kpi_results"
        )
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    return frame.sort_values(KEYS).reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same world (current to today) through the embedded run and the production stack."""
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    world = generate_world(WorldConfig(n_prospects=1_500, seed=11, as_of=today))
    home = tmp_path_factory.mktemp("production")
    embedded_url = f"duckdb:///{home / 'embedded.duckdb'}"
    with (
        scratch_database() as metadata_url,
        scratch_database() as warehouse_url,
        mail_sink(home / "outbox") as sink,
        running_sandbox(world) as sandbox,
    ):
        connections = {
            f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}": sink.airflow_connection(),
            **sandbox.airflow_connections(),
        }
        with pytest.MonkeyPatch.context() as env:
            for key, value in {**connections, "REVOPS_WAREHOUSE_URL": embedded_url}.items():
                env.setenv(key, value)
            prepare_airflow(Settings.from_env().data_dir)
            run_dag("revops_extract", today)  # the interval that ends today, as the scheduler's
            run_dag("revops_reconcile", None)
            run_dag("revops_kpis", None)
        extra = {**connections, "REVOPS_RETRY_DELAY_SECONDS": "5"}
        with production_stack(home / "airflow", metadata_url, warehouse_url, extra) as stack:
            for dag_id in PIPELINE:
                stack.unpause(dag_id)
            finished = {dag_id: stack.wait_for_run(dag_id, timeout=900) for dag_id in PIPELINE}
            yield stack, finished, _results(embedded_url), _results(warehouse_url), (sandbox, warehouse_url)


def test_the_scheduler_ran_the_pipeline_on_celery_workers(runs):
    stack, finished, *_ = runs
    assert finished["revops_extract"]["run_id"].startswith("scheduled__")
    worker_log = stack.log("celery-worker")
    assert "revops_kpis" in worker_log and "ExecuteTask" in worker_log


def test_no_crm_secret_reaches_a_log_file_or_the_ledger(runs):
    """Every file the Airflow components and task runs wrote (scheduler, API server, DAG
    processor, Celery worker, per-task logs), and the audit ledger, grepped for the sandbox's
    credentials and the session tokens it issued."""
    stack, *_, (sandbox, warehouse_url) = runs
    credentials = sandbox.credentials
    secrets = [
        credentials.salesforce_password,
        credentials.salesforce_security_token,
        credentials.hubspot_access_token,
        *sandbox.salesforce.issued_tokens(),
    ]
    files = [path for path in stack.home.rglob("*") if path.is_file()]
    task_logs = [path for path in files if "dag_id=revops_extract" in str(path)]
    assert task_logs, "the worker wrote per-task log files"
    with get_engine(warehouse_url).connect() as conn:
        ledger = read_frame(conn, "select * from audit.run_ledger").to_csv()
    assert "revops_extract" in ledger
    for secret in secrets:
        assert secret not in ledger
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"a secret is in {path}"


def test_postgres_holds_the_same_kpi_results_as_the_embedded_run(runs):
    _, _, embedded, production, _ = runs

    assert len(production) == len(embedded) > 1_000
    pd.testing.assert_frame_equal(production[KEYS], embedded[KEYS])
    for column in ("numerator", "denominator", "value"):
        assert production[column].fillna(-1).tolist() == pytest.approx(embedded[column].fillna(-1).tolist())


def test_docker_compose_runs_the_same_parts_with_the_settings_the_code_reads():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"} <= set(
        services
    )
    assert {"airflow-worker", "airflow-triggerer", "airflow-init", "mailpit"} <= set(services)
    environment = services["airflow-worker"]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert environment["REVOPS_WAREHOUSE_URL"].startswith("postgresql+psycopg2://")
    settings_source = (PROJECT_ROOT / "plugins" / "revops" / "settings.py").read_text()
    for name in (k for k in environment if k.startswith("REVOPS_")):
        assert f'"{name}"' in settings_source, f"{name} is set by docker-compose.yml but never read"
    for service in services.values():
        assert (
            "healthcheck" in service
            or service.get("restart") == "no"
            or service.get("image", "").startswith("axllent")
        )
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), source
    assert (PROJECT_ROOT / services["airflow-worker"]["build"] / "Dockerfile").exists()
    assert os.access(PROJECT_ROOT / "deploy" / "postgres-init.sh", os.X_OK)
