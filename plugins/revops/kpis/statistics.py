"""Statistics that keep a rate honest."""

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
