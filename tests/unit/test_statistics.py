import pytest

from revops.kpis.statistics import p_chart_limits, wilson_interval


def test_wilson_interval_matches_the_hand_computed_value():
    # 10/100, z = 1.96, z^2 = 3.8416: centre = (0.1 + 3.8416/200) / 1.038416 = 0.114798;
    # half width = 1.96 * sqrt(0.0009 + 3.8416/40000) / 1.038416 = 0.059569.
    # (statsmodels' proportion_confint(10, 100, method="wilson") gives the same.)
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.055229, abs=1e-6)
    assert high == pytest.approx(0.174367, abs=1e-6)


def test_wilson_interval_stays_inside_zero_and_one_at_the_edges():
    # At 0 successes the upper bound is z^2 / (n + z^2) = 3.8416 / 13.8416.
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.277540, abs=1e-6)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(1 - 0.277540, abs=1e-6)


def test_no_trials_no_interval():
    assert wilson_interval(0, 0) is None


def test_p_chart_limits_by_hand():
    # Four earlier weeks of 10/100 pool to a centre of 0.1. A week of n = 100 gets
    # 0.1 +- 3 * sqrt(0.1 * 0.9 / 100) = 0.1 +- 0.09; a week of n = 25 gets +- 0.18.
    numerators = [10, 10, 10, 10, 30, 5]
    denominators = [100, 100, 100, 100, 100, 25]
    limits = p_chart_limits(numerators, denominators)
    assert limits[:4] == [None, None, None, None]  # too little history to judge
    centre, lower, upper = limits[4]
    assert centre == pytest.approx(0.1) and lower == pytest.approx(0.01) and upper == pytest.approx(0.19)
    centre, lower, upper = limits[5]  # the 30/100 week is now history: centre 70/500
    assert centre == pytest.approx(0.14)
    assert upper == pytest.approx(0.14 + 3 * (0.14 * 0.86 / 25) ** 0.5)
    assert lower == 0.0  # clipped at zero
