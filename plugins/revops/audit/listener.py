"""Airflow listener: every task outcome and every DAG-run outcome goes into the ledger.

Registered by the project's Airflow plugin (`plugins/revops_airflow_plugin.py`), so no task
has to remember to record itself, and a run that fails before its own audit task still
leaves a trace. Task hooks run in the task's process, DAG-run hooks in the scheduler (or in
`dag.test()`). A listener must never take Airflow down: a ledger write that fails is logged,
not raised.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl

from revops.notify import redacted

log = logging.getLogger(__name__)

PROJECT_DAG_PREFIX = "revops_"


@hookimpl
def on_task_instance_success(previous_state, task_instance):
    _record_task(task_instance, "success", None)


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error):
    retrying = task_instance.try_number <= (getattr(task_instance, "max_tries", 0) or 0)
    _record_task(task_instance, "up_for_retry" if retrying else "failed", error)


@hookimpl
def on_dag_run_success(dag_run, msg):
    _record_dag_run(dag_run, "success", msg)


@hookimpl
def on_dag_run_failed(dag_run, msg):
    _record_dag_run(dag_run, "failed", msg)


def _record_task(task_instance, outcome: str, error) -> None:
    if not task_instance.dag_id.startswith(PROJECT_DAG_PREFIX):
        return
    details = {
        "task_id": task_instance.task_id,
        "map_index": task_instance.map_index,
        "try_number": task_instance.try_number,
    }
    if error is not None:
        details["error"] = redacted(
            f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        )
    _append("task", task_instance.dag_id, task_instance.run_id, None, (None, None), details, outcome)


def _record_dag_run(dag_run, outcome: str, msg: str | None) -> None:
    if not dag_run.dag_id.startswith(PROJECT_DAG_PREFIX):
        return
    details = {
        "run_type": str(dag_run.run_type),
        "start_date": dag_run.start_date,
        "end_date": dag_run.end_date,
        "message": redacted(msg or ""),
    }
    interval = (dag_run.data_interval_start, dag_run.data_interval_end)
    _append("dag_run", dag_run.dag_id, dag_run.run_id, dag_run.logical_date, interval, details, outcome)


def _append(kind, dag_id, run_id, logical_date, interval, details, outcome) -> None:
    try:
        from revops.audit.ledger import record_run
        from revops.warehouse import get_engine

        record_run(
            get_engine(),
            kind=kind,
            run_id=run_id,
            dag_id=dag_id,
            logical_date=logical_date,
            data_interval=interval,
            details=details,
            outcome=outcome,
        )
    except Exception:
        log.exception("could not record %s %s of %s in the ledger", kind, outcome, dag_id)
