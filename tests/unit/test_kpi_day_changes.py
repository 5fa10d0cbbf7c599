"""The slice comparison `benchmarks.kpi_day_changes` reports in docs/performance.md."""

from __future__ import annotations

from datetime import date

import pandas as pd

from benchmarks.kpi_day_changes import _changed_slices


def _rows(*rows: tuple) -> pd.DataFrame:
    """Result rows of one KPI's weekly slices: (period start, segment, numerator, denominator)."""
    return pd.DataFrame(
        [
            {
                "kpi_id": "win_rate_count",
                "kpi_version": 1,
                "grain": "week",
                "timezone": "UTC",
                "period_start": start,
                "scope": "all",
                "dimension": "total" if segment == "all" else "region",
                "segment": segment,
                "numerator": numerator,
                "denominator": denominator,
                "volume": int(denominator),
            }
            for start, segment, numerator, denominator in rows
        ]
    )


def test_a_slice_changed_when_any_of_its_rows_did(tmp_path):
    first, second, third, fourth = (date(2026, 10, day) for day in (5, 12, 19, 26))
    before = _rows(
        (first, "all", 3, 10), (first, "EMEA", 1, 4),  # unchanged
        (second, "all", 3, 10), (second, "EMEA", 1, 4),  # a segment's numerator moves
        (third, "all", 3, 10),  # a segment appears
        (fourth, "all", 0.1 + 0.2, 10),  # the same sum in other last bits: no change
    )  # fmt: skip
    after = _rows(
        (first, "all", 3, 10), (first, "EMEA", 1, 4),
        (second, "all", 3, 10), (second, "EMEA", 2, 4),
        (third, "all", 3, 10), (third, "APAC", 0, 1),
        (fourth, "all", 0.3, 10),
    )  # fmt: skip
    before.to_parquet(tmp_path / "before.parquet")
    after.to_parquet(tmp_path / "after.parquet")

    report = _changed_slices(tmp_path / "before.parquet", tmp_path / "after.parquet")

    assert (report["slices"], report["changed_slices"], report["changed_share"]) == (4, 2, 0.5)
    assert report["by_period"] == {
        f"week {first}": {"slices": 1, "changed": 0},
        f"week {second}": {"slices": 1, "changed": 1},
        f"week {third}": {"slices": 1, "changed": 1},
        f"week {fourth}": {"slices": 1, "changed": 0},
    }
    assert report["by_kpi"] == {"win_rate_count": {"slices": 4, "changed": 2}}
