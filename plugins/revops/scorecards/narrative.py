"""The few sentences at the top of a scorecard: what moved most, which segment drove it, and
what stands below its threshold. Generated from the numbers, never written by hand.

Which segment drove a change: a rate, ratio or total KPI is a ratio of sums (numerator /
denominator; a total's is 1), so its value is the sum over segments of
numerator_s / denominator_total. The change from the
previous period therefore splits exactly into one term per segment:

    contribution_s = numerator_s(now) / denominator(now) - numerator_s(before) / denominator(before)

and the terms add up to the total change. The segment with the largest term in the direction
of the change is the one that drove it (mix and rate effects together, as a reader means it).
A median or an AUC has no such split, so no driver is named for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from revops.kpis.registry import Kpi
from revops.periods import Period
from revops.scorecards.formatting import change_text, format_value
from revops.scorecards.results import ScorecardResults

DIMENSION_LABELS = {
    "region": "region",
    "segment": "segment",
    "channel": "channel",
    "lead_source": "lead source",
    "campaign": "campaign",
    "lead_owner": "lead owner",
    "opportunity_owner": "opportunity owner",
    "changed_by": "user who recorded the change",
    "loss_reason": "loss reason",
    "crm_object": "CRM object",
    "opportunity_origin": "opportunity origin",
}


@dataclass(frozen=True)
class Mover:
    """One KPI's change from the previous period, for the narrative."""

    kpi: Kpi
    period: Period
    value: float
    previous: float
    status: str

    @property
    def relative_change(self) -> float:
        return abs(self.value - self.previous) / abs(self.previous) if self.previous else float("inf")


def segment_contributions(
    now: pd.DataFrame, before: pd.DataFrame, total_now: float, total_before: float
) -> pd.Series:
    """Each segment's share of the change in a ratio-of-sums KPI (see the module docstring);
    the values add up to value(now) - value(before)."""
    current = now.set_index("segment")["numerator"].fillna(0) / total_now if total_now else None
    previous = before.set_index("segment")["numerator"].fillna(0) / total_before if total_before else None
    frame = pd.concat({"now": current, "before": previous}, axis=1).fillna(0)
    return (frame["now"] - frame["before"]).sort_index()


def driver_sentence(
    mover: Mover, results: ScorecardResults, dimension: str, labels: dict[str, str]
) -> str | None:
    """'EMEA drove most of it (+5.1 pts of +8.7 pts).', or None when no segment data exists."""
    if not mover.kpi.additive:  # a median's or an AUC's change does not split into segments
        return None
    before_period = mover.period.previous()
    now, before = results.total(mover.kpi, mover.period), results.total(mover.kpi, before_period)
    if not now or not before:
        return None
    contributions = segment_contributions(
        results.segments(mover.kpi, mover.period, dimension),
        results.segments(mover.kpi, before_period, dimension),
        now["denominator"],
        before["denominator"],
    )
    if contributions.empty:
        return None
    rising = mover.value >= mover.previous
    segment = contributions.idxmax() if rising else contributions.idxmin()
    share = contributions[segment]
    if (share > 0) != rising or share == 0:
        return None
    unit, total = mover.kpi.unit, mover.value - mover.previous
    name, by = labels.get(segment, segment), DIMENSION_LABELS.get(dimension, dimension)
    if abs(share) > abs(total):  # the other segments moved the other way
        return (
            f"By {by}, {name} drove it ({_amount(unit, share)}); "
            f"the other segments together moved {_amount(unit, total - share)}."
        )
    return (
        f"By {by}, {name} drove most of it "
        f"({_amount(unit, share)} of {change_text(unit, mover.value, mover.previous)})."
    )


def mover_sentence(mover: Mover) -> str:
    direction = "up" if mover.value >= mover.previous else "down"
    change = change_text(mover.kpi.unit, mover.value, mover.previous).lstrip("+-")
    return (
        f"{mover.kpi.name} moved most: {direction} {change} to "
        f"{format_value(mover.kpi.unit, mover.value)} ({mover.period.short_label} against "
        f"{mover.period.previous().short_label})."
    )


def status_sentences(statuses: list[tuple[str, str]]) -> list[str]:
    """(KPI name, status) pairs -> how many are on target, and which are not."""
    judged = [(name, s) for name, s in statuses if s in ("on_target", "watch", "below")]
    sentences = []
    if judged:
        on_target = sum(1 for _, s in judged if s == "on_target")
        sentences.append(f"{on_target} of {len(judged)} judged KPIs are on target.")
    for label, wanted in (("Below threshold", "below"), ("On watch", "watch")):
        names = [name for name, s in judged if s == wanted]
        if names:
            sentences.append(f"{label}: {', '.join(names)}.")
    thin = [name for name, s in statuses if s == "insufficient"]
    if thin:
        sentences.append(f"Too few records to judge: {', '.join(thin)}.")
    return sentences


def _amount(unit: str, value: float) -> str:
    """A signed amount in the KPI's unit: a change from zero."""
    return change_text(unit, value, 0.0)
