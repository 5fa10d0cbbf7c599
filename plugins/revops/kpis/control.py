"""p-chart control limits over the weekly series of every rate KPI, per segment.

A rate outside its limits is a signal worth a look; inside them, week-to-week movement is
noise. Limits are computed per segment so one rep or region outside its own history stands
out even when the total is calm.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from revops.kpis.registry import load_registry
from revops.kpis.statistics import p_chart_limits
from revops.warehouse import read_frame
from revops.warehouse.load import append_frame
from revops.warehouse.schema import kpi_control_limits, kpi_results

SERIES_KEYS = ["kpi_id", "kpi_version", "grain", "timezone", "scope", "dimension", "segment"]


def update_control_limits(engine: sa.Engine, grain: str = "week", baseline_periods: int = 12) -> int:
    """Recompute the limits of every rate KPI's series of `grain` from the stored results."""
    rate_kpis = [k.id for k in load_registry().values() if k.kind == "rate"]
    columns = [*SERIES_KEYS, "period_start", "numerator", "denominator", "value", "volume"]
    query = sa.select(*(kpi_results.c[c] for c in columns)).where(
        (kpi_results.c.grain == grain) & kpi_results.c.kpi_id.in_(rate_kpis)
    )
    with engine.begin() as conn:
        rows = _limits(read_frame(conn, query), baseline_periods)
        conn.execute(kpi_control_limits.delete().where(kpi_control_limits.c.grain == grain))
        append_frame(conn, kpi_control_limits, rows)
    return len(rows)


def _limits(results: pd.DataFrame, baseline_periods: int) -> pd.DataFrame:
    frames = []
    for _, series in results.sort_values("period_start").groupby(SERIES_KEYS, sort=True):
        limits = p_chart_limits(
            series["numerator"].tolist(), series["denominator"].tolist(), baseline_periods
        )
        keep = [limit is not None for limit in limits]
        if not any(keep):
            continue
        chosen = series[keep].copy()
        chosen[["centre", "lower", "upper"]] = [limit for limit in limits if limit is not None]
        chosen["signal"] = [
            "above_upper" if value > upper else "below_lower" if value < lower else None
            for value, lower, upper in zip(chosen["value"], chosen["lower"], chosen["upper"], strict=True)
        ]
        frames.append(chosen)
    if not frames:
        return pd.DataFrame(columns=[c.name for c in kpi_control_limits.columns])
    return pd.concat(frames, ignore_index=True)[[c.name for c in kpi_control_limits.columns]]
