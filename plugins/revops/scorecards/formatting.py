"""How numbers and judgements read on a scorecard: one place, so the tiles, the funnel, the
breakdowns and the e-mail never format the same value two ways."""

from __future__ import annotations

import math
import re

import pandas as pd

from revops.kpis.registry import Kpi

STATUS_LABELS = {
    "on_target": "On target",
    "watch": "Watch",
    "below": "Below threshold",
    "insufficient": "Too few to judge",
    "no_data": "No data",
    "not_judged": "Not judged",
}
SHORT_STATUS_LABELS = {
    "on_target": "on target",
    "watch": "watch",
    "below": "below",
    "insufficient": "too few",
    "no_data": "no data",
    "not_judged": "",
}


# Contact details of prospects never reach a scorecard, even from a free-text CRM field.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d[\d ().-]{6,}\d(?![\w.])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def format_value(unit: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "currency":
        return f"${value:,.0f}"
    if unit in ("days", "hours"):
        return f"{value:,.1f} {unit}"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def change_text(unit: str, value: float | None, previous: float | None) -> str:
    if value is None or previous is None:
        return "no comparison"
    if unit == "percent":
        return f"{(value - previous) * 100:+.1f} pts"
    if unit == "currency":
        return f"{'+' if value >= previous else '-'}${abs(value - previous):,.0f}"
    if unit in ("days", "hours"):
        return f"{value - previous:+,.1f} {unit}"
    if unit == "count":
        return f"{value - previous:+,.0f}"
    return f"{value - previous:+,.2f}"


def status(kpi: Kpi, value: float | None, flags: set[str]) -> str:
    """on_target | watch | below | insufficient | no_data, against the KPI's thresholds;
    not_judged for a KPI that has none (a capacity figure, a total)."""
    if value is None or "no_data" in flags:
        return "no_data"
    if "insufficient_volume" in flags:
        return "insufficient"
    target, warning = kpi.thresholds.get("target"), kpi.thresholds.get("warning")
    if target is None and warning is None:
        return "not_judged"
    sign = 1 if kpi.direction == "higher_is_better" else -1
    if target is not None and sign * (value - target) >= 0:
        return "on_target"
    if warning is not None and sign * (value - warning) >= 0:
        return "watch"
    return "below"


def flags_of(row: dict | None) -> set[str]:
    return set(filter(None, (row["flags"] if row else "no_data").split(",")))


def points(value, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def crm_text(value) -> str:
    """Free text from a CRM field, fit for a scorecard: '–' when empty, contact details masked."""
    if value is None or pd.isna(value):
        return "–"
    return _PHONE.sub(_mask_phone, _EMAIL.sub("[e-mail removed]", str(value)))


def _mask_phone(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    return "[phone removed]" if digits >= 7 and not _ISO_DATE.fullmatch(text) else text
