"""Customer acquisition cost on a hand-built staging layer, on DuckDB and PostgreSQL. The
spend and the customers are worked out in the comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import EVERYTHING, TOTAL, compute_kpis
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import campaigns, opportunities
from tests.helpers import record_build

MONTHS = {m: period_containing("month", date(2026, m, 1)) for m in (1, 2, 3)}
WEEK = period_containing("week", date(2026, 3, 23))  # Mon 23 to Sun 29 March
CUTOFF = datetime(2026, 5, 1)

# campaign: (channel, actual cost, start date, end date)
CAMPAIGNS = {
    # 31 days at 100 a day: all of it in March, 700 in the week of 23 March.
    "search": ("paid_search", 3100.0, date(2026, 3, 1), date(2026, 3, 31)),
    # 9 days at 100 a day: 25 to 28 February (400), 1 to 5 March (500).
    "expo": ("events", 900.0, date(2026, 2, 25), date(2026, 3, 5)),
    # No cost entered: it spent nothing.
    "newsletter": ("email", None, date(2026, 3, 1), date(2026, 3, 31)),
    # No end date: a one-day campaign on 10 March.
    "launch": ("paid_social", 600.0, date(2026, 3, 10), None),
    # Zero cost.
    "portal": ("partner", 0.0, date(2026, 3, 1), date(2026, 3, 31)),
}

# opportunity: (prospect, channel, campaign, won, excluded, close date)
OPPORTUNITIES = {
    "o1": ("p1", "paid_search", "search", True, False, date(2026, 3, 5)),  # new in March
    "o2a": ("p2", "paid_search", "search", True, False, date(2026, 1, 20)),  # new in January
    "o2b": ("p2", "paid_search", "search", True, False, date(2026, 3, 10)),  # a repeat win
    "o3a": ("p3", "referral", None, True, False, date(2026, 3, 3)),  # new in March
    "o3b": ("p3", "referral", None, True, False, date(2026, 3, 15)),  # same customer
    "o4": ("p4", "events", "expo", True, True, date(2026, 3, 12)),  # a test deal
    "o5": (None, "outbound", None, True, False, date(2026, 3, 20)),  # no lead: its own customer
    "o6a": ("p6", "events", "expo", True, True, date(2026, 2, 2)),  # a test deal does not count
    "o6b": ("p6", "events", "expo", True, False, date(2026, 3, 25)),  # so p6 is new in March
    "o7": ("p7", "events", "expo", False, False, date(2026, 3, 8)),  # lost
}


@pytest.fixture
def engine(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, campaigns, _campaigns())
        append_frame(conn, opportunities, _opportunities())
        record_build(conn, CUTOFF)
    return engine


def _campaigns() -> pd.DataFrame:
    rows = [(campaign_id, *spec) for campaign_id, spec in CAMPAIGNS.items()]
    columns = ["campaign_id", "channel", "actual_cost", "start_date", "end_date"]
    return pd.DataFrame(rows, columns=columns).assign(name=lambda c: c["campaign_id"])


def _opportunities() -> pd.DataFrame:
    rows = [(opportunity_id, *spec) for opportunity_id, spec in OPPORTUNITIES.items()]
    columns = [
        "opportunity_id",
        "prospect_id",
        "channel",
        "campaign_id",
        "is_won",
        "is_excluded",
        "close_date",
    ]
    return pd.DataFrame(rows, columns=columns).assign(
        stage=lambda o: o["is_won"].map({True: "Closed Won", False: "Closed Lost"}),
        is_closed=True,
        amount=1000.0,
        region="EMEA",
        sub_channel="x",
        is_from_converted_lead=lambda o: o["prospect_id"].notna(),
    )


def _rows(engine, periods, scope=EVERYTHING):
    frame = compute_kpis(engine, periods, "cac-test", scope, ["customer_acquisition_cost"])
    return frame.set_index(["grain", "period_start", "dimension", "segment"])


def _cost(rows, period, dimension=TOTAL, segment="all"):
    row = rows.loc[(period.grain, period.start, dimension, segment)]
    value = None if pd.isna(row["value"]) else pytest.approx(row["value"])
    return pytest.approx(row["numerator"]), row["denominator"], value


def test_spend_is_spread_over_the_campaign_days_and_customers_counted_once(engine):
    rows = _rows(engine, [*MONTHS.values(), WEEK])
    # March: 3100 + 500 + 0 + 600 + 0 = 4200 over p1, p3, o5 and p6.
    assert _cost(rows, MONTHS[3]) == (4200, 4, 1050)
    # The week of 23 March: 7 of the search campaign's days; p6 is its one customer.
    assert _cost(rows, WEEK) == (700, 1, 700)
    # February spent 400 and won no new customer: no value.
    assert _cost(rows, MONTHS[2]) == (400, 0, None)
    assert "no_data" in rows.loc[(MONTHS[2].grain, MONTHS[2].start, TOTAL, "all"), "flags"]
    # January won p2 with no campaign running: a cost of zero.
    assert _cost(rows, MONTHS[1]) == (0, 1, 0)


def test_channels_split_the_spend(engine):
    rows = _rows(engine, [MONTHS[3]])
    march = MONTHS[3]
    assert _cost(rows, march, "channel", "paid_search") == (3100, 1, 3100)
    assert _cost(rows, march, "channel", "events") == (500, 1, 500)
    assert _cost(rows, march, "channel", "referral") == (0, 1, 0)  # customers at no spend
    assert _cost(rows, march, "channel", "paid_social") == (600, 0, None)  # spent, won nobody
    assert _cost(rows, march, "channel", "partner") == (0, 0, None)  # zero cost, nobody won
    assert set(rows.index.get_level_values("dimension")) == {TOTAL, "channel"}


def test_a_region_scope_has_no_spend_to_divide(engine):
    rows = _rows(engine, [MONTHS[3]], Scope("region", "EMEA"))
    assert rows.loc[(MONTHS[3].grain, MONTHS[3].start, TOTAL, "all"), "flags"].startswith("no_data")
    assert (rows["volume"] == 0).all()
