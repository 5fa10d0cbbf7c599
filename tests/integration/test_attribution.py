"""Attribution of won revenue and new pipeline to channels: every model worked out by hand on
a hand-built staging layer (DuckDB and PostgreSQL), then checked against a second
implementation in pandas on the synthetic world."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.warehouse import get_engine, read_frame
from revops.warehouse.load import append_frame
from revops.warehouse.schema import opportunities, prospect_identities, prospects
from tests.helpers import record_build, stage

REGISTRY = load_registry()
MODELS = ["first_touch", "last_touch", "linear", "position_based", "time_decay"]
MARCH = period_containing("month", date(2026, 3, 1))

# prospect: (excluded, [(record, channel, touched at)])
PROSPECTS = {
    "p1": (False, [("r1", "paid_search", datetime(2026, 1, 10))]),  # one touch
    "p2": (
        False,
        [("r2a", "organic_search", datetime(2026, 1, 1)), ("r2b", "email", datetime(2026, 1, 31))],
    ),
    "p3": (
        False,
        [
            ("r3a", "events", datetime(2026, 1, 1)),
            ("r3b", "email", datetime(2026, 1, 15)),
            ("r3c", "paid_social", datetime(2026, 2, 1)),
            ("r3d", "email", datetime(2026, 2, 15)),
            ("r3e", "unmapped", datetime(2026, 2, 20)),  # untracked: no credit
            ("r3f", "referral", datetime(2026, 3, 10)),  # after the deal opened: no credit
        ],
    ),
    "p4": (False, [("r4", "unmapped", datetime(2026, 1, 5))]),  # no tracked touch at all
    "p6": (True, [("r6", "paid_search", datetime(2026, 1, 5))]),  # a test record
    "p7": (True, [("r7", "events", datetime(2026, 1, 6))]),  # excluded, yet its deal is real
}

# deal: (prospect, own channel, opened, won on, amount); None for still open
DEALS = {
    "o1": ("p1", "paid_search", datetime(2026, 2, 1), date(2026, 3, 5), 1000.0),
    "o2": ("p2", "organic_search", datetime(2026, 3, 2), date(2026, 3, 20), 3000.0),
    "o3": ("p3", "events", datetime(2026, 3, 1), date(2026, 3, 25), 10000.0),
    "o4": ("p4", "unmapped", datetime(2026, 2, 10), date(2026, 3, 10), 500.0),
    "o5": (None, "sales_generated", datetime(2026, 2, 1), date(2026, 3, 12), 2000.0),  # no lead
    "o6": ("p6", "paid_search", datetime(2026, 2, 1), date(2026, 3, 6), 9999.0),  # test deal
    "o7": ("p1", "paid_search", datetime(2026, 2, 2), date(2026, 3, 7), None),  # no amount
    "o8": ("p2", "organic_search", datetime(2026, 3, 15), None, 4000.0),  # opened, still open
    "o9": ("p7", "referral", datetime(2026, 2, 3), date(2026, 3, 8), 700.0),  # no touch to credit
}

# Won in March: o1 1000 + o2 3000 + o3 10000 + o4 500 + o5 2000 + o9 700 = 17,200.
# o4 has no tracked touch and no usable own source: the fallback. o5 has no lead: its own.
# o9's prospect is excluded, so its touch counts for nothing: the deal goes to its own source.
# o3's time decay: 59, 45, 28 and 14 days before it opened, half-life 30: weights 0.2558,
# 0.3536, 0.5236, 0.7236 of 1.8566 -> 1377.96, 1904.23, 2820.34, 3897.47.
# o2's: 60 and 30 days: 0.25 and 0.5 -> 1000 and 2000.
REVENUE = {
    "first_touch": {"paid_search": 1000, "organic_search": 3000, "events": 10000},
    "last_touch": {"paid_search": 1000, "email": 3000 + 10000},
    "linear": {
        "paid_search": 1000,
        "organic_search": 1500,
        "email": 1500 + 2500 + 2500,
        "events": 2500,
        "paid_social": 2500,
    },
    # o2: two touches, 40/40 scaled to 50/50; o3: 40% first, 40% last, 10% each middle one.
    "position_based": {
        "paid_search": 1000,
        "organic_search": 1500,
        "email": 1500 + 1000 + 4000,
        "events": 4000,
        "paid_social": 1000,
    },
    "time_decay": {
        "paid_search": 1000,
        "organic_search": 1000,
        "email": 2000 + 1904.23 + 3897.47,
        "events": 1377.96,
        "paid_social": 2820.34,
    },
}
EVERY_MODEL = {"untracked": 500, "sales_generated": 2000, "referral": 700}


@pytest.fixture
def results(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, prospects, _prospects())
        append_frame(conn, prospect_identities, _identities())
        append_frame(conn, opportunities, _deals())
        record_build(conn, datetime(2026, 4, 1))
    ids = [k for k in REGISTRY if k.startswith("attribution.")]
    return compute_kpis(engine, [MARCH], "attribution-test", kpi_ids=ids)


def _prospects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prospect_id": list(PROSPECTS),
            "created_at": datetime(2026, 1, 1),
            "channel": "x",
            "sub_channel": "x",
            "record_count": 1,
            "is_excluded": [excluded for excluded, _ in PROSPECTS.values()],
        }
    )


def _identities() -> pd.DataFrame:
    rows = [
        (prospect, record, channel, at)
        for prospect, (_, touches) in PROSPECTS.items()
        for record, channel, at in touches
    ]
    frame = pd.DataFrame(rows, columns=["prospect_id", "record_id", "channel", "created_at"])
    return frame.assign(source="salesforce", object="Lead", match_rule="email", cycle=1, sub_channel="x")


def _deals() -> pd.DataFrame:
    rows = [(deal, *spec) for deal, spec in DEALS.items()]
    columns = ["opportunity_id", "prospect_id", "channel", "created_at", "close_date", "amount"]
    frame = pd.DataFrame(rows, columns=columns)
    won = frame["close_date"].notna()
    return frame.assign(
        stage=np.where(won, "Closed Won", "Proposal"),
        is_closed=won,
        is_won=won,
        sub_channel="x",
        region="EMEA",
        is_from_converted_lead=frame["prospect_id"].notna(),
        is_excluded=frame["opportunity_id"] == "o6",
    )


def _credits(results, kpi_id: str, dimension: str = "channel") -> dict[str, float]:
    rows = results[(results["kpi_id"] == kpi_id) & (results["dimension"] == dimension)]
    return dict(zip(rows["segment"], rows["numerator"], strict=True))


@pytest.mark.parametrize("model", MODELS)
def test_each_model_credits_won_revenue_as_worked_out_by_hand(results, model):
    credits = _credits(results, f"attribution.revenue_{model}")
    expected = {**REVENUE[model], **EVERY_MODEL}
    assert credits == pytest.approx(expected, abs=0.01)
    assert _credits(results, f"attribution.revenue_{model}", TOTAL) == pytest.approx({"all": 17200})


def test_new_pipeline_credits_the_deals_opened_in_the_period(results):
    # Opened in March: o2 3000, o3 10000, o8 4000 (o2 and o8 share p2's two touches).
    assert _credits(results, "attribution.pipeline_linear") == pytest.approx(
        {"organic_search": 1500 + 2000, "email": 1500 + 2000 + 5000, "events": 2500, "paid_social": 2500}
    )
    assert _credits(results, "attribution.pipeline_first_touch", TOTAL) == pytest.approx({"all": 17000})


# --- a second method: the same models in pandas, on the synthetic world's staging ----------


@pytest.fixture(scope="module")
def world_results(small_exports, tmp_path_factory):
    engine, _ = stage(
        f"duckdb:///{tmp_path_factory.mktemp('attribution') / 'warehouse.duckdb'}", small_exports
    )
    periods = period_containing("month", date(2026, 9, 1)).history(4)
    ids = [k for k in REGISTRY if k.startswith("attribution.")]
    return engine, periods, compute_kpis(engine, periods, "attribution-world", kpi_ids=ids)


def test_every_model_equals_a_pandas_implementation_on_the_synthetic_world(world_results):
    engine, periods, results = world_results
    with engine.connect() as conn:
        identities = read_frame(conn, "select * from staging.prospect_identities")
        real = read_frame(conn, "select prospect_id from staging.prospects where not is_excluded")
        deals = read_frame(conn, "select * from staging.opportunities")
    touches = identities[
        identities["prospect_id"].isin(real["prospect_id"]) & (identities["channel"] != "unmapped")
    ]
    checked = differs = 0
    for kpi_id in [k for k in REGISTRY if k.startswith("attribution.")]:
        for period in periods:
            expected = _pandas_credits(touches, deals, period, **REGISTRY[kpi_id].parameters)
            rows = results[
                (results["kpi_id"] == kpi_id)
                & (results["dimension"] == "channel")
                & (results["period_start"] == period.start)
            ]
            actual = pd.Series(rows["numerator"].to_numpy(), index=rows["segment"]).sort_index()
            pd.testing.assert_series_equal(actual, expected, check_names=False, atol=0.01, rtol=1e-9)
            checked += 1
            linear = _pandas_credits(
                touches, deals, period, **{**REGISTRY[kpi_id].parameters, "model": "linear"}
            )
            differs += not np.allclose(expected.reindex(linear.index, fill_value=0), linear)
    assert checked == 40
    assert differs > 0  # the world has journeys that cross channels


def _pandas_credits(
    touches, deals, period, measure, model, first_weight, last_weight, half_life_days, fallback_channel
):
    deals = deals[~deals["is_excluded"] & deals["amount"].notna()]
    if measure == "won_revenue":
        close = pd.to_datetime(deals["close_date"])
        chosen = deals[
            deals["is_won"] & (close >= pd.Timestamp(period.start)) & (close < pd.Timestamp(period.end))
        ]
    else:
        created = deals["created_at"]
        chosen = deals[(created >= pd.Timestamp(period.start_at)) & (created < pd.Timestamp(period.end_at))]
    credits: dict[str, float] = {}
    by_prospect = dict(tuple(touches.groupby("prospect_id")))
    for deal in chosen.itertuples():
        journey = by_prospect.get(deal.prospect_id, touches.iloc[:0])
        journey = journey[journey["created_at"] <= deal.created_at].sort_values(["created_at", "record_id"])
        if journey.empty:
            channel = fallback_channel if deal.channel == "unmapped" else deal.channel
            credits[channel] = credits.get(channel, 0.0) + deal.amount
            continue
        weights = _weights(journey, deal.created_at, model, first_weight, last_weight, half_life_days)
        for channel, weight in zip(journey["channel"], weights, strict=True):
            if weight > 0:
                credits[channel] = credits.get(channel, 0.0) + deal.amount * weight
    return pd.Series(credits, dtype=float).sort_index()


def _weights(journey, opened_at, model, first_weight, last_weight, half_life_days) -> list[float]:
    n = len(journey)
    if model == "first_touch":
        return [1.0] + [0.0] * (n - 1)
    if model == "last_touch":
        return [0.0] * (n - 1) + [1.0]
    if model == "linear":
        return [1.0 / n] * n
    if model == "position_based":
        if n == 1:
            return [1.0]
        if n == 2:
            return [first_weight / (first_weight + last_weight), last_weight / (first_weight + last_weight)]
        middle = (1.0 - first_weight - last_weight) / (n - 2)
        return [first_weight] + [middle] * (n - 2) + [last_weight]
    days = (opened_at - journey["created_at"]).dt.total_seconds() / 86400.0
    decay = 0.5 ** (days / half_life_days)
    return list(decay / decay.sum())
