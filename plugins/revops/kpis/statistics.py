"""Statistics that keep a rate honest: intervals, and control limits that tell signal from noise."""

from __future__ import annotations

import math


def wilson_interval(successes: float, trials: float, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval for a proportion; None when there are no trials.

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0% and 100%.
    """
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def p_chart_limits(
    numerators: list[float], denominators: list[float], baseline_periods: int = 12, sigmas: float = 3.0
) -> list[tuple[float, float, float] | None]:
    """(centre, lower, upper) for each period of a rate series, from the periods before it.

    The centre is the pooled rate of up to `baseline_periods` preceding periods (so a period
    is judged against history, not against itself); the limits are sigmas standard errors
    at that period's own volume, which is what makes a thin week's wide swing not a signal.
    None where fewer than four earlier periods have data, or the period has none.
    """
    limits: list[tuple[float, float, float] | None] = []
    for index, trials in enumerate(denominators):
        window = [
            (n, d)
            for n, d in zip(
                numerators[max(0, index - baseline_periods) : index],
                denominators[max(0, index - baseline_periods) : index],
                strict=True,
            )
            if d > 0
        ]
        if trials <= 0 or len(window) < 4:
            limits.append(None)
            continue
        centre = sum(n for n, _ in window) / sum(d for _, d in window)
        spread = sigmas * math.sqrt(centre * (1 - centre) / trials)
        limits.append((centre, max(0.0, centre - spread), min(1.0, centre + spread)))
    return limits
