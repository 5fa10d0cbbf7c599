"""Two versions of a KPI side by side on the same data, before one replaces the other.

Both versions are computed (and stored, each under its own version number) for the same
periods and scope; the report lists every period, dimension and segment where they differ.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import sqlalchemy as sa

from revops.kpis.engine import EVERYTHING, compute_kpis
from revops.kpis.registry import Kpi
from revops.kpis.scope import Scope
from revops.periods import Period

KEYS = ["grain", "period_start", "dimension", "segment"]


def compare_versions(
    engine: sa.Engine,
    kpi_id: str,
    version_a: int,
    version_b: int,
    periods: list[Period],
    run_id: str,
    scope: Scope = EVERYTHING,
    tolerance: float = 1e-9,
) -> pd.DataFrame:
    """Rows where the versions disagree (value, numerator or denominator), or where a
    segment appears in only one of them."""
    a = compute_kpis(engine, periods, run_id, scope, [kpi_id], version=version_a)
    b = compute_kpis(engine, periods, run_id, scope, [kpi_id], version=version_b)
    columns = [*KEYS, "numerator", "denominator", "value"]
    side_by_side = _frame(a, columns).merge(
        _frame(b, columns), on=KEYS, how="outer", suffixes=(f"_v{version_a}", f"_v{version_b}")
    )
    side_by_side["difference"] = side_by_side[f"value_v{version_b}"] - side_by_side[f"value_v{version_a}"]
    differs = disagreements(side_by_side, version_a, version_b, tolerance)
    return side_by_side[differs].sort_values(KEYS, ignore_index=True)


def disagreements(side_by_side: pd.DataFrame, version_a: int, version_b: int, tolerance: float) -> pd.Series:
    """Rows whose value, numerator or denominator differ by more than `tolerance`, relative
    to their size (a currency total in the millions sums its floats in another order); a
    number present in one version only differs, missing in both does not."""
    differs = pd.Series(False, index=side_by_side.index)
    for column in ("value", "numerator", "denominator"):
        a = side_by_side[f"{column}_v{version_a}"].to_numpy(dtype=float)
        b = side_by_side[f"{column}_v{version_b}"].to_numpy(dtype=float)
        differs |= ~np.isclose(a, b, rtol=tolerance, atol=tolerance, equal_nan=True)
    return differs


def _frame(results: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if results.empty:
        return pd.DataFrame(columns=columns)
    return results[columns]


def sql_diff(kpi: Kpi, version_a: int, version_b: int) -> str:
    """A unified diff of two versions' SQL, headed by their rationales."""
    versions = {v.version: v for v in kpi.versions}
    a, b = versions[version_a], versions[version_b]
    header = [
        f"{kpi.id}: v{a.version} ({a.status}, in effect from {a.effective_from}) -> "
        f"v{b.version} ({b.status}, in effect from {b.effective_from})",
        f"v{a.version} rationale: {a.rationale}",
        f"v{b.version} rationale: {b.rationale}",
        "",
    ]
    diff = difflib.unified_diff(
        a.sql.splitlines(), b.sql.splitlines(), fromfile=a.sql_path.name, tofile=b.sql_path.name, lineterm=""
    )
    return "\n".join([*header, *diff])
