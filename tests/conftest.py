"""Shared fixtures. Airflow and the product read their settings from the environment, so
the test session gets its own data directory (warehouse, exports, archive, Airflow home)
before anything imports Airflow."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="revops-tests-"))
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["REVOPS_DATA_DIR"] = str(_SESSION_DIR)
os.environ.pop("REVOPS_WAREHOUSE_URL", None)

from revops.settings import airflow_environment  # noqa: E402

os.environ.update(airflow_environment(_SESSION_DIR))
# A second DAG bundle with DAGs only the tests run (e.g. one that always fails).
TEST_DAGS = Path(__file__).parent / "airflow_dags"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "dags-folder",
            "classpath": LOCAL_BUNDLE,
            "kwargs": {"path": os.environ["AIRFLOW__CORE__DAGS_FOLDER"]},
        },
        {"name": "revops-test-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(TEST_DAGS)}},
    ]
)

import pytest  # noqa: E402

from revops.synthetic.exports import write_csv_exports  # noqa: E402
from revops.synthetic.world import WorldConfig, generate_world  # noqa: E402

SMALL_WORLD = WorldConfig(n_prospects=1_500, seed=11)


@pytest.fixture(scope="session")
def small_world():
    """A world small enough for unit-speed tests, with every kind of mess in it."""
    return generate_world(SMALL_WORLD)


@pytest.fixture(scope="session")
def small_exports(small_world, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("exports")
    write_csv_exports(small_world, directory)
    return directory


@pytest.fixture
def warehouse_url(tmp_path) -> str:
    """A fresh, empty embedded warehouse for one test."""
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(params=["duckdb", "postgresql"])
def any_warehouse_url(request, tmp_path) -> str:
    """The same test on the embedded DuckDB and on a real PostgreSQL server."""
    from revops.devtools.postgres import scratch_warehouse

    with scratch_warehouse(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def airflow_metadata() -> None:
    """Airflow's metadata database migrated, for tests that run DAGs with `dag.test()`."""
    from revops.devtools.airflow_runner import prepare_airflow

    prepare_airflow(_SESSION_DIR)
