"""`make airflow`: Airflow standalone with this project's DAGs, demo data and demo connections.

Starts the SMTP sink (messages land in `var/outbox/`), writes CSV exports of a synthetic
world that is current to today, registers the warehouse pool, then runs `airflow standalone`
(scheduler, DAG processor, triggerer and API server) until you press Ctrl-C. Every user is
an admin in this local setup; never use it in production.
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
from revops.settings import SMTP_CONN_ID, Settings
from revops.synthetic.exports import write_csv_exports
from revops.synthetic.world import WorldConfig, generate_world


def main() -> None:
    settings = Settings.from_env()
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if not (settings.csv_export_dir / "export.json").exists():
        print(f"Writing demo CRM exports (current to {today:%Y-%m-%d}) to {settings.csv_export_dir}")
        write_csv_exports(
            generate_world(WorldConfig(n_prospects=12_000, as_of=today)), settings.csv_export_dir
        )
    prepare_airflow(settings.data_dir)
    with mail_sink(settings.data_dir / "outbox", port=int(os.environ.get("REVOPS_SMTP_PORT", 2525))) as sink:
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = sink.airflow_connection()
        print(f"SMTP sink on {sink.host}:{sink.port}; e-mails are saved in {sink.directory}")
        print("Starting Airflow at http://localhost:8080 (Ctrl-C to stop) ...")
        airflow = Path(sys.executable).with_name("airflow")
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run([str(airflow), "standalone"], env=os.environ, check=False)


if __name__ == "__main__":
    main()
