"""Real public CRM datasets run through the product: loaded by the CSV source (with the mapping
files in `include/config/datasets/`), reconciled, and measured with the KPI engine.

    python -m revops.datasets [--write docs/datasets.md]

- maven-crm: 8,800 B2B opportunities: win rates, deal sizes, sales cycle, by month and agent.
- x-education-leads: 9,240 leads with their source and outcome, no dates: conversion by
  lead source, as spelled and as normalised.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from revops.configuration import read_config
from revops.extract.csv_source import csv_batches
from revops.extract.landing import land_snapshot
from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.statistics import wilson_interval
from revops.periods import period_containing
from revops.reconcile.build import build_staging
from revops.reconcile.sources import normalise
from revops.settings import PROJECT_ROOT, config_dir
from revops.warehouse import get_engine, read_frame

DATASETS_DIR = Path(os.environ.get("REVOPS_DATASETS_DIR", PROJECT_ROOT.parent / "shared" / "datasets"))
MAVEN_MONTHS = [period_containing("month", date(2017, m, 1)) for m in range(3, 13)]
MINIMUM_VOLUME = 30


def land_dataset(engine: sa.Engine, name: str, directory: Path) -> list:
    config = read_config(name, config_dir() / "datasets")
    return [
        land_snapshot(engine, spec, records, f"dataset-{name}")
        for spec, records in csv_batches(directory, config)
    ]


def maven_crm(directory: Path, engine: sa.Engine) -> dict:
    """Win rates, deal size and cycle length of the maven-crm pipeline, computed by the product."""
    land_dataset(engine, "maven_crm", directory)
    build = build_staging(engine, "dataset-maven-crm")
    # The KPI versions took effect in 2025; a 2017 dataset is measured with v1 by name.
    results = pd.concat(
        [
            compute_kpis(engine, MAVEN_MONTHS, "dataset-maven-crm", kpi_ids=[kpi], version=1)
            for kpi in ("win_rate_count", "win_rate_amount", "average_won_deal_size")
        ]
    )
    totals = results[results["dimension"] == TOTAL]
    by_owner = results[results["dimension"] == "opportunity_owner"]
    with engine.connect() as conn:
        lost_with_value = conn.execute(
            sa.text(
                "select count(*) from staging.opportunities where is_closed and not is_won and amount > 0"
            )
        ).scalar_one()
        cycle = read_frame(
            conn,
            """
            select is_won, count(*) as deals,
                   median(close_date - cast(created_at as date)) as median_days,
                   quantile_cont(close_date - cast(created_at as date), 0.9) as p90_days
            from staging.opportunities
            where is_closed and created_at is not null
            group by is_won order by is_won desc
        """,
        )
    return {
        "opportunities": build.summary["opportunities"],
        "monthly": _pivot(totals),
        "year": _roll_up(totals.groupby("kpi_id")),
        "owners": _owners(by_owner[by_owner["kpi_id"] == "win_rate_count"]),
        "cycle": cycle,
        "lost_with_value": lost_with_value,
    }


def _pivot(totals: pd.DataFrame) -> pd.DataFrame:
    table = totals.pivot_table(index="period_start", columns="kpi_id", values="value")
    return table.join(totals[totals["kpi_id"] == "win_rate_count"].set_index("period_start")["volume"])


def _roll_up(groups) -> dict:
    """Rates over the year from summed numerators and denominators, never averaged rates."""
    return {kpi: (group["numerator"].sum(), group["denominator"].sum()) for kpi, group in groups}


def _owners(rows: pd.DataFrame) -> pd.DataFrame:
    owners = rows.groupby("segment")[["numerator", "denominator"]].sum()
    owners["win_rate"] = owners["numerator"] / owners["denominator"]
    owners[["ci_low", "ci_high"]] = [
        wilson_interval(n, d) for n, d in zip(owners["numerator"], owners["denominator"], strict=True)
    ]
    return owners.sort_values("win_rate", ascending=False)


def x_education(directory: Path, engine: sa.Engine) -> dict:
    """Conversion by lead source as spelled in the file, and as the product normalises it."""
    (batch,) = land_dataset(engine, "x_education", directory)
    build = build_staging(engine, "dataset-x-education")
    with engine.connect() as conn:
        payloads = read_frame(
            conn, "select payload from raw.records where batch_id = :b", {"b": batch.batch_id}
        )
    leads = pd.DataFrame.from_records([json.loads(p) for p in payloads["payload"]])
    leads["converted"] = leads["IsConverted"] == "1"
    leads["as_spelled"] = leads["LeadSource"].fillna("(blank)")
    leads["normalised"] = leads["LeadSource"].map(normalise).fillna("(blank)")
    return {
        "leads": len(leads),
        "quarantined": build.summary["objects"]["salesforce.Lead"]["quarantined"],
        "quarantine_reasons": build.summary["quarantined_by_reason"],
        "as_spelled": _conversion(leads, "as_spelled"),
        "normalised": _conversion(leads, "normalised"),
    }


def _conversion(leads: pd.DataFrame, column: str) -> pd.DataFrame:
    table = leads.groupby(column)["converted"].agg(converted="sum", leads="count")
    table["rate"] = table["converted"] / table["leads"]
    table[["ci_low", "ci_high"]] = [
        wilson_interval(c, n) for c, n in zip(table["converted"], table["leads"], strict=True)
    ]
    table["flag"] = ["" if n >= MINIMUM_VOLUME else "insufficient volume" for n in table["leads"]]
    return table.sort_values(["leads", "converted"], ascending=False)


def markdown(maven: dict, education: dict) -> str:
    """The report as Markdown (docs/datasets.md)."""
    year = maven["year"]
    won, closed = year["win_rate_count"]
    won_amount, closed_amount = year["win_rate_amount"]
    won_value, won_deals = year["average_won_deal_size"]
    low, high = wilson_interval(won, closed)
    lines = [
        "# Real public datasets through the product",
        "",
        "`python -m revops.datasets --write docs/datasets.md` regenerates this page: each dataset is",
        "loaded by the CSV source (mapping files in `include/config/datasets/`), reconciled, and",
        "measured with the KPI engine (v1 of each KPI, named, since the data is from 2017).",
        "",
        "## maven-crm: 8,800 B2B opportunities (2016-10 to 2017-12)",
        "",
        f"- Opportunities in staging: {maven['opportunities']:,}",
        f"- Win rate by count, March-December 2017: **{won / closed:.1%}** ({int(won):,} won of "
        f"{int(closed):,} closed; 95% CI {low:.1%}-{high:.1%})",
        f"- Win rate by amount: {won_amount / closed_amount:.1%}. "
        + (
            "Every lost deal's value is 0 in this dataset (its SOURCE.md, quirk 2), so the rate is 100% "
            "by construction and says nothing; it would need a list-price estimate for lost deals."
            if maven["lost_with_value"] == 0
            else f"{maven['lost_with_value']} lost deals carry a value."
        ),
        f"- Average won deal size: **{won_value / won_deals:,.0f}** over {int(won_deals):,} won deals",
        "",
        "Sales cycle (engage date to close date, closed deals):",
        "",
        "| Outcome | Deals | Median days | P90 days |",
        "|---|---:|---:|---:|",
    ]
    for row in maven["cycle"].itertuples():
        lines.append(
            f"| {'won' if row.is_won else 'lost'} | {row.deals:,} | {row.median_days:.0f} | "
            f"{row.p90_days:.0f} |"
        )
    lines += [
        "",
        "By month (the first closes are in March 2017):",
        "",
        "| Month | Closed | Win rate (count) | Avg won deal |",
        "|---|---:|---:|---:|",
    ]
    for period_start, row in maven["monthly"].iterrows():
        lines.append(
            f"| {period_start:%b %Y} | {int(row['volume'])} | {row['win_rate_count']:.1%} | "
            f"{row['average_won_deal_size']:,.0f} |"
        )
    owners = maven["owners"]
    lines += [
        "",
        "Win rate by opportunity owner (agent), best and worst five, with Wilson intervals:",
        "",
        "| Agent | Won / closed | Win rate | 95% CI |",
        "|---|---:|---:|---:|",
    ]
    for agent, row in pd.concat([owners.head(5), owners.tail(5)]).iterrows():
        lines.append(
            f"| {agent} | {int(row['numerator'])} / {int(row['denominator'])} | "
            f"{row['win_rate']:.1%} | {row['ci_low']:.1%}-{row['ci_high']:.1%} |"
        )
    best, worst = owners.iloc[0], owners.iloc[-1]
    separated = best["ci_low"] > worst["ci_high"]
    lines += [
        "",
        f"The best agent's interval ({best['ci_low']:.1%}-{best['ci_high']:.1%}) "
        + ("lies wholly above" if separated else "overlaps")
        + f" the worst agent's ({worst['ci_low']:.1%}-{worst['ci_high']:.1%}): "
        + ("a difference beyond sampling noise." if separated else "the gap may be noise."),
        "",
        "## x-education-leads: 9,240 leads, no dates",
        "",
        f"- Leads landed in the raw layer: {education['leads']:,}. Reconcile quarantines all "
        f"{education['quarantined']:,} ({', '.join(education['quarantine_reasons'])}): the export has",
        "  no dates, so no cohort KPI can use it. Nothing is dropped; every row stays in quarantine.",
        "- Conversion (to paying customer) by lead source, as the product normalises the spelling",
        "  (case and spaces folded: `Google` and `google` are one source). Sources under 30 leads",
        "  are flagged, not hidden:",
        "",
        "| Lead source | Leads | Converted | Rate | 95% CI | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for source, row in education["normalised"].iterrows():
        lines.append(
            f"| {source} | {row['leads']:,} | {row['converted']:,} | {row['rate']:.1%} | "
            f"{row['ci_low']:.1%}-{row['ci_high']:.1%} | {row['flag']} |"
        )
    spelled = education["as_spelled"]
    lines += [
        "",
        f"As spelled in the file there are {len(spelled)} sources instead of "
        f"{len(education['normalised'])}; `Google` ({spelled.loc['Google', 'leads']:,} leads) and "
        f"`google` ({spelled.loc['google', 'leads']:,}) are the pair that differs only in case.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    parser.add_argument("--datasets", type=Path, default=DATASETS_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        maven = maven_crm(args.datasets / "maven-crm", get_engine(f"duckdb:///{scratch}/maven.duckdb"))
        education = x_education(
            args.datasets / "x-education-leads", get_engine(f"duckdb:///{scratch}/education.duckdb")
        )
    report = markdown(maven, education)
    if args.write:
        args.write.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
