"""Every KPI's SQL checked against the ground truth computed independently with pandas, on
the embedded DuckDB and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.devtools.postgres import scratch_warehouse
from revops.kpis.compare import compare_versions
from revops.kpis.engine import (
    TOTAL,
    compute_kpis,
    current_build,
    query_parameters,
    query_periods,
    query_slice,
    render_sql,
    version_sql,
)
from revops.kpis.registry import load_registry
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.snapshots.store import apply_snapshot
from revops.snapshots.velocity import VelocitySettings, refresh_velocity
from revops.synthetic.truth import truth_value
from revops.warehouse import read_frame
from tests.helpers import stage, table

REGISTRY = load_registry()
# Read from the score snapshots, which CSV exports do not feed: checked against the ground
# truth after a full pipeline run (test_pipeline_airflow) and by hand (test_score_validity).
FROM_SNAPSHOTS = {"lead_score_validity"}
# Read from the raw layer's batches, dated when the exports were taken (the world's cut-off):
# checked against the export files below, and by hand in test_quarantine_rate.
FROM_RAW = {"quarantine_rate"}
FROM_EXPORTS = sorted(set(REGISTRY) - FROM_SNAPSHOTS - FROM_RAW)
PERIODS = [
    *period_containing("month", date(2026, 9, 1)).history(6),
    *period_containing("week", date(2026, 9, 28)).history(6),
    period_containing("quarter", date(2026, 8, 1)),
]


@pytest.fixture(scope="module")
def computed(small_exports, tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('kpis') / 'warehouse.duckdb'}"
    engine, _ = stage(url, small_exports)
    return engine, compute_kpis(engine, PERIODS, "kpi-test")


def _assert_matches_truth(results, world, kpi_ids, periods=PERIODS):
    checked = 0
    for kpi_id in kpi_ids:
        kpi = REGISTRY[kpi_id]
        totals = results[(results["kpi_id"] == kpi_id) & (results["dimension"] == TOTAL)]
        for period in periods:
            if kpi.version_for(period.start) is None:
                continue
            row = totals[(totals["grain"] == period.grain) & (totals["period_start"] == period.start)]
            numerator, denominator, _ = truth_value(kpi_id, world, period, kpi.parameters)
            assert len(row) == 1, f"{kpi_id} {period}"
            assert row["numerator"].iloc[0] == pytest.approx(numerator), f"{kpi_id} {period}"
            assert row["denominator"].iloc[0] == pytest.approx(denominator), f"{kpi_id} {period}"
            checked += 1
    return checked


@pytest.mark.parametrize("kpi_id", FROM_EXPORTS)
def test_every_kpi_equals_the_ground_truth_for_every_period(computed, small_world, kpi_id):
    _, results = computed
    assert _assert_matches_truth(results, small_world, [kpi_id]) > 0


@pytest.mark.parametrize("kpi_id", sorted(FROM_SNAPSHOTS))
def test_a_kpi_of_the_score_snapshots_has_no_data_without_them(computed, kpi_id):
    _, results = computed
    rows = results[results["kpi_id"] == kpi_id]
    assert len(rows) > 0 and rows["flags"].str.contains("no_data").all()


def test_the_same_sql_gives_the_same_numbers_on_postgresql(small_exports, small_world, any_warehouse_url):
    engine, _ = stage(any_warehouse_url, small_exports)
    results = compute_kpis(engine, PERIODS[-4:], "portability-test")
    assert _assert_matches_truth(results, small_world, FROM_EXPORTS, PERIODS[-4:]) > 30


def test_segments_add_up_to_the_total_for_every_dimension(computed):
    """Rates roll up from numerators and denominators: every segment split sums to the total."""
    _, results = computed
    keys = ["kpi_id", "grain", "period_start"]
    # The rolling average's outlier fence is drawn per segment, and quantiles never add up.
    additive_ids = [k for k, kpi in REGISTRY.items() if kpi.additive and not k.endswith("_rolling_12m")]
    additive = results[results["kpi_id"].isin(additive_ids)]
    totals = additive[additive["dimension"] == TOTAL].set_index(keys)
    sums = (
        additive[additive["dimension"] != TOTAL]
        .groupby([*keys, "dimension"])[["numerator", "denominator"]]
        .sum()
        .reset_index("dimension")
    )
    joined = sums.merge(
        totals[["numerator", "denominator"]], left_index=True, right_index=True, suffixes=("", "_total")
    )
    assert len(joined) > 100
    assert (joined["numerator"] - joined["numerator_total"]).abs().max() < 1e-6
    ratios = joined[[REGISTRY[k].kind != "total" for k in joined.index.get_level_values("kpi_id")]]
    assert (ratios["denominator"] - ratios["denominator_total"]).abs().max() < 1e-6


def test_rates_carry_intervals_and_thin_or_young_periods_are_flagged(computed):
    _, results = computed
    rates = results[(results["kpi_id"] == "win_rate_count") & (results["volume"] > 0)]
    assert ((rates["ci_low"] <= rates["value"]) & (rates["value"] <= rates["ci_high"])).all()
    thin = results[
        (results["volume"] > 0) & (results["volume"] < 20) & (results["kpi_id"] == "win_rate_count")
    ]
    assert len(thin) > 0 and thin["flags"].str.contains("insufficient_volume").all()
    young = results[
        (results["kpi_id"] == "lead_to_opportunity_rate.90d") & (results["period_start"] == date(2026, 9, 1))
    ]
    assert young["flags"].str.contains("window_open").all()  # cut-off 2 Nov < 1 Oct + 90 days


def test_recomputing_a_period_replaces_it_without_duplicates(computed):
    engine, _results = computed
    compute_kpis(engine, PERIODS[:2], "kpi-test-rerun")
    stored = table(engine, "marts.kpi_results", "kpi_id")
    keys = ["kpi_id", "kpi_version", "grain", "timezone", "period_start", "scope", "dimension", "segment"]
    assert not stored.duplicated(keys).any()
    rerun = stored[stored["period_start"].isin([p.start for p in PERIODS[:2]]) & (stored["grain"] == "month")]
    assert set(rerun["run_id"]) == {"kpi-test-rerun"}


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
    assert set(scoped[scoped["dimension"] == "region"]["segment"]) == {"EMEA"}
    with engine.connect() as conn:
        scopes = conn.execute(sa.text("select distinct scope from marts.kpi_results")).scalars().all()
    assert set(scopes) == {"all", "region=EMEA"}


def test_historical_periods_use_the_version_in_effect_then(computed):
    _, results = computed
    lead = results[(results["kpi_id"] == "lead_to_opportunity_rate") & (results["grain"] == "month")]
    # every period here starts in 2026: v2's year, computed by v5, which only rewrote v2's
    # query (through v4)
    assert set(lead["kpi_version"]) == {5}
    assert REGISTRY["lead_to_opportunity_rate"].version_for(date(2025, 12, 1)).version == 1


def test_a_proposed_version_runs_beside_the_published_one(computed):
    engine, _ = computed
    months = [p for p in PERIODS if p.grain == "month"]
    same = compare_versions(engine, "lead_to_opportunity_rate", 1, 2, months, "compare-test")
    assert same.empty  # v2 restates with identical numbers, as its rationale says
    differs = compare_versions(engine, "lead_to_opportunity_rate", 2, 3, months, "compare-test")
    assert len(differs) > 0
    assert {"value_v2", "value_v3", "difference", "denominator_v2", "denominator_v3"} <= set(differs.columns)
    stored = table(engine, "marts.kpi_results", "kpi_id")
    assert {1, 2, 3} <= set(stored[stored["kpi_id"] == "lead_to_opportunity_rate"]["kpi_version"])


def test_outlier_deals_left_out_of_the_rolling_average_are_recorded(computed, small_world):
    engine, _ = computed
    excluded = table(engine, "marts.kpi_exclusions", "period_start")
    rolling = excluded[excluded["kpi_id"] == "average_won_deal_size_rolling_12m"]
    assert len(rolling) > 0 and rolling["exclusion_rule"].str.contains("Q3 \\+ 3 x IQR").all()
    amounts = small_world.truth_opportunities.set_index("opportunity_id")["amount"]
    assert (rolling["record_value"].to_numpy() == amounts.reindex(rolling["record_id"]).to_numpy()).all()


def test_lost_deals_split_by_the_reason_the_world_recorded(computed, small_world):
    _, results = computed
    quarter = PERIODS[-1]
    split = results[
        (results["kpi_id"] == "lost_deal_reasons")
        & (results["dimension"] == "loss_reason")
        & (results["period_start"] == quarter.start)
    ].set_index("segment")["numerator"]
    opps = small_world.truth_opportunities
    lost = opps[~opps["is_test"] & opps["is_closed"] & ~opps["is_won"]]
    lost = lost[
        (lost["close_date"] >= pd.Timestamp(quarter.start)) & (lost["close_date"] < pd.Timestamp(quarter.end))
    ]
    expected = lost["loss_reason"].fillna("not recorded").value_counts()
    assert len(expected) >= 4 and expected.sum() > 20
    assert split.sort_index().to_dict() == pytest.approx(expected.sort_index().astype(float).to_dict())


# Versions that only rewrote another's query (`rewrite_of`: for PostgreSQL's planner, to read
# less, or adding an option they leave off by default): each must give the numbers of the
# version it rewrote, segment by segment.
REWRITES = [
    (kpi.id, version.rewrite_of, version.version)
    for kpi in REGISTRY.values()
    for version in kpi.usable_versions()
    if version.rewrite_of in {v.version for v in kpi.usable_versions()}
]


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def staged_anywhere(request, small_world, small_exports, tmp_path_factory):
    """The small world staged once per warehouse for this module, with its score history
    snapshotted and velocity's change series built (for the KPIs that read scores)."""
    from benchmarks.harness import read_score_captures, write_score_captures

    directory = tmp_path_factory.mktemp("rewrites")
    with scratch_warehouse(request.param, directory) as url:
        engine = stage(url, small_exports)[0]
        write_score_captures(small_world, directory / "scores")
        captures = read_score_captures(directory)
        for capture in captures:
            apply_snapshot(engine, capture, "rewrite-test")
        refresh_velocity(engine, captures[0].snapshot_at, VelocitySettings.from_config())
        yield engine


@pytest.mark.parametrize(("kpi_id", "old", "new"), REWRITES)
def test_a_rewritten_version_gives_the_numbers_of_the_one_it_replaced(staged_anywhere, kpi_id, old, new):
    """For the whole company and under a region's scope, since a rewrite may move where the
    scope applies."""
    periods = [*PERIODS[-4:-1], *period_containing("month", date(2026, 9, 1)).history(2)]
    for scope in (Scope(), Scope("region", "EMEA")):
        assert compare_versions(staged_anywhere, kpi_id, old, new, periods, "rewrite-test", scope).empty
    compared = compute_kpis(staged_anywhere, periods, "rewrite-test", kpi_ids=[kpi_id], version=new)
    # Something was measured, not two empty answers: in every period, for a KPI without
    # dimensions (one row a period).
    measured = (compared["volume"] > 0).sum()
    assert measured > 20 or (not REGISTRY[kpi_id].dimensions and measured == len(periods))


@pytest.mark.parametrize("scope", [Scope(), Scope("region", "EMEA")], ids=["all", "EMEA"])
def test_one_statement_for_every_dimension_gives_what_one_per_dimension_gives(staged_anywhere, scope):
    """The engine renders a KPI's SQL once for all its dimensions (`every_dimension_sql`):
    each version must give the rows it gives rendered once per dimension."""
    periods = [period_containing("month", date(2026, 8, 1)), period_containing("quarter", date(2026, 7, 1))]
    compared = 0
    with staged_anywhere.connect() as conn:
        cutoff = current_build(conn).data_cutoff
        for kpi in REGISTRY.values():
            dimensions = (TOTAL, *kpi.dimensions)
            for version, period in itertools.product(kpi.usable_versions(), periods):
                params = query_parameters(kpi, period, scope, cutoff)
                together = read_frame(conn, version_sql(kpi, version, scope), params)
                one_by_one = pd.concat(
                    [
                        read_frame(conn, render_sql(version.sql, d, scope), params).assign(dimension=d)
                        for d in dimensions
                    ]
                )
                columns = ["dimension", "segment", "numerator", "denominator", "volume"]
                pd.testing.assert_frame_equal(
                    _sorted(together[columns]), _sorted(one_by_one[columns]), check_dtype=False, rtol=1e-9
                )
                compared += len(together)
    assert compared > 1000  # rows were there to compare, not two empty answers


@pytest.mark.parametrize("scope", [Scope(), Scope("region", "EMEA")], ids=["all", "EMEA"])
def test_one_statement_for_every_period_gives_what_one_per_period_gives(computed, scope):
    """On DuckDB the engine runs a version that says `periods_together` for several periods in
    one statement (`every_period_sql`): it must give every period the rows it gives that
    period alone."""
    engine, _ = computed
    periods = [*PERIODS[3:6], *PERIODS[9:12], PERIODS[-1]]  # months, weeks and a quarter
    compared = 0
    with engine.connect() as conn:
        build = current_build(conn)
        for kpi in REGISTRY.values():
            for version in kpi.usable_versions():
                if not version.periods_together:
                    continue
                together = query_periods(conn, kpi, version, periods, scope, build)
                for period, rows in zip(periods, together, strict=True):
                    alone = query_slice(conn, kpi, version, period, scope, build)
                    pd.testing.assert_frame_equal(
                        _sorted(rows),
                        _sorted(alone),
                        check_dtype=False,
                        rtol=1e-9,
                        obj=f"{kpi.id} v{version.version} {period}",
                    )
                    compared += len(rows)
    assert compared > 1000  # rows were there to compare, not two empty answers


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["dimension", "segment"], ignore_index=True)


def test_the_quarantine_rate_counts_every_exported_record_once(computed, small_world, small_exports):
    engine, results = computed
    assert results[results["kpi_id"] == "quarantine_rate"]["flags"].str.contains("no_data").all()
    cut_off_week = period_containing("week", small_world.config.as_of.date())
    week = compute_kpis(engine, [cut_off_week], "quarantine-test", kpi_ids=["quarantine_rate"])
    total = week[week["dimension"] == TOTAL].iloc[0]
    # The world holds no malformed record; every record of every export file landed once.
    files = {"salesforce/*.csv": "Id", "hubspot/contacts.csv": "Record ID"}
    exported = sum(
        pd.read_csv(path, usecols=[column], dtype=str)[column].nunique()
        for pattern, column in files.items()
        for path in small_exports.glob(pattern)
    )
    assert (total["numerator"], total["denominator"]) == (0, exported)
