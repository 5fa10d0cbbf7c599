"""Reporting periods, computed in one place: ISO weeks, calendar months, fiscal quarters.

A period is half-open, [start, end), in local dates of a time zone (the audience's). The
warehouse holds UTC, so a period also knows its boundaries as UTC instants: in Europe/Berlin
the week of 26 Oct 2026 starts at 25 Oct 23:00 UTC. Dates without a time (close dates) are
compared with the local dates; timestamps with the UTC instants.

The fiscal year starts in the month set in `include/config/reporting.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from revops.configuration import read_config

GRAINS = ("week", "month", "quarter")


@cache
def fiscal_year_start_month() -> int:
    month = int(read_config("reporting")["fiscal_year_start_month"])
    if not 1 <= month <= 12:
        raise ValueError(f"reporting.yaml: fiscal_year_start_month {month} is not a month")
    return month


@dataclass(frozen=True, order=True)
class Period:
    grain: str
    start: date
    end: date
    timezone: str = "UTC"

    @property
    def start_at(self) -> datetime:
        """The period's first instant, as naive UTC (how the warehouse stores time)."""
        return _utc(self.start, self.timezone)

    @property
    def end_at(self) -> datetime:
        return _utc(self.end, self.timezone)

    @property
    def label(self) -> str:
        if self.grain == "month":
            return self.start.strftime("%B %Y")
        if self.grain == "quarter":
            return f"{self.fiscal_name} ({self.start:%b} – {self.end - timedelta(days=1):%b %Y})"
        last_day = self.end - timedelta(days=1)
        week = self.start.isocalendar().week
        return f"{self.start.day} {self.start:%b} – {last_day.day} {last_day:%b %Y} (week {week})"

    @property
    def short_label(self) -> str:
        if self.grain == "month":
            return self.start.strftime("%b %Y")
        if self.grain == "quarter":
            return self.fiscal_name
        return f"{self.start.day} {self.start:%b}"

    @property
    def fiscal_name(self) -> str:
        """`FY2027 Q1`: a fiscal year is named after the calendar year it ends in."""
        months_in = (self.start.month - fiscal_year_start_month()) % 12
        quarter = months_in // 3 + 1
        fiscal_year = self.start.year + (
            1 if fiscal_year_start_month() > 1 and self.start.month >= fiscal_year_start_month() else 0
        )
        return f"FY{fiscal_year} Q{quarter}"

    def previous(self, count: int = 1) -> Period:
        period = self
        for _ in range(count):
            period = period_containing(self.grain, period.start - timedelta(days=1), self.timezone)
        return period

    def history(self, count: int) -> list[Period]:
        """This period and the `count - 1` before it, oldest first."""
        return [self.previous(k) for k in range(count - 1, -1, -1)]


def period_containing(grain: str, day: date, timezone: str = "UTC") -> Period:
    if grain == "week":
        start = day - timedelta(days=day.weekday())
        return Period(grain, start, start + timedelta(days=7), timezone)
    if grain == "month":
        start = day.replace(day=1)
        return Period(grain, start, _add_months(start, 1), timezone)
    if grain == "quarter":
        months_in = (day.month - fiscal_year_start_month()) % 3
        start = _add_months(day.replace(day=1), -months_in)
        return Period(grain, start, _add_months(start, 3), timezone)
    raise ValueError(f"unknown grain {grain!r}; expected one of {GRAINS}")


def naive_utc(value: datetime | str | None) -> datetime | None:
    """A time as the warehouse keeps time: naive UTC. Aware times are converted, naive ones
    are taken as UTC already, ISO text (a ledger entry) is parsed first."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) if moment.tzinfo else moment


def local_date(instant: datetime, timezone: str) -> date:
    """The date an instant (naive UTC, or aware) falls on in `timezone`."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo("UTC"))
    return instant.astimezone(ZoneInfo(timezone)).date()


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _utc(day: date, timezone: str) -> datetime:
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local_midnight.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
