"""The scorecard's view model: every number formatted and every judgement made here.

The template only lays out what this module hands it (no arithmetic in Jinja), so what an
executive reads can be tested without rendering a PDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import TOTAL, compute_kpis, current_build
from revops.kpis.registry import Kpi, load_registry
from revops.periods import Period
from revops.scorecards.audiences import Audience
from revops.scorecards.charts import sparkline, weekly_change_chart
from revops.snapshots.hot_prospects import hot_prospects, latest_velocity_as_of
from revops.warehouse import read_frame

TREND_PERIODS = 8

STATUS_LABELS = {
    "on_target": "On target",
    "watch": "Watch",
    "below": "Below threshold",
    "insufficient": "Too few to judge",
    "no_data": "No data",
}


@dataclass(frozen=True)
class KpiTile:
    kpi_id: str
    name: str
    perspective: str
    period_label: str
    value_text: str
    interval_text: str
    previous_text: str
    change_text: str
    status: str
    status_label: str
    target_text: str
    volume_text: str
    trend_chart: str
    trend_caption: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class DefinitionNote:
    kpi_id: str
    name: str
    version: int
    sql_sha256_short: str
    effective_from: str
    description: str
    owner: str


@dataclass(frozen=True)
class HotProspectRow:
    rank: int
    name: str
    company: str
    owner: str
    region: str
    source: str
    grade: str
    score_text: str
    change_7d_text: str
    change_14d_text: str
    last_activity_text: str


@dataclass(frozen=True)
class EngagementSection:
    """Lead score velocity for sales audiences: the hot-prospect list and the weekly trend."""

    as_of_text: str
    scope_label: str
    rows: tuple[HotProspectRow, ...]
    surging_text: str
    moving_average_text: str
    trend_chart: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ScorecardView:
    title: str
    audience: str
    scope_label: str
    period_label: str
    data_cutoff_text: str
    build_id: str
    run_id: str
    tiles: tuple[KpiTile, ...]
    definitions: tuple[DefinitionNote, ...]
    footnotes: tuple[str, ...] = field(default_factory=tuple)
    engagement: EngagementSection | None = None

    @property
    def headline(self) -> list[tuple[str, str, str]]:
        """(name, value, status) per KPI, for the e-mail body."""
        return [(t.name, t.value_text, t.status_label) for t in self.tiles]


def reporting_period(kpi: Kpi, period: Period, data_cutoff: datetime) -> Period:
    """The newest period, up to `period`, whose outcome window has closed by the cut-off.

    A 30-day conversion rate for last week's cohort would be mostly empty; the scorecard
    shows the latest cohort that had its full 30 days instead, and says which one.
    """
    while kpi.maturity_days and period.end_at + timedelta(days=kpi.maturity_days) > data_cutoff:
        period = period.previous()
    return period


def periods_needed(audience: Audience, period: Period, data_cutoff: datetime) -> list[Period]:
    registry = load_registry()
    needed: set[Period] = set()
    for kpi_id in audience.kpis:
        shown = reporting_period(registry[kpi_id], period, data_cutoff)
        needed.update(shown.history(TREND_PERIODS))
    return sorted(needed)


def compute_scorecard_results(engine: sa.Engine, audience: Audience, period: Period, run_id: str) -> int:
    """Compute what the scorecard shows (each KPI's period and trend, in its scope), plus the
    previous version's numbers for periods a newer version restated, to say by how much."""
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    periods = periods_needed(audience, period, cutoff)
    rows = len(compute_kpis(engine, periods, run_id, audience.scope, list(audience.kpis)))
    registry = load_registry()
    for kpi_id in audience.kpis:
        for shown in periods:
            restated = registry[kpi_id].restatement(shown.start)
            if restated:
                previous = restated[1].version
                rows += len(compute_kpis(engine, [shown], run_id, audience.scope, [kpi_id], version=previous))
    return rows


def build_view(conn: sa.Connection, audience: Audience, period: Period, run_id: str) -> ScorecardView:
    registry = load_registry()
    build = current_build(conn)
    results = _totals(conn, audience, period.grain)
    tiles, definitions = [], []
    for kpi_id in audience.kpis:
        kpi = registry[kpi_id]
        shown = reporting_period(kpi, period, build.data_cutoff)
        history = shown.history(TREND_PERIODS)
        rows = [_row_for(results, kpi, p) for p in history]
        tile = _tile(kpi, shown, rows[-1], rows[-2], [r["value"] if r else None for r in rows])
        restated = _restatement_note(kpi, shown, results, rows[-1])
        tiles.append(replace(tile, notes=(*tile.notes, restated)) if restated else tile)
        version = kpi.version_for(shown.start)
        definitions.append(
            DefinitionNote(
                kpi_id=kpi.id,
                name=kpi.name,
                version=version.version,
                sql_sha256_short=version.sql_sha256[:12],
                effective_from=version.effective_from.isoformat(),
                description=kpi.description,
                owner=kpi.owner,
            )
        )
    return ScorecardView(
        title=audience.title,
        audience=audience.name,
        scope_label=_scope_label(audience),
        period_label=period.label,
        data_cutoff_text=f"{build.data_cutoff:%d %b %Y %H:%M} UTC",
        build_id=build.build_id,
        run_id=run_id,
        tiles=tuple(tiles),
        definitions=tuple(definitions),
        footnotes=_footnotes(tiles),
        engagement=_engagement_section(conn, audience, period) if audience.hot_prospects else None,
    )


def _engagement_section(conn: sa.Connection, audience: Audience, period: Period) -> EngagementSection:
    """Velocity as of the newest snapshot by the period's end, in the audience's scope."""
    as_of = latest_velocity_as_of(conn, period.end_at)
    scope_label = _scope_label(audience)
    if as_of is None:
        return EngagementSection("–", scope_label, (), "–", "–", None, ("No lead score snapshot yet.",))
    ranked = hot_prospects(conn, as_of, audience.hot_prospects, audience.scope)
    trend = read_frame(
        conn,
        "select * from marts.engagement_trend where as_of = :as_of order by week_start",
        {"as_of": as_of},
    )
    latest = trend.iloc[-1] if not trend.empty else None
    notes = [
        "Ranked by 7-day score change from engagement, then by score. Scoring-model changes are left out."
    ]
    if not ranked.empty and (ranked["model_change_points_14d"] != 0).any():
        notes.append(
            "A scoring-model change moved some of these scores in the last 14 days; it is not counted."
        )
    if audience.scope.column is not None:
        notes.append("The weekly trend covers all regions and segments.")
    return EngagementSection(
        as_of_text=f"{as_of:%d %b %Y %H:%M} UTC",
        scope_label=scope_label,
        rows=tuple(_hot_row(row) for row in ranked.itertuples()),
        surging_text="–" if latest is None else f"{int(latest['surging_prospects']):,}",
        moving_average_text="–" if latest is None else _points(latest["moving_average_4w"], signed=True),
        trend_chart=None if trend.empty else _trend_chart(trend),
        notes=tuple(notes),
    )


def _hot_row(row) -> HotProspectRow:
    return HotProspectRow(
        rank=row.rank,
        name=row.name,
        company=_text(row.company),
        owner=row.owner,
        region=_text(row.region),
        source=row.source,
        grade=_text(row.lead_grade),
        score_text=_points(row.score),
        change_7d_text=_points(row.change_7d, signed=True),
        change_14d_text=_points(row.change_14d, signed=True),
        last_activity_text="–" if pd.isna(row.last_activity_at) else f"{row.last_activity_at:%d %b}",
    )


def _trend_chart(trend: pd.DataFrame) -> str:
    def values(column: str) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in trend[column]]

    labels = [f"{pd.Timestamp(w):%d %b}" for w in trend["week_start"]]
    return weekly_change_chart(labels, values("average_change"), values("moving_average_4w"))


def _points(value, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def _text(value) -> str:
    return "–" if value is None or pd.isna(value) else str(value)


def _scope_label(audience: Audience) -> str:
    if audience.scope.column is None:
        return "All regions and segments"
    return f"{audience.scope.column.title()}: {audience.scope.value}"


def _totals(conn, audience: Audience, grain: str) -> pd.DataFrame:
    return read_frame(
        conn,
        """
        select kpi_id, kpi_version, period_start, numerator, denominator, value,
               ci_low, ci_high, volume, flags
        from marts.kpi_results
        where scope = :scope and grain = :grain and timezone = :timezone
          and dimension = :dimension
        """,
        {"scope": audience.scope.key, "grain": grain, "timezone": audience.timezone, "dimension": TOTAL},
    )


def _row_for(results: pd.DataFrame, kpi: Kpi, period: Period, version: int | None = None) -> dict | None:
    """The stored total for a period: of the version in effect then, or the one named."""
    in_effect = kpi.version_for(period.start, version)
    if in_effect is None:
        return None
    match = results[
        (results["kpi_id"] == kpi.id)
        & (results["kpi_version"] == in_effect.version)
        & (pd.to_datetime(results["period_start"]).dt.date == period.start)
    ]
    if match.empty:
        return None
    row = match.iloc[0].to_dict()
    row["value"] = None if pd.isna(row["value"]) else float(row["value"])
    return row


def _restatement_note(kpi: Kpi, period: Period, results: pd.DataFrame, row) -> str | None:
    """'Restated by v2 ...: v1 gave 17.9% (+0.0 pts)', when a newer version changed the period."""
    restated = kpi.restatement(period.start)
    if restated is None:
        return None
    new, old = restated
    before = _row_for(results, kpi, period, old.version)
    if before is None:
        return f"Restated by v{new.version} (published {new.published_on:%d %b %Y})."
    now = row["value"] if row else None
    return (
        f"Restated by v{new.version} (published {new.published_on:%d %b %Y}): v{old.version} gave "
        f"{format_value(kpi.unit, before['value'])} ({_change_text(kpi.unit, now, before['value'])})."
    )


def _tile(kpi: Kpi, period: Period, row, previous, trend) -> KpiTile:
    value = row["value"] if row else None
    flags = set(filter(None, (row["flags"] if row else "no_data").split(",")))
    status = _status(kpi, value, flags)
    notes = []
    if kpi.maturity_days:
        notes.append(f"Cohort {period.short_label}: its {kpi.maturity_days}-day window has closed.")
    if "insufficient_volume" in flags:
        notes.append(f"Below the minimum volume of {kpi.minimum_volume}; read with care.")
    return KpiTile(
        kpi_id=kpi.id,
        name=kpi.name,
        perspective=kpi.perspective.replace("_", " ").title(),
        period_label=period.label,
        value_text=format_value(kpi.unit, value),
        interval_text=_interval_text(kpi, row),
        previous_text=format_value(kpi.unit, previous["value"] if previous else None),
        change_text=_change_text(kpi.unit, value, previous["value"] if previous else None),
        status=status,
        status_label=STATUS_LABELS[status],
        target_text=_target_text(kpi),
        volume_text=f"n = {int(row['volume']):,}" if row else "n = 0",
        trend_chart=sparkline([v * 100 if v is not None else None for v in trend]),
        trend_caption=_trend_caption(period, len(trend)),
        notes=tuple(notes),
    )


def _trend_caption(period: Period, count: int) -> str:
    first = period.previous(count - 1)
    return f"Last {count} {period.grain}s, {first.short_label} to {period.short_label}"


def _status(kpi: Kpi, value: float | None, flags: set[str]) -> str:
    if value is None or "no_data" in flags:
        return "no_data"
    if "insufficient_volume" in flags:
        return "insufficient"
    target, warning = kpi.thresholds.get("target"), kpi.thresholds.get("warning")
    sign = 1 if kpi.direction == "higher_is_better" else -1
    if target is not None and sign * (value - target) >= 0:
        return "on_target"
    if warning is not None and sign * (value - warning) >= 0:
        return "watch"
    return "below"


def format_value(unit: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "currency":
        return f"${value:,.0f}"
    return f"{value:,.2f}"


def _change_text(unit: str, value: float | None, previous: float | None) -> str:
    if value is None or previous is None:
        return "no comparison"
    if unit == "percent":
        return f"{(value - previous) * 100:+.1f} pts"
    return f"{value - previous:+,.0f}"


def _interval_text(kpi: Kpi, row) -> str:
    if not row or pd.isna(row.get("ci_low")) or row.get("ci_low") is None:
        return ""
    return f"95% CI {row['ci_low'] * 100:.1f}–{row['ci_high'] * 100:.1f}%"


def _target_text(kpi: Kpi) -> str:
    target = kpi.thresholds.get("target")
    return f"Target {format_value(kpi.unit, target)}" if target is not None else "No target set"


def _footnotes(tiles: list[KpiTile]) -> tuple[str, ...]:
    notes = [
        "Rates are computed from numerators and denominators; duplicate prospects across "
        "Salesforce and HubSpot are merged and test records excluded before counting.",
    ]
    if any(t.status == "insufficient" for t in tiles):
        notes.append('"Too few to judge": volume below the KPI\'s minimum; no status is given.')
    return tuple(notes)
