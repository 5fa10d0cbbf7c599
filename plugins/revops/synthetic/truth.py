"""Ground-truth KPI values, computed with pandas straight from what the generator decided.

This is the independent second method the pipeline's SQL is checked against: it never
touches the exports, the warehouse or the reconciliation rules, only the world's own record
of people, stages and deals.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

from revops.periods import Period
from revops.settings import config_dir
from revops.synthetic.catalog import OPPORTUNITY_STAGES, STAGE_PROBABILITY
from revops.synthetic.world import World


def _in_period(values: pd.Series, period: Period) -> pd.Series:
    return (values >= pd.Timestamp(period.start_at)) & (values < pd.Timestamp(period.end_at))


def _on_dates(values: pd.Series, period: Period) -> pd.Series:
    return (values >= pd.Timestamp(period.start)) & (values < pd.Timestamp(period.end))


def lead_to_opportunity_rate(
    world: World,
    period: Period,
    window_days: int = 30,
    exclude_disqualified: bool = False,
    exclude_recycled: bool = False,
):
    """(converted within the window, prospects created in the period, minus excluded exits)."""
    prospects = world.truth_prospects
    cohort = prospects[_in_period(prospects["created_at"], period)][["person", "created_at"]]
    stages = world.truth_stages.merge(cohort, on="person")
    window = (
        (stages["entered_at"] >= stages["created_at"])
        & (stages["entered_at"] < stages["created_at"] + timedelta(days=window_days))
        & (stages["entered_at"] < pd.Timestamp(world.config.as_of))
    )
    within = stages[window]
    converted = cohort["person"].isin(within.loc[within["stage"] == "opportunity", "person"])
    disqualified = cohort["person"].isin(within.loc[within["stage"] == "disqualified", "person"])
    recycled = cohort["person"].isin(within.loc[within["stage"] == "recycled", "person"])
    kept = converted | ~((exclude_disqualified & disqualified) | (exclude_recycled & recycled))
    return int((converted & kept).sum()), int(kept.sum())


def funnel_stage_conversion(world: World, period: Period, from_stage: str, to_stage: str, window_days: int):
    """(reached the to-stage in the same cycle within the window, first entered from-stage)."""
    stages = world.truth_stages
    entries = stages[stages["stage"] == from_stage].sort_values(["person", "entered_at", "cycle"])
    first = entries.drop_duplicates("person")
    cohort = first[_in_period(first["entered_at"], period)]
    targets = stages[stages["stage"] == to_stage].merge(
        cohort[["person", "cycle", "entered_at"]], on=["person", "cycle"], suffixes=("", "_from")
    )
    reached = targets[
        (targets["entered_at"] < targets["entered_at_from"] + timedelta(days=window_days))
        & (targets["entered_at"] < pd.Timestamp(world.config.as_of))
    ]
    return int(cohort["person"].isin(reached["person"]).sum()), len(cohort)


# Every stage the generator plays a deal through, in pipeline order, the closes last.
STAGE_ORDER = {name: n for n, name in enumerate([*OPPORTUNITY_STAGES, "Closed Won", "Closed Lost"])}


def _stage_history(world: World, opportunity_ids: pd.Series) -> pd.DataFrame:
    """These deals' OpportunityHistory rows, with when (`at`) and each stage's pipeline `order`.
    The stage-history export keeps whole seconds; so does everything read from it."""
    history = world.salesforce["OpportunityHistory"]
    history = history[history["OpportunityId"].isin(opportunity_ids)]
    return history.assign(
        at=history["CreatedDate"].dt.floor("s"), order=history["StageName"].map(STAGE_ORDER)
    )


def opportunity_stage_conversion(
    world: World,
    period: Period,
    from_stage: str,
    to_stage: str,
    window_days: int = 60,
    exclude_stale: bool = False,
    stale_days: int = 60,
):
    """(went on to the to-stage within the window, first entered the from-stage in the period);
    with `exclude_stale`, the deals stale at the cut-off are left out: not converted, open, and
    no stage entered in the `stale_days` before the cut-off."""
    as_of = pd.Timestamp(world.config.as_of)
    opps = world.truth_opportunities.query("not is_test").set_index("opportunity_id")
    history = _stage_history(world, opps.index).sort_values("at")
    first = history.drop_duplicates(["OpportunityId", "StageName"])
    cohort = first[(first["StageName"] == from_stage) & _in_period(first["at"], period)]
    targets = first[first["StageName"] == to_stage].merge(
        cohort[["OpportunityId", "at"]], on="OpportunityId", suffixes=("", "_from")
    )
    reached = targets[
        (targets["at"] >= targets["at_from"])
        & (targets["at"] < targets["at_from"] + timedelta(days=window_days))
        & (targets["at"] < as_of)
    ]
    converted = cohort["OpportunityId"].isin(reached["OpportunityId"]).to_numpy()
    if exclude_stale:
        last_move = first[first["at"] < as_of].groupby("OpportunityId")["at"].max()
        quiet = cohort["OpportunityId"].map(last_move) < as_of - timedelta(days=stale_days)
        is_open = ~opps.loc[cohort["OpportunityId"], "is_closed"].to_numpy()
        converted = converted[~(~converted & is_open & quiet.to_numpy())]
    return int(converted.sum()), len(converted)


def _closed_in_period(world: World, period: Period) -> pd.DataFrame:
    opps = world.truth_opportunities
    return opps[~opps["is_test"] & opps["is_closed"] & _on_dates(opps["close_date"], period)]


def win_rate_count(world: World, period: Period):
    """(won, closed) opportunities closed in the period."""
    closed = _closed_in_period(world, period)
    return int(closed["is_won"].sum()), len(closed)


def win_rate_amount(world: World, period: Period):
    """(won amount, closed amount), deals without an amount left out."""
    closed = _closed_in_period(world, period).dropna(subset=["amount"])
    return float(closed.loc[closed["is_won"], "amount"].sum()), float(closed["amount"].sum())


def lost_deal_reasons(world: World, period: Period):
    """(deals lost in the period, 1)."""
    closed = _closed_in_period(world, period)
    return int((~closed["is_won"]).sum()), 1


def average_won_deal_size(world: World, period: Period):
    won = _closed_in_period(world, period).query("is_won").dropna(subset=["amount"])
    return float(won["amount"].sum()), len(won)


def revenue_contribution_converted_leads(world: World, period: Period):
    won = _closed_in_period(world, period).query("is_won").dropna(subset=["amount"])
    return float(won.loc[won["is_from_converted_lead"], "amount"].sum()), float(won["amount"].sum())


def average_won_deal_size_rolling_12m(world: World, period: Period):
    """Mean won amount of the year to the period's end, far-out outliers (Q3 + 3 IQR) left out."""
    opps = world.truth_opportunities
    end = pd.Timestamp(period.end)
    won = opps[
        ~opps["is_test"]
        & opps["is_won"]
        & opps["amount"].notna()
        & (opps["close_date"] >= end - pd.DateOffset(months=12))
        & (opps["close_date"] < end)
    ]
    if won.empty:
        return 0.0, 0
    q1, q3 = np.percentile(won["amount"], [25, 75])
    kept = won[won["amount"] <= q3 + 3 * (q3 - q1)]
    return float(kept["amount"].sum()), len(kept)


def sales_cycle_length(world: World, period: Period, quantile: float = 0.5):
    """(quantile of whole days from creation to close of the deals won in the period, 1)."""
    won = _closed_in_period(world, period).query("is_won")
    days = (won["close_date"] - won["created_at"].dt.normalize()).dt.days
    return _quantile(days, quantile)


def time_in_stage(world: World, period: Period, stage: str, quantile: float = 0.5):
    """(quantile of days from first entering the stage to first entering a later one, 1), over
    the deals closed in the period; straight from the stage-history export."""
    closed = _closed_in_period(world, period)["opportunity_id"]
    first = _stage_history(world, closed).sort_values("at").drop_duplicates(["OpportunityId", "StageName"])
    entered = first[first["StageName"] == stage]
    later = first.merge(entered[["OpportunityId", "at", "order"]], on="OpportunityId", suffixes=("", "_in"))
    later = later[(later["order"] > later["order_in"]) & (later["at"] >= later["at_in"])]
    left = later.groupby("OpportunityId").agg(left=("at", "min"), entered=("at_in", "first"))
    return _quantile((left["left"] - left["entered"]).dt.total_seconds() / 86400, quantile)


def stage_skip_rate(world: World, period: Period, won_stage: str = "Closed Won"):
    """(won deals missing a pipeline stage between their first and the win, won deals)."""
    won = _closed_in_period(world, period).query("is_won")["opportunity_id"]
    history = _stage_history(world, won)
    pipeline = history[history["StageName"].isin(OPPORTUNITY_STAGES)]
    entered = pipeline.groupby("OpportunityId")["order"].agg(set)
    skipped = sum(1 for stages in entered if len(stages) < STAGE_ORDER[won_stage] - min(stages))
    return skipped, len(won)


def rapid_wins(world: World, period: Period, max_days: int = 14, won_stage: str = "Closed Won"):
    """(won within `max_days` of opening, won) for the deals won in the period."""
    won = _closed_in_period(world, period).query("is_won")
    history = _stage_history(world, won["opportunity_id"])
    won_at = history[history["StageName"] == won_stage].groupby("OpportunityId")["at"].min()
    opened_to_won = won_at.reindex(won["opportunity_id"]).to_numpy() - won["created_at"].to_numpy()
    days = pd.Series(opened_to_won).dt.total_seconds() / 86400
    return int((days < max_days).sum()), len(won)


def backdated_closes(world: World, period: Period, grace_days: int = 3):
    """(closes recorded in the period dated more than `grace_days` before the day they were
    recorded, closes recorded in the period): a close is a change into a closed stage from an
    open one, or a deal's first row; test deals left out."""
    opps = world.truth_opportunities
    history = _stage_history(world, opps.loc[~opps["is_test"], "opportunity_id"])
    history = history.sort_values(["OpportunityId", "at", "order"])
    is_closed = history["StageName"].isin(["Closed Won", "Closed Lost"])
    was_closed = is_closed.groupby(history["OpportunityId"]).shift().fillna(False).astype(bool)
    closes = history[is_closed & ~was_closed & _in_period(history["at"], period)]
    late_days = (closes["at"].dt.normalize() - closes["CloseDate"]).dt.days
    return int((late_days > grace_days).sum()), len(closes)


def bulk_stage_changes(world: World, period: Period, burst_size: int = 5):
    """(changes recorded in the period with at least `burst_size` changes by the same user
    within 10 minutes either side, changes recorded in the period); test deals' changes count
    as neighbours but are not counted themselves."""
    opps = world.truth_opportunities
    history = _stage_history(world, opps["opportunity_id"])
    window = pd.Timedelta(minutes=10)
    nearby = pd.Series(0, index=history.index)
    for _, changes in history.groupby("CreatedById"):
        times = np.sort(changes["at"].to_numpy())
        own = changes["at"].to_numpy()
        nearby[changes.index] = np.searchsorted(times, own + window, "right") - np.searchsorted(
            times, own - window, "left"
        )
    real = history["OpportunityId"].isin(opps.loc[~opps["is_test"], "opportunity_id"])
    counted = real & _in_period(history["at"], period)
    return int((nearby[counted] >= burst_size).sum()), int(counted.sum())


def _quantile(values: pd.Series, quantile: float):
    """(the interpolated quantile, 1), or (0, 0) when there is nothing to measure."""
    if values.empty:
        return 0.0, 0
    return float(np.quantile(values.to_numpy(dtype=float), quantile)), 1


def stale_opportunity_share(world: World, period: Period, stale_days: int = 60, by_amount: bool = False):
    """(stale, all) open opportunities at the period's end (or the cut-off): no stage entered
    in the last stale_days. Counted, or weighed by amount (none counts 0)."""
    open_at_end, end, changes = _open_at_end(world, period)
    last_change = changes.groupby("OpportunityId")["at"].max()
    moved_at = open_at_end["opportunity_id"].map(last_change).fillna(open_at_end["created_at"])
    stale = moved_at < end - timedelta(days=stale_days)
    weight = open_at_end["amount"].fillna(0) if by_amount else pd.Series(1, index=open_at_end.index)
    return float(weight[stale].sum()), float(weight.sum())


def _open_at_end(world: World, period: Period) -> tuple[pd.DataFrame, pd.Timestamp, pd.DataFrame]:
    """The deals open at the period's end (or the cut-off, if sooner), that instant, and the
    stage history recorded before it."""
    end = min(pd.Timestamp(period.end_at), pd.Timestamp(world.config.as_of))
    opps = world.truth_opportunities
    open_at_end = opps[
        ~opps["is_test"]
        & (opps["created_at"] < end)
        & ~(opps["is_closed"] & (opps["close_date"] < pd.Timestamp(period.end)))
    ]
    changes = _stage_history(world, open_at_end["opportunity_id"])
    return open_at_end, end, changes[changes["at"] < end]


def weighted_pipeline(world: World, period: Period):
    """(sum of amount x the win probability of the stage each open deal was in, 1)."""
    open_at_end, _end, changes = _open_at_end(world, period)
    newest = changes.sort_values(["at", "order"]).groupby("OpportunityId")["StageName"].last()
    stage = open_at_end["opportunity_id"].map(newest).fillna(open_at_end["stage"])
    weighted = open_at_end["amount"].fillna(0) * stage.map(STAGE_PROBABILITY).fillna(0) / 100
    return float(weighted.sum()), 1


def lead_score_validity(world: World, period: Period, score_after_days: int = 7, window_days: int = 90):
    """(converter / non-converter pairs the score ranks right, ties half; all such pairs), by
    counting pairs. Only prospects in HubSpot, whose score history the snapshots read back
    in full (Salesforce does not track the score field in this world), that were scored
    at all; a prospect who converted before the scoring moment is left out."""
    prospects = world.truth_prospects
    cohort = prospects[_in_period(prospects["created_at"], period) & prospects["in_hubspot"]]
    scores = world.truth_scores[world.truth_scores["changed_at"] < pd.Timestamp(world.config.as_of)]
    cohort = cohort[cohort["person"].isin(scores["person"])]
    scored_at = cohort["created_at"] + timedelta(days=score_after_days)
    first_opportunity = cohort["first_opportunity_created_at"]
    cohort = cohort[~(first_opportunity <= scored_at) & (scored_at <= pd.Timestamp(world.config.as_of))]
    scored_at = scored_at[cohort.index]
    history = scores.merge(pd.DataFrame({"person": cohort["person"], "scored_at": scored_at}), on="person")
    known = history[history["changed_at"] <= history["scored_at"]].groupby("person")["score"].last()
    score = cohort["person"].map(known).fillna(0).to_numpy()
    converted = (
        (cohort["first_opportunity_created_at"] < cohort["created_at"] + timedelta(days=window_days))
        & (cohort["first_opportunity_created_at"] < pd.Timestamp(world.config.as_of))
    ).to_numpy()
    positives, negatives = score[converted], score[~converted]
    above = (positives[:, None] > negatives[None, :]).sum()
    tied = (positives[:, None] == negatives[None, :]).sum()
    wins = above + 0.5 * tied
    return float(wins), len(positives) * len(negatives)


def _period_targets(period: Period) -> pd.Series:
    """Each rep's target above zero for the period, read from the targets file with pandas:
    each month's target spread evenly over its days, then the period's days summed."""
    targets = pd.read_csv(config_dir() / "targets.csv", comment="#")
    daily = []
    for row in targets.itertuples():
        days = pd.date_range(f"{row.month}-01", periods=pd.Period(row.month).days_in_month, freq="D")
        daily.append(pd.DataFrame({"owner_id": row.owner_id, "day": days, "target": row.target / len(days)}))
    days = pd.concat(daily)
    quota = days[_on_dates(days["day"], period)].groupby("owner_id")["target"].sum()
    return quota[quota > 0]


def quota_attainment(world: World, period: Period):
    """(won amount, target) over the reps with a target in the period."""
    quota = _period_targets(period)
    won = _closed_in_period(world, period).query("is_won").dropna(subset=["amount"])
    won_by_rep = won.groupby("owner_id")["amount"].sum().reindex(quota.index, fill_value=0)
    return float(won_by_rep.sum()), float(quota.sum())


def leads_needed(world: World, period: Period, history_days: int = 365):
    """(the period's target run back through the preceding year's funnel, 1; 0 where there is
    nothing to divide by): target / deal size / win rate / opportunities per new prospect."""
    start, start_at = pd.Timestamp(period.start), pd.Timestamp(period.start_at)
    window = pd.Timedelta(days=history_days)
    opps = world.truth_opportunities[~world.truth_opportunities["is_test"]]
    closed = opps[opps["is_closed"] & (opps["close_date"] >= start - window) & (opps["close_date"] < start)]
    closed = closed.dropna(subset=["amount"])
    won = closed[closed["is_won"]]
    people = world.truth_prospects["created_at"]
    arrivals = int(((people >= start_at - window) & (people < start_at)).sum())
    from_leads = opps[opps["is_from_converted_lead"]]
    lead_opps = int(
        ((from_leads["created_at"] >= start_at - window) & (from_leads["created_at"] < start_at)).sum()
    )
    target = _period_targets(period).sum()
    if not (target > 0 and len(won) and lead_opps):
        return 0.0, 0
    deals = target / (won["amount"].sum() / len(won))
    opportunities = deals / (len(won) / len(closed))
    return float(opportunities / (lead_opps / arrivals)), 1


def _expected_in_period(world: World, period: Period) -> pd.DataFrame:
    """Deals as the stage history had them when the period began: open, with an amount,
    expected to close inside the period (test deals left out); with their owner."""
    opps = world.truth_opportunities[~world.truth_opportunities["is_test"]]
    history = _stage_history(world, opps["opportunity_id"])
    before = history[history["at"] < pd.Timestamp(period.start_at)]
    latest = before.sort_values(["at", "order"]).groupby("OpportunityId").last()
    open_then = latest[~latest["StageName"].isin(["Closed Won", "Closed Lost"])].dropna(subset=["Amount"])
    expected = open_then[_on_dates(open_then["CloseDate"], period)]
    return expected.assign(owner_id=expected.index.map(opps.set_index("opportunity_id")["owner_id"]))


def pipeline_coverage(world: World, period: Period):
    """(pipeline the period began with, target) over the reps with a target."""
    quota = _period_targets(period)
    pipeline = _expected_in_period(world, period).groupby("owner_id")["Amount"].sum()
    return float(pipeline.reindex(quota.index, fill_value=0).sum()), float(quota.sum())


def forecast_cross_check(world: World, period: Period, history_days: int = 365):
    """(the period's opening pipeline weighed by each stage's historical conversion, commit
    forecast): the conversion from the deals closed in the preceding `history_days`."""
    opps = world.truth_opportunities[~world.truth_opportunities["is_test"]].dropna(subset=["amount"])
    start = pd.Timestamp(period.start)
    since = start - pd.Timedelta(days=history_days)
    closed = opps[opps["is_closed"] & (opps["close_date"] >= since) & (opps["close_date"] < start)]
    history = _stage_history(world, closed["opportunity_id"]).drop_duplicates(["OpportunityId", "StageName"])
    passed = history.merge(closed, left_on="OpportunityId", right_on="opportunity_id")
    won_share = passed.groupby("StageName").apply(
        lambda deals: deals.loc[deals["is_won"], "amount"].sum() / deals["amount"].sum(), include_groups=False
    )
    expected = _expected_in_period(world, period)
    weighed = expected["Amount"] * expected["StageName"].map(won_share).fillna(0)
    commit = expected.loc[expected["ForecastCategory"] == "Forecast", "Amount"].sum()
    return float(weighed.sum()), float(commit)


def forecast_attainment(world: World, period: Period, include_best_case: bool = False):
    """(won amount, commit forecast when the period began; best case too where asked)."""
    categories = ["Forecast", "BestCase"] if include_best_case else ["Forecast"]
    expected = _expected_in_period(world, period)
    forecast = expected.loc[expected["ForecastCategory"].isin(categories), "Amount"].sum()
    won = _closed_in_period(world, period).query("is_won").dropna(subset=["amount"])
    return float(won["amount"].sum()), float(forecast)


def customer_acquisition_cost(world: World, period: Period):
    """(campaign spend, new customers): each campaign's cost walked day by day over its run,
    and each customer's first won deal found with pandas."""
    campaigns = world.salesforce["Campaign"]  # generated clean: no mess is applied to them
    spend = 0.0
    for campaign in campaigns.itertuples():
        days = pd.date_range(campaign.StartDate, campaign.EndDate, freq="D")
        spend += campaign.ActualCost / len(days) * int(_on_dates(pd.Series(days), period).sum())
    opps = world.truth_opportunities
    won = opps[opps["is_won"] & ~opps["is_test"]].copy()
    won["customer"] = won["person"].astype(str).where(won["person"].notna(), won["opportunity_id"])
    first = won.sort_values(["close_date", "opportunity_id"]).drop_duplicates("customer")
    return spend, int(_on_dates(first["close_date"], period).sum())


def attribution(world: World, period: Period, measure: str, **model) -> tuple[float, int]:
    """(the amount every attribution model hands out, 1; 0 where no deal has any): won
    revenue closed in the period, or pipeline opened in it. How a model splits it is checked
    by hand and by a second method (tests/integration/test_attribution.py): the world does
    not know which touch won a deal."""
    opps = world.truth_opportunities.dropna(subset=["amount"])
    opps = opps[~opps["is_test"]]
    if measure == "won_revenue":
        credited = opps.loc[opps["is_won"] & _on_dates(opps["close_date"], period), "amount"]
    else:
        credited = opps.loc[_in_period(opps["created_at"], period), "amount"]
    return float(credited.sum()), int(len(credited) > 0)


def _mql_responses(world: World, period: Period) -> pd.DataFrame:
    """Per prospect whose first MQL is in the period: its region, MQL time and the first SAL
    of that cycle (NaT if none)."""
    stages = world.truth_stages
    mqls = stages[stages["stage"] == "mql"].sort_values(["person", "entered_at", "cycle"])
    first = mqls.drop_duplicates("person")
    cohort = first[_in_period(first["entered_at"], period)][["person", "cycle", "entered_at"]]
    sals = stages[stages["stage"] == "sal"].groupby(["person", "cycle"])["entered_at"].min()
    cohort = cohort.rename(columns={"entered_at": "mql_at"})
    cohort["sal_at"] = [
        sals.get((p, c), pd.NaT) for p, c in zip(cohort["person"], cohort["cycle"], strict=True)
    ]
    cohort["region"] = cohort["person"].map(world.truth_prospects.set_index("person")["region"])
    return cohort


def _calendars() -> dict:
    with open(config_dir() / "business_calendar.yaml") as handle:
        return yaml.safe_load(handle)["regions"]


def _hours_between(calendar: dict, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Working hours in [start, end) (naive UTC), walking the calendar's local days."""
    if end <= start:
        return 0.0
    zone = ZoneInfo(calendar["timezone"])
    weekdays = [["mon", "tue", "wed", "thu", "fri", "sat", "sun"].index(d) for d in calendar["days"]]
    holidays = set(calendar.get("holidays") or [])
    start_utc, end_utc = start.tz_localize("UTC"), end.tz_localize("UTC")
    seconds = 0.0
    for day in pd.date_range(start_utc.tz_convert(zone).date(), end_utc.tz_convert(zone).date(), freq="D"):
        if day.weekday() not in weekdays or day.date() in holidays:
            continue
        opens, closes = (
            pd.Timestamp(f"{day.date()} {clock}").tz_localize(zone) for clock in calendar["hours"]
        )
        seconds += max((min(end_utc, closes) - max(start_utc, opens)).total_seconds(), 0)
    return seconds / 3600


def _response_hours(world: World, responses: pd.DataFrame) -> list[float]:
    calendars, as_of = _calendars(), pd.Timestamp(world.config.as_of)
    return [
        _hours_between(
            calendars.get(region, calendars["default"]), mql_at, as_of if pd.isna(sal_at) else sal_at
        )
        for region, mql_at, sal_at in zip(
            responses["region"], responses["mql_at"], responses["sal_at"], strict=True
        )
    ]


def lead_response_time(world: World, period: Period, quantile: float = 0.5):
    """(quantile of working hours from the first MQL to acceptance in that cycle, 1)."""
    accepted = _mql_responses(world, period).dropna(subset=["sal_at"])
    return _quantile(pd.Series(_response_hours(world, accepted), dtype=float), quantile)


def lead_response_sla(world: World, period: Period, sla_hours: float = 24):
    """(accepted within the SLA, decided): decided = accepted, or unaccepted past the SLA."""
    responses = _mql_responses(world, period)
    hours = pd.Series(_response_hours(world, responses), index=responses.index, dtype=float)
    accepted = responses["sal_at"].notna()
    decided = accepted | (hours > sla_hours)
    return int((accepted & (hours <= sla_hours)).sum()), int(decided.sum())


def prospects_without_source(world: World, period: Period):
    """(prospects first seen in the period whose records carry no usable source, all of them)."""
    prospects = world.truth_prospects
    cohort = prospects[_in_period(prospects["created_at"], period)]
    return int((cohort["channel"] == "unmapped").sum()), len(cohort)


def duplicate_record_rate(world: World, period: Period):
    """(records beyond the first per prospect, all records) of the prospects first seen in the period."""
    prospects = world.truth_prospects
    cohort = prospects[_in_period(prospects["created_at"], period)]
    records = cohort["salesforce_leads"] + cohort["in_hubspot"].astype(int)
    return int((records - 1).sum()), int(records.sum())


def truth_value(kpi_id: str, world: World, period: Period, parameters: dict | None = None):
    """(numerator, denominator, value) of a KPI's ground truth for a period."""
    family = kpi_id.split(".")[0]
    numerator, denominator = TRUTH[family](world, period, **(parameters or {}))
    value = numerator / denominator if denominator else np.nan
    return numerator, denominator, value


TRUTH = {
    "lead_to_opportunity_rate": lead_to_opportunity_rate,
    "funnel_stage_conversion": funnel_stage_conversion,
    "opportunity_stage_conversion": opportunity_stage_conversion,
    "win_rate_count": win_rate_count,
    "win_rate_amount": win_rate_amount,
    "lost_deal_reasons": lost_deal_reasons,
    "average_won_deal_size": average_won_deal_size,
    "revenue_contribution_converted_leads": revenue_contribution_converted_leads,
    "average_won_deal_size_rolling_12m": average_won_deal_size_rolling_12m,
    "sales_cycle_length": sales_cycle_length,
    "time_in_stage": time_in_stage,
    "prospects_without_source": prospects_without_source,
    "stale_opportunity_share": stale_opportunity_share,
    "lead_score_validity": lead_score_validity,
    "quota_attainment": quota_attainment,
    "customer_acquisition_cost": customer_acquisition_cost,
    "pipeline_coverage": pipeline_coverage,
    "forecast_attainment": forecast_attainment,
    "forecast_cross_check": forecast_cross_check,
    "leads_needed": leads_needed,
    "rapid_wins": rapid_wins,
    "backdated_closes": backdated_closes,
    "bulk_stage_changes": bulk_stage_changes,
    "attribution": attribution,
    "lead_response_time": lead_response_time,
    "lead_response_sla": lead_response_sla,
    "stage_skip_rate": stage_skip_rate,
    "weighted_pipeline": weighted_pipeline,
    "duplicate_record_rate": duplicate_record_rate,
}


def scores_at(world: World, at) -> pd.Series:
    """Each person's true score at an instant (0 before their first score), by person."""
    known = world.truth_scores[world.truth_scores["changed_at"] <= pd.Timestamp(at)]
    latest = known.groupby("person")["score"].last()
    return latest.reindex(world.truth_prospects["person"], fill_value=0)


def score_change(world: World, start, end) -> pd.Series:
    """Each person's true score change over (start, end], by person."""
    return scores_at(world, end) - scores_at(world, start)
