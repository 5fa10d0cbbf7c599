"""Reporting periods, computed in one place: ISO weeks (Monday start) and calendar months.

A period is half-open, [start, end), in dates; the warehouse compares them with UTC times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

GRAINS = ("week", "month")


@dataclass(frozen=True, order=True)
class Period:
    grain: str
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.grain == "month":
            return self.start.strftime("%B %Y")
        last_day = self.end - timedelta(days=1)
        week = self.start.isocalendar().week
        return f"{self.start.day} {self.start:%b} – {last_day.day} {last_day:%b %Y} (week {week})"

    @property
    def short_label(self) -> str:
        return self.start.strftime("%b %Y") if self.grain == "month" else f"{self.start.day} {self.start:%b}"

    def previous(self, count: int = 1) -> Period:
        period = self
        for _ in range(count):
            period = period_containing(self.grain, period.start - timedelta(days=1))
        return period

    def history(self, count: int) -> list[Period]:
        """This period and the `count - 1` before it, oldest first."""
        return [self.previous(k) for k in range(count - 1, -1, -1)]


def period_containing(grain: str, day: date) -> Period:
    if grain == "week":
        start = day - timedelta(days=day.weekday())
        return Period(grain, start, start + timedelta(days=7))
    if grain == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Period(grain, start, end)
    raise ValueError(f"unknown grain {grain!r}; expected one of {GRAINS}")
