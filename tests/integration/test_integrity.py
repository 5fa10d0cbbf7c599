"""The integrity signals on hand-built staging layers (DuckDB and PostgreSQL): rapid wins,
back-dated closes and stage changes made in bulk. The days and minutes are worked out in
the comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.periods import period_containing
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import opportunities, opportunity_changes, opportunity_stages
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


# deal: (owner, excluded, [(recorded at, recorded by, stage, close date)])
CHANGES = {
    # Closed on 10 March with a close date of 2 March: 8 days back-dated.
    "d1": (
        "R1",
        False,
        [
            (datetime(2026, 2, 20), "U1", "Demo", None),
            (datetime(2026, 3, 10, 12), "U1", "Closed Won", date(2026, 3, 2)),
        ],
    ),
    # Recorded 3 days after its close date: within the grace.
    "d2": (
        "R1",
        False,
        [
            (datetime(2026, 2, 20), "U1", "Demo", None),
            (datetime(2026, 3, 5, 10), "U1", "Closed Lost", date(2026, 3, 2)),
        ],
    ),
    "d3": (
        "R2",
        False,
        [
            (datetime(2026, 3, 1), "U2", "Demo", None),
            (datetime(2026, 3, 15), "U2", "Closed Lost", date(2026, 3, 15)),
        ],
    ),
    # Closed without a close date: counted, not back-dated.
    "d4": (
        "R2",
        False,
        [(datetime(2026, 3, 1), "U2", "Demo", None), (datetime(2026, 3, 18), "U2", "Closed Won", None)],
    ),
    # Won in February, reopened, won again on 20 March dated 1 March (19 days): one close in
    # March; the amount changed on the closed deal afterwards is no new close.
    "d5": (
        "R2",
        False,
        [
            (datetime(2026, 2, 1), "U3", "Demo", None),
            (datetime(2026, 2, 10), "U3", "Closed Won", date(2026, 2, 10)),
            (datetime(2026, 3, 3), "U3", "Negotiation", None),
            (datetime(2026, 3, 20), "U3", "Closed Won", date(2026, 3, 1)),
            (datetime(2026, 3, 25), "U3", "Closed Won", date(2026, 3, 1)),
        ],
    ),
    # A test deal, back-dated: left out.
    "d6": (
        "R1",
        True,
        [
            (datetime(2026, 3, 1), "U1", "Demo", None),
            (datetime(2026, 3, 20), "U1", "Closed Won", date(2026, 3, 1)),
        ],
    ),
    # Entered closed: its first row is the close.
    "d7": ("R1", False, [(datetime(2026, 3, 12), "U2", "Closed Won", date(2026, 3, 12))]),
    # Closed in February.
    "d8": (
        "R1",
        False,
        [
            (datetime(2026, 2, 1), "U1", "Demo", None),
            (datetime(2026, 2, 27), "U1", "Closed Won", date(2026, 2, 27)),
        ],
    ),
}
# U9 records five changes five minutes apart: only the middle one (09:10) has all five
# within 10 minutes either side. U8 records five within two minutes across the month's
# end: its two March changes are in a burst. U7's five have no user to judge them by.
BURSTS = [
    *[("U9", datetime(2026, 3, 16, 9, minute)) for minute in (0, 5, 10, 15, 20)],
    *[("U8", datetime(2026, 3, 31, 23, 59, second)) for second in (0, 30)],
    *[("U8", datetime(2026, 4, 1, 0, 0, second)) for second in (0, 30, 59)],
    *[(None, datetime(2026, 3, 17, 9, 0, second)) for second in (0, 10, 20, 30, 40)],
]


@pytest.fixture
def change_results(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    bursts = {f"b{n}": ("R3", False, [(at, user, "Demo", None)]) for n, (user, at) in enumerate(BURSTS)}
    deals = {**CHANGES, **bursts}
    changes = pd.DataFrame(
        [(deal, *change) for deal, (_, _, history) in deals.items() for change in history],
        columns=["opportunity_id", "changed_at", "changed_by", "stage", "close_date"],
    )
    changes["is_closed"] = changes["stage"].str.startswith("Closed")
    with engine.begin() as conn:
        append_frame(
            conn,
            opportunities,
            pd.DataFrame(
                {
                    "opportunity_id": list(deals),
                    "owner_id": [owner for owner, _, _ in deals.values()],
                    "is_excluded": [excluded for _, excluded, _ in deals.values()],
                    "stage": "Demo",
                    "is_closed": False,
                    "is_won": False,
                    "is_from_converted_lead": False,
                    "channel": "x",
                    "sub_channel": "x",
                }
            ),
        )
        append_frame(conn, opportunity_changes, changes)
        record_build(conn, datetime(2026, 4, 2))
    ids = ["backdated_closes", "bulk_stage_changes"]
    frame = compute_kpis(engine, [MARCH], "integrity-test", kpi_ids=ids)
    return frame.set_index(["kpi_id", "dimension", "segment"])


def test_a_close_dated_more_than_three_days_before_it_was_recorded_is_back_dated(change_results):
    # Closes recorded in March: d1 (8 days), d2 (3), d3 (0), d4 (no date), d5 (19), d7 (0).
    backdated = change_results.loc["backdated_closes"]
    assert backdated.loc[(TOTAL, "all"), ["numerator", "denominator"]].tolist() == [2, 6]
    assert backdated.loc[("changed_by", "U1"), ["numerator", "denominator"]].tolist() == [1, 2]
    assert backdated.loc[("changed_by", "U2"), ["numerator", "denominator"]].tolist() == [0, 3]
    assert backdated.loc[("changed_by", "U3"), ["numerator", "denominator"]].tolist() == [1, 1]
    assert backdated.loc[("opportunity_owner", "R2"), ["numerator", "denominator"]].tolist() == [1, 3]


def test_changes_recorded_in_a_burst_by_one_user_are_bulk(change_results):
    bulk = change_results.loc["bulk_stage_changes"]
    # March changes with a user, on real deals: d1 1, d2 1, d3 2, d4 2, d5 3, d7 1 (d6 is a
    # test deal, d8 all February), U9's 5 and U8's 2: 17. Bulk: U9's 09:10 and U8's two.
    assert bulk.loc[("changed_by", "U9"), ["numerator", "denominator"]].tolist() == [1, 5]
    assert bulk.loc[("changed_by", "U8"), ["numerator", "denominator"]].tolist() == [2, 2]
    assert bulk.loc[("changed_by", "U1"), ["numerator", "denominator"]].tolist() == [0, 2]
    assert "unknown" not in bulk.loc["changed_by"].index
    assert bulk.loc[(TOTAL, "all"), ["numerator", "denominator"]].tolist() == [3, 17]
