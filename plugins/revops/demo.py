"""`make demo`: the whole job on the embedded default, through Airflow, in one command.

Generates the synthetic CRM world and serves it from the local CRM sandbox (Salesforce and
HubSpot APIs over HTTPS), then runs the real DAGs with `dag.test()`: extract (through
simple-salesforce and hubspot-api-client) -> reconcile -> lead score snapshot and velocity
-> KPIs -> one scorecard per configured audience (executive, EMEA regional VP, marketing,
sales leadership), each rendered to PDF, archived and e-mailed to a local SMTP server whose
messages land in `var/outbox/`.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from revops.devtools.airflow_runner import prepare_airflow, run_dag
from revops.devtools.mail_sink import mail_sink
from revops.sandbox.server import running_sandbox
from revops.scorecards.audiences import load_audiences
from revops.settings import SMTP_CONN_ID, Settings
from revops.synthetic.world import WorldConfig, generate_world

DEMO_WORLD = WorldConfig(n_prospects=12_000, seed=7, as_of=datetime(2026, 11, 2))


def run_demo(world_config: WorldConfig = DEMO_WORLD) -> dict:
    """Run the demo end to end; returns where its outputs are."""
    settings = Settings.from_env()
    _start_clean(settings)
    world = generate_world(world_config)
    prepare_airflow(settings.data_dir)
    as_of = world_config.as_of
    with mail_sink(settings.data_dir / "outbox") as sink, running_sandbox(world) as sandbox:
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = sink.airflow_connection()
        os.environ.update(sandbox.airflow_connections())
        run_dag("revops_extract", logical_date=as_of)
        run_dag("revops_reconcile", logical_date=None)
        run_dag("revops_score_snapshot", logical_date=as_of)  # scores as of the world's cut-off
        run_dag("revops_kpis", logical_date=None)
        audiences = list(load_audiences())
        for audience in audiences:  # the morning after the cut-off: each covers its last full period
            run_dag(f"revops_scorecard__{audience}", logical_date=as_of + timedelta(hours=7))
        messages = list(sink.handler.received)
    return {"pdfs": [_newest_pdf(settings, audience) for audience in audiences], "emails": messages}


def _newest_pdf(settings: Settings, audience: str) -> Path:
    pdfs = (settings.archive_dir / "scorecards" / audience).rglob("*.pdf")
    return max(pdfs, key=lambda p: p.stat().st_mtime)


def _start_clean(settings: Settings) -> None:
    """Each demo starts from an empty embedded warehouse and outbox (archive is kept)."""
    if settings.warehouse_url.startswith("duckdb:///"):
        Path(settings.warehouse_url.removeprefix("duckdb:///")).unlink(missing_ok=True)
    shutil.rmtree(settings.data_dir / "outbox", ignore_errors=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    outputs = run_demo()
    print("\nDemo complete.")
    for pdf in outputs["pdfs"]:
        print(f"  Scorecard PDF : {pdf.resolve()}")
    print(f"  E-mails sent  : {len(outputs['emails'])} (saved in {Path(outputs['emails'][0]).parent})")


if __name__ == "__main__":
    main()
