"""Every DAG file imports cleanly, cheaply, and follows the team's conventions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from revops.dag_defaults import OWNER
from revops.scorecards.audiences import load_audiences
from revops.settings import PROJECT_ROOT

DAG_FILES = sorted((PROJECT_ROOT / "dags").glob("*.py"))
# Airflow itself brings SQLAlchemy and Jinja; these would be ours alone.
HEAVY_MODULES = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "weasyprint",
    "simple_salesforce",
    "hubspot",
)


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert len(dag_bag.dags) >= 4


def test_every_dag_has_owner_tags_retries_docs_and_a_schedule(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert "revops" in dag.tags, dag_id
        assert dag.doc_md and dag.doc_md.strip(), dag_id
        assert dag.max_active_runs == 1, dag_id
        # Either a cron timetable with a data interval, or scheduled by an upstream Asset.
        schedule = getattr(dag.timetable, "expression", None) or getattr(
            dag.timetable, "asset_condition", None
        )
        assert schedule is not None, dag_id
        for task in dag.tasks:
            assert task.owner == OWNER, f"{dag_id}.{task.task_id}"
            # Data-quality checks are deterministic: retrying a failed one changes nothing.
            expected_retries = 0 if task.task_id.startswith("check_") else 2
            assert task.retries >= expected_retries, f"{dag_id}.{task.task_id}"


def test_one_scorecard_dag_per_configured_audience(dag_bag):
    for name, audience in load_audiences().items():
        dag = dag_bag.dags[f"revops_scorecard__{name}"]
        assert dag.timetable.expression == audience.schedule
        assert {"compute_kpis", "render_pdf", "email_pdf", "record_audit"} <= set(dag.task_ids)


def test_stages_are_connected_by_assets(dag_bag):
    outlets = {
        dag_id: {outlet.name for task in dag.tasks for outlet in task.outlets}
        for dag_id, dag in dag_bag.dags.items()
    }
    assert "revops_raw_crm" in outlets["revops_extract"]
    assert "revops_staging" in outlets["revops_reconcile"]
    assert "revops_kpi_results" in outlets["revops_kpis"]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_no_heavy_library_and_touch_no_database(dag_file: Path, tmp_path):
    """The DAG processor parses these files constantly: no pandas, no database at import."""
    probe = (
        "import runpy, sys\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    env = {**os.environ, "REVOPS_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'absent' / 'x.duckdb'}"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    heavy = result.stdout.strip().splitlines()[-1]
    assert heavy == "HEAVY:", f"{dag_file.name} imports {heavy}"
    assert not (tmp_path / "absent").exists(), "a DAG file opened the warehouse at import"


def test_a_configuration_mistake_fails_the_dag_file_naming_file_and_line(tmp_path, monkeypatch):
    """The scheduler shows it as the DAG file's import error, where data engineers look."""
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    kpis = tmp_path / "kpis"
    shutil.copytree(PROJECT_ROOT / "include" / "sql" / "kpis", kpis)
    definition = kpis / "win_rate_count" / "definition.yaml"
    definition.write_text(definition.read_text().replace("perspective:", "perspectve:"))
    monkeypatch.setenv("REVOPS_KPI_DIR", str(kpis))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "revops_scorecards.py"))
    (error,) = bag.import_errors.values()
    assert "win_rate_count/definition.yaml:7: unknown key 'perspectve'; did you mean 'perspective'?" in error
