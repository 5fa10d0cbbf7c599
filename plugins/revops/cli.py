"""`python -m revops.cli ...`: the product's command line for people, not for Airflow.

kpis list                         every KPI and its versions
kpis catalogue                    the same as a Markdown table (docs/kpis.md)
kpis diff KPI A B                 SQL diff and rationale between two versions
kpis compare KPI A B [options]    both versions on the current data, where they differ
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
from datetime import date

from revops.kpis.compare import compare_versions, sql_diff
from revops.kpis.engine import current_build
from revops.kpis.registry import load_registry
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
                f"{approved}, sql {version.sql_sha256[:12]}"
            )


def catalogue_markdown() -> str:
    """The KPI catalogue as a Markdown table (docs/kpis.md holds a copy; a test compares)."""
    lines = [
        "| KPI | Name | Perspective | Unit | Versions (status, in effect from) | Dimensions |",
        "|---|---|---|---|---|---|",
    ]
    for kpi in load_registry().values():
        versions = "; ".join(f"v{v.version} {v.status} {v.effective_from}" for v in kpi.usable_versions())
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
