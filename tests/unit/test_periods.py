from datetime import date, datetime

import pytest

from revops.periods import local_date, period_containing


def test_weeks_start_on_monday_and_are_half_open():
    week = period_containing("week", date(2026, 11, 1))  # a Sunday
    assert (week.start, week.end) == (date(2026, 10, 26), date(2026, 11, 2))
    assert week.label == "26 Oct – 1 Nov 2026 (week 44)"


def test_months_and_history_cross_a_year_boundary():
    january = period_containing("month", date(2026, 1, 31))
    assert (january.start, january.end) == (date(2026, 1, 1), date(2026, 2, 1))
    assert [p.start for p in january.history(3)] == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)]


def test_fiscal_quarters_follow_the_configured_year_start():
    # reporting.yaml: the fiscal year starts in February and is named after the year it ends in.
    q1 = period_containing("quarter", date(2026, 3, 15))
    assert (q1.start, q1.end, q1.fiscal_name) == (date(2026, 2, 1), date(2026, 5, 1), "FY2027 Q1")
    q4 = period_containing("quarter", date(2026, 1, 31))
    assert (q4.start, q4.end, q4.fiscal_name) == (date(2025, 11, 1), date(2026, 2, 1), "FY2026 Q4")
    assert q1.previous() == q4


def test_a_period_in_an_audience_time_zone_has_utc_boundaries():
    # The clocks go back on Sunday 25 October 2026: this week is 7 days and 1 hour long.
    berlin = period_containing("week", date(2026, 10, 21), "Europe/Berlin")
    assert berlin.start_at == datetime(2026, 10, 18, 22, 0)  # Monday midnight CEST, UTC+2
    assert berlin.end_at == datetime(2026, 10, 25, 23, 0)  # next Monday midnight CET, UTC+1
    assert period_containing("week", date(2026, 10, 21)).start_at == datetime(2026, 10, 19)


def test_an_instant_falls_on_the_local_date():
    late_sunday_utc = datetime(2026, 11, 1, 23, 30)
    assert local_date(late_sunday_utc, "UTC") == date(2026, 11, 1)
    assert local_date(late_sunday_utc, "Europe/Berlin") == date(2026, 11, 2)
    assert local_date(late_sunday_utc, "America/New_York") == date(2026, 11, 1)


def test_unknown_grain_is_rejected():
    with pytest.raises(ValueError, match="unknown grain"):
        period_containing("fortnight", date(2026, 1, 1))


def test_the_kpi_horizon_is_each_grains_latest_periods_up_to_the_cut_off_in_one_list():
    from revops.pipeline import horizon_periods

    cutoff = datetime(2026, 11, 1, 23, 30)  # a Sunday night in UTC, already Monday in Berlin
    utc, berlin = horizon_periods(cutoff), horizon_periods(cutoff, "Europe/Berlin")
    assert [p.grain for p in utc] == ["week"] * 13 + ["month"] * 13 + ["quarter"] * 6
    weeks, months, quarters = utc[:13], utc[13:26], utc[26:]
    assert (weeks[0].start, weeks[-1].start) == (date(2026, 8, 3), date(2026, 10, 26))
    assert (months[0].start, months[-1].start) == (date(2025, 11, 1), date(2026, 11, 1))
    assert (quarters[0].start, quarters[-1].start) == (date(2025, 8, 1), date(2026, 11, 1))
    assert (berlin[0].start, berlin[12].start) == (date(2026, 8, 10), date(2026, 11, 2))
    assert {p.timezone for p in berlin} == {"Europe/Berlin"}
