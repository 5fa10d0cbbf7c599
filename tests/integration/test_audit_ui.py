"""The run-history page inside a running Airflow API server, read in a real headless Chromium
(Debian's chromium and chromium-driver) by a signed-in auditor with the read-only viewer role."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from revops.audit.ledger import record_run
from revops.devtools.ports import free_port
from revops.devtools.production_stack import wait_until_healthy
from revops.settings import airflow_environment
from revops.warehouse import get_engine

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
AUDITOR, PASSWORD = "auditor", "audit-only-password"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> tuple[str, Path, str]:
    """A warehouse whose ledger holds a failed task, a KPI version and a sent scorecard."""
    directory = tmp_path_factory.mktemp("ui")
    url = f"duckdb:///{directory / 'warehouse.duckdb'}"
    engine = get_engine(url)
    pdf = directory / "scorecard.pdf"
    pdf.write_bytes(b"%PDF-1.7\n% a scorecard\n")
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    entries = [
        (
            "task",
            "revops_extract",
            "failed",
            {"task_id": "extract_Lead", "try_number": 3, "error": "HTTPError: 503"},
        ),
        ("kpi_version", "revops_kpis", "published", _kpi_version()),
        ("artifact", "revops_scorecard__executive_weekly", "success", _artifact(pdf, digest)),
    ]
    for kind, dag_id, outcome, details in entries:
        record_run(
            engine,
            kind=kind,
            run_id=f"scheduled__{kind}",
            dag_id=dag_id,
            logical_date=datetime(2026, 11, 2, 7),
            data_interval=(None, None),
            details=details,
            outcome=outcome,
        )
    engine.dispose()
    return url, pdf, digest


def _kpi_version() -> dict:
    return {
        "kpi_id": "win_rate_count",
        "version": 1,
        "status": "published",
        "effective_from": "2025-01-01",
        "published_on": "2025-01-01",
        "approved_by": "CRO",
        "rationale": "First definition.",
        "sql_sha256": "c6d2761b2080",
    }


def _artifact(pdf: Path, digest: str) -> dict:
    return {
        "audience": "executive_weekly",
        "period": {"grain": "week", "start": "2026-10-26", "end": "2026-11-01"},
        "kpi_definitions": {"win_rate_count": {"version": 1, "sql_sha256": "c6d2761b2080"}},
        "outputs": [{"path": str(pdf), "sha256": digest}],
    }


@pytest.fixture(scope="module")
def api_server(ledger, tmp_path_factory):
    """`airflow api-server` with the project's plugin and simple auth: one viewer, no admins."""
    url, _pdf, _digest = ledger
    home = tmp_path_factory.mktemp("airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({AUDITOR: PASSWORD}))
    env = {
        **os.environ,
        **airflow_environment(home),
        "REVOPS_WAREHOUSE_URL": url,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AUDITOR}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    log = (home / "api-server.log").open("w")
    server = subprocess.Popen(
        [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, home / "api-server.log", server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def token(api_server) -> str:
    response = requests.post(
        f"{api_server}/auth/token", json={"username": AUDITOR, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def browser(api_server, token):
    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), "run .ci/browser-packages (Debian chromium)"
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.get(f"{api_server}/api/v2/monitor/health")  # a page on the server's origin, to own its cookie
    driver.add_cookie({"name": "_token", "value": token, "path": "/"})
    yield driver
    driver.quit()


def test_the_page_is_closed_to_anyone_not_signed_in(api_server):
    assert requests.get(f"{api_server}/revops-audit/", timeout=30).status_code == 401


def test_an_auditor_sees_the_history_and_a_verified_chain(api_server, browser, ledger):
    _url, pdf, _digest = ledger
    browser.get(f"{api_server}/revops-audit/")
    text = browser.find_element("tag name", "body").text
    assert "Run history" in text
    assert "Chain intact. 3 entries chained; 1 archived files match their recorded sha256." in text
    assert "win_rate_count v1 published, in effect from 2025-01-01" in text and "First definition." in text
    assert "task extract_Lead try 3: HTTPError: 503" in text
    assert f"executive_weekly 2026-10-26: {pdf}" in text
    browser.save_screenshot(str(pdf.parent / "run-history.png"))


def test_filters_narrow_the_list(api_server, browser):
    browser.get(f"{api_server}/revops-audit/?kind=kpi_version")
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 1 and "win_rate_count v1" in rows[0].text


def test_the_archived_pdf_opens_from_its_row(api_server, browser, token, ledger):
    _url, pdf, digest = ledger
    browser.get(f"{api_server}/revops-audit/")
    link = browser.find_element("link text", "Open the archived PDF").get_attribute("href")
    response = requests.get(link, cookies={"_token": token}, timeout=30)
    assert response.content == pdf.read_bytes()
    assert response.headers["X-Content-SHA256"] == digest


def test_the_page_is_in_airflows_navigation(api_server, browser):
    browser.get(f"{api_server}/plugin/run-history")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frames = browser.find_elements("tag name", "iframe")
        if frames and frames[0].get_attribute("src").endswith("/revops-audit/"):
            break
        time.sleep(0.5)
    (frame,) = browser.find_elements("tag name", "iframe")
    browser.switch_to.frame(frame)
    assert "Chain intact" in browser.find_element("tag name", "body").text
    browser.switch_to.default_content()
