"""Business calendars: when each region's sales team works (`business_calendar.yaml`).

Lead response time counts working hours only. Each build writes the calendar out as
`staging.working_hours`, one row per region and working day holding that day's opening and
closing as UTC instants (daylight saving applied), so SQL measures working time between two
instants as the sum of their overlaps with those rows. The file's hash is part of the build
id, like the targets file's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from revops.configuration import ConfigError, check_keys, location, read_yaml
from revops.settings import config_dir

DEFAULT_REGION = "default"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@dataclass(frozen=True)
class RegionCalendar:
    timezone: ZoneInfo
    weekdays: frozenset[int]  # Monday 0
    opens: time
    closes: time
    holidays: frozenset[date]

    def works_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def open_hours(self, day: date) -> tuple[datetime, datetime]:
        """The day's opening and closing as naive UTC instants."""
        return tuple(
            datetime.combine(day, clock, self.timezone).astimezone(UTC).replace(tzinfo=None)
            for clock in (self.opens, self.closes)
        )


def calendar_path() -> Path:
    return config_dir() / "business_calendar.yaml"


def load_calendars(path: Path | None = None) -> dict[str, RegionCalendar]:
    """Region -> calendar; a mistake names its file and line. It must define `default`."""
    path = path or calendar_path()
    if not path.exists():
        return {}
    spec = read_yaml(path)
    check_keys(spec, (), required=("regions",))
    regions = spec["regions"]
    calendars = {str(name): _calendar(region) for name, region in regions.items()}
    if DEFAULT_REGION not in calendars:
        raise ConfigError(f"{location(regions)}: regions must include {DEFAULT_REGION!r}")
    return calendars


def _calendar(spec: dict) -> RegionCalendar:
    check_keys(spec, ("holidays",), required=("timezone", "days", "hours"), what="region")
    try:
        zone = ZoneInfo(str(spec["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{location(spec, 'timezone')}: unknown time zone {spec['timezone']!r}") from None
    unknown = [d for d in spec["days"] if d not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"{location(spec, 'days')}: unknown days {unknown}; expected {list(WEEKDAYS)}")
    hours = spec["hours"]
    if len(hours) != 2 or not all(_CLOCK.fullmatch(str(h)) for h in hours) or hours[0] >= hours[1]:
        raise ConfigError(f"{location(spec, 'hours')}: hours must be [opens, closes] as HH:MM, opens first")
    holidays = spec.get("holidays") or []
    if not all(isinstance(day, date) for day in holidays):
        raise ConfigError(f"{location(spec, 'holidays')}: holidays must be dates (YYYY-MM-DD)")
    return RegionCalendar(
        timezone=zone,
        weekdays=frozenset(WEEKDAYS.index(d) for d in spec["days"]),
        opens=time.fromisoformat(hours[0]),
        closes=time.fromisoformat(hours[1]),
        holidays=frozenset(holidays),
    )


def working_hours(calendars: dict[str, RegionCalendar], first: date, last: date) -> pd.DataFrame:
    """region, day, start_at, end_at (naive UTC) for every working day from first to last."""
    rows = []
    for region, calendar in calendars.items():
        day = first
        while day <= last:
            if calendar.works_on(day):
                rows.append((region, day, *calendar.open_hours(day)))
            day += timedelta(days=1)
    return pd.DataFrame(rows, columns=["region", "day", "start_at", "end_at"])


WORKING_TIME_COLUMNS = ["region", "day", "worked_before", "start_at", "end_at"]


def working_time(hours: pd.DataFrame) -> pd.DataFrame:
    """`working_hours` counted up by UTC day, for `staging.working_time`: per region and UTC day
    from its first working day to its last, the working seconds before the day began
    (`worked_before`), with one row per part of a working interval inside the day (an interval
    that crosses midnight UTC has a part on each side), or one row without a part.

    The working time up to an instant is then the row of its UTC day: `worked_before` plus its
    parts up to the instant. SQL finds that row by an equality join on the day, where summing
    overlaps with every working day took a range join (lead response KPIs, v4)."""
    if hours.empty:
        return pd.DataFrame(columns=WORKING_TIME_COLUMNS)
    parts = _parts_within_utc_days(hours)
    parts["seconds"] = (parts["end_at"] - parts["start_at"]).dt.total_seconds()
    days = pd.concat([_every_day(region, group) for region, group in parts.groupby("region", sort=True)])
    per_day = parts.groupby(["region", "day"])["seconds"].sum()
    days["worked"] = per_day.reindex(
        pd.MultiIndex.from_frame(days[["region", "day"]]), fill_value=0.0
    ).to_numpy()
    days["worked_before"] = days.groupby("region")["worked"].cumsum() - days["worked"]
    rows = days[["region", "day", "worked_before"]].merge(
        parts[["region", "day", "start_at", "end_at"]], on=["region", "day"], how="left"
    )
    rows["day"] = rows["day"].dt.date
    return rows.sort_values(["region", "day", "start_at"], ignore_index=True)[WORKING_TIME_COLUMNS]


def _parts_within_utc_days(hours: pd.DataFrame) -> pd.DataFrame:
    """Each working interval cut at midnight UTC (an interval is shorter than a day, so into
    two parts at most), with the UTC day each part lies in."""
    start, end = pd.to_datetime(hours["start_at"]), pd.to_datetime(hours["end_at"])
    midnight = start.dt.normalize() + pd.Timedelta(days=1)
    before = pd.DataFrame(
        {"region": hours["region"], "start_at": start, "end_at": end.where(end < midnight, midnight)}
    )
    after = pd.DataFrame({"region": hours["region"], "start_at": midnight, "end_at": end})[end > midnight]
    parts = pd.concat([before, after], ignore_index=True)
    parts["day"] = parts["start_at"].dt.normalize()
    return parts


def _every_day(region: str, parts: pd.DataFrame) -> pd.DataFrame:
    days = pd.date_range(parts["day"].min(), parts["day"].max(), freq="D")
    return pd.DataFrame({"region": region, "day": days})
