"""Which rows two versions of a KPI disagree on (`compare.disagreements`)."""

import math

import pandas as pd

from revops.kpis.compare import disagreements

NAN = math.nan


def _side_by_side(rows: list[tuple]) -> pd.DataFrame:
    """(numerator, denominator) of v1 then of v2 per row; each value is their quotient."""
    frame = pd.DataFrame(rows, columns=["numerator_v1", "denominator_v1", "numerator_v2", "denominator_v2"])
    for version in (1, 2):
        denominator = frame[f"denominator_v{version}"]
        frame[f"value_v{version}"] = frame[f"numerator_v{version}"] / denominator.where(denominator != 0)
    return frame


def test_a_row_differs_when_any_of_its_numbers_does():
    frame = _side_by_side(
        [
            (3, 10, 3, 10),  # the same
            (3, 10, 6, 20),  # the same value from another cohort: the denominator differs
            (3, 10, 4, 11),  # value and denominator both differ
            (3, 10, 4, 10),  # the value differs
        ]
    )
    assert disagreements(frame, 1, 2, 1e-9).tolist() == [False, True, True, True]


def test_a_segment_in_one_version_only_differs_and_no_value_in_both_does_not():
    frame = _side_by_side(
        [
            (3, 10, NAN, NAN),  # v2 has no such segment
            (NAN, NAN, 3, 10),  # v1 has none
            (0, 0, 0, 0),  # neither has a value (no denominator)
        ]
    )
    assert disagreements(frame, 1, 2, 1e-9).tolist() == [True, True, False]


def test_floats_summed_in_another_order_are_the_same_number():
    amounts = [0.1 * k + 1_234_567.89 for k in range(1_000)]
    forwards, backwards = math.fsum(amounts), sum(reversed(amounts))
    assert forwards != backwards  # the float error the tolerance is for
    one_part_in_a_hundred_million = forwards * (1 + 1e-8)
    frame = _side_by_side([(forwards, 1, backwards, 1), (forwards, 1, one_part_in_a_hundred_million, 1)])
    assert disagreements(frame, 1, 2, 1e-9).tolist() == [False, True]
