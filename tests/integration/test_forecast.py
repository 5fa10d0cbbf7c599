"""Pipeline coverage and forecast attainment, read back from the stage history as it stood
when the period began, on a hand-built staging layer (DuckDB and PostgreSQL). The sums are
worked out in the comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.periods import period_containing
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import (
    opportunities,
    opportunity_changes,
    opportunity_stages,
    prospects,
    targets,
    users,
)
from tests.helpers import record_build

MARCH = period_containing("month", date(2026, 3, 1))

# deal: (owner, amount, excluded, [(changed at, stage, expected close date, forecast category)])
DEALS = {
    # Open on 1 March, expected in March, commit; won on the 14th.
    "d1": (
        "R1",
        10_000.0,
        False,
        [
            (datetime(2026, 2, 10), "Proposal", date(2026, 3, 15), "commit"),
            (datetime(2026, 3, 14), "Closed Won", date(2026, 3, 14), "closed"),
        ],
    ),
    # Open on 1 March, expected in March, best case; it slipped to April only on 5 March.
    "d2": (
        "R1",
        8_000.0,
        False,
        [
            (datetime(2026, 2, 1), "Demo", date(2026, 3, 20), "best_case"),
            (datetime(2026, 3, 5), "Demo", date(2026, 4, 20), "best_case"),
        ],
    ),
    # Expected in February (overdue on 1 March): not March's pipeline; but won in March.
    "d3": (
        "R2",
        20_000.0,
        False,
        [
            (datetime(2026, 1, 20), "Negotiation", date(2026, 2, 25), "commit"),
            (datetime(2026, 3, 3), "Closed Won", date(2026, 3, 3), "closed"),
        ],
    ),
    # Opened after 1 March and won in it: never forecast, still won.
    "d4": (
        "R2",
        5_000.0,
        False,
        [
            (datetime(2026, 3, 2), "Prospecting", date(2026, 3, 30), "pipeline"),
            (datetime(2026, 3, 28), "Closed Won", date(2026, 3, 28), "closed"),
        ],
    ),
    # Lost in February: closed when March began.
    "d5": (
        "R1",
        7_000.0,
        False,
        [
            (datetime(2026, 2, 15), "Proposal", date(2026, 3, 10), "commit"),
            (datetime(2026, 2, 28), "Closed Lost", date(2026, 2, 28), "omitted"),
        ],
    ),
    "d6": ("R2", 4_000.0, True, [(datetime(2026, 2, 1), "Proposal", date(2026, 3, 10), "commit")]),  # test
    # R3 has no target: in the forecast, not in coverage.
    "d7": ("R3", 6_000.0, False, [(datetime(2026, 2, 1), "Proposal", date(2026, 3, 12), "commit")]),
    "d8": ("R2", None, False, [(datetime(2026, 2, 1), "Proposal", date(2026, 3, 12), "commit")]),  # no amount
    # History for the cross-check: closed in the year before March.
    "h1": (
        "R1",
        10_000.0,
        False,
        [
            (datetime(2025, 10, 1), "Demo", date(2025, 11, 1), "best_case"),
            (datetime(2025, 10, 15), "Proposal", date(2025, 11, 1), "commit"),
            (datetime(2025, 11, 1), "Closed Won", date(2025, 11, 1), "closed"),
        ],
    ),
    "h2": (
        "R2",
        30_000.0,
        False,
        [
            (datetime(2025, 12, 1), "Demo", date(2025, 12, 20), "best_case"),
            (datetime(2025, 12, 20), "Closed Lost", date(2025, 12, 20), "omitted"),
        ],
    ),
    # Closed more than a year before March: not history any more.
    "h3": (
        "R1",
        50_000.0,
        False,
        [
            (datetime(2024, 12, 1), "Proposal", date(2025, 1, 15), "commit"),
            (datetime(2025, 1, 15), "Closed Won", date(2025, 1, 15), "closed"),
        ],
    ),
}
CLOSED = {"Closed Won", "Closed Lost"}
FROM_LEADS = {"h1", "h2", "d5", "d1", "d6"}  # opportunities converted from a lead


@pytest.fixture
def results(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, opportunity_changes, _changes())
        append_frame(conn, opportunity_stages, _stage_entries())
        append_frame(conn, opportunities, _opportunities())
        append_frame(conn, prospects, _prospects())
        append_frame(
            conn, users, pd.DataFrame({"user_id": ["R1", "R2", "R3"], "region": ["EMEA", "NA", "EMEA"]})
        )
        append_frame(
            conn,
            targets,
            pd.DataFrame(
                {"owner_id": ["R1", "R2"], "month": date(2026, 3, 1), "target": [10_000.0, 20_000.0]}
            ),
        )
        record_build(conn, datetime(2026, 4, 1))
    ids = [
        "pipeline_coverage",
        "forecast_attainment",
        "forecast_attainment.best_case",
        "forecast_cross_check",
        "leads_needed",
    ]
    frame = compute_kpis(engine, [MARCH], "forecast-test", kpi_ids=ids)
    return frame.set_index(["kpi_id", "dimension", "segment"])


def _changes() -> pd.DataFrame:
    """Each history row with the time the deal's next one was recorded (`replaced_at`, as
    reconcile writes it); each deal's history above is in time order."""
    rows = [
        (deal, at, stage, stage in CLOSED, amount, expected, category, replaced_at)
        for deal, (_, amount, _, history) in DEALS.items()
        for (at, stage, expected, category), replaced_at in zip(
            history, [row[0] for row in history[1:]] + [None], strict=True
        )
    ]
    columns = [
        "opportunity_id",
        "changed_at",
        "stage",
        "is_closed",
        "amount",
        "close_date",
        "forecast_category",
        "replaced_at",
    ]
    return pd.DataFrame(rows, columns=columns)


def _stage_entries() -> pd.DataFrame:
    changes = _changes().rename(columns={"changed_at": "entered_at"})
    first = changes.drop_duplicates(["opportunity_id", "stage"])[["opportunity_id", "stage", "entered_at"]]
    return first.assign(replaced_at=first.groupby("opportunity_id")["entered_at"].shift(-1))


def _opportunities() -> pd.DataFrame:
    rows = []
    for deal, (owner, amount, excluded, history) in DEALS.items():
        opened_at, _, _, _ = history[0]
        _, stage, close_date, _ = history[-1]
        won, closed = stage == "Closed Won", stage in CLOSED
        rows.append((deal, owner, amount, excluded, stage, closed, won, close_date, opened_at))
    columns = ["opportunity_id", "owner_id", "amount", "is_excluded", "stage", "is_closed", "is_won"]
    frame = pd.DataFrame(rows, columns=[*columns, "close_date", "created_at"])
    from_leads = frame["opportunity_id"].isin(FROM_LEADS)
    return frame.assign(region="EMEA", channel="x", sub_channel="x", is_from_converted_lead=from_leads)


def _prospects() -> pd.DataFrame:
    """40 prospects arrived in the year before March; two test records, one who came in
    March and one who came before that year do not count."""
    created = [datetime(2025, 6, 1) + pd.Timedelta(days=6 * n) for n in range(40)]  # to 21 Jan
    created += [datetime(2025, 9, 1), datetime(2025, 9, 2), datetime(2026, 3, 2), datetime(2025, 1, 5)]
    return pd.DataFrame(
        {
            "prospect_id": [f"p{n}" for n in range(len(created))],
            "created_at": created,
            "channel": "x",
            "sub_channel": "x",
            "record_count": 1,
            "is_excluded": [False] * 40 + [True, True, False, False],
        }
    )


def _value(results, kpi_id, dimension=TOTAL, segment="all"):
    row = results.loc[(kpi_id, dimension, segment)]
    value = None if pd.isna(row["value"]) else pytest.approx(row["value"])
    return pytest.approx(row["numerator"]), pytest.approx(row["denominator"]), value


def test_coverage_is_the_pipeline_march_began_with_over_its_target(results):
    # R1: d1 10,000 + d2 8,000 expected in March; R2: none (d3 overdue, d4 not yet open, d6 a
    # test deal, d8 without an amount). Targets 10,000 + 20,000. R3 has no target.
    assert _value(results, "pipeline_coverage") == (18_000, 30_000, 0.6)
    assert _value(results, "pipeline_coverage", "opportunity_owner", "R1") == (18_000, 10_000, 1.8)
    assert _value(results, "pipeline_coverage", "opportunity_owner", "R2") == (0, 20_000, 0)
    assert ("pipeline_coverage", "opportunity_owner", "R3") not in results.index


def test_forecast_attainment_sets_what_was_won_against_the_forecast_of_the_first_day(results):
    # Won in March: d1 10,000 + d3 20,000 + d4 5,000 = 35,000.
    # Commit on 1 March: d1 10,000 + d7 6,000 (d5 already lost) = 16,000.
    assert _value(results, "forecast_attainment") == (35_000, 16_000, 35 / 16)
    # With best case: + d2 8,000 (its slip came later).
    assert _value(results, "forecast_attainment.best_case") == (35_000, 24_000, 35 / 24)
    assert _value(results, "forecast_attainment", "opportunity_owner", "R1") == (10_000, 10_000, 1.0)
    assert _value(results, "forecast_attainment", "opportunity_owner", "R2") == (25_000, 0, None)
    assert _value(results, "forecast_attainment", "opportunity_owner", "R3") == (0, 6_000, 0)


def test_the_cross_check_weighs_the_opening_pipeline_by_each_stages_past_conversion(results):
    # Closed between 1 March 2025 and 1 March 2026: h1 (won 10,000: Demo, Proposal), h2 (lost
    # 30,000: Demo), d5 (lost 7,000: Proposal); h3 closed too long ago, d6 is a test deal.
    # Demo converts 10,000 / 40,000 = 0.25; Proposal 10,000 / 17,000.
    # Open on 1 March and expected in it: d1 Proposal 10,000, d2 Demo 8,000, d7 Proposal 6,000.
    cross_check = 16_000 * 10 / 17 + 8_000 * 0.25
    assert _value(results, "forecast_cross_check") == (cross_check, 16_000, cross_check / 16_000)


def test_the_reverse_funnel_turns_the_target_into_leads_needed(results):
    # The year before March: h1 won 10,000; h2 and d5 lost (h3 too old, d6 a test deal).
    # Target 30,000 / 10,000 a won deal = 3 deals; / a win rate of 1 in 3 = 9 opportunities;
    # / 4 opportunities from leads (h1, h2, d5, d1) per 40 new prospects = 90 leads.
    assert _value(results, "leads_needed") == (90, 1, 90)
