"""Business calendars: working days and hours per region, as UTC instants, by hand."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from revops.configuration import ConfigError
from revops.reconcile.calendar import load_calendars, working_hours

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
