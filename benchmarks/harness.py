"""The benchmark harness: each stage of the pipeline at growing sizes, each stage in its own
process so its peak memory is its own, with the baselines measured in the same run.

    .venv/bin/python -m benchmarks.harness [--prospects 10000 100000 1000000] [--write-docs]
                                           [--only reconcile core_kpis pandas]

Per size, the synthetic world (leads, contacts, opportunities, stage and score history in
proportion) is generated, its CSV exports landed in a fresh DuckDB warehouse and its score
pulls written beside it (`write_score_captures`); that setup is extraction and is not a stage
here. Then, each in a child process:

  reconcile    raw -> staging, a full build (what a first run, or one after a new snapshot, does)
  snapshots    the score snapshot DAG's first run: every live lead's and contact's score at the
               cut-off into the interval store, HubSpot's score history backfilled (a year in
               proportion), then the first, full velocity refresh (the pulls are extraction)
  kpis         the full KPI catalogue for one month, total and every dimension, stored
  kpis_bare    the same SQL text run straight on the DuckDB connection: no engine around it
  core_kpis    the engine on the five core KPIs the pandas baseline computes
  pandas       the baseline: staging loaded whole into pandas, the same five KPIs grouped there
  incremental  a working day later: 1% of the leads changed (statuses, owners, names), new
               leads, new MQLs and deals moving on, landed as incremental batches; its
               seconds and peak RSS are the incremental build's (landing is extraction)
  scorecard_kpis    the executive scorecard's KPI results (its periods, trend and breakdowns)
  scorecard_render  its view model and PDF
  airflow      the reconcile (a full build) and KPI DAGs end to end through Airflow (dag.test); its seconds
               are the two DAG runs, and Airflow's own task time is reported beside them
  scorecard_kpis_reused  the executive scorecard's KPI step again, after the KPI DAG has
               computed its horizon from the same build (what a scheduled scorecard run does)
  daily_snapshot    the score snapshot DAG's next day: both CRMs' pulls with 1% of the scores
               moved, applied, then the daily velocity refresh (the pulls are not timed)
  daily_kpis   the KPI DAG's run after the day's build: its whole horizon, computed afresh

Seconds are the stage's own work, timed inside the child after its imports; peak RSS is the
child's high-water mark (VmHWM, which starts afresh at exec). The table goes to stdout; with
--write-docs it also replaces the harness section of docs/performance.md. Its "end to end" row
is the issue's target: reconcile, snapshots, the month's catalogue, and the executive
scorecard's KPIs and render, summed, with the highest of their peaks, and the fresh memory
its stages touched (the GiB of pages each stage's process touched for the first time while the
stage ran: its minor page faults, huge ones at their size) and the CPU seconds they spent in
the kernel, where a slow hour's fresh memory shows. Below the table, `benchmarks.floors`
measured at the start of the run: how fast this hour's machine is, fresh memory included.
The "daily run" row is the issue's other target, summed the same way: the incremental build,
the day's snapshot and velocity refresh, and the KPI DAG's horizon after that build.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

MONTH_START = date(2026, 9, 1)
CORE_KPIS = [
    "win_rate_count",
    "win_rate_amount",
    "average_won_deal_size",
    "revenue_contribution_converted_leads",
    "lead_to_opportunity_rate",
]
CORE_DIMENSIONS = ["region", "segment", "channel"]
STAGES = (
    "reconcile", "snapshots", "kpis", "kpis_bare", "core_kpis", "pandas", "incremental",
    "scorecard_kpis", "scorecard_render", "airflow", "scorecard_kpis_reused", "daily_snapshot", "daily_kpis",
)  # fmt: skip
# The daily stages come last: the KPI horizon they store would be reused by the `airflow`
# stage's KPI DAG (the airflow stage's full build has the same inputs, so the same build id).
# Imported before a stage's clock starts, so its time is its work.
WARM_UP = (
    "revops.reconcile.build", "revops.kpis.engine", "revops.extract.landing", "revops.scorecards.view_model",
    "revops.scorecards.render", "revops.warehouse", "revops.pipeline", "benchmarks.velocity_daily",
)  # fmt: skip
# The stages the end-to-end target sums (1M leads in under 60 s): extraction excluded.
END_TO_END = ("reconcile", "snapshots", "kpis", "scorecard_kpis", "scorecard_render")
# The stages a day after it sums (1% changed, in under 10 s).
DAILY_RUN = ("incremental", "daily_snapshot", "daily_kpis")
DOCS = PROJECT_ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- harness:begin -->", "<!-- harness:end -->"


# --- the stages (each runs in its own process) ------------------------------------------------


def _engine(directory: Path) -> sa.Engine:
    from revops.warehouse import get_engine

    return get_engine(f"duckdb:///{directory / 'warehouse.duckdb'}")


def _month():
    from revops.periods import period_containing

    return period_containing("month", MONTH_START)


def stage_reconcile(directory: Path) -> dict:
    from revops.reconcile.build import build_staging

    engine = _engine(directory)
    build_staging(engine, "benchmark", full=True)
    with engine.connect() as conn:
        records = conn.execute(sa.text("select count(*) from raw.records")).scalar_one()
    return {"rows": records}


def stage_snapshots(directory: Path) -> dict:
    """Apply each CRM's score capture (the pulls are read before the clock starts), then the
    first velocity refresh, which rebuilds every prospect's change series."""
    from revops.snapshots.store import apply_snapshot
    from revops.snapshots.velocity import VelocitySettings, refresh_velocity

    engine, captures = _engine(directory), read_score_captures(directory)
    started = time.perf_counter()
    applied = [apply_snapshot(engine, capture, "benchmark") for capture in captures]
    apply_seconds = time.perf_counter() - started
    summary = refresh_velocity(engine, captures[0].snapshot_at, VelocitySettings.from_config())
    seconds = time.perf_counter() - started
    return {
        "rows": sum(r.history_intervals + r.scores_changed for r in applied),
        "seconds": seconds,
        "apply_seconds": apply_seconds,
        "velocity_seconds": seconds - apply_seconds,
        "prospects_scored": summary.prospects_scored,
    }


def stage_kpis(directory: Path) -> dict:
    from revops.kpis.engine import compute_kpis

    return {"rows": len(compute_kpis(_engine(directory), [_month()], "benchmark"))}


def stage_core_kpis(directory: Path) -> dict:
    from revops.kpis.engine import compute_kpis

    rows = compute_kpis(_engine(directory), [_month()], "benchmark", kpi_ids=CORE_KPIS)
    totals = rows[rows["dimension"] == "total"].set_index("kpi_id")
    return {"rows": len(rows), "totals": totals[["numerator", "denominator"]].to_dict("index")}


def stage_kpis_bare(directory: Path) -> dict:
    """Every KPI's statement for the month (the total and every dimension, as the engine runs
    it), fetched straight from DuckDB."""
    from revops.kpis.engine import current_build, query_parameters, version_sql
    from revops.kpis.registry import load_registry
    from revops.kpis.scope import Scope

    month, engine = _month(), _engine(directory)
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
        duck = conn.connection.dbapi_connection
        rows = 0
        for kpi in load_registry().values():
            version = kpi.version_for(month.start)
            if version is None:
                continue
            params = query_parameters(kpi, month, Scope(), cutoff)
            statement = version_sql(kpi, version, Scope())
            sql = re.sub(r"(?<!:):(\w+)", r"$\1", statement)
            used = {name: params[name] for name in re.findall(r"\$(\w+)", sql)}
            rows += len(duck.execute(sql, used).fetchall())
    return {"rows": rows}


def stage_pandas(directory: Path) -> dict:
    """The straightforward baseline: load the staging tables whole, group by in pandas."""
    from revops.kpis.engine import current_build
    from revops.warehouse import read_frame

    month = _month()
    with _engine(directory).connect() as conn:
        prospects = read_frame(conn, "select * from staging.prospects")
        opportunities = read_frame(conn, "select * from staging.opportunities")
        cutoff = current_build(conn).data_cutoff
    start, end = pd.Timestamp(month.start), pd.Timestamp(month.end)
    opps = opportunities[~opportunities["is_excluded"]]
    close = pd.to_datetime(opps["close_date"])
    closed = opps[opps["is_closed"] & (close >= start) & (close < end)]
    won = closed[closed["is_won"]]
    priced = closed.dropna(subset=["amount"])
    won_priced = priced[priced["is_won"]]
    first_opportunity = (
        opps[opps["is_from_converted_lead"]].groupby("prospect_id")["created_at"].min().rename("first_at")
    )
    cohort = prospects[
        ~prospects["is_excluded"] & (prospects["created_at"] >= start) & (prospects["created_at"] < end)
    ].join(first_opportunity, on="prospect_id")
    cohort["converted"] = (cohort["first_at"] < cohort["created_at"] + timedelta(days=30)) & (
        cohort["first_at"] < pd.Timestamp(cutoff)
    )
    totals = {
        "win_rate_count": (len(won), len(closed)),
        "win_rate_amount": (won_priced["amount"].sum(), priced["amount"].sum()),
        "average_won_deal_size": (won_priced["amount"].sum(), len(won_priced)),
        "revenue_contribution_converted_leads": (
            won_priced.loc[won_priced["is_from_converted_lead"], "amount"].sum(),
            won_priced["amount"].sum(),
        ),
        "lead_to_opportunity_rate": (int(cohort["converted"].sum()), len(cohort)),
    }
    rows = 0
    for dimension in CORE_DIMENSIONS:
        rows += len(closed.groupby(closed[dimension].fillna("unknown"))["is_won"].agg(["sum", "count"]))
        rows += len(priced.groupby(priced[dimension].fillna("unknown"))["amount"].sum())
        rows += len(
            won_priced.groupby(won_priced[dimension].fillna("unknown"))["amount"].agg(["sum", "count"])
        )
        rows += len(cohort.groupby(cohort[dimension].fillna("unknown"))["converted"].agg(["sum", "count"]))
    return {
        "rows": rows,
        "totals": {k: {"numerator": float(n), "denominator": float(d)} for k, (n, d) in totals.items()},
    }


def stage_incremental(directory: Path) -> dict:
    """A working day later (`land_a_working_day`: 1% of the leads changed, new leads, new MQLs,
    deals moving on), landed as incremental batches, and staging brought up to date (an
    incremental build). Its seconds are the build's; landing the day is extraction, not timed."""
    from revops.reconcile.build import build_staging

    engine = _engine(directory)
    landed = land_a_working_day(engine, every=100)
    # Landing reads every lead's payload back into Python (7.3 GiB at a million prospects):
    # the CRM's side of the day, which runs in the extract tasks, not in the build.
    reset_high_water()
    started = time.perf_counter()
    build = build_staging(engine, "benchmark-day-2")
    if build.update is None:
        raise AssertionError("the day's build should have been incremental")
    return {"rows": sum(landed.values()), "seconds": time.perf_counter() - started, **build.update}


# A working day's moves: each status a lead can move on to, and each open stage's next one.
NEXT_LEAD_STATUS = {"New": "MQL", "MQL": "SAL", "SAL": "SQL", "Recycled": "MQL", "Disqualified": "Recycled"}
NEXT_DEAL_STAGE = {
    "Prospecting": "Qualification", "Qualification": "Demo", "Demo": "Proposal",
    "Proposal": "Negotiation", "Negotiation": "Closed Won",
}  # fmt: skip


def land_a_working_day(engine: sa.Engine, every: int) -> dict[str, int]:
    """Land a day like a CRM's, half a day after the current build's cut-off: every `every`-th
    Salesforce lead (by id) changed upstream, half of them moving on a status (with its
    LeadHistory row), a quarter given to another owner, a quarter renamed; a tenth as many
    new leads; every `every`-th HubSpot contact without an MQL date becoming an MQL; and a
    `every`-th as many opportunities as there are moving to their next open stage (with its
    OpportunityHistory row), Negotiation closing won. Returns the records landed per object."""
    from revops.kpis.engine import current_build
    from tests.helpers import land_increment

    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
        leads, contacts, deals = (
            _live_payloads(conn, "salesforce", "Lead"),
            _live_payloads(conn, "hubspot", "contacts"),
            _live_payloads(conn, "salesforce", "Opportunity"),
        )
    at = pd.Timestamp(cutoff) + timedelta(hours=12)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    changed_leads, status_rows = _leads_moving_on(leads[::every], stamp)
    new_leads, created_rows = _new_leads(leads[:: every * 10], stamp)
    new_mqls = [
        {
            **contact,
            "hs_lifecyclestage_marketingqualifiedlead_date": str(int(at.timestamp() * 1000)),
            "lifecyclestage": "marketingqualifiedlead",
            "lastmodifieddate": stamp,
        }
        for contact in contacts[::every]
        if not contact.get("hs_lifecyclestage_marketingqualifiedlead_date")
    ]
    open_deals = [deal for deal in deals if deal.get("StageName") in NEXT_DEAL_STAGE]
    moved_deals, stage_rows = _deals_moving_on(open_deals[: max(1, len(deals) // every)], at)
    day = [
        ("salesforce", "Lead", changed_leads + new_leads),
        ("salesforce", "LeadHistory", status_rows + created_rows),
        ("hubspot", "contacts", new_mqls),
        ("salesforce", "Opportunity", moved_deals),
        ("salesforce", "OpportunityHistory", stage_rows),
    ]
    run_id = f"benchmark-working-day-{at:%Y%m%dT%H}"
    for source, object_name, records in day:
        land_increment(engine, source, object_name, records, (cutoff, at.to_pydatetime()), run_id, "csv")
    return {f"{source}.{object_name}": len(records) for source, object_name, records in day}


def _live_payloads(conn: sa.Connection, source: str, object_name: str) -> list[dict]:
    """The current, undeleted records of one object, in record id order."""
    from revops.reconcile.records import current_records_sql
    from revops.warehouse import read_frame

    frame = read_frame(conn, current_records_sql(), {"source": source, "object": object_name})
    return [json.loads(payload) for payload in frame.loc[~frame["is_deleted"].astype(bool), "payload"]]


def _history_row(row_id: str, lead_id: str, field: str, old, new, stamp: str) -> dict:
    return {
        "Id": row_id,
        "LeadId": lead_id,
        "Field": field,
        "OldValue": old,
        "NewValue": new,
        "CreatedDate": stamp,
        "IsDeleted": "false",
    }


def _leads_moving_on(leads: list[dict], stamp: str) -> tuple[list[dict], list[dict]]:
    """Half the leads move on a status where they can, a quarter change owner, the rest are
    renamed; with the LeadHistory row of each status change."""
    owners = sorted({lead["OwnerId"] for lead in leads if lead.get("OwnerId")})
    changed, history = [], []
    for n, lead in enumerate(leads):
        lead = {**lead, "SystemModstamp": stamp}
        status = NEXT_LEAD_STATUS.get(lead.get("Status"))
        if n % 4 < 2 and status:
            history.append(
                _history_row(f"017DAY{n:012d}", lead["Id"], "Status", lead["Status"], status, stamp)
            )
            lead["Status"] = status
        elif n % 4 == 2 and lead.get("OwnerId") in owners:
            lead["OwnerId"] = owners[(owners.index(lead["OwnerId"]) + 1) % len(owners)]
        else:
            lead["Company"] = f"{lead.get('Company') or ''} (renamed)"
        changed.append(lead)
    return changed, history


def _new_leads(models: list[dict], stamp: str) -> tuple[list[dict], list[dict]]:
    """A new lead like each model (its owner, region, source), with an e-mail of its own,
    created now; with its LeadHistory "created" row."""
    leads, history = [], []
    for n, model in enumerate(models):
        lead_id = f"00QDAY{n:09d}AAA"
        leads.append(
            {
                **model,
                "Id": lead_id,
                "Email": f"new.lead{n}@day.example",
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
                "Status": "New",
                "IsConverted": "false",
                "ConvertedDate": None,
                "ConvertedOpportunityId": None,
            }
        )
        history.append(_history_row(f"017NEW{n:012d}", lead_id, "created", None, None, stamp))
    return leads, history


def _deals_moving_on(deals: list[dict], at: pd.Timestamp) -> tuple[list[dict], list[dict]]:
    """Each open deal moves to its next stage (Negotiation closes won, today), with the
    OpportunityHistory row of the move."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    moved, history = [], []
    for n, deal in enumerate(deals):
        stage = NEXT_DEAL_STAGE[deal["StageName"]]
        won = "true" if stage == "Closed Won" else "false"
        deal = {**deal, "StageName": stage, "IsClosed": won, "IsWon": won, "SystemModstamp": stamp}
        if won == "true":
            deal["CloseDate"] = at.date().isoformat()
        moved.append(deal)
        history.append(
            {
                "Id": f"008DAY{n:012d}",
                "OpportunityId": deal["Id"],
                "StageName": stage,
                "CreatedDate": stamp,
                "Amount": deal.get("Amount"),
                "CloseDate": deal["CloseDate"],
                "IsDeleted": "false",
            }
        )
    return moved, history


def scorecard_week(engine: sa.Engine, audience: str = "executive_weekly"):
    """The audience and the week its scorecard reports: the week before the build's cut-off."""
    from revops.kpis.engine import current_build
    from revops.periods import period_containing
    from revops.scorecards.audiences import load_audiences

    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    return load_audiences()[audience], period_containing(
        "week", (pd.Timestamp(cutoff) - timedelta(days=7)).date()
    )


def stage_scorecard_kpis(directory: Path) -> dict:
    from revops.scorecards.view_model import compute_scorecard_results

    engine = _engine(directory)
    audience, week = scorecard_week(engine)
    return {"rows": compute_scorecard_results(engine, audience, week, "benchmark")}


def stage_scorecard_kpis_reused(directory: Path) -> dict:
    return stage_scorecard_kpis(directory)


def stage_scorecard_render(directory: Path) -> dict:
    from revops.scorecards.render import render_pdf
    from revops.scorecards.view_model import build_view

    engine = _engine(directory)
    audience, week = scorecard_week(engine)
    os.environ.setdefault("REVOPS_EXTRACT_SOURCES", "csv")  # landed from CSV exports
    with engine.connect() as conn:
        view = build_view(conn, audience, week, "benchmark")
    return {"rows": len(render_pdf(view))}


def stage_daily_snapshot(directory: Path) -> dict:
    """The score snapshot DAG's next day (`velocity_daily.next_day`): both objects' pulls with
    1% of their scores moved, applied, then the refresh, which rebuilds only the prospects the
    day touched. Its seconds leave out reading the pulls, which stand in for extraction."""
    from benchmarks.velocity_daily import next_day
    from revops.snapshots.capture import score_sources
    from revops.snapshots.velocity import VelocitySettings

    pulled = tuple((spec.source, spec.object) for spec in score_sources().values())  # as the DAG pulls
    day = next_day(_engine(directory), VelocitySettings.from_config(), seed=0, objects=pulled)
    return {
        "rows": day["scores_moved"],
        "seconds": day["apply_seconds"] + day["refresh_seconds"],
        "apply_seconds": day["apply_seconds"],
        "velocity_seconds": day["refresh_seconds"],
        "prospects_rebuilt": day["prospects_rebuilt"],
    }


def stage_daily_kpis(directory: Path) -> dict:
    """The KPI DAG after the day's build: its whole horizon again, since a slice is reused only
    for the build it was computed from. Earlier stages stored this build's slices already,
    which the KPI DAG would not find in production (it runs first): none is reused."""
    from revops.pipeline import kpi_horizon

    return {"rows": kpi_horizon(_engine(directory), "benchmark-day-2", reuse=False)["rows"]}


def stage_airflow(directory: Path) -> dict:
    """The reconcile and KPI DAGs through Airflow on the same warehouse. The KPI DAG does
    more than the `kpis` stage: every KPI for 13 weeks, 13 months and 6 quarters, for every
    audience scope."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from revops.devtools.airflow_runner import prepare_airflow, run_dag
    from revops.devtools.mail_sink import mail_sink
    from revops.settings import SMTP_CONN_ID

    prepare_airflow(directory / "airflow-data")
    with mail_sink(directory / "outbox") as sink:  # the KPI DAG e-mails owners about breaches
        os.environ[f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"] = sink.airflow_connection()
        started = time.perf_counter()
        # A full build, as on the first day: the data has not changed since the last stage.
        runs = [run_dag("revops_reconcile", None, {"full_rebuild": True}), run_dag("revops_kpis", None)]
        seconds = time.perf_counter() - started
    with create_session() as session:
        durations = session.query(TaskInstance.duration).filter(TaskInstance.run_id.in_(runs)).all()
    return {"rows": len(durations), "seconds": seconds, "task_seconds": sum(d for (d,) in durations)}


# --- the parent: sizes, children, the table ---------------------------------------------------


def prepare(prospects: int, directory: Path) -> dict:
    from tests.helpers import land_exports

    started = time.perf_counter()
    leads = write_world(prospects, directory)
    land_exports(_engine(directory), directory / "exports", "benchmark")
    return {"seconds": time.perf_counter() - started, "leads": leads}


def write_world(prospects: int, directory: Path) -> int:
    """The benchmarks' synthetic world as what extraction gives: its CSV exports and its score
    pulls (`write_score_captures`). Returns its number of Salesforce leads."""
    from revops.synthetic.exports import write_csv_exports
    from revops.synthetic.world import WorldConfig, generate_world

    world = generate_world(WorldConfig(n_prospects=prospects, seed=5))
    write_csv_exports(world, directory / "exports")
    write_score_captures(world, directory / SCORES)
    return len(world.salesforce["Lead"])


SCORES = "scores"  # the score captures `prepare` writes and the snapshots stage applies


def write_score_captures(world, directory: Path) -> None:
    """What the score snapshot DAG's first run pulls at the world's cut-off, as Parquet: the
    score of every live Salesforce lead and every HubSpot contact created before it, as the
    APIs send them (text), and the contacts' score history, each contact's newest first as
    HubSpot sends it (Salesforce does not track the field in this world)."""
    snapshot_at = pd.Timestamp(world.config.as_of)
    leads, contacts = world.salesforce["Lead"], world.hubspot["contacts"]
    leads = leads[~leads["IsDeleted"].astype(bool) & (leads["CreatedDate"] < snapshot_at)]
    contacts = contacts[contacts["createdate"] < snapshot_at]
    history = world.hubspot["contact_score_history"].sort_values(
        ["contact_id", "changed_at"], ascending=[True, False], kind="stable"
    )
    frames = {
        "salesforce.Lead": pd.DataFrame({"record_id": leads["Id"], "score": leads["Lead_Score__c"]}),
        "hubspot.contacts": pd.DataFrame(
            {"record_id": contacts["hs_object_id"], "score": contacts["hubspotscore"]}
        ),
        "hubspot.contacts.history": pd.DataFrame(
            {
                "record_id": history["contact_id"],
                "changed_at": history["changed_at"],
                "score": history["score"],
            }
        ),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.astype({"record_id": "string", "score": "string"}).to_parquet(
            directory / f"{name}.parquet", index=False
        )
    (directory / "snapshot.json").write_text(json.dumps({"snapshot_at": snapshot_at.isoformat()}))


def read_score_captures(directory: Path) -> list:
    """The captures `write_score_captures` wrote, HubSpot's first (velocity prefers it)."""
    from revops.snapshots.store import ScoreCapture

    scores = directory / SCORES
    snapshot_at = datetime.fromisoformat(json.loads((scores / "snapshot.json").read_text())["snapshot_at"])
    return [
        ScoreCapture(
            source,
            object_name,
            snapshot_at,
            pd.read_parquet(scores / f"{source}.{object_name}.parquet"),
            pd.read_parquet(scores / f"{source}.{object_name}.history.parquet") if history else None,
        )
        for source, object_name, history in (("hubspot", "contacts", True), ("salesforce", "Lead", False))
    ]


def run_stage(name: str, directory: Path) -> dict:
    """One stage in a child process; the child reports its seconds, peak RSS and rows."""
    return child_report("benchmarks.harness", "--stage", name, "--dir", str(directory))


def child_report(module: str, *args: str) -> dict:
    """Run `python -m module args` in a fresh process, so its peak RSS is its own, and return
    the JSON report it prints last."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_in_child(name: str, directory: Path) -> dict:
    if name == "airflow":  # Airflow reads its configuration once, when first imported
        from revops.settings import airflow_environment

        os.environ.update(airflow_environment(directory / "airflow-data"))
        os.environ["REVOPS_WAREHOUSE_URL"] = f"duckdb:///{directory / 'warehouse.duckdb'}"
        os.environ["REVOPS_EXTRACT_SOURCES"] = "csv"
    for module in WARM_UP:
        importlib.import_module(module)
    started, touched, kernel = time.perf_counter(), fresh_memory_touched(), kernel_cpu_seconds()
    report = globals()[f"stage_{name}"](directory)
    seconds = report.pop("seconds", time.perf_counter() - started)  # a stage may time its own part
    return {
        **report,
        "seconds": seconds,
        "peak_rss_mib": high_water_mib(),
        "fresh_gib": (fresh_memory_touched() - touched) / 2**30,
        "kernel_seconds": kernel_cpu_seconds() - kernel,
    }


def kernel_cpu_seconds() -> float:
    """CPU seconds this process's threads have spent in the kernel, on this machine mostly in
    page faults: where a slow hour's fresh memory shows in a stage (`benchmarks.floors`)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def fresh_memory_touched() -> int:
    """A counter whose difference over some work is the bytes of memory it touched for the
    first time, the cost a slow hour inflates (see `benchmarks.floors`): this process's minor
    page faults, the huge ones (numpy asks for transparent huge pages for large arrays) at their
    size. The kernel counts huge page faults for the whole machine only; a stage runs alone,
    so in a stage's difference they are its own."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    huge = _huge_page_faults()
    return (faults - huge) * resource.getpagesize() + huge * _huge_page_size()


def _huge_page_faults() -> int:
    vmstat = Path("/proc/vmstat").read_text()
    found = re.search(r"^thp_fault_alloc (\d+)$", vmstat, re.MULTILINE)
    return int(found[1]) if found else 0


def _huge_page_size() -> int:
    size = Path("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
    return int(size.read_text()) if size.exists() else 2 * 2**20


def high_water_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def reset_high_water() -> None:
    """Start the peak RSS afresh from the current RSS (Linux's `clear_refs`), so a stage's peak
    leaves out setup that is not its work."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(prospects: int, only: tuple[str, ...] = STAGES) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        setup = prepare(prospects, directory)
        stages = {name: run_stage(name, directory) for name in STAGES if name in only}
    if "core_kpis" not in stages or "pandas" not in stages:
        return {"prospects": prospects, "setup": setup, "stages": stages}
    for kpi_id, pair in stages["core_kpis"]["totals"].items():  # the baseline must agree
        expected = stages["pandas"]["totals"][kpi_id]
        if abs(pair["numerator"] - expected["numerator"]) > 1e-6 * max(1, abs(expected["numerator"])):
            raise AssertionError(
                f"pandas baseline disagrees with the engine on {kpi_id}: {expected} != {pair}"
            )
    return {"prospects": prospects, "setup": setup, "stages": stages}


def table(results: list[dict], floors: dict | None = None) -> str:
    python_start = "python -m benchmarks.harness --prospects " + " ".join(
        str(r["prospects"]) for r in results
    )
    ran = [name for name in STAGES if name in results[0]["stages"]]
    if len(ran) < len(STAGES):
        python_start += " --only " + " ".join(ran)
    lines = [
        f"`{python_start}`: seconds of each stage's own work (timed in its child process after",
        "imports) and that child's peak RSS.",
        "",
        "| Stage | " + " | ".join(f"{r['setup']['leads']:,} leads" for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for name in ran:
        cells = [
            f"{r['stages'][name]['seconds']:.1f} s, {r['stages'][name]['peak_rss_mib']:,.0f} MiB"
            for r in results
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    extra_rows = {  # label -> (the stages it needs, its cell for one size's stages)
        "snapshots: applied, then velocity": (["snapshots"], lambda s: applied_then_velocity(s["snapshots"])),
        "airflow, task time": (["airflow"], lambda s: f"{s['airflow']['task_seconds']:.1f} s"),
        "daily_snapshot: applied, then velocity": (
            ["daily_snapshot"],
            lambda s: applied_then_velocity(s["daily_snapshot"]),
        ),
        f"**end to end** ({', '.join(END_TO_END)})": (
            END_TO_END,
            lambda s: "{:.1f} s, {:,.0f} MiB".format(*stages_total(s, END_TO_END)),
        ),
        "end to end: fresh memory touched": (
            END_TO_END,
            lambda s: f"{stages_sum(s, END_TO_END, 'fresh_gib'):.1f} GiB",
        ),
        "end to end: CPU seconds in the kernel": (
            END_TO_END,
            lambda s: f"{stages_sum(s, END_TO_END, 'kernel_seconds'):.1f} s",
        ),
        f"**daily run** ({', '.join(DAILY_RUN)})": (
            DAILY_RUN,
            lambda s: "{:.1f} s, {:,.0f} MiB".format(*stages_total(s, DAILY_RUN)),
        ),
    }
    for label, (needs, cell) in extra_rows.items():
        if set(needs) <= set(ran):
            lines.append(f"| {label} | " + " | ".join(cell(r["stages"]) for r in results) + " |")
    lines += ["", "| Ratio | " + " | ".join(f"{r['setup']['leads']:,}" for r in results) + " |"]
    lines.append("|---|" + "---:|" * len(results))
    ratios = {
        "KPI engine / bare DuckDB, same SQL": lambda s: s["kpis"]["seconds"] / s["kpis_bare"]["seconds"],
        "pandas baseline / engine, five core KPIs": lambda s: (
            s["pandas"]["seconds"] / s["core_kpis"]["seconds"]
        ),
        "scorecard KPI step after the KPI DAG / from nothing": lambda s: (
            s["scorecard_kpis_reused"]["seconds"] / s["scorecard_kpis"]["seconds"]
        ),
        "incremental day (1% changed) / first reconcile": lambda s: (
            s["incremental"]["seconds"] / s["reconcile"]["seconds"]
        ),
        "reconcile: raw records per second": lambda s: s["reconcile"]["rows"] / s["reconcile"]["seconds"],
    }
    for label, ratio in ratios.items():
        try:
            ratio(results[0]["stages"])
        except KeyError:  # a stage it needs did not run (--only)
            continue
        lines.append(f"| {label} | " + " | ".join(f"{ratio(r['stages']):,.2f}" for r in results) + " |")
    if floors:
        lines += [
            "",
            "The issue's floors in this run (`benchmarks.floors`: bare DuckDB, for this hour's speed):"
            f" ten group-bys over 1M leads {floors['group_bys_seconds']:.3f} s,"
            f" 11M score changes into intervals {floors['intervals_seconds']:.2f} s"
            " (the issue: about 0.1 and 2 s);"
            f" a GiB of fresh memory touched in {floors['fresh_memory_seconds_per_gib']:.2f} s,"
            f" the same GiB again at once in {floors['recycled_memory_seconds_per_gib']:.2f} s.",
        ]
    first, last = results[0], results[-1]
    if len(results) > 1:
        growth = last["setup"]["leads"] / first["setup"]["leads"]
        lines += [
            "",
            f"Growth from {first['setup']['leads']:,} to {last['setup']['leads']:,} leads ({growth:,.0f}x):",
        ]
        for name in ran:
            factor = last["stages"][name]["seconds"] / first["stages"][name]["seconds"]
            lines.append(f"- {name}: {factor:,.1f}x the time")
    return "\n".join(lines)


def applied_then_velocity(stage: dict) -> str:
    return f"{stage['apply_seconds']:.1f} s + {stage['velocity_seconds']:.1f} s"


def stages_total(stages: dict, names: tuple[str, ...]) -> tuple[float, float]:
    """A target's figures (end to end, the daily run): its stages' seconds summed, their highest peak."""
    return stages_sum(stages, names, "seconds"), max(stages[name]["peak_rss_mib"] for name in names)


def stages_sum(stages: dict, names: tuple[str, ...], figure: str) -> float:
    """One figure of a target's stages (seconds, fresh memory, kernel seconds), summed."""
    return sum(stages[name][figure] for name in names)


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    before, rest = doc.split(BEGIN)
    _, after = rest.split(END)
    DOCS.write_text(f"{before}{BEGIN}\n{text}\n{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=STAGES,
        default=STAGES,
        help="run these stages only (in the usual order; most need reconcile first)",
    )
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_in_child(args.stage, args.dir), default=float))
        return
    floors = child_report("benchmarks.floors")  # how fast this hour is, beside the stages
    results = []
    for prospects in args.prospects:
        results.append(measure(prospects, tuple(args.only)))
        print(json.dumps(results[-1], default=float), flush=True)
    text = table(results, floors)
    print(text)
    if args.write_docs:
        if set(args.only) != set(STAGES):
            raise SystemExit("--write-docs needs every stage: the docs table is the whole harness")
        write_docs(text)


if __name__ == "__main__":
    main()
