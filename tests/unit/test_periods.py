from datetime import date

import pytest

from revops.periods import period_containing


def test_weeks_start_on_monday_and_are_half_open():
    week = period_containing("week", date(2026, 11, 1))  # a Sunday
    assert (week.start, week.end) == (date(2026, 10, 26), date(2026, 11, 2))
    assert week.label == "26 Oct – 1 Nov 2026 (week 44)"


def test_months_and_history_cross_a_year_boundary():
    january = period_containing("month", date(2026, 1, 31))
    assert (january.start, january.end) == (date(2026, 1, 1), date(2026, 2, 1))
    assert [p.start for p in january.history(3)] == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)]


def test_unknown_grain_is_rejected():
    with pytest.raises(ValueError, match="unknown grain"):
        period_containing("fortnight", date(2026, 1, 1))
