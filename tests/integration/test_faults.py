"""The fault matrix: a CRM fault the retries cannot ride out stops the run with a clear message,
and once it clears, a re-run of the same run gives exactly what a clean run gives: the same
KPI results and the same scorecard PDF, byte for byte. A process killed between landing raw
data and moving the watermark loses nothing either.

Faults are injected by the CRM sandbox and met by the real client libraries over HTTPS; the
pipeline runs through the same functions the Airflow tasks call.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from revops import pipeline
from revops.configuration import read_config
from revops.devtools.ports import free_port
from revops.devtools.postgres import scratch_database
from revops.extract.crm import ExtractIncomplete
from revops.reconcile.records import current_records_sql
from revops.sandbox.faults import Fault
from revops.sandbox.server import running_sandbox
from revops.settings import CONFIG_DIR, SALESFORCE_CONN_ID
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine, read_frame

AS_OF = datetime(2026, 11, 2)  # the extract's window end, as the scheduler would pass it
WEEK = (datetime(2026, 10, 26), datetime(2026, 11, 2, 7))  # the executive scorecard's run
RUN_ID = "scheduled__2026-11-02T00:00:00+00:00"  # a re-run keeps its run id
OBJECTS = read_config("crm_objects")
RESULT_COLUMNS = ["kpi_id", "kpi_version", "grain", "period_start", "scope", "dimension", "segment"]


@pytest.fixture(scope="module")
def sandbox():
    with running_sandbox(generate_world(WorldConfig(n_prospects=800, seed=23))) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def small_pages(tmp_path_factory):
    """The configuration with Salesforce pages of 200 records, so objects of this small world
    span several pages and a fault can strike mid-pagination (a page locator ends `-400`)."""
    directory = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(CONFIG_DIR, directory)
    objects = directory / "crm_objects.yaml"
    objects.write_text(objects.read_text().replace("page_size: 2000", "page_size: 200", 1))
    assert "page_size: 200 " in objects.read_text()
    return directory


@pytest.fixture
def crm(sandbox, small_pages, monkeypatch, tmp_path):
    """A fresh warehouse, connections to the sandbox, no faults."""
    for key, value in sandbox.airflow_connections().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REVOPS_CONFIG_DIR", str(small_pages))
    monkeypatch.setenv("REVOPS_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    sandbox.faults.clear()
    yield sandbox
    sandbox.faults.clear()


def run_pipeline(to_the_scorecard: bool = True) -> tuple[dict, pd.DataFrame | None]:
    """Extract every object, reconcile, then compute and render the executive scorecard
    (or stop at the staging build: its id is a digest of the data every later step reads)."""
    for name in OBJECTS["salesforce"]["objects"]:
        pipeline.extract_salesforce(RUN_ID, name, AS_OF)
    for name in OBJECTS["hubspot"]["objects"]:
        pipeline.extract_hubspot(RUN_ID, name, AS_OF)
    build = pipeline.reconcile(RUN_ID)
    if not to_the_scorecard:
        return build, None
    pipeline.compute_scorecard_kpis("executive_weekly", RUN_ID, WEEK[0])
    rendered = pipeline.render_scorecard("executive_weekly", RUN_ID, *WEEK)
    with get_engine().connect() as conn:
        results = read_frame(conn, "select * from marts.kpi_results")
    results = results.drop(columns=["computed_at"], errors="ignore")
    return rendered, results.sort_values(RESULT_COLUMNS).reset_index(drop=True)


@pytest.fixture(scope="module")
def clean_run(sandbox, small_pages, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        for key, value in sandbox.airflow_connections().items():
            env.setenv(key, value)
        env.setenv("REVOPS_CONFIG_DIR", str(small_pages))
        env.setenv("REVOPS_WAREHOUSE_URL", f"duckdb:///{tmp_path_factory.mktemp('clean') / 'w.duckdb'}")
        return run_pipeline()


# Faults that outlast the retries (5 attempts), each with what the run says when it stops.
THIRD_PAGE = "-400"  # Salesforce's locator of the third page of 200: Lead is the first to have one
STOPPING_FAULTS = {
    "salesforce 500s mid-pagination": (
        Fault("salesforce", "server_error", path_contains=THIRD_PAGE, times=50),
        "salesforce.Lead: extract incomplete",
    ),
    "salesforce rate limit that does not lift": (
        Fault("salesforce", "rate_limit", path_contains=THIRD_PAGE, times=50, retry_after=0),
        "salesforce.Lead: extract incomplete",
    ),
    "salesforce truncated JSON": (
        Fault("salesforce", "malformed_json", path_contains=THIRD_PAGE, times=50),
        "salesforce.Lead: extract incomplete",
    ),
    "salesforce connection dropped": (
        Fault("salesforce", "drop_connection", path_contains=THIRD_PAGE, times=50),
        "salesforce.Lead: extract incomplete",
    ),
    "salesforce read timeout": (
        Fault("salesforce", "slow", path_contains=THIRD_PAGE, times=50, delay=3.0),
        "salesforce.Lead: extract incomplete",
    ),
    "hubspot daily quota spent": (
        Fault("hubspot", "daily_quota", path_contains="/crm/v3/objects/contacts", skip=1, times=50),
        "hubspot.contacts: extract incomplete",
    ),
    "hubspot 500s mid-pagination": (
        Fault("hubspot", "server_error", path_contains="/crm/v3/objects/deals", skip=1, times=50),
        "hubspot.deals: extract incomplete",
    ),
}


# One fault per system goes all the way to the PDF; for the others the same staging build id
# (the same data in) is the proof, and saves a KPI run and a render each.
TO_THE_SCORECARD = {"salesforce 500s mid-pagination", "hubspot daily quota spent"}


@pytest.mark.parametrize("case", list(STOPPING_FAULTS))
def test_after_a_fault_clears_a_re_run_gives_what_a_clean_run_gives(case, crm, clean_run, monkeypatch):
    fault, message = STOPPING_FAULTS[case]
    if fault.action == "slow":  # a read timeout shorter than the stall
        monkeypatch.setenv(*_with_read_timeout(crm, seconds=1))
    crm.faults.add(fault)
    with pytest.raises(ExtractIncomplete, match=message):
        run_pipeline()
    assert fault.fired > (1 if fault.action != "daily_quota" else 0)  # retried, unless pointless

    crm.faults.clear()
    for key, value in crm.airflow_connections().items():
        monkeypatch.setenv(key, value)
    clean_rendered, clean_results = clean_run
    if case not in TO_THE_SCORECARD:
        build, _ = run_pipeline(to_the_scorecard=False)
        assert build["build_id"] == clean_rendered["build_id"]
        return
    rendered, results = run_pipeline()
    pd.testing.assert_frame_equal(results, clean_results)
    assert rendered["build_id"] == clean_rendered["build_id"]
    assert rendered["pdf_sha256"] == clean_rendered["pdf_sha256"]


def _with_read_timeout(sandbox, seconds: float) -> tuple[str, str]:
    key = f"AIRFLOW_CONN_{SALESFORCE_CONN_ID.upper()}"
    connection = json.loads(sandbox.airflow_connections()[key])
    connection["extra"]["read_timeout_seconds"] = seconds
    return key, json.dumps(connection)


CRASHING_EXTRACT = """
from datetime import datetime
from revops import pipeline
pipeline.extract_salesforce("crashed-run", "Lead", datetime(2026, 11, 2))
"""


def test_a_process_killed_between_landing_and_the_watermark_loses_nothing(sandbox, small_pages):
    """The extract is killed (SIGKILL) after landing pages but before its batch completes;
    the re-run lands every record, and the current data equals a clean extract's."""
    sandbox.faults.clear()
    env = {**os.environ, **sandbox.airflow_connections(), "REVOPS_CONFIG_DIR": str(small_pages)}
    with scratch_database() as crashed_url, scratch_database() as clean_url:
        sandbox.faults.add(Fault("salesforce", "slow", path_contains=THIRD_PAGE, delay=120))
        child = subprocess.Popen(
            [sys.executable, "-c", CRASHING_EXTRACT], env={**env, "REVOPS_WAREHOUSE_URL": crashed_url}
        )
        engine = get_engine(crashed_url)
        _wait_for_rows(engine, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        sandbox.faults.clear()
        with engine.connect() as conn:
            orphans = conn.execute(sa.text("select count(*) from raw.records")).scalar()
            batches = conn.execute(sa.text("select count(*) from raw.extract_batches")).scalar()
            watermarks = conn.execute(sa.text("select count(*) from raw.watermarks")).scalar()
        assert orphans > 0 and batches == 0 and watermarks == 0  # pages landed, nothing completed
        with pytest.MonkeyPatch.context() as patch:
            for key, value in sandbox.airflow_connections().items():
                patch.setenv(key, value)
            patch.setenv("REVOPS_CONFIG_DIR", str(small_pages))
            patch.setenv("REVOPS_WAREHOUSE_URL", crashed_url)
            rerun = pipeline.extract_salesforce("re-run", "Lead", AS_OF)
            patch.setenv("REVOPS_WAREHOUSE_URL", clean_url)
            clean = pipeline.extract_salesforce("clean", "Lead", AS_OF)
        assert rerun["status"] == clean["status"] == "complete"
        assert rerun["records_landed"] == clean["records_landed"] == len(sandbox.store.salesforce["Lead"])
        assert _current_leads(crashed_url).equals(_current_leads(clean_url))


def _wait_for_rows(engine: sa.Engine, child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, "the extract finished before it could be killed"
        with engine.connect() as conn:
            tables = conn.execute(sa.text("select to_regclass('raw.records')")).scalar()
            if tables and conn.execute(sa.text("select count(*) from raw.records")).scalar():
                return
        time.sleep(0.2)
    raise AssertionError("the extract landed nothing before the stall")


def _current_leads(url: str) -> pd.DataFrame:
    with get_engine(url).connect() as conn:
        frame = read_frame(conn, current_records_sql(), {"source": "salesforce", "object": "Lead"})
    return frame[["record_id", "is_deleted", "payload"]].sort_values("record_id").reset_index(drop=True)


def test_an_unreachable_warehouse_fails_clearly_without_showing_its_password(monkeypatch):
    port = free_port()  # nothing listens there: the database server is down
    monkeypatch.setenv(
        "REVOPS_WAREHOUSE_URL", f"postgresql+psycopg2://revops:s3cret-pw@127.0.0.1:{port}/revops"
    )
    with pytest.raises(sa.exc.OperationalError) as failure:
        pipeline.reconcile("warehouse-down")
    message = str(failure.value)
    assert f'connection to server at "127.0.0.1", port {port} failed: Connection refused' in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(failure.value)
