"""`python -m revops.cli ...`: the product's command line for people, not for Airflow.

kpis list                         every KPI and its versions
kpis catalogue                    the same as a Markdown table (docs/kpis.md)
kpis diff KPI A B                 SQL diff and rationale between two versions
kpis compare KPI A B [options]    both versions on the current data, where they differ
audit history [filters]           the run history: runs, tasks, scorecards sent, KPI versions
audit verify                      check the ledger's hash chain and every archived file
audit reproduce ENTRY_ID          re-run a past scorecard in a scratch warehouse and compare
scorecards list                   audiences, schedules, recipients, completeness policy
scorecards preview AUDIENCE       render and archive a scorecard, show what would be sent
                                  to whom (a dry run: nothing is sent)
scorecards resend AUDIENCE --period-start DATE [--to ADDRESS ...] [--dry-run]
                                  send an archived scorecard again, the identical bytes
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

from revops.audit.history import HistoryFilter, history
from revops.audit.verify import verify
from revops.kpis.compare import compare_versions, sql_diff
from revops.kpis.engine import current_build
from revops.kpis.registry import KpiVersion, load_registry
from revops.kpis.scope import Scope
from revops.periods import local_date, period_containing
from revops.scorecards.audiences import load_audiences
from revops.warehouse import get_engine


def kpis_list(_: argparse.Namespace) -> None:
    for kpi in load_registry().values():
        print(f"{kpi.id}  [{kpi.perspective}, {kpi.unit}, {kpi.direction}]  owner {kpi.owner}")
        print(f"    {kpi.name}")
        for version in kpi.usable_versions():
            approved = f", approved by {version.approved_by}" if version.approved_by else ""
            print(
                f"    v{version.version} {version.status}, in effect from {version.effective_from}"
                f"{approved}{_rewrite_note(version)}, sql {version.sql_sha256[:12]}"
            )


def _rewrite_note(version: KpiVersion) -> str:
    return f", rewrite of v{version.rewrite_of}" if version.rewrite_of else ""


def catalogue_markdown() -> str:
    """The KPI catalogue as a Markdown table (docs/kpis.md holds a copy; a test compares)."""
    lines = [
        "| KPI | Name | Perspective | Unit | Versions (status, in effect from) | Dimensions |",
        "|---|---|---|---|---|---|",
    ]
    for kpi in load_registry().values():
        versions = "; ".join(
            f"v{v.version} {v.status} {v.effective_from}{_rewrite_note(v)}" for v in kpi.usable_versions()
        )
        lines.append(
            f"| `{kpi.id}` | {kpi.name} | {kpi.perspective.replace('_', ' ')} | {kpi.unit} | {versions} | "
            f"{', '.join(kpi.dimensions)} |"
        )
    return "\n".join(lines)


def kpis_catalogue(_: argparse.Namespace) -> None:
    print(catalogue_markdown())


def kpis_diff(args: argparse.Namespace) -> None:
    print(sql_diff(load_registry()[args.kpi], args.version_a, args.version_b))


def kpis_compare(args: argparse.Namespace) -> None:
    engine = get_engine(args.warehouse)
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    end = date.fromisoformat(args.until) if args.until else local_date(cutoff, args.timezone)
    periods = period_containing(args.grain, end, args.timezone).history(args.periods)
    report = compare_versions(
        engine,
        args.kpi,
        args.version_a,
        args.version_b,
        periods,
        run_id="cli-compare",
        scope=Scope.parse(args.scope),
    )
    if report.empty:
        print(
            f"{args.kpi}: v{args.version_a} and v{args.version_b} agree on every segment of "
            f"{len(periods)} {args.grain}s."
        )
        return
    print(report.to_string(index=False))


def scorecards_list(_: argparse.Namespace) -> None:
    for audience in load_audiences().values():
        print(
            f"{audience.name}: {audience.title} ({audience.grain}ly, {audience.schedule} {audience.timezone})"
        )
        print(f"    scope {audience.scope.key}; KPIs {', '.join(audience.kpis)}")
        print(f"    to {', '.join(audience.recipients)}; incomplete data: {audience.on_incomplete}")


def scorecards_preview(args: argparse.Namespace) -> None:
    from revops import pipeline

    audience = load_audiences()[args.audience]
    with get_engine().connect() as conn:
        cutoff = current_build(conn).data_cutoff
    day = (
        date.fromisoformat(args.period_start) if args.period_start else local_date(cutoff, audience.timezone)
    )
    period = period_containing(audience.grain, day, audience.timezone)
    if not args.period_start and period.end_at > cutoff:
        period = period.previous()  # by default, the newest period the data covers in full
    pipeline.compute_scorecard_kpis(audience.name, "cli-preview", period.start_at)
    rendered = pipeline.render_scorecard(audience.name, "cli-preview", period.start_at, period.end_at)
    plan = pipeline.send_scorecard(audience.name, "cli-preview", rendered, dry_run=True, final_try=False)
    held = rendered["completeness_problems"] and audience.on_incomplete == "hold"
    print(f"{audience.title}, {rendered['period']}")
    print(f"  PDF      {rendered['pdf_path']}  (sha256 {rendered['pdf_sha256'][:16]}...)")
    action = "HOLD (incomplete data), not send to" if held else "send to"
    print(f"  would {action} {', '.join(plan['deliveries'])}")

    for problem in rendered["completeness_problems"]:
        print(f"  incomplete: {problem}")


def scorecards_resend(args: argparse.Namespace) -> None:
    from revops import pipeline

    result = pipeline.resend_scorecard(
        args.audience, date.fromisoformat(args.period_start), tuple(args.to or ()), args.dry_run
    )
    print(json.dumps(result, indent=2))


def audit_history(args: argparse.Namespace) -> None:
    wanted = HistoryFilter(
        since=date.fromisoformat(args.since) if args.since else None,
        until=date.fromisoformat(args.until) if args.until else None,
        dag_id=args.dag,
        audience=args.audience,
        kpi=args.kpi,
        kinds=tuple(args.kind or ()),
    )
    with get_engine(args.warehouse).connect() as conn:
        frame = history(conn, wanted)
    if frame.empty:
        print("No ledger entries match.")
        return
    for row in frame.itertuples():
        when = f"{row.recorded_at:%Y-%m-%d %H:%M:%S}"
        print(f"#{row.sequence} {when} {row.kind:<11} {row.outcome:<12} {row.dag_id} {row.run_id}")
        print(f"    {row.what}  [entry {row.entry_id}, code {row.code_version}]")


def audit_verify(args: argparse.Namespace) -> None:
    result = verify(get_engine(args.warehouse))
    if result.ok:
        print(f"Ledger intact: {result.entries} entries chained, {result.files} archived files match.")
        return
    first = result.findings[0].sequence
    print(f"Ledger BROKEN: {len(result.findings)} problem(s); the first broken link is entry {first}.")
    for finding in result.findings:
        print(f"  {finding}")
    sys.exit(1)


def audit_reproduce(args: argparse.Namespace) -> None:
    from revops.audit.reproduce import reproduce

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="revops-reproduce-")) / "scratch.duckdb"
    replay = reproduce(get_engine(args.warehouse), args.entry_id, f"duckdb:///{scratch}")
    output = scratch.parent / f"reproduced-{replay.reproduced_pdf_sha256[:16]}.pdf"
    output.write_bytes(replay.reproduced_pdf)
    print(f"Entry {replay.entry_id} (code then {replay.code_version})")
    rows = replay.reproduced_results[1]
    print(f"  KPI results: {'identical' if replay.same_results else 'DIFFERENT'} ({rows} rows)")
    print(
        f"  PDF:         {'identical bytes' if replay.same_pdf else 'DIFFERENT'} (archived {replay.pdf_path})"
    )
    print(f"  reproduced:  {output}")
    if not (replay.same_results and replay.same_pdf):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="revops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="group", required=True)
    kpis = commands.add_parser("kpis", help="KPI definitions and versions").add_subparsers(
        dest="command", required=True
    )
    kpis.add_parser("list").set_defaults(run=kpis_list)
    kpis.add_parser("catalogue", help="the catalogue as a Markdown table").set_defaults(run=kpis_catalogue)
    diff = kpis.add_parser("diff")
    compare = kpis.add_parser("compare")
    for sub in (diff, compare):
        sub.add_argument("kpi")
        sub.add_argument("version_a", type=int)
        sub.add_argument("version_b", type=int)
    diff.set_defaults(run=kpis_diff)
    compare.add_argument("--grain", default="month", choices=["week", "month", "quarter"])
    compare.add_argument("--periods", type=int, default=6)
    compare.add_argument("--until", help="a date in the last period (default: the data cut-off)")
    compare.add_argument("--scope", default="all", help="all, or e.g. region=EMEA")
    compare.add_argument("--timezone", default="UTC")
    compare.add_argument("--warehouse", help="SQLAlchemy URL (default: REVOPS_WAREHOUSE_URL)")
    compare.set_defaults(run=kpis_compare)
    audit = commands.add_parser("audit", help="run history: list, verify, reproduce").add_subparsers(
        dest="command", required=True
    )
    listing = audit.add_parser("history", help="ledger entries, oldest first")
    listing.add_argument("--since", help="YYYY-MM-DD")
    listing.add_argument("--until", help="YYYY-MM-DD, inclusive")
    listing.add_argument("--dag", help="a DAG id, e.g. revops_scorecard__executive_weekly")
    listing.add_argument("--audience", help="scorecards of this audience")
    listing.add_argument("--kpi", help="entries naming this KPI (scorecards that used it, its versions)")
    listing.add_argument(
        "--kind", nargs="+", choices=["run", "artifact", "dag_run", "task", "kpi_version", "retention"]
    )
    listing.set_defaults(run=audit_history)
    audit.add_parser("verify", help="check the hash chain and archived files").set_defaults(run=audit_verify)
    replay = audit.add_parser("reproduce", help="re-run a past scorecard and compare")
    replay.add_argument("entry_id")
    replay.add_argument("--scratch", help="folder for the scratch warehouse (default: a new temp folder)")
    replay.set_defaults(run=audit_reproduce)
    for sub in (listing, replay):
        sub.add_argument("--warehouse", help="SQLAlchemy URL (default: REVOPS_WAREHOUSE_URL)")
    audit.choices["verify"].add_argument("--warehouse", help="SQLAlchemy URL (default: REVOPS_WAREHOUSE_URL)")
    scorecards = commands.add_parser("scorecards", help="scorecards: preview and re-send").add_subparsers(
        dest="command", required=True
    )
    scorecards.add_parser("list").set_defaults(run=scorecards_list)
    preview = scorecards.add_parser("preview", help="render and show what would be sent; sends nothing")
    preview.add_argument("audience")
    preview.add_argument("--period-start", help="a date in the period (default: the newest complete one)")
    preview.set_defaults(run=scorecards_preview)
    resend = scorecards.add_parser("resend", help="send an archived scorecard again, identical bytes")
    resend.add_argument("audience")
    resend.add_argument("--period-start", required=True, help="a date in the period")
    resend.add_argument("--to", nargs="+", help="these addresses (default: the audience's recipients)")
    resend.add_argument("--dry-run", action="store_true", help="show who would get it; send nothing")
    resend.set_defaults(run=scorecards_resend)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
