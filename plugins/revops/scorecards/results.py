"""The stored KPI results one scorecard reads: its scope, grain and time zone, every dimension."""

from __future__ import annotations

import hashlib

import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import TOTAL
from revops.kpis.registry import Kpi
from revops.periods import Period
from revops.scorecards.audiences import Audience
from revops.warehouse import read_frame

DIGEST_COLUMNS = [
    "kpi_id",
    "kpi_version",
    "period_start",
    "dimension",
    "segment",
    "numerator",
    "denominator",
    "value",
    "volume",
    "flags",
]


class ScorecardResults:
    """Lookups into marts.kpi_results for one audience, always of the KPI version in effect
    for the period asked about (or the version named)."""

    def __init__(self, frame: pd.DataFrame):
        frame = frame.copy()
        frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
        self._by_kpi = {kpi_id: group for kpi_id, group in frame.groupby("kpi_id", sort=False)}

    @classmethod
    def load(cls, conn: sa.Connection, audience: Audience) -> ScorecardResults:
        return cls(
            read_frame(
                conn,
                """
                select kpi_id, kpi_version, period_start, dimension, segment, numerator,
                       denominator, value, ci_low, ci_high, volume, flags
                from marts.kpi_results
                where scope = :scope and grain = :grain and timezone = :timezone
                """,
                {"scope": audience.scope.key, "grain": audience.grain, "timezone": audience.timezone},
            )
        )

    def total(self, kpi: Kpi, period: Period, version: int | None = None) -> dict | None:
        rows = self.segments(kpi, period, TOTAL, version)
        if rows.empty:
            return None
        row = rows.iloc[0].to_dict()
        row["value"] = None if pd.isna(row["value"]) else float(row["value"])
        return row

    def digest(self, used: list[tuple[Kpi, Period, int]]) -> tuple[str, int]:
        """sha256 and row count of the results a scorecard used: every dimension of each
        (KPI, period, version), in a canonical order and rounding, so the same numbers from
        any run (or a replay) give the same digest."""
        frames = [self._rows(kpi, period, version) for kpi, period, version in used]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DIGEST_COLUMNS)
        frame = frame[DIGEST_COLUMNS].sort_values(DIGEST_COLUMNS[:5]).reset_index(drop=True)
        for column in ("numerator", "denominator", "value"):
            frame[column] = frame[column].astype(float).round(9)
        canonical = frame.to_csv(index=False, date_format="%Y-%m-%d")
        return hashlib.sha256(canonical.encode()).hexdigest(), len(frame)

    def _rows(self, kpi: Kpi, period: Period, version: int) -> pd.DataFrame:
        frame = self._by_kpi.get(kpi.id)
        if frame is None:
            return pd.DataFrame(columns=DIGEST_COLUMNS)
        return frame[(frame["kpi_version"] == version) & (frame["period_start"] == period.start)]

    def segments(self, kpi: Kpi, period: Period, dimension: str, version: int | None = None) -> pd.DataFrame:
        in_effect = kpi.version_for(period.start, version)
        frame = self._by_kpi.get(kpi.id)
        if in_effect is None or frame is None:
            return pd.DataFrame()
        return frame[
            (frame["kpi_version"] == in_effect.version)
            & (frame["period_start"] == period.start)
            & (frame["dimension"] == dimension)
        ]
