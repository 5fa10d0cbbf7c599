"""The scorecard narrative: which KPI moved most, which segment drove it, checked by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.scorecards.formatting import crm_text, status
from revops.scorecards.narrative import (
    Mover,
    driver_sentence,
    mover_sentence,
    segment_contributions,
    status_sentences,
)
from revops.scorecards.results import ScorecardResults

WEEK = period_containing("week", date(2026, 10, 26))
BEFORE = WEEK.previous()

# Win rate by count, by region. Before: NA 10/40, EMEA 5/10 -> 15/50 = 30%.
# Now: NA 12/40, EMEA 12/20 -> 24/60 = 40%. The total moved +10 pts.
# Contributions: NA 12/60 - 10/50 = 0.2 - 0.2 = 0; EMEA 12/60 - 5/50 = 0.2 - 0.1 = +0.1.
ROWS = [
    (BEFORE, "total", "all", 15, 50),
    (BEFORE, "region", "NA", 10, 40),
    (BEFORE, "region", "EMEA", 5, 10),
    (WEEK, "total", "all", 24, 60),
    (WEEK, "region", "NA", 12, 40),
    (WEEK, "region", "EMEA", 12, 20),
]


def _results(rows, kpi_id: str = "win_rate_count") -> ScorecardResults:
    frame = pd.DataFrame(
        [
            {
                "kpi_id": kpi_id,
                "kpi_version": 1,
                "period_start": period.start,
                "dimension": dimension,
                "segment": segment,
                "numerator": won,
                "denominator": closed,
                "value": won / closed,
                "ci_low": None,
                "ci_high": None,
                "volume": closed,
                "flags": "",
            }
            for period, dimension, segment, won, closed in rows
        ]
    )
    return ScorecardResults(frame)


def test_segment_contributions_add_up_to_the_total_change():
    now = pd.DataFrame({"segment": ["NA", "EMEA"], "numerator": [12, 12]})
    before = pd.DataFrame({"segment": ["NA", "EMEA"], "numerator": [10, 5]})
    contributions = segment_contributions(now, before, 60, 50)
    assert contributions["NA"] == pytest.approx(0.0)
    assert contributions["EMEA"] == pytest.approx(0.1)
    assert contributions.sum() == pytest.approx(24 / 60 - 15 / 50)


def test_a_segment_missing_in_one_period_counts_as_zero_there():
    now = pd.DataFrame({"segment": ["NA", "LATAM"], "numerator": [12, 3]})
    before = pd.DataFrame({"segment": ["NA"], "numerator": [10]})
    contributions = segment_contributions(now, before, 60, 50)
    assert contributions["LATAM"] == pytest.approx(3 / 60)
    assert contributions.sum() == pytest.approx(15 / 60 - 10 / 50)


def test_the_driver_is_the_segment_that_moved_the_total():
    kpi = load_registry()["win_rate_count"]
    mover = Mover(kpi, WEEK, 0.40, 0.30, "on_target")
    assert (
        mover_sentence(mover)
        == "Win rate (by count) moved most: up 10.0 pts to 40.0% (26 Oct against 19 Oct)."
    )
    assert driver_sentence(mover, _results(ROWS), "region", {}) == (
        "By region, EMEA drove most of it (+10.0 pts of +10.0 pts)."
    )


def test_when_other_segments_moved_the_other_way_the_sentence_says_so():
    # Now NA wins 9 of 40: total 21/60 = 35%, +5.0 pts. EMEA: 12/60 - 5/50 = +10.0 pts;
    # NA: 9/60 - 10/50 = -5.0 pts.
    rows = [r for r in ROWS if r[0] == BEFORE] + [
        (WEEK, "total", "all", 21, 60),
        (WEEK, "region", "NA", 9, 40),
        (WEEK, "region", "EMEA", 12, 20),
    ]
    mover = Mover(load_registry()["win_rate_count"], WEEK, 21 / 60, 0.30, "on_target")
    sentence = driver_sentence(mover, _results(rows), "region", {"EMEA": "Europe"})
    assert sentence == "By region, Europe drove it (+10.0 pts); the other segments together moved -5.0 pts."


def test_a_median_moves_without_a_named_driver():
    # A median's change does not split into segments' shares, so no segment is credited.
    # The same rows (a median of 30 days before, 40 now) would name EMEA for a rate.
    kpi = load_registry()["sales_cycle_length"]
    mover = Mover(kpi, WEEK, 40.0, 30.0, "watch")
    assert mover_sentence(mover) == (
        "Sales cycle length (median) moved most: up 10.0 days to 40.0 days (26 Oct against 19 Oct)."
    )
    assert driver_sentence(mover, _results(ROWS, "sales_cycle_length"), "region", {}) is None


def test_status_sentences_count_judged_kpis_and_name_the_rest():
    sentences = status_sentences(
        [("A", "on_target"), ("B", "below"), ("C", "watch"), ("D", "insufficient"), ("E", "no_data")]
    )
    assert sentences == [
        "1 of 3 judged KPIs are on target.",
        "Below threshold: B.",
        "On watch: C.",
        "Too few records to judge: D.",
    ]


def test_a_kpi_without_thresholds_is_not_judged_and_not_counted():
    registry = load_registry()
    capacity, win_rate = registry["leads_needed"], registry["win_rate_count"]
    assert status(capacity, 305.0, set()) == "not_judged"
    assert status(win_rate, 0.05, set()) == "below"
    assert status_sentences([("A", "on_target"), ("B", "not_judged")]) == [
        "1 of 1 judged KPIs are on target."
    ]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Acme Corp", "Acme Corp"),
        ("call jane.doe@example.com today", "call [e-mail removed] today"),
        ("+44 20 7946 0958", "[phone removed]"),
        ("(555) 123-4567 ext", "[phone removed] ext"),
        ("founded 2026-10-26", "founded 2026-10-26"),
        ("Series 2026", "Series 2026"),
        (None, "–"),
    ],
)
def test_crm_text_never_carries_contact_details(raw, shown):
    assert crm_text(raw) == shown


def test_the_results_digest_is_the_same_from_4_byte_and_8_byte_numbers():
    """A run recorded when embedded warehouses stored 4-byte floats replays from 8-byte ones."""
    registry = load_registry()
    used = [(registry["win_rate_count"], period, 1) for period in (BEFORE, WEEK)]
    eight_bytes = _results(ROWS)
    four_bytes = ScorecardResults(
        eight_bytes._frame.assign(value=eight_bytes._frame["value"].astype("float32").astype(float))
    )
    assert (four_bytes._frame["value"] != eight_bytes._frame["value"]).any()  # 15/50 is no 4-byte float
    assert four_bytes.digest(used) == eight_bytes.digest(used)
    moved = [(*row[:3], row[3] + 1, row[4]) if row[2] == "NA" and row[0] == WEEK else row for row in ROWS]
    assert _results(moved).digest(used) != eight_bytes.digest(used)  # one deal more shows
