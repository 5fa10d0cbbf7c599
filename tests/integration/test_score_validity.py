"""Lead score validity (AUC) on a hand-computed fixture, on DuckDB and PostgreSQL: the
scores come through the real snapshot store and velocity's change series."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.periods import period_containing
from revops.snapshots.velocity import refresh_velocity
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import opportunities
from tests.helpers import add_prospects, record_build
from tests.integration.test_score_velocity import SETTINGS, snapshot, snapshot_with_history

SEPTEMBER = period_containing("month", date(2026, 9, 1))
CREATED = datetime(2026, 9, 1)  # every prospect; scored 7 days later, on 8 Sep
SNAPSHOT_AT = datetime(2026, 10, 20)
CUTOFF = datetime(2026, 12, 31)

# prospect: (region, score history, first opportunity)
PROSPECTS = {
    "p1": ("EMEA", [(datetime(2026, 9, 2), 80)], datetime(2026, 9, 20)),  # converter, 80
    "p2": ("NA", [(datetime(2026, 9, 3), 60)], datetime(2026, 10, 1)),  # converter, 60
    "p3": ("EMEA", [(datetime(2026, 9, 2), 60)], None),  # 60
    "p4": ("NA", [(datetime(2026, 9, 5), 20)], None),  # 20
    "p5": ("NA", [(datetime(2026, 9, 10), 90)], None),  # scored after 8 Sep: 0 then
    "p6": ("NA", [(datetime(2026, 9, 2), 70)], datetime(2026, 9, 5)),  # converted before 8 Sep: out
    "p8": ("NA", [(datetime(2026, 9, 2), 40)], datetime(2026, 12, 15)),  # after 90 days: not converted
}


@pytest.fixture
def results(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    for prospect, (region, _, _) in PROSPECTS.items():
        add_prospects(engine, {prospect: CREATED}, region=region)
    add_prospects(engine, {"p7": CREATED}, source="salesforce", object_name="Lead", region="NA")
    snapshot_with_history(engine, SNAPSHOT_AT, {p: history for p, (_, history, _) in PROSPECTS.items()})
    # Salesforce keeps no score history here: p7's score starts at the snapshot, after 8 Sep.
    snapshot(engine, SNAPSHOT_AT, {"p7": 95}, source="salesforce", object_name="Lead")
    converted = {p: at for p, (_, _, at) in PROSPECTS.items() if at is not None}
    with engine.begin() as conn:
        append_frame(conn, opportunities, _opportunities(converted))
        record_build(conn, CUTOFF)
    refresh_velocity(engine, SNAPSHOT_AT, SETTINGS)
    return compute_kpis(engine, [SEPTEMBER], "auc-test", kpi_ids=["lead_score_validity"])


def _opportunities(converted: dict[str, datetime]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": [f"o-{p}" for p in converted],
            "prospect_id": list(converted),
            "created_at": list(converted.values()),
            "stage": "Prospecting",
            "is_closed": False,
            "is_won": False,
            "channel": "paid_search",
            "sub_channel": "none",
            "is_from_converted_lead": True,
            "is_excluded": False,
        }
    )


def test_the_area_under_the_curve_counts_pairs_ranked_right(results):
    # Converters: p1 (80), p2 (60). Non-converters: p3 (60), p4 (20), p5 (0 on 8 Sep), p8 (40).
    # p6 converted before it was scored and p7 has no score known on 8 Sep: both left out.
    # p1 outranks all four: 4. p2 ties p3 (a half) and outranks p4, p5, p8: 3.5. 7.5 of 8.
    total = results[results["dimension"] == TOTAL].iloc[0]
    assert (total["numerator"], total["denominator"], total["volume"]) == (7.5, 8, 6)
    assert total["value"] == pytest.approx(0.9375)


def test_segments_are_ranked_within_themselves(results):
    # EMEA: p1 (80) against p3 (60): 1 of 1. NA: p2 (60) against p4, p5, p8: 3 of 3. The pairs
    # across regions are in neither, so an AUC does not add up across segments.
    regions = results[results["dimension"] == "region"].set_index("segment")
    assert regions.loc["EMEA", ["numerator", "denominator"]].tolist() == [1, 1]
    assert regions.loc["NA", ["numerator", "denominator"]].tolist() == [3, 3]
