"""Ground-truth KPI values, computed straight from what the generator decided happened.

This is the independent second method the pipeline's SQL is checked against: it never
touches the exports, the warehouse or the reconciliation rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.periods import Period
from revops.synthetic.world import World


def _in_period(values: pd.Series, period: Period) -> pd.Series:
    return (values >= pd.Timestamp(period.start)) & (values < pd.Timestamp(period.end))


def lead_to_opportunity_rate(world: World, period: Period, window_days: int = 30):
    """(converted within the window, prospects created in the period)."""
    prospects = world.truth_prospects
    cohort = prospects[_in_period(prospects["created_at"], period)]
    delay = cohort["first_opportunity_created_at"] - cohort["created_at"]
    converted = (delay < pd.Timedelta(days=window_days)).sum()
    return int(converted), len(cohort)


def _closed_in_period(world: World, period: Period) -> pd.DataFrame:
    opps = world.truth_opportunities
    return opps[~opps["is_test"] & opps["is_closed"] & _in_period(opps["close_date"], period)]


def win_rate_count(world: World, period: Period):
    """(won, closed) opportunities closed in the period."""
    closed = _closed_in_period(world, period)
    return int(closed["is_won"].sum()), len(closed)


def win_rate_amount(world: World, period: Period):
    """(won amount, closed amount), deals without an amount left out."""
    closed = _closed_in_period(world, period).dropna(subset=["amount"])
    return float(closed.loc[closed["is_won"], "amount"].sum()), float(closed["amount"].sum())


TRUTH = {
    "lead_to_opportunity_rate": lead_to_opportunity_rate,
    "win_rate_count": win_rate_count,
    "win_rate_amount": win_rate_amount,
}


def truth_value(kpi_id: str, world: World, period: Period) -> tuple[float, float, float]:
    """(numerator, denominator, value) of a KPI's ground truth for a period."""
    numerator, denominator = TRUTH[kpi_id](world, period)
    value = numerator / denominator if denominator else np.nan
    return numerator, denominator, value
