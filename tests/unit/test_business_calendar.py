"""Business calendars: working days and hours per region, as UTC instants, by hand."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.configuration import ConfigError
from revops.reconcile.calendar import load_calendars, working_hours, working_time

CALENDAR = """\
regions:
  EMEA:
    timezone: Europe/London
    days: [mon, tue, wed, thu, fri]
    hours: ["09:00", "17:30"]
    holidays: [2026-03-27]
  default:
    timezone: UTC
    days: [sat]
    hours: ["10:00", "12:00"]
"""


def _calendars(tmp_path, text: str = CALENDAR):
    path = tmp_path / "business_calendar.yaml"
    path.write_text(text)
    return load_calendars(path)


def test_working_days_skip_weekends_and_holidays_and_follow_summer_time(tmp_path):
    # 26-31 March 2026: Thu, Fri (a holiday), Sat, Sun, Mon (British Summer Time since
    # Sunday 29 March: 09:00 local is 08:00 UTC), Tue.
    rows = working_hours(_calendars(tmp_path), date(2026, 3, 26), date(2026, 3, 31))
    emea = rows[rows["region"] == "EMEA"]
    assert emea[["day", "start_at", "end_at"]].values.tolist() == [
        [date(2026, 3, 26), datetime(2026, 3, 26, 9), datetime(2026, 3, 26, 17, 30)],
        [date(2026, 3, 30), datetime(2026, 3, 30, 8), datetime(2026, 3, 30, 16, 30)],
        [date(2026, 3, 31), datetime(2026, 3, 31, 8), datetime(2026, 3, 31, 16, 30)],
    ]
    default = rows[rows["region"] == "default"]
    assert default[["start_at", "end_at"]].values.tolist() == [
        [datetime(2026, 3, 28, 10), datetime(2026, 3, 28, 12)]
    ]


# Opening hours that cross midnight UTC on either side, through both summer-time changes.
AROUND_THE_WORLD = """\
regions:
  west:
    timezone: America/Los_Angeles
    days: [mon, tue, wed, thu, fri]
    hours: ["09:00", "18:30"]
    holidays: [2026-03-10]
  east:
    timezone: Pacific/Auckland
    days: [mon, tue, wed, thu, fri, sat]
    hours: ["07:15", "17:00"]
  default:
    timezone: UTC
    days: [mon, tue, wed, thu, fri]
    hours: ["09:00", "17:00"]
"""


@pytest.fixture(scope="module")
def around_the_world(tmp_path_factory):
    calendars = _calendars(tmp_path_factory.mktemp("calendar"), AROUND_THE_WORLD)
    hours = working_hours(calendars, date(2026, 3, 1), date(2026, 4, 30))
    return hours, working_time(hours)


def _worked_by_overlaps(hours: pd.DataFrame, region: str, instant: datetime) -> float:
    """The working seconds up to `instant`, summed over every working interval (by hand)."""
    own = hours[hours["region"] == region]
    return sum(
        max((min(instant, end) - start).total_seconds(), 0.0)
        for start, end in zip(own["start_at"], own["end_at"], strict=True)
    )


def _worked_by_day(time: pd.DataFrame, region: str, instant: datetime) -> float:
    """The same from `working_time`, the way the SQL reads it: the row of the instant's UTC
    day (kept within the calendar), its `worked_before` and its parts up to the instant."""
    own = time[time["region"] == region]
    day = min(max(instant.date(), own["day"].min()), own["day"].max())
    rows = own[own["day"] == day]
    parts = rows.dropna(subset=["start_at"])
    up_to = [
        min(max((instant - start).total_seconds(), 0.0), (end - start).total_seconds())
        for start, end in zip(parts["start_at"], parts["end_at"], strict=True)
    ]
    return float(rows["worked_before"].iloc[0]) + sum(up_to)


def test_working_time_cuts_intervals_at_midnight_utc(around_the_world):
    _, time = around_the_world
    west = time[(time["region"] == "west") & (time["day"] == date(2026, 3, 3))]
    # 09:00 to 18:30 in Los Angeles (UTC-8) is 17:00 to 02:30 UTC: 3 March (UTC) holds
    # Monday's last two and a half hours and Tuesday's first seven.
    assert west[["start_at", "end_at"]].values.tolist() == [
        [datetime(2026, 3, 3, 0), datetime(2026, 3, 3, 2, 30)],
        [datetime(2026, 3, 3, 17), datetime(2026, 3, 4, 0)],
    ]
    assert west["worked_before"].tolist() == [7 * 3600.0] * 2  # Monday's first seven hours
    # Sunday 8 March (UTC) has no part (Friday's last hours fell on Saturday) and follows a
    # whole week of 9.5 hours a day.
    sunday = time[(time["region"] == "west") & (time["day"] == date(2026, 3, 8))]
    assert sunday["start_at"].isna().all() and sunday["worked_before"].tolist() == [5 * 9.5 * 3600]


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(["west", "east", "default"]),
    instant=st.datetimes(min_value=datetime(2026, 2, 20), max_value=datetime(2026, 5, 10)),
)
def test_working_time_up_to_an_instant_equals_the_sum_of_overlaps(around_the_world, region, instant):
    hours, time = around_the_world
    assert _worked_by_day(time, region, instant) == pytest.approx(_worked_by_overlaps(hours, region, instant))


def test_no_calendar_means_no_working_time(tmp_path):
    assert working_time(working_hours({}, date(2026, 3, 1), date(2026, 3, 2))).empty


def test_no_file_means_no_calendar(tmp_path):
    assert load_calendars(tmp_path / "business_calendar.yaml") == {}


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (("Europe/London", "Europe/Londn"), r":3: unknown time zone 'Europe/Londn'"),
        (("[mon, tue", "[mon, tues"), r":4: unknown days \['tues'\]"),
        (('["09:00", "17:30"]', '["17:30", "09:00"]'), r":5: hours must be \[opens, closes\]"),
        (("holidays: [2026-03-27]", "holidays: [27 March]"), r":6: holidays must be dates"),
        (("  default:", "  elsewhere:"), r":2: regions must include 'default'"),
        (("    hours:", "    opening:"), r":5: region: unknown key 'opening'"),
    ],
)
def test_a_mistake_names_the_file_and_line(tmp_path, mistake, message):
    with pytest.raises(ConfigError, match=f"business_calendar.yaml{message}"):
        _calendars(tmp_path, CALENDAR.replace(*mistake))
