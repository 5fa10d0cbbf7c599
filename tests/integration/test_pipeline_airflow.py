"""The whole job through Airflow itself: extract -> reconcile -> KPIs -> scorecard e-mail.

Each DAG runs with `dag.test()` against a migrated Airflow metadata database, exactly the
path `make demo` takes: the extract reads the CRM sandbox over HTTPS through
simple-salesforce and hubspot-api-client, on a smaller world.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pypdf
import pytest
import sqlalchemy as sa

from revops.devtools.airflow_runner import run_dag
from revops.devtools.mail_sink import mail_sink
from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.sandbox.server import running_sandbox
from revops.scorecards.audiences import load_audiences
from revops.scorecards.view_model import reporting_period
from revops.settings import HUBSPOT_CONN_ID, SALESFORCE_CONN_ID, SMTP_CONN_ID, Settings
from revops.synthetic.truth import score_change, scores_at, truth_value
from revops.warehouse import get_engine, read_frame

AUDIENCE = "executive_weekly"
SALES_AUDIENCE = "sales_leader_weekly"
AUDIENCES = list(load_audiences())  # one PDF and one e-mail per recipient for each


@pytest.fixture(scope="module")
def pipeline_run(small_world, airflow_metadata):
    settings = Settings.from_env()
    as_of = small_world.config.as_of
    with mail_sink(settings.data_dir / "outbox") as sink, running_sandbox(small_world) as sandbox:
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = sink.airflow_connection()
        os.environ.update(sandbox.airflow_connections(retry_base_seconds=0.01))
        run_ids = {
            "extract": run_dag("revops_extract", as_of),
            "reconcile": run_dag("revops_reconcile", None),
            "scores": run_dag("revops_score_snapshot", as_of),  # snapshots at the end of its interval
            "kpis": run_dag("revops_kpis", None),
            **{
                audience: run_dag(f"revops_scorecard__{audience}", as_of + timedelta(hours=7))
                for audience in AUDIENCES
            },
        }
        run_ids["scorecard"] = run_ids[AUDIENCE]
        messages = sink.messages()
        # Re-running the extract for the same day, while the sandbox still serves.
        with get_engine().connect() as conn:
            before = conn.execute(sa.text("select count(*) from raw.records")).scalar_one()
        run_ids["extract"] = run_dag("revops_extract", as_of)  # the ledger's newest entry
        with get_engine().connect() as conn:
            after = conn.execute(sa.text("select count(*) from raw.records")).scalar_one()
    return settings, run_ids, messages, (before, after)


def _ledger(dag_id: str) -> dict:
    with get_engine().connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "select * from audit.run_ledger where dag_id = :d and kind in ('run', 'artifact') "
                    "order by sequence desc limit 1"
                ),
                {"d": dag_id},
            )
            .mappings()
            .one()
        )
    return {**row, "details": json.loads(row["details"])}


def test_the_emailed_pdf_is_the_archived_one_and_shows_the_true_numbers(pipeline_run, small_world):
    _settings, run_ids, messages, _ = pipeline_run
    entry = _ledger(f"revops_scorecard__{AUDIENCE}")
    (output,) = entry["details"]["outputs"]
    archived = Path(output["path"]).read_bytes()
    assert hashlib.sha256(archived).hexdigest() == output["sha256"]
    scorecards = [m for m in messages if m["Subject"].startswith("Executive")]
    assert sorted(m["To"] for m in scorecards) == ["ceo@revops-demo.com", "cro@revops-demo.com"]
    for message in scorecards:
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_content() == archived

    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(archived)).pages)
    registry = load_registry()
    week = period_containing("week", (small_world.config.as_of - timedelta(days=7)).date())
    for kpi_id in ("lead_to_opportunity_rate", "win_rate_count", "win_rate_amount"):
        shown = reporting_period(registry[kpi_id], week, small_world.config.as_of)
        _, _, value = truth_value(kpi_id, small_world, shown)
        assert f"{value * 100:.1f}%" in text, kpi_id
    assert run_ids["scorecard"] in text


@pytest.mark.parametrize("audience_name", AUDIENCES)
def test_every_audience_received_its_archived_pdf_with_a_readable_body(pipeline_run, audience_name):
    _settings, _run_ids, messages, _ = pipeline_run
    audience = load_audiences()[audience_name]
    (output,) = _ledger(f"revops_scorecard__{audience_name}")["details"]["outputs"]
    archived = Path(output["path"]).read_bytes()
    assert hashlib.sha256(archived).hexdigest() == output["sha256"]
    received = [m for m in messages if m["Subject"].startswith(audience.title)]
    assert sorted(m["To"] for m in received) == sorted(audience.recipients)
    page_one = pypdf.PdfReader(io.BytesIO(archived)).pages[0].extract_text()
    for message in received:
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_content() == archived
        body = message.get_body(("html",)).get_content()
        assert "attached as a PDF" in body and "<li>" in body  # the narrative travels too
        headline = re.findall(r'font-weight: bold;">([^<]+)</td>', body)
        assert len(headline) == len(audience.kpis)
        assert all(value in page_one for value in headline)  # the e-mail's numbers are the PDF's


def test_no_crm_secret_reaches_an_email_a_pdf_or_the_ledger(pipeline_run):
    """The sandbox's credentials (still in this process's AIRFLOW_CONN_* variables) appear in
    no e-mail sent, no archived PDF or e-mail body, and no ledger entry."""
    settings, _run_ids, messages, _ = pipeline_run
    salesforce = json.loads(os.environ[f"AIRFLOW_CONN_{SALESFORCE_CONN_ID.upper()}"])
    hubspot = json.loads(os.environ[f"AIRFLOW_CONN_{HUBSPOT_CONN_ID.upper()}"])
    secrets = [salesforce["password"], salesforce["extra"]["security_token"], hubspot["password"]]
    archived = [_readable(path) for path in settings.archive_dir.rglob("*") if path.is_file()]
    sent = [message.as_bytes() for message in messages]
    with get_engine().connect() as conn:
        ledger = read_frame(conn, "select * from audit.run_ledger").to_csv().encode()
    assert archived and sent and b"revops_scorecard__" in ledger
    for secret in secrets:
        assert not any(secret.encode() in blob for blob in [*archived, *sent, ledger])


def _readable(path: Path) -> bytes:
    """A file's bytes, and for a PDF its text too (content streams are compressed)."""
    if path.suffix != ".pdf":
        return path.read_bytes()
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    return path.read_bytes() + text.encode()


def test_a_past_scorecard_is_re_sent_byte_for_byte(pipeline_run, tmp_path, monkeypatch):

    from revops import pipeline

    (output,) = _ledger(f"revops_scorecard__{AUDIENCE}")["details"]["outputs"]
    with mail_sink(tmp_path / "outbox") as sink:
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}", sink.airflow_connection())
        plan = pipeline.resend_scorecard(
            AUDIENCE, date(2026, 10, 26), ("auditor@revops-demo.com",), dry_run=True
        )
        assert plan["to"] == ["auditor@revops-demo.com"] and sink.messages() == []
        result = pipeline.resend_scorecard(AUDIENCE, date(2026, 10, 26), ("auditor@revops-demo.com",))
        again = pipeline.resend_scorecard(AUDIENCE, date(2026, 10, 26), ("auditor@revops-demo.com",))
        (message,) = sink.messages()
    assert result["deliveries"] == {"auditor@revops-demo.com": "sent"}
    assert again["deliveries"] == {"auditor@revops-demo.com": "skipped_already_sent"}
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content() == Path(output["path"]).read_bytes()


def test_every_run_leaves_a_ledger_entry_naming_its_inputs_and_definitions(pipeline_run):
    _, run_ids, _, _ = pipeline_run
    for stage, dag_id in [
        ("extract", "revops_extract"),
        ("reconcile", "revops_reconcile"),
        ("kpis", "revops_kpis"),
        ("scores", "revops_score_snapshot"),
    ]:
        entry = _ledger(dag_id)
        assert entry["run_id"] == run_ids[stage] and entry["outcome"] == "success"
    scorecard = _ledger(f"revops_scorecard__{AUDIENCE}")
    details = scorecard["details"]
    assert scorecard["data_interval_start"].startswith("2026-10-26")
    assert {b["object"] for b in details["input_batches"]} >= {"Lead", "Opportunity", "contacts"}
    assert all(len(b["content_sha256"]) == 64 and b["record_count"] > 0 for b in details["input_batches"])
    registry = load_registry()
    week = date.fromisoformat(details["period"]["start"])
    for kpi_id, used in details["kpi_definitions"].items():
        in_effect = registry[kpi_id].version_for(week)
        assert (used["version"], used["sql_sha256"]) == (in_effect.version, in_effect.sql_sha256)
    assert set(details["deliveries"].values()) == {"sent"}


def test_re_running_the_extract_lands_nothing_new(pipeline_run):
    *_, (before, after) = pipeline_run
    assert after == before


def test_a_reconcile_triggered_with_full_rebuild_rebuilds_staging_whole(pipeline_run):
    """Without new data a reconcile run updates nothing; with `full_rebuild` it rebuilds
    staging whole, to the same build. (Before the tests below land new data, which fails the
    reconcile DAG's quality checks.)"""
    run_dag("revops_reconcile", None)
    update = _ledger("revops_reconcile")["details"]
    run_dag("revops_reconcile", None, conf={"full_rebuild": True})
    full = _ledger("revops_reconcile")["details"]
    assert full["update"] is None
    assert update["update"] == {"changed_records": 0, "scope_records": 0}
    assert update["build_id"] == full["build_id"] and update["summary"] == full["summary"]


def test_the_extract_came_through_the_apis_not_csv(pipeline_run):
    with get_engine().connect() as conn:
        origins = dict(
            conn.execute(sa.text("select object, min(origin) from raw.extract_batches group by object")).all()
        )
    assert origins["Lead"] == "salesforce:api" and origins["contacts"] == "hubspot:api"


def test_the_kpi_run_alerted_owners_about_breaches(pipeline_run):
    _, _, messages, _ = pipeline_run
    with get_engine().connect() as conn:
        alerts = conn.execute(sa.text("select owner, emailed_at from marts.alerts")).all()
    assert alerts and all(emailed is not None for _, emailed in alerts)
    alert_mail = [m for m in messages if m["Subject"].startswith("KPI alerts")]
    assert sorted(m["To"] for m in alert_mail) == sorted({owner for owner, _ in alerts})


def test_score_velocity_follows_the_true_score_history(pipeline_run, small_world):
    as_of = small_world.config.as_of
    with get_engine().connect() as conn:
        velocity = read_frame(
            conn,
            "select v.*, p.email_normalized from marts.score_velocity v "
            "join staging.prospects p on p.prospect_id = v.prospect_id where v.as_of = :t",
            {"t": as_of},
        )
    person = velocity["email_normalized"].map(small_world.truth_prospects.set_index("email")["person"])
    # HubSpot contacts bring their score history; prospects known only from Salesforce (no
    # field history in this world) have no past in the store yet, so their change is blank.
    known = velocity[velocity["change_7d"].notna() & person.notna()]
    people = person[known.index].astype("int64")
    assert len(known) > 300
    assert known["score"].tolist() == scores_at(small_world, as_of).reindex(people).astype(float).tolist()
    for days, column in [(7, "change_7d"), (14, "change_14d")]:
        truth = score_change(small_world, as_of - timedelta(days=days), as_of).reindex(people)
        assert known[column].tolist() == truth.astype(float).tolist(), column
    assert (known["change_7d"] > 0).sum() > 10


def test_lead_score_validity_equals_the_ground_truth(pipeline_run, small_world):
    """The KPI of the score snapshots (test_kpis checks the others on CSV exports)."""
    kpi = load_registry()["lead_score_validity"]
    with get_engine().connect() as conn:
        totals = read_frame(
            conn,
            "select period_start, numerator, denominator from marts.kpi_results "
            "where kpi_id = :k and grain = 'month' and dimension = 'total' and scope = 'all'",
            {"k": kpi.id},
        )
    checked = 0
    for row in totals.itertuples():
        month = period_containing("month", row.period_start)
        wins, pairs, _ = truth_value(kpi.id, small_world, month, kpi.parameters)
        assert (row.numerator, row.denominator) == (pytest.approx(wins), pairs), month
        checked += pairs > 0
    assert checked >= 6


def test_the_hot_prospect_lists_are_written_per_region(pipeline_run):
    details = _ledger("revops_score_snapshot")["details"]
    files = details["hot_prospects"]["files"]
    assert set(files) >= {"all", "region=EMEA"}
    everyone = pd.read_csv(files["all"])
    emea = pd.read_csv(files["region=EMEA"])
    assert len(everyone) > 0 and set(emea["region"]) == {"EMEA"}
    assert everyone["change_7d"].is_monotonic_decreasing
    assert list(everyone["rank"]) == list(range(1, len(everyone) + 1))
    assert not everyone.astype(str).apply(lambda c: c.str.contains("@")).any().any()  # no e-mail addresses
    assert {s["source"] for s in details["snapshots"]} == {"salesforce", "hubspot"}


def test_the_sales_scorecard_shows_the_hot_prospects(pipeline_run):
    files = _ledger("revops_score_snapshot")["details"]["hot_prospects"]["files"]
    top = pd.read_csv(files["all"]).iloc[0]
    (output,) = _ledger(f"revops_scorecard__{SALES_AUDIENCE}")["details"]["outputs"]
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(output["path"]).pages)
    assert "Hot prospects: fastest-rising lead scores" in text
    assert f"{top['name']}" in text and f"+{top['change_7d']:.0f}" in text


# The run history: the listener's entries, verify, and replaying a past scorecard. These run
# last in this module: they add data and a KPI version after the scorecards were sent.


def test_the_listener_recorded_every_dag_run_and_task(pipeline_run):
    _, run_ids, _, _ = pipeline_run
    with get_engine().connect() as conn:
        entries = read_frame(conn, "select kind, dag_id, run_id, outcome, details from audit.run_ledger")
    dag_runs = entries[entries["kind"] == "dag_run"]
    assert {("revops_kpis", run_ids["kpis"]), (f"revops_scorecard__{AUDIENCE}", run_ids[AUDIENCE])} <= set(
        zip(dag_runs["dag_id"], dag_runs["run_id"], strict=True)
    )
    assert set(dag_runs["outcome"]) == {"success"}
    tasks = entries[(entries["kind"] == "task") & (entries["run_id"] == run_ids[AUDIENCE])]
    assert sorted(json.loads(d)["task_id"] for d in tasks["details"]) == [
        "compute_kpis",
        "email_pdf",
        "record_audit",
        "render_pdf",
    ]


def test_a_failed_task_and_run_are_in_the_ledger(pipeline_run):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import TEST_DAGS

    run = DagBag(dag_folder=str(TEST_DAGS)).get_dag("revops_test_failing").test()
    assert str(run.state) == "failed"
    with get_engine().connect() as conn:
        entries = read_frame(
            conn,
            "select kind, outcome, details from audit.run_ledger where run_id = :r order by sequence",
            {"r": run.run_id},
        )
    assert list(zip(entries["kind"], entries["outcome"], strict=True)) == [
        ("task", "up_for_retry"),
        ("task", "failed"),
        ("dag_run", "failed"),
    ]
    assert "ValueError: the CRM said no" in json.loads(entries["details"].iloc[1])["error"]


def test_verify_finds_the_whole_history_intact(pipeline_run):
    from revops.audit.verify import verify

    result = verify(get_engine())
    assert result.ok, [str(f) for f in result.findings]
    assert result.entries > 20 and result.files == len(AUDIENCES)


def _add_new_data_and_a_new_kpi_version(tmp_path, monkeypatch) -> None:
    """Land a changed Opportunity snapshot (a tenth of the deals gone), rebuild staging, and
    publish a win_rate_count v2 (effective since 2025, so it restates every period)."""
    import shutil

    from revops.extract.landing import BatchSpec, land_snapshot
    from revops.reconcile.build import build_staging

    engine = get_engine()
    with engine.connect() as conn:
        newest = conn.execute(
            sa.text(
                "select batch_id from raw.extract_batches where object = 'Opportunity' "
                "order by extracted_at desc limit 1"
            )
        ).scalar_one()
        payloads = read_frame(conn, "select payload from raw.records where batch_id = :b", {"b": newest})[
            "payload"
        ]
    records = [json.loads(p) for n, p in enumerate(payloads) if n % 10]
    spec = BatchSpec(
        "salesforce", "Opportunity", "full", None, None, "salesforce:api", "Id", "SystemModstamp", "IsDeleted"
    )
    land_snapshot(engine, spec, records, "new-data")
    build_staging(engine, "new-data")

    catalogue = tmp_path / "kpis"
    shutil.copytree(Path(load_registry()["win_rate_count"].versions[0].sql_path).parents[1], catalogue)
    folder = catalogue / "win_rate_count"
    (folder / "v2.sql").write_text(
        (folder / "v1.sql").read_text().replace("not is_excluded", "not is_excluded and amount > 0")
    )
    definition = (folder / "definition.yaml").read_text()
    definition += (
        "  - version: 2\n    status: published\n    effective_from: 2025-01-01\n"
        f"    published_on: {date.today() + timedelta(days=1)}\n    approved_by: CRO\n"
        "    rationale: Deals without an amount are left out.\n"
        f"    sql_sha256: {hashlib.sha256((folder / 'v2.sql').read_bytes()).hexdigest()}\n"
    )
    (folder / "definition.yaml").write_text(definition)
    monkeypatch.setenv("REVOPS_KPI_DIR", str(catalogue))


def test_a_replay_after_a_quota_change_refuses_and_says_why(pipeline_run, tmp_path, monkeypatch):
    """The targets file is an input of the build: a scorecard made with the old quotas
    cannot be rebuilt from the new ones, and the replay names the file that changed."""
    import shutil

    from revops.audit.reproduce import NotReproducibleError, reproduce
    from revops.settings import config_dir

    entry = _ledger(f"revops_scorecard__{AUDIENCE}")
    changed = tmp_path / "config"
    shutil.copytree(config_dir(), changed)
    targets = (changed / "targets.csv").read_text()
    (changed / "targets.csv").write_text(targets.replace(",180000\n", ",190000\n", 1))
    monkeypatch.setenv("REVOPS_CONFIG_DIR", str(changed))
    with pytest.raises(NotReproducibleError, match=r"rebuild as B\w+, not B\w+: targets.csv changed since"):
        reproduce(get_engine(), entry["entry_id"], f"duckdb:///{tmp_path / 'scratch.duckdb'}")


def test_a_past_scorecard_reproduces_byte_for_byte_after_new_data_and_a_new_kpi_version(
    pipeline_run, tmp_path, monkeypatch
):
    from revops.audit.reproduce import reproduce
    from revops.scorecards.view_model import build_view, compute_scorecard_results

    entry = _ledger(f"revops_scorecard__{AUDIENCE}")
    (output,) = entry["details"]["outputs"]
    _add_new_data_and_a_new_kpi_version(tmp_path, monkeypatch)
    assert load_registry()["win_rate_count"].version_for(date(2026, 10, 26)).version == 2

    replay = reproduce(get_engine(), entry["entry_id"], f"duckdb:///{tmp_path / 'scratch.duckdb'}")

    assert replay.same_results and replay.same_pdf
    assert replay.reproduced_pdf == Path(output["path"]).read_bytes()
    # ...while today's data and definitions would give a different scorecard for that week.
    audience, week = load_audiences()[AUDIENCE], period_containing("week", date(2026, 10, 26))
    compute_scorecard_results(get_engine(), audience, week, "today")
    with get_engine().connect() as conn:
        today = build_view(conn, audience, week, entry["run_id"])
    assert today.build_id != entry["details"]["build_id"]
    assert today.results_sha256 != entry["details"]["kpi_results"]["sha256"]


def test_the_retention_dag_keeps_what_the_delivered_scorecards_need(pipeline_run, small_world):
    """Run last: it may purge. Nothing the pipeline wrote is past retention yet, so the run
    purges nothing and says so in its ledger entry."""
    with get_engine().connect() as conn:
        days_before = read_frame(conn, "select distinct as_of from marts.score_velocity")
    run_id = run_dag("revops_retention", small_world.config.as_of)
    with get_engine().connect() as conn:
        (details,) = (
            json.loads(row.details)
            for row in conn.execute(
                sa.text("select details from audit.run_ledger where kind = 'retention' and run_id = :r"),
                {"r": run_id},
            )
        )
        days_after = read_frame(conn, "select distinct as_of from marts.score_velocity")
    assert details["policy"] == {
        "raw_extract_days": 400,
        "score_velocity_days": 100,
        "reproducible_days": 730,
    }
    assert details["purged_batches"] == [] and details["purged_velocity_days"] == []
    assert details["no_longer_reproducible"] == []
    assert len(days_before) >= 1 and set(days_after["as_of"]) == set(days_before["as_of"])
