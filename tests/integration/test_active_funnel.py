"""Stage conversion over the active funnel: stale deals left out, on a hand-built staging
layer (DuckDB and PostgreSQL). Which deal is stale is worked out in the comments."""

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
CUTOFF = datetime(2026, 6, 1)  # stale: no stage entered since before 2 April (60 days)

# deal: (closed, test deal, [(stage, first entered at)])
DEALS = {
    "a1": (False, False, [("Demo", datetime(2026, 3, 2)), ("Proposal", datetime(2026, 3, 20))]),  # converted
    "a2": (False, False, [("Demo", datetime(2026, 3, 5))]),  # open, quiet since 5 March: stale
    "a3": (True, False, [("Demo", datetime(2026, 3, 10)), ("Closed Lost", datetime(2026, 4, 1))]),  # closed
    # Moved on (skipping Proposal) on 10 April: not stale, not converted.
    "a4": (False, False, [("Demo", datetime(2026, 3, 15)), ("Negotiation", datetime(2026, 4, 10))]),
    # Reached Proposal after its 60-day window (19 May): not converted; it moved, so not stale.
    "a5": (False, False, [("Demo", datetime(2026, 3, 20)), ("Proposal", datetime(2026, 5, 25))]),
    "a6": (False, False, [("Demo", datetime(2026, 3, 31, 12))]),  # quiet since 31 March: stale
    "a7": (False, True, [("Demo", datetime(2026, 3, 3))]),  # a test deal
}


@pytest.fixture
def engine(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    deals = pd.DataFrame(
        {
            "opportunity_id": list(DEALS),
            "is_closed": [closed for closed, _, _ in DEALS.values()],
            "is_excluded": [test for _, test, _ in DEALS.values()],
            "stage": "Demo",
            "is_won": False,
            "is_from_converted_lead": False,
            "channel": "x",
            "sub_channel": "x",
        }
    )
    entries = pd.DataFrame(
        [(deal, stage, at) for deal, (_, _, stages) in DEALS.items() for stage, at in stages],
        columns=["opportunity_id", "stage", "entered_at"],
    )
    with engine.begin() as conn:
        append_frame(conn, opportunities, deals)
        append_frame(conn, opportunity_stages, entries)
        record_build(conn, CUTOFF)
    return engine


def _total(frame: pd.DataFrame, kpi_id: str) -> list[float]:
    row = frame[(frame["kpi_id"] == kpi_id) & (frame["dimension"] == TOTAL)]
    return row[["numerator", "denominator"]].iloc[0].tolist()


def test_the_active_funnel_leaves_out_the_deals_gone_stale(engine):
    ids = [
        "opportunity_stage_conversion.demo_to_proposal",
        "opportunity_stage_conversion.demo_to_proposal_active",
    ]
    results = compute_kpis(engine, [MARCH], "active-funnel-test", kpi_ids=ids)
    # Into Demo in March: a1 to a6 (a7 a test deal); only a1 reached Proposal in time.
    assert _total(results, ids[0]) == [1, 6]
    # a2 and a6 are stale at the cut-off; a3 closed, a4 and a5 moved since.
    assert _total(results, ids[1]) == [1, 4]


def test_without_the_option_v2_gives_the_numbers_of_v1(engine):
    kpi_id = "opportunity_stage_conversion.demo_to_proposal"
    v1 = compute_kpis(engine, [MARCH], "active-funnel-test", kpi_ids=[kpi_id], version=1)
    v2 = compute_kpis(engine, [MARCH], "active-funnel-test", kpi_ids=[kpi_id], version=2)
    columns = ["dimension", "segment", "numerator", "denominator"]
    pd.testing.assert_frame_equal(v1[columns], v2[columns])
    assert _total(v2, kpi_id) == [1, 6]
