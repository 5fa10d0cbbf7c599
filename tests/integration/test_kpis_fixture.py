"""KPI values on the hand-written fixture, worked out by hand (the comments show the sums),
including the edge cases: periods with no closed deals, zero denominators, a recycled
prospect converting in a later cycle, a deal without an amount."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.periods import period_containing
from revops.settings import CONFIG_DIR
from tests.helpers import stage
from tests.integration.test_reconcile_fixture import _write_exports

MONTHS = {m: period_containing("month", date(2026, m, 1)) for m in range(1, 10)}


# Monthly quotas. 005X9 is no user the CRM knows; 005R1's June target is zero.
TARGETS = """\
# fixture quotas
owner_id,rep,month,target
005R1,Rep One,2026-03,10000
005R2,Rep Two,2026-03,20000
005X9,Nobody Known,2026-03,6000
005R1,Rep One,2026-06,0
005R2,Rep Two,2026-06,5000
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kpi-fixture")
    config = directory / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "targets.csv").write_text(TARGETS)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REVOPS_CONFIG_DIR", str(config))
        exports = _write_exports(directory / "exports")
        engine, _ = stage(f"duckdb:///{directory / 'warehouse.duckdb'}", exports)
    return compute_kpis(engine, list(MONTHS.values()), "fixture"), engine


def total(results, kpi_id: str, month: int, version: int | None = None):
    frame, _ = results
    rows = frame[
        (frame["kpi_id"] == kpi_id)
        & (frame["dimension"] == TOTAL)
        & (frame["period_start"] == MONTHS[month].start)
    ]
    if version is not None:
        rows = rows[rows["kpi_version"] == version]
    (row,) = rows.to_dict("records")
    value = None if row["value"] != row["value"] else row["value"]
    return row["numerator"], row["denominator"], value, row["flags"]


def test_win_rates_with_a_win_a_loss_a_test_deal_and_empty_months(results):
    # March: Ana's deal won; Eve's "TEST - demo deal" does not count.
    assert total(results, "win_rate_count", 3)[:3] == (1, 1, 1.0)
    # June: Dan's deal lost.
    assert total(results, "win_rate_count", 6)[:3] == (0, 1, 0.0)
    # April: nothing closed. No value, and the result says why.
    assert total(results, "win_rate_count", 4) == (0, 0, None, "no_data")
    # June by amount: the lost deal has no amount, so there is nothing to divide.
    assert total(results, "win_rate_amount", 6)[1:] == (0, None, "no_data")


def test_deal_size_and_revenue_contribution(results):
    assert total(results, "average_won_deal_size", 3)[:3] == (12000, 1, 12000.0)  # "$12,000" parsed
    assert total(results, "revenue_contribution_converted_leads", 3)[:3] == (12000, 12000, 1.0)
    # The rolling year to September holds one won deal: 12,000; with one value the fence is
    # 12,000 (the quartiles coincide), and a deal on the fence is kept.
    assert total(results, "average_won_deal_size_rolling_12m", 9)[:3] == (12000, 1, 12000.0)


def test_lead_to_opportunity_conversion_in_both_versions_and_the_variants(results):
    # January's cohort: Ana (converted on day 13), Dan (his opportunity came 131 days later,
    # after being recycled), Fay and Gus (never): 1 of 4.
    assert total(results, "lead_to_opportunity_rate", 1)[:2] == (1, 4)
    assert total(results, "lead_to_opportunity_rate.90d", 1)[:2] == (1, 4)
    # Leaving out prospects recycled within the window drops Dan from the cohort: 1 of 3.
    assert total(results, "lead_to_opportunity_rate.30d_qualified", 1)[:2] == (1, 3)
    # February: Bo and Cara, neither converted.
    assert total(results, "lead_to_opportunity_rate", 2)[:2] == (0, 2)


def test_v1_gives_what_v2_gives(results):
    _frame, engine = results
    v1 = compute_kpis(
        engine, [MONTHS[1], MONTHS[2]], "fixture-v1", kpi_ids=["lead_to_opportunity_rate"], version=1
    )
    totals = v1[v1["dimension"] == TOTAL].sort_values("period_start")
    assert totals[["numerator", "denominator"]].values.tolist() == [[1, 4], [0, 2]]


def test_funnel_stages_count_each_prospect_once_per_stage(results):
    # MQL -> SAL in January: Ana (MQL 20 Jan, SAL 21 Jan) and Dan (MQL 10 Jan, SAL 11 Jan).
    assert total(results, "funnel_stage_conversion.mql_to_sal", 1)[:2] == (2, 2)
    # February: Cara became an MQL and was not accepted (yet).
    assert total(results, "funnel_stage_conversion.mql_to_sal", 2)[:2] == (0, 1)
    # Dan's second MQL (May) is a re-entry, not a new first entry: May has no cohort.
    assert total(results, "funnel_stage_conversion.mql_to_sal", 5)[1] == 0
    # SAL -> SQL in January: Ana reached SQL; Dan was recycled in that cycle.
    assert total(results, "funnel_stage_conversion.sal_to_sql", 1)[:2] == (1, 2)
    # SQL -> opportunity: Ana in January; Dan's first SQL was in May (cycle 2, back-dated to
    # 5 May, before its SAL) and his opportunity followed on 20 May.
    assert total(results, "funnel_stage_conversion.sql_to_opportunity", 1)[:2] == (1, 1)
    assert total(results, "funnel_stage_conversion.sql_to_opportunity", 5)[:2] == (1, 1)


def test_an_opportunity_stage_nobody_entered_gives_no_data(results):
    assert total(results, "opportunity_stage_conversion.demo_to_proposal", 3) == (0, 0, None, "no_data")


def test_cycle_length_and_time_in_stage_from_the_stage_history(results):
    # March's one counted win: Ana's deal, created 28 Jan, closed 1 Mar: 32 days (the test
    # deal closed in March too and is left out). One value is its own median and P90.
    assert total(results, "sales_cycle_length", 3)[:3] == (32, 1, 32.0)
    assert total(results, "sales_cycle_length.p90", 3)[2] == 32.0
    # June's only close was a loss: no cycle to measure.
    assert total(results, "sales_cycle_length", 6)[1:] == (0, None, "no_data")
    # Ana's deal: Demo 2 Feb 09:00 -> Proposal 9 Feb 09:00 = 7 days; going back to Demo on
    # 12 Feb does not start a second stay. Proposal 9 Feb -> Negotiation 20 Feb = 11 days.
    # Negotiation 20 Feb 09:00 -> Closed Won 1 Mar 10:00 = 9 days and 1 hour.
    assert total(results, "time_in_stage.demo", 3)[2] == pytest.approx(7.0)
    assert total(results, "time_in_stage.proposal", 3)[2] == pytest.approx(11.0)
    assert total(results, "time_in_stage.negotiation", 3)[2] == pytest.approx(9 + 1 / 24)
    # Dan's lost deal: Demo 1 Jun 12:00 -> Closed Lost 30 Jun 08:00 = 28 days 20 hours.
    assert total(results, "time_in_stage.demo", 6)[2] == pytest.approx(28 + 20 / 24)
    assert total(results, "time_in_stage.proposal", 6)[1:] == (0, None, "no_data")


def test_data_quality_of_the_prospects(results):
    # January's prospects: Ana (lead + contact), Dan (two leads + a contact), Fay and Gus
    # (one contact each): 3 of 7 records were merged into another's prospect.
    assert total(results, "duplicate_record_rate", 1)[:2] == (3, 7)
    # Gus's analytics source is mapped nowhere: 1 of the 4 has no source.
    assert total(results, "prospects_without_source", 1)[:2] == (1, 4)
    # February: Bo (one lead) and Cara (lead + contact; her UTM tags give the source).
    assert total(results, "duplicate_record_rate", 2)[:2] == (1, 3)
    assert total(results, "prospects_without_source", 2)[:2] == (0, 2)
    # March's only prospect is Eve's test record: nothing to measure.
    assert total(results, "duplicate_record_rate", 3)[1:] == (0, None, "no_data")


def test_stale_opportunities_at_each_months_end(results):
    # The upsell (created 1 Apr, no stage history, still open) is measured from its creation.
    # End of April: 30 days old, not stale; it is the only open deal: 0 of 1.
    assert total(results, "stale_opportunity_share", 4)[:2] == (0, 1)
    # End of May: 61 days, stale. Dan's deal (created 20 May) is open and fresh: 1 of 2.
    assert total(results, "stale_opportunity_share", 5)[:2] == (1, 2)
    # By amount: the upsell's $8,000 of $8,000 (Dan's deal has no amount and weighs 0).
    assert total(results, "stale_opportunity_share.amount", 5)[:2] == (8000, 8000)
    # End of June: Dan's deal closed on 30 June, so only the upsell is open: 1 of 1.
    assert total(results, "stale_opportunity_share", 6)[:2] == (1, 1)
    # End of March: nothing open (Ana's deal closed 1 Mar; the test deal does not count).
    assert total(results, "stale_opportunity_share", 3)[1:] == (0, None, "no_data")


def test_quota_attainment_against_the_targets_file(results):
    # March: Rep One won Ana's $12,000 (the test deal is left out); Rep Two and the unknown
    # 005X9 won nothing. 12,000 of 10,000 + 20,000 + 6,000.
    assert total(results, "quota_attainment", 3)[:3] == (12000, 36000, pytest.approx(1 / 3))
    frame, engine = results
    march = frame[(frame["kpi_id"] == "quota_attainment") & (frame["period_start"] == MONTHS[3].start)]
    regions = march[march["dimension"] == "region"].set_index("segment")
    assert regions.loc["EMEA", "value"] == pytest.approx(1.2)  # a team over its target
    assert regions.loc["unknown", ["numerator", "denominator"]].tolist() == [0, 6000]
    # June: Rep One's zero target leaves him out; Rep Two won nothing of 5,000.
    assert total(results, "quota_attainment", 6)[:3] == (0, 5000, 0.0)
    # April: no targets at all, nothing to attain.
    assert total(results, "quota_attainment", 4)[1:] == (0, None, "no_data")
    # The week of 23 Feb to 1 Mar covers one day of March (1/31 of its 36,000) and holds the win.
    week = period_containing("week", date(2026, 3, 1))
    (row,) = (
        compute_kpis(engine, [week], "fixture-week", kpi_ids=["quota_attainment"])
        .query("dimension == @TOTAL")
        .to_dict("records")
    )
    assert (row["numerator"], row["denominator"]) == (12000, pytest.approx(36000 / 31))


def test_a_won_deal_that_skipped_a_stage_is_flagged(results):
    # Ana's deal went Prospecting -> Demo: Qualification was never entered. 1 of 1 won.
    assert total(results, "stage_skip_rate", 3)[:2] == (1, 1)
    # June's only close was a loss: nothing won to judge.
    assert total(results, "stage_skip_rate", 6)[1:] == (0, None, "no_data")


def test_weighted_pipeline_by_the_stage_each_deal_was_in(results):
    # End of February: Ana's $12,000 deal was open, last entered Negotiation (80%): 9,600.
    assert total(results, "weighted_pipeline", 2)[:3] == (pytest.approx(9600), 1, pytest.approx(9600))
    # End of May: the upsell ($8,000, no stage history, so its current stage, Proposal at
    # 60%) and Dan's deal (no amount: weighs nothing). 4,800 over two open deals.
    frame, _ = results
    may = frame[
        (frame["kpi_id"] == "weighted_pipeline")
        & (frame["dimension"] == "total")
        & (frame["period_start"] == MONTHS[5].start)
    ].iloc[0]
    assert (may["numerator"], may["volume"]) == (pytest.approx(4800), 2)
    # End of March: nothing open.
    assert total(results, "weighted_pipeline", 3)[1:] == (0, None, "no_data")
