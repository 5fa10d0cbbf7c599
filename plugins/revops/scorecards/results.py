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
        # Indexed once: a scorecard makes about 200 lookups, and filtering the whole frame for
        # each cost about a tenth of building the view. Only row positions are kept per key:
        # a frame for each of the thousands of groups cost more than the lookups use.
        self._frame = frame
        keys = ["kpi_id", "kpi_version", "period_start", "dimension"]
        self._positions_of = frame.groupby(keys, sort=False).indices  # a lookup table: no order needed

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
        any run (or a replay) give the same digest.

        Each number counts to a 4-byte float's seven significant digits: embedded warehouses
        stored the results so until 4 Dec 2026, and a replay of a run recorded then must give
        its digest from 8-byte numbers; the rounding also absorbs the last-bit differences of
        DuckDB's parallel sums from run to run."""
        keys = {(kpi.id, version, period.start) for kpi, period, version in used}
        in_use = [key in keys for key in zip(*(self._frame[c] for c in DIGEST_COLUMNS[:3]), strict=True)]
        frame = self._frame.loc[in_use, DIGEST_COLUMNS].sort_values(DIGEST_COLUMNS[:5]).reset_index(drop=True)
        for column in ("numerator", "denominator", "value"):
            frame[column] = frame[column].astype("float32").astype(float).round(9)
        canonical = frame.to_csv(index=False, date_format="%Y-%m-%d")
        return hashlib.sha256(canonical.encode()).hexdigest(), len(frame)

    def segments(self, kpi: Kpi, period: Period, dimension: str, version: int | None = None) -> pd.DataFrame:
        in_effect = kpi.version_for(period.start, version)
        if in_effect is None:
            return pd.DataFrame()
        positions = self._positions_of.get((kpi.id, in_effect.version, period.start, dimension), [])
        return self._frame.iloc[positions]
