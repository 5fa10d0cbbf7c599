"""Rapid wins, the integrity signal for deals raced through the pipeline, on a hand-built
staging layer (DuckDB and PostgreSQL). The days are worked out in the comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.periods import period_containing
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import opportunities, opportunity_stages
from tests.helpers import record_build

MARCH = period_containing("month", date(2026, 3, 1))

# deal: (owner, stage, excluded, opened at, won at (first Closed Won entry), close date)
DEALS = {
    "w1": (
        "R1",
        "Closed Won",
        False,
        datetime(2026, 3, 1, 9),
        datetime(2026, 3, 10, 9),
        date(2026, 3, 10),
    ),  # 9 days
    "w2": (
        "R1",
        "Closed Won",
        False,
        datetime(2026, 2, 1),
        datetime(2026, 3, 20),
        date(2026, 3, 20),
    ),  # 47 days
    # Exactly 14 days: not less than 14.
    "w3": ("R2", "Closed Won", False, datetime(2026, 3, 5, 10), datetime(2026, 3, 19, 10), date(2026, 3, 19)),
    # No stage history: won at its close date's midnight, 6 days 14 hours after opening.
    "w4": ("R2", "Closed Won", False, datetime(2026, 3, 5, 10), None, date(2026, 3, 12)),
    "w5": (
        "R2",
        "Closed Won",
        True,
        datetime(2026, 3, 1),
        datetime(2026, 3, 2),
        date(2026, 3, 2),
    ),  # test deal
    "w6": ("R2", "Closed Won", False, None, datetime(2026, 3, 10), date(2026, 3, 10)),  # opening unknown
    "w7": ("R1", "Closed Lost", False, datetime(2026, 3, 1), None, date(2026, 3, 4)),  # lost
}


@pytest.fixture
def results(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    rows = [(deal, *spec) for deal, spec in DEALS.items()]
    columns = ["opportunity_id", "owner_id", "stage", "is_excluded", "created_at", "won_at", "close_date"]
    deals = pd.DataFrame(rows, columns=columns)
    won = deals["stage"] == "Closed Won"
    with engine.begin() as conn:
        append_frame(
            conn,
            opportunities,
            deals.assign(
                is_closed=True, is_won=won, channel="x", sub_channel="x", is_from_converted_lead=False
            ),
        )
        entries = deals.dropna(subset=["won_at"]).rename(columns={"won_at": "entered_at"})
        append_frame(conn, opportunity_stages, entries[["opportunity_id", "stage", "entered_at"]])
        record_build(conn, datetime(2026, 4, 1))
    frame = compute_kpis(engine, [MARCH], "integrity-test", kpi_ids=["rapid_wins"])
    return frame.set_index(["dimension", "segment"])


def test_a_deal_won_within_two_weeks_of_opening_counts_as_rapid(results):
    # Won in March and judged: w1, w2, w3, w4 (w5 a test deal, w6 without an opening time,
    # w7 lost). Rapid: w1 (9 days) and w4 (6.6 days); w3 took exactly 14.
    assert results.loc[(TOTAL, "all"), ["numerator", "denominator"]].tolist() == [2, 4]
    assert results.loc[("opportunity_owner", "R1"), ["numerator", "denominator"]].tolist() == [1, 2]
    assert results.loc[("opportunity_owner", "R2"), ["numerator", "denominator"]].tolist() == [1, 2]
