"""The real public datasets through the CSV source and the KPI engine, checked against plain
pandas on the same files."""

from __future__ import annotations

import pandas as pd

from revops.datasets import DATASETS_DIR, maven_crm, x_education
from revops.warehouse import get_engine


def test_maven_crm_win_rate_deal_size_and_cycle(tmp_path):
    report = maven_crm(DATASETS_DIR / "maven-crm", get_engine(f"duckdb:///{tmp_path / 'maven.duckdb'}"))
    raw = pd.read_csv(
        DATASETS_DIR / "maven-crm" / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"]
    )
    closed = raw[raw["deal_stage"].isin(["Won", "Lost"]) & (raw["close_date"] >= "2017-03-01")]
    won = closed[closed["deal_stage"] == "Won"]
    assert report["opportunities"] == len(raw) == 8800
    assert report["year"]["win_rate_count"] == (len(won), len(closed))
    assert report["year"]["average_won_deal_size"] == (won["close_value"].sum(), len(won))
    assert report["lost_with_value"] == 0  # the dataset's quirk 2, found by the product too
    cycle = report["cycle"].set_index("is_won")
    assert cycle.loc[True, "median_days"] == (won["close_date"] - won["engage_date"]).dt.days.median()


def test_x_education_conversion_by_normalised_source(tmp_path):
    report = x_education(
        DATASETS_DIR / "x-education-leads", get_engine(f"duckdb:///{tmp_path / 'xe.duckdb'}")
    )
    raw = pd.read_csv(DATASETS_DIR / "x-education-leads" / "Leads.csv")
    assert report["leads"] == len(raw) == 9240
    assert report["quarantined"] == 9240  # no dates: kept in quarantine, not dropped
    google = raw[raw["Lead Source"].str.lower() == "google"]
    row = report["normalised"].loc["google"]
    assert (row["leads"], row["converted"]) == (len(google), google["Converted"].sum())
    assert len(report["as_spelled"]) == raw["Lead Source"].fillna("(blank)").nunique()
    assert len(report["normalised"]) == len(report["as_spelled"]) - 1  # Google / google
