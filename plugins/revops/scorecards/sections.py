"""Scorecard sections after the headline tiles: the funnel, the balanced-scorecard view by
perspective, and the breakdowns by dimension. Each is a small frozen view the template lays out."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from revops.kpis.registry import Kpi
from revops.periods import Period
from revops.scorecards.charts import funnel_chart
from revops.scorecards.formatting import (
    SHORT_STATUS_LABELS,
    STATUS_LABELS,
    crm_text,
    flags_of,
    format_value,
    status,
)
from revops.scorecards.narrative import DIMENSION_LABELS
from revops.scorecards.results import ScorecardResults
from revops.warehouse import read_frame

PERSPECTIVES = ("financial", "customer", "internal_process", "learning_and_growth")
BREAKDOWN_ROWS = 8  # segments per breakdown table, the largest by volume


@dataclass(frozen=True)
class JudgedValue:
    """A KPI value with its status, as any section shows it."""

    kpi_id: str
    name: str
    value_text: str
    volume_text: str
    status: str
    status_label: str

    @property
    def short_label(self) -> str:
        """The status in a table cell: short, lower case."""
        return SHORT_STATUS_LABELS[self.status]


@dataclass(frozen=True)
class FunnelStep:
    name: str
    period_label: str
    cohort_text: str
    converted_text: str
    judged: JudgedValue
    target_text: str


@dataclass(frozen=True)
class FunnelSection:
    steps: tuple[FunnelStep, ...]
    chart: str


@dataclass(frozen=True)
class Perspective:
    name: str
    values: tuple[JudgedValue, ...]


@dataclass(frozen=True)
class BreakdownRow:
    segment: str
    cells: tuple[JudgedValue, ...]  # one per KPI of the table


@dataclass(frozen=True)
class Breakdown:
    dimension: str
    title: str
    kpi_names: tuple[str, ...]
    rows: tuple[BreakdownRow, ...]
    more_segments: int


@dataclass(frozen=True)
class AttributionRow:
    channel: str
    cells: tuple[str, ...]  # one per model: the amount credited and its share


@dataclass(frozen=True)
class AttributionSection:
    """Won revenue (or new pipeline) credited to channels by each attribution model."""

    title: str
    period_label: str
    model_names: tuple[str, ...]
    rows: tuple[AttributionRow, ...]
    total_cells: tuple[str, ...]
    more_channels: int


MODEL_NAMES = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "position_based": "Position (40/20/40)",
    "time_decay": "Time decay",
}


def attribution_section(
    results: ScorecardResults, models: list[Kpi], period: Period, labels: dict[str, str]
) -> AttributionSection:
    """One row per channel, the largest by linear credit first; each cell the amount a model
    credits the channel and its share of the total, so where the models disagree shows."""
    credits = pd.DataFrame(
        {kpi.id: results.segments(kpi, period, "channel").set_index("segment")["numerator"] for kpi in models}
    ).fillna(0.0)
    totals = [float((results.total(kpi, period) or {}).get("numerator", 0.0)) for kpi in models]
    linear = next(kpi.id for kpi in models if kpi.parameters["model"] == "linear")
    order = credits.sort_values(linear, ascending=False, kind="stable") if not credits.empty else credits
    rows = tuple(
        AttributionRow(
            channel=crm_text(labels.get(channel, channel)),
            cells=tuple(_credit_text(amount, total) for amount, total in zip(amounts, totals, strict=True)),
        )
        for channel, amounts in zip(
            order.index[:BREAKDOWN_ROWS], order.to_numpy()[:BREAKDOWN_ROWS], strict=True
        )
    )
    measure = "New pipeline" if models[0].parameters["measure"] == "pipeline" else "Won revenue"
    return AttributionSection(
        title=f"{measure} by channel, each attribution model",
        period_label=period.label,
        model_names=tuple(MODEL_NAMES[kpi.parameters["model"]] for kpi in models),
        rows=rows,
        total_cells=tuple(format_value("currency", total) for total in totals),
        more_channels=max(len(order) - BREAKDOWN_ROWS, 0),
    )


def _credit_text(amount: float, total: float) -> str:
    share = f" ({amount / total:.0%})" if total else ""
    return format_value("currency", amount) + share


def judge(kpi: Kpi, row: dict | None) -> JudgedValue:
    value = None if not row or pd.isna(row["value"]) else float(row["value"])
    judged = status(kpi, value, flags_of(row))
    return JudgedValue(
        kpi_id=kpi.id,
        name=kpi.name,
        value_text=format_value(kpi.unit, value),
        volume_text=f"n = {int(row['volume']):,}" if row else "n = 0",
        status=judged,
        status_label=STATUS_LABELS[judged],
    )


def funnel_section(results: ScorecardResults, steps: list[tuple[Kpi, Period]]) -> FunnelSection:
    """Each step's latest matured cohort: how many entered the stage, how many moved on."""
    built = []
    for kpi, period in steps:
        row = results.total(kpi, period)
        built.append(
            FunnelStep(
                name=kpi.name,
                period_label=period.short_label,
                cohort_text=f"{int(row['denominator']):,}" if row else "0",
                converted_text=f"{int(row['numerator']):,}" if row else "0",
                judged=judge(kpi, row),
                target_text=format_value(kpi.unit, kpi.thresholds.get("target")),
            )
        )
    chart = funnel_chart(
        [kpi.name for kpi, _ in steps],
        [_value(results.total(kpi, period)) for kpi, period in steps],
        [kpi.thresholds.get("target") for kpi, _ in steps],
    )
    return FunnelSection(tuple(built), chart)


def perspectives(judged: list[tuple[Kpi, JudgedValue]]) -> tuple[Perspective, ...]:
    """The balanced-scorecard view: every KPI shown, grouped by its perspective; a
    perspective with no KPI on this scorecard still appears, so the gap is visible."""
    return tuple(
        Perspective(
            name=perspective.replace("_", " ").capitalize(),
            values=tuple(value for kpi, value in judged if kpi.perspective == perspective),
        )
        for perspective in PERSPECTIVES
    )


def breakdown(
    results: ScorecardResults,
    dimension: str,
    shown: list[tuple[Kpi, Period]],
    labels: dict[str, str],
) -> Breakdown:
    """One table: the largest segments of a dimension, the value of each KPI that can be
    broken down this way in its shown period."""
    shown = [(kpi, period) for kpi, period in shown if dimension in kpi.dimensions]
    frames = {kpi.id: results.segments(kpi, period, dimension).set_index("segment") for kpi, period in shown}
    volume = pd.concat([f["volume"] for f in frames.values()], axis=1).fillna(0).sum(axis=1)
    order = volume.sort_values(ascending=False, kind="stable")
    top = list(order.index[:BREAKDOWN_ROWS])
    rows = []
    for segment in top:
        cells = []
        for kpi, _period in shown:
            frame = frames[kpi.id]
            cells.append(judge(kpi, frame.loc[segment].to_dict() if segment in frame.index else None))
        rows.append(BreakdownRow(crm_text(labels.get(segment, segment)), tuple(cells)))
    return Breakdown(
        dimension=dimension,
        title=f"By {DIMENSION_LABELS.get(dimension, dimension)}",
        kpi_names=tuple(kpi.name for kpi, _ in shown),
        rows=tuple(rows),
        more_segments=max(len(order) - BREAKDOWN_ROWS, 0),
    )


def segment_labels(conn: sa.Connection, dimension: str) -> dict[str, str]:
    """Readable names for segments stored as CRM ids (owners, campaigns)."""
    if dimension in ("lead_owner", "opportunity_owner", "changed_by"):
        users = read_frame(conn, "select user_id, name from staging.users")
        return {
            "unassigned": "Unassigned",
            "unknown": "Unknown",
            **dict(zip(users["user_id"], users["name"], strict=True)),
        }

    if dimension == "campaign":
        campaigns = read_frame(
            conn,
            """
            select record_id, payload from raw.records
            where source = 'salesforce' and object = 'Campaign' and not is_deleted
            order by record_id, record_version
            """,
        )
        names = {r.record_id: _json_field(r.payload, "Name") or r.record_id for r in campaigns.itertuples()}
        return {"none": "No campaign", **names}

    return {}


def _json_field(payload: str, field: str) -> str | None:
    return json.loads(payload).get(field)


def _value(row: dict | None) -> float | None:
    return None if not row or row["value"] is None or pd.isna(row["value"]) else float(row["value"])
