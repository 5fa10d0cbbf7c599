"""Run the project's DAGs through Airflow itself (`dag.test()`), for the demo and the tests.

`dag.test()` runs a real DAG run: Airflow builds the run, resolves dependencies, executes
each task through the Task SDK and records states in its metadata database. Only the
scheduler loop is replaced.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from revops.settings import PROJECT_ROOT, WAREHOUSE_POOL, airflow_environment

log = logging.getLogger(__name__)


class DagRunFailedError(RuntimeError):
    pass


def prepare_airflow(data_dir: Path | None = None) -> None:
    """Point Airflow at this project (env vars) and migrate its metadata database."""
    for key, value in airflow_environment(data_dir).items():
        os.environ.setdefault(key, value)
    # `airflow standalone` starts its components as `airflow ...` commands found on PATH.
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ)
    subprocess.run(
        [str(airflow), "pools", "set", WAREHOUSE_POOL, "1", "Serialises embedded-warehouse writers"],
        check=True,
        capture_output=True,
        env=os.environ,
    )


@cache
def _dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    if bag.import_errors:
        raise DagRunFailedError(f"DAG import errors: {bag.import_errors}")
    return bag


def run_dag(dag_id: str, logical_date: datetime | None, conf: dict | None = None) -> str:
    """Run one DAG to completion with `dag.test()` (with `conf` as the run's configuration);
    returns the run id, raises if it failed."""
    dag = _dag_bag().get_dag(dag_id)
    if dag is None:
        raise DagRunFailedError(f"no DAG {dag_id!r} in {PROJECT_ROOT / 'dags'}")
    if logical_date is not None and logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=UTC)
    run = dag.test(logical_date=logical_date, run_conf=conf)
    if run is None or str(run.state) != "success":
        raise DagRunFailedError(f"{dag_id} finished in state {getattr(run, 'state', None)}")
    log.info("%s: run %s succeeded", dag_id, run.run_id)
    return run.run_id
