"""docker-compose's credential-free trial, natively: the crm-sandbox service's command starts a
sandbox that the connectors reach with the connections of deploy/crm-sandbox.env, under the
service's host name."""

from __future__ import annotations

import json
import shlex
import socket
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from revops import pipeline
from revops.devtools.ports import free_port
from revops.sandbox.server import Sandbox, SandboxCredentials
from revops.settings import PROJECT_ROOT
from revops.warehouse import get_engine

SERVICES = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
SERVICE = SERVICES["crm-sandbox"]
OPTIONS = dict(arg.removeprefix("--").split("=", 1) for arg in SERVICE["command"] if "=" in arg)


def _env_file(path: Path) -> dict[str, str]:
    """KEY='value' lines as docker compose reads them (comments skipped, one pair of quotes off)."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {key: shlex.split(value)[0] for key, value in (line.split("=", 1) for line in lines)}


TRIAL = _env_file(PROJECT_ROOT / "deploy" / "crm-sandbox.env")


def test_the_trial_connections_are_the_sandboxs_own():
    sandbox = Sandbox.__new__(Sandbox)  # only its connections: no world, no server
    sandbox.credentials = SandboxCredentials.derived_from(OPTIONS["fixed-credentials"])
    sandbox.url = f"https://{OPTIONS['hostname']}:{OPTIONS['port']}"
    sandbox.ca_path = Path(OPTIONS["certificate-dir"]) / "sandbox-ca.pem"
    expected = sandbox.airflow_connections(retry_base_seconds=1.0)
    assert {k: json.loads(v) for k, v in TRIAL.items()} == {k: json.loads(v) for k, v in expected.items()}
    assert OPTIONS["hostname"] == "crm-sandbox" and SERVICE["profiles"] == ["trial"]
    volume = next(v for v in SERVICE["volumes"] if v.endswith(":/data"))
    assert OPTIONS["certificate-dir"].startswith("/data/") and volume in SERVICES["airflow-worker"]["volumes"]


@pytest.fixture(scope="module")
def trial_sandbox(tmp_path_factory):
    """The service's command, run here: same options except a free port, a scratch
    certificate directory and a small world."""
    port, certificates = free_port(), tmp_path_factory.mktemp("sandbox")
    overrides = {"port": str(port), "certificate-dir": str(certificates), "prospects": "400"}
    command = [sys.executable if part == "python" else part for part in SERVICE["command"]]
    command = [part for part in command if part.split("=")[0].removeprefix("--") not in overrides]
    command += [f"--{key}={value}" for key, value in overrides.items()]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = server.stdout.readline()
        assert banner.startswith("CRM sandbox at https://crm-sandbox:"), banner
        yield port, certificates / "sandbox-ca.pem"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_sandbox_certificate_names_the_service(trial_sandbox):
    port, ca = trial_sandbox
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="crm-sandbox") as tls,  # raises on a wrong name
    ):
        assert tls.version().startswith("TLS")


def test_the_connectors_extract_from_the_trial_sandbox(trial_sandbox, warehouse_url, monkeypatch):
    port, ca = trial_sandbox
    for key, value in TRIAL.items():  # where the container sees crm-sandbox:8443, we see 127.0.0.1
        local = value.replace(f"crm-sandbox:{OPTIONS['port']}", f"127.0.0.1:{port}")
        monkeypatch.setenv(key, local.replace(f"{OPTIONS['certificate-dir']}/sandbox-ca.pem", str(ca)))
    monkeypatch.setenv("REVOPS_WAREHOUSE_URL", warehouse_url)
    now = datetime.now(UTC)
    leads = pipeline.extract_salesforce("trial", "Lead", now)
    contacts = pipeline.extract_hubspot("trial", "contacts", now)
    assert leads["status"] == "complete" and leads["records_landed"] > 0
    assert contacts["batches"][0]["records_landed"] > 0
    with get_engine(warehouse_url).connect() as conn:
        newest = conn.execute(
            sa.text("select max(record_version) from raw.records where object = 'Lead'")
        ).scalar()
    age = now - datetime.fromisoformat(newest.replace("+0000", "+00:00"))
    assert age.days <= 2, f"--current: the sandbox's data reaches today, not {newest}"
