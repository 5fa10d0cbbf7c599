"""The scorecard's view model: every number formatted and every judgement made here.

The template only lays out what this module hands it (no arithmetic in Jinja), so what an
executive reads can be tested without rendering a PDF.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import compute_kpis, current_build
from revops.kpis.registry import Kpi, load_registry
from revops.periods import Period
from revops.scorecards.audiences import FUNNEL_KPIS, Audience, attribution_kpis
from revops.scorecards.charts import sparkline, weekly_change_chart
from revops.scorecards.completeness import Completeness, check_completeness, expected_objects
from revops.scorecards.formatting import (
    STATUS_LABELS,
    change_text,
    crm_text,
    flags_of,
    format_value,
    points,
    status,
)
from revops.scorecards.narrative import (
    DIMENSION_LABELS,
    Mover,
    driver_sentence,
    mover_sentence,
    status_sentences,
)
from revops.scorecards.results import ScorecardResults
from revops.scorecards.sections import (
    AttributionSection,
    Breakdown,
    FunnelSection,
    Perspective,
    attribution_section,
    breakdown,
    funnel_section,
    judge,
    perspectives,
    segment_labels,
)
from revops.settings import Settings
from revops.snapshots.hot_prospects import hot_prospects, latest_velocity_as_of
from revops.warehouse import read_frame
from revops.warehouse.schema import kpi_exclusions

TREND_PERIODS = 8
INCOMPLETE_BANNER = (
    "Incomplete data: some figures may be understated. The data notes on the last page say which "
    "source is behind."
)


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
    sql_sha256: str
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
    narrative: tuple[str, ...] = ()
    completeness_problems: tuple[str, ...] = ()
    banner: str | None = None  # shown across the top when the data is not complete
    freshness: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    funnel: FunnelSection | None = None
    attribution: AttributionSection | None = None
    perspectives: tuple[Perspective, ...] = ()
    breakdowns: tuple[Breakdown, ...] = ()
    engagement: EngagementSection | None = None
    results_sha256: str = ""  # digest of the KPI results used (ScorecardResults.digest)
    results_rows: int = 0

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


def scorecard_kpis(audience: Audience) -> list[str]:
    """The tiles' KPIs, then the funnel's steps and the attribution models where the
    audience shows them."""
    sections = [*(FUNNEL_KPIS if audience.funnel else ()), *attribution_kpis(audience.attribution)]
    return [*audience.kpis, *(k for k in sections if k not in audience.kpis)]


def periods_needed(audience: Audience, period: Period, data_cutoff: datetime) -> list[Period]:
    registry = load_registry()
    needed: set[Period] = set()
    for kpi_id in scorecard_kpis(audience):
        shown = reporting_period(registry[kpi_id], period, data_cutoff)
        needed.update(shown.history(TREND_PERIODS))
    return sorted(needed)


def results_used(audience: Audience, period: Period, data_cutoff: datetime) -> list[tuple[Kpi, Period, int]]:
    """(KPI, period, version) of every result the scorecard reads: each KPI's shown period and
    trend, in the version in effect, plus the replaced version where a newer one restated."""
    registry = load_registry()
    used = []
    for kpi_id in scorecard_kpis(audience):
        kpi = registry[kpi_id]
        for shown in reporting_period(kpi, period, data_cutoff).history(TREND_PERIODS):
            current = kpi.version_for(shown.start)
            if current is not None:
                used.append((kpi, shown, current.version))
            restated = kpi.restatement(shown.start)
            if restated:
                used.append((kpi, shown, restated[1].version))
    return used


def compute_scorecard_results(engine: sa.Engine, audience: Audience, period: Period, run_id: str) -> int:
    """Compute what the scorecard shows (each KPI's period and trend, in its scope), plus the
    previous version's numbers for periods a newer version restated, to say by how much.
    What the KPI DAG already computed from the same build is reused, not computed again."""
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    periods = periods_needed(audience, period, cutoff)
    rows = len(compute_kpis(engine, periods, run_id, audience.scope, scorecard_kpis(audience), reuse=True))
    registry = load_registry()
    for kpi_id in scorecard_kpis(audience):
        restated: dict[int, list[Period]] = {}  # the replaced version -> the periods it reported
        for shown in periods:
            restatement = registry[kpi_id].restatement(shown.start)
            if restatement:
                restated.setdefault(restatement[1].version, []).append(shown)
        for previous, shown in restated.items():
            rows += len(
                compute_kpis(engine, shown, run_id, audience.scope, [kpi_id], version=previous, reuse=True)
            )
    return rows


def build_view(
    conn: sa.Connection,
    audience: Audience,
    period: Period,
    run_id: str,
    checked_at: datetime | None = None,
) -> ScorecardView:
    """Everything the scorecard shows. `checked_at` is when the run was scheduled for (the
    completeness gate judges freshness then); by default, the end of the period."""
    registry = load_registry()
    build = current_build(conn)
    results = ScorecardResults.load(conn, audience)
    gate = check_completeness(
        conn,
        build.build_id,
        period.end_at,
        checked_at or period.end_at,
        timedelta(hours=audience.max_data_age_hours),
        expected_objects(Settings.from_env().extract_sources),
    )
    shown = [(registry[k], reporting_period(registry[k], period, build.data_cutoff)) for k in audience.kpis]
    funnel_steps = (
        [(registry[k], reporting_period(registry[k], period, build.data_cutoff)) for k in FUNNEL_KPIS]
        if audience.funnel
        else []
    )
    tiles = tuple(_tile_with_notes(kpi, shown_period, results) for kpi, shown_period in shown)
    labels = {d: segment_labels(conn, d) for d in DIMENSION_LABELS}
    judged = [(kpi, judge(kpi, results.total(kpi, p))) for kpi, p in _unique([*shown, *funnel_steps])]
    results_sha256, results_rows = results.digest(results_used(audience, period, build.data_cutoff))
    return ScorecardView(
        title=audience.title,
        audience=audience.name,
        scope_label=_scope_label(audience),
        period_label=period.label,
        data_cutoff_text=f"{build.data_cutoff:%d %b %Y %H:%M} UTC",
        build_id=build.build_id,
        run_id=run_id,
        tiles=tiles,
        definitions=_definitions(_unique([*shown, *funnel_steps, *_attribution_models(audience, period)])),
        footnotes=_footnotes(tiles, audience),
        narrative=_narrative(shown, tiles, results, audience, labels),
        completeness_problems=gate.problems,
        banner=None if gate.complete else INCOMPLETE_BANNER,
        freshness=_freshness_lines(gate),
        exclusions=_exclusion_notes(conn, build.build_id, audience, shown),
        funnel=funnel_section(results, funnel_steps) if funnel_steps else None,
        attribution=_attribution(results, audience, period, labels["channel"]),
        perspectives=perspectives(judged),
        breakdowns=tuple(breakdown(results, d, shown, labels[d]) for d in audience.breakdowns),
        engagement=_engagement_section(conn, audience, period) if audience.hot_prospects else None,
        results_sha256=results_sha256,
        results_rows=results_rows,
    )


def _attribution_models(audience: Audience, period: Period) -> list[tuple[Kpi, Period]]:
    registry = load_registry()
    return [(registry[k], period) for k in attribution_kpis(audience.attribution)]


def _attribution(
    results: ScorecardResults, audience: Audience, period: Period, labels: dict[str, str]
) -> AttributionSection | None:
    models = [kpi for kpi, _ in _attribution_models(audience, period)]
    return attribution_section(results, models, period, labels) if models else None


def _unique(pairs: list[tuple[Kpi, Period]]) -> list[tuple[Kpi, Period]]:
    """Each KPI once, at its first occurrence (a funnel step may also be a tile)."""
    unique: dict[str, tuple[Kpi, Period]] = {}
    for kpi, period in pairs:
        unique.setdefault(kpi.id, (kpi, period))
    return list(unique.values())


def _tile_with_notes(kpi: Kpi, shown: Period, results: ScorecardResults) -> KpiTile:
    history = shown.history(TREND_PERIODS)
    rows = [results.total(kpi, p) for p in history]
    tile = _tile(kpi, shown, rows[-1], rows[-2], [r["value"] if r else None for r in rows])
    restated = _restatement_note(kpi, shown, results, rows[-1])
    return replace(tile, notes=(*tile.notes, restated)) if restated else tile


def _definitions(shown: list[tuple[Kpi, Period]]) -> tuple[DefinitionNote, ...]:
    """The version in effect for each KPI's shown period; a description shared by variants
    of one KPI is printed once."""
    notes, described = [], {}
    for kpi, period in shown:
        version = kpi.version_for(period.start)
        first = described.setdefault(kpi.description, kpi.name)
        notes.append(
            DefinitionNote(
                kpi_id=kpi.id,
                name=kpi.name,
                version=version.version,
                sql_sha256=version.sql_sha256,
                sql_sha256_short=version.sql_sha256[:12],
                effective_from=version.effective_from.isoformat(),
                description=kpi.description if first == kpi.name else f"As {first}, with its own parameters.",
                owner=kpi.owner,
            )
        )
    return tuple(notes)


def _narrative(
    shown: list[tuple[Kpi, Period]],
    tiles: tuple[KpiTile, ...],
    results: ScorecardResults,
    audience: Audience,
    labels: dict[str, dict[str, str]],
) -> tuple[str, ...]:
    """What moved most (and which segment drove it), then where the KPIs stand."""
    movers = []
    for (kpi, period), tile in zip(shown, tiles, strict=True):
        now, before = results.total(kpi, period), results.total(kpi, period.previous())
        if tile.status in ("on_target", "watch", "below") and before and before["value"] is not None:
            movers.append(Mover(kpi, period, now["value"], before["value"], tile.status))
    sentences = []
    if movers:
        mover = max(movers, key=lambda m: m.relative_change)
        sentences.append(mover_sentence(mover))
        preferred = [*audience.breakdowns, *mover.kpi.dimensions]
        dimension = next((d for d in preferred if d in mover.kpi.dimensions), None)

        driver = dimension and driver_sentence(mover, results, dimension, labels.get(dimension, {}))
        if driver:
            sentences.append(driver)
    sentences += status_sentences([(t.name, t.status) for t in tiles])
    return tuple(sentences)


def _freshness_lines(gate: Completeness) -> tuple[str, ...]:
    """'Salesforce Lead, HubSpot contacts: complete to 02 Nov 2026 00:00 UTC', one line per
    cut-off, then each object whose newest extract did not complete."""
    by_cutoff: dict[str, list[str]] = {}
    for item in gate.objects:
        when = "no complete data" if item.complete_to is None else f"{item.complete_to:%d %b %Y %H:%M} UTC"
        by_cutoff.setdefault(when, []).append(item.label)
    lines = [f"{', '.join(labels)}: complete to {when}." for when, labels in by_cutoff.items()]
    lines += [
        f"{item.label}: the newest extract is {item.newest_status}."
        for item in gate.objects
        if item.newest_status != "complete"
    ]
    return tuple(lines)


def _exclusion_notes(
    conn: sa.Connection, build_id: str, audience: Audience, shown: list[tuple[Kpi, Period]]
) -> tuple[str, ...]:
    """What was left out before counting: test records, quarantined records, outliers."""
    summary = json.loads(
        conn.execute(
            sa.text("select summary from staging.builds where build_id = :b"), {"b": build_id}
        ).scalar_one()
    )
    prospects = sum(summary.get("excluded_prospects_by_rule", {}).values())
    opportunities = sum(summary.get("excluded_opportunities_by_rule", {}).values())
    quarantined = sum(summary.get("quarantined_by_reason", {}).values())
    notes = [
        f"Test and internal records excluded: {prospects:,} prospects, {opportunities:,} opportunities. "
        f"Records quarantined as malformed: {quarantined:,}."
    ]
    for kpi, period in shown:
        excluded = conn.execute(
            sa.select(sa.func.count(sa.distinct(kpi_exclusions.c.record_id))).where(
                (kpi_exclusions.c.kpi_id == kpi.id)
                & (kpi_exclusions.c.period_start == period.start)
                & (kpi_exclusions.c.grain == audience.grain)
                & (kpi_exclusions.c.scope == audience.scope.key)
                & (kpi_exclusions.c.timezone == audience.timezone)
            )
        ).scalar_one()
        if excluded:
            notes.append(f"{kpi.name}: {excluded:,} records excluded by its outlier rule.")
    return tuple(notes)


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
        moving_average_text="–" if latest is None else points(latest["moving_average_4w"], signed=True),
        trend_chart=None if trend.empty else _trend_chart(trend),
        notes=tuple(notes),
    )


def _hot_row(row) -> HotProspectRow:
    return HotProspectRow(
        rank=row.rank,
        name=crm_text(row.name),
        company=crm_text(row.company),
        owner=crm_text(row.owner),
        region=crm_text(row.region),
        source=crm_text(row.source),
        grade=crm_text(row.lead_grade),
        score_text=points(row.score),
        change_7d_text=points(row.change_7d, signed=True),
        change_14d_text=points(row.change_14d, signed=True),
        last_activity_text="–" if pd.isna(row.last_activity_at) else f"{row.last_activity_at:%d %b}",
    )


def _trend_chart(trend: pd.DataFrame) -> str:
    def values(column: str) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in trend[column]]

    labels = [f"{pd.Timestamp(w):%d %b}" for w in trend["week_start"]]
    return weekly_change_chart(labels, values("average_change"), values("moving_average_4w"))


def _scope_label(audience: Audience) -> str:
    if audience.scope.column is None:
        return "All regions and segments"
    return f"{audience.scope.column.title()}: {audience.scope.value}"


def _restatement_note(kpi: Kpi, period: Period, results: ScorecardResults, row) -> str | None:
    """'Restated by v2 ...: v1 gave 17.9% (+0.0 pts)', when a newer version changed the period."""
    restated = kpi.restatement(period.start)
    if restated is None:
        return None
    new, old = restated
    before = results.total(kpi, period, old.version)
    if before is None:
        return f"Restated by v{new.version} (published {new.published_on:%d %b %Y})."
    now = row["value"] if row else None
    return (
        f"Restated by v{new.version} (published {new.published_on:%d %b %Y}): v{old.version} gave "
        f"{format_value(kpi.unit, before['value'])} ({change_text(kpi.unit, now, before['value'])})."
    )


def _tile(kpi: Kpi, period: Period, row, previous, trend) -> KpiTile:
    value = row["value"] if row else None
    flags = flags_of(row)
    judged = status(kpi, value, flags)
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
        change_text=change_text(kpi.unit, value, previous["value"] if previous else None),
        status=judged,
        status_label=STATUS_LABELS[judged],
        target_text=_target_text(kpi),
        volume_text=f"n = {int(row['volume']):,}" if row else "n = 0",
        trend_chart=sparkline([v * 100 if v is not None else None for v in trend]),
        trend_caption=_trend_caption(period, len(trend)),
        notes=tuple(notes),
    )


def _trend_caption(period: Period, count: int) -> str:
    first = period.previous(count - 1)
    return f"Last {count} {period.grain}s, {first.short_label} to {period.short_label}"


def _interval_text(kpi: Kpi, row) -> str:
    if not row or pd.isna(row.get("ci_low")) or row.get("ci_low") is None:
        return ""
    return f"{row['ci_low'] * 100:.1f}–{row['ci_high'] * 100:.1f}%"


def _target_text(kpi: Kpi) -> str:
    target = kpi.thresholds.get("target")
    return f"Target {format_value(kpi.unit, target)}" if target is not None else "No target set"


def _footnotes(tiles: tuple[KpiTile, ...], audience: Audience) -> tuple[str, ...]:
    notes = [
        "Rates are computed from numerators and denominators; duplicate prospects across "
        "Salesforce and HubSpot are merged and test records excluded before counting. "
        f"Periods are {audience.grain}s in {audience.timezone}.",
    ]
    if any(t.status == "insufficient" for t in tiles):
        notes.append('"Too few to judge": volume below the KPI\'s minimum; no status is given.')
    if audience.breakdowns:
        notes.append(
            "Breakdowns show the largest segments by volume; a segment's status uses the KPI's "
            'thresholds, and one below the minimum volume reads "Too few to judge".'
        )
    return tuple(notes)
