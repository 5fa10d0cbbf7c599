"""KPI SQL checked against the ground truth computed independently from the generator."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.synthetic.truth import truth_value
from tests.helpers import stage, table

KPIS = ("lead_to_opportunity_rate", "win_rate_count", "win_rate_amount")
PERIODS = [
    *period_containing("month", date(2026, 9, 1)).history(6),
    *period_containing("week", date(2026, 9, 28)).history(8),
]


@pytest.fixture(scope="module")
def computed(small_exports, tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('kpis') / 'warehouse.duckdb'}"
    engine, _build = stage(url, small_exports)
    results = compute_kpis(engine, PERIODS, "kpi-test")
    return engine, results


@pytest.mark.parametrize("kpi_id", KPIS)
def test_totals_equal_the_ground_truth_for_every_period(computed, small_world, kpi_id):
    _, results = computed
    totals = results[(results["kpi_id"] == kpi_id) & (results["dimension"] == TOTAL)]
    for period in PERIODS:
        row = totals[(totals["grain"] == period.grain) & (totals["period_start"] == period.start)]
        numerator, denominator, _ = truth_value(kpi_id, small_world, period)
        assert len(row) == 1, f"{kpi_id} {period}"
        assert row["numerator"].iloc[0] == pytest.approx(numerator), f"{kpi_id} {period}"
        assert row["denominator"].iloc[0] == pytest.approx(denominator), f"{kpi_id} {period}"


def test_segments_add_up_to_the_total_for_every_dimension(computed):
    _, results = computed
    keys = ["kpi_id", "grain", "period_start"]
    totals = results[results["dimension"] == TOTAL].set_index(keys)
    by_dimension = results[results["dimension"] != TOTAL].groupby([*keys, "dimension"])
    sums = by_dimension[["numerator", "denominator"]].sum().reset_index("dimension")
    joined = sums.merge(
        totals[["numerator", "denominator"]], left_index=True, right_index=True, suffixes=("", "_total")
    )
    assert len(joined) > 0
    assert (joined["numerator"] - joined["numerator_total"]).abs().max() < 1e-6
    assert (joined["denominator"] - joined["denominator_total"]).abs().max() < 1e-6


def test_rates_carry_intervals_and_thin_periods_are_flagged(computed):
    _, results = computed
    rates = results[(results["kpi_id"] == "win_rate_count") & (results["volume"] > 0)]
    assert ((rates["ci_low"] <= rates["value"]) & (rates["value"] <= rates["ci_high"])).all()
    thin = results[
        (results["volume"] > 0) & (results["volume"] < 20) & (results["kpi_id"] == "win_rate_count")
    ]
    assert thin["flags"].str.contains("insufficient_volume").all()
    young = results[
        (results["kpi_id"] == "lead_to_opportunity_rate") & (results["period_start"] == date(2026, 9, 28))
    ]
    assert young["flags"].str.contains("window_open").all()  # cut-off 2 Nov < 5 Oct + 30 days


def test_recomputing_a_period_replaces_it_without_duplicates(computed):
    engine, results = computed
    compute_kpis(engine, PERIODS[:2], "kpi-test-rerun")
    stored = table(engine, "marts.kpi_results", "kpi_id")
    keys = ["kpi_id", "kpi_version", "grain", "period_start", "scope", "dimension", "segment"]
    assert not stored.duplicated(keys).any()
    assert len(stored) == len(results)
    assert set(stored[stored["period_start"].isin([p.start for p in PERIODS[:2]])]["run_id"]) == {
        "kpi-test-rerun"
    }


def test_a_region_scope_only_sees_that_region(computed, small_world):
    engine, _ = computed
    period = PERIODS[3]
    scoped = compute_kpis(engine, [period], "scope-test", Scope("region", "EMEA"), ["win_rate_count"])
    total = scoped[scoped["dimension"] == TOTAL].iloc[0]
    opps = small_world.truth_opportunities
    emea = opps[
        ~opps["is_test"]
        & opps["is_closed"]
        & (opps["region"] == "EMEA")
        & (opps["close_date"] >= str(period.start))
        & (opps["close_date"] < str(period.end))
    ]
    assert total["denominator"] == len(emea) and total["numerator"] == emea["is_won"].sum()
    by_region = scoped[scoped["dimension"] == "region"]
    assert set(by_region["segment"]) == {"EMEA"}
    with engine.connect() as conn:
        scopes = conn.execute(sa.text("select distinct scope from marts.kpi_results")).scalars().all()
    assert set(scopes) == {"all", "region=EMEA"}
