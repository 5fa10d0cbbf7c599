"""`make airflow`: Airflow standalone with this project's DAGs, the CRM sandbox and an SMTP sink.

Serves a synthetic CRM world that is current to today from the local CRM sandbox (the
Salesforce and HubSpot connections point at it), runs the SMTP sink (messages land in
`var/outbox/`), registers the warehouse pool, then runs `airflow standalone` (scheduler,
DAG processor, triggerer and API server) until you press Ctrl-C. Every user is an admin in
this local setup; never use it in production.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from revops.devtools.airflow_runner import prepare_airflow
from revops.devtools.mail_sink import mail_sink
from revops.sandbox.server import running_sandbox
from revops.settings import SMTP_CONN_ID, Settings
from revops.synthetic.world import WorldConfig, generate_world


def main() -> None:
    settings = Settings.from_env()
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    world = generate_world(WorldConfig(n_prospects=12_000, as_of=today))
    prepare_airflow(settings.data_dir)
    smtp_port = int(os.environ.get("REVOPS_SMTP_PORT", "2525"))
    sandbox_port = int(os.environ.get("REVOPS_SANDBOX_PORT", "8443"))
    with (
        mail_sink(settings.data_dir / "outbox", port=smtp_port) as sink,
        running_sandbox(world, port=sandbox_port, certificate_dir=settings.data_dir / "sandbox") as sandbox,
    ):
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = sink.airflow_connection()
        os.environ.update(sandbox.airflow_connections())
        print(f"CRM sandbox at {sandbox.url} (data current to {today:%Y-%m-%d})")
        print(f"SMTP sink on {sink.host}:{sink.port}; e-mails are saved in {sink.directory}")
        print("Starting Airflow at http://localhost:8080 (Ctrl-C to stop) ...")
        airflow = Path(sys.executable).with_name("airflow")
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run([str(airflow), "standalone"], env=os.environ, check=False)


if __name__ == "__main__":
    main()
