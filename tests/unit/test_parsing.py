from datetime import datetime

import pandas as pd

from revops.reconcile.parsing import (
    RecordSpec,
    clean_text,
    parse_booleans,
    parse_numbers,
    parse_timestamps,
    type_records,
)
from revops.reconcile.records import SPECS


def test_every_timestamp_format_the_sources_send_lands_on_the_same_utc_instant():
    same_instant = [
        "2026-01-15T10:30:00.000+0000",  # Salesforce API
        "2026-01-15T11:30:00.000+01:00",  # a Salesforce export in CET, with a colon
        "2026-01-15T05:30:00.000-0500",  # ... in US Eastern, without one
        "2026-01-15T16:00:00.000+0530",  # ... in India, half-hour offset
        "2026-01-15T10:30:00Z",  # HubSpot API, no milliseconds
        "1768473000000",  # HubSpot export: epoch milliseconds
    ]
    parsed, reasons = parse_timestamps(pd.Series(same_instant))
    assert set(parsed) == {pd.Timestamp(datetime(2026, 1, 15, 10, 30))}
    assert reasons.isna().all()


def test_date_only_values_mean_midnight_utc_and_garbage_gets_a_reason():
    parsed, reasons = parse_timestamps(pd.Series(["2026-03-01", "not a date", None, "2026-02-30"]))
    assert parsed[0] == pd.Timestamp(2026, 3, 1)
    assert pd.isna(parsed[1]) and reasons[1] == "not a timestamp 'not a date'"
    assert pd.isna(parsed[2]) and reasons[2] is None  # absent is not an error
    assert pd.isna(parsed[3]) and reasons[3] == "not a timestamp '2026-02-30'"


def test_amounts_with_currency_signs_and_thousands_separators():
    parsed, reasons = parse_numbers(pd.Series(["12300.00", "$12,300", "USD 7,500.50", "12k", ""]))
    assert parsed[:3].tolist() == [12300.0, 12300.0, 7500.5]
    assert reasons[3] == "not a number '12k'"
    assert pd.isna(parsed[4]) and reasons[4] is None


def test_booleans_accept_the_usual_spellings_only():
    parsed, reasons = parse_booleans(pd.Series(["true", "FALSE", "1", "no", "perhaps"]))
    assert parsed[:4].tolist() == [True, False, True, False]
    assert reasons[4] == "not a boolean 'perhaps'"


def test_type_records_names_every_problem_of_a_record():
    frame = pd.DataFrame(
        {
            "Id": ["a", None, "c"],
            "CreatedDate": ["2026-01-01T00:00:00Z", "yesterday", None],
            "Amount": ["10", "20", "lots"],
        }
    )
    spec = RecordSpec(required=("Id", "CreatedDate"), types={"CreatedDate": "timestamp", "Amount": "number"})
    typed, reasons = type_records(frame, spec)
    assert pd.isna(reasons[0])
    assert reasons[1] == "Id: missing; CreatedDate: not a timestamp 'yesterday'"
    assert reasons[2] == "CreatedDate: missing; Amount: not a number 'lots'"
    assert typed.loc[0, "Amount"] == 10.0


def test_a_campaign_that_ends_before_it_starts_or_costs_less_than_nothing_is_rejected():
    frame = pd.DataFrame(
        {
            "Id": ["ok", "backwards", "negative", "open"],
            "StartDate": ["2026-03-01", "2026-03-10", "2026-03-01", "2026-03-01"],
            "EndDate": ["2026-03-31", "2026-03-09", "2026-03-31", None],
            "ActualCost": ["1000", "1000", "-5", None],
        }
    )
    typed, reasons = type_records(frame, SPECS[("salesforce", "Campaign")])
    assert reasons.fillna("").tolist() == ["", "EndDate: before StartDate", "ActualCost: negative", ""]
    assert typed.loc[0, "ActualCost"] == 1000.0


def test_text_loses_surrounding_blanks_and_an_empty_value_is_missing():
    cleaned = clean_text(pd.Series([" Price ", "", "   ", None, "No decision"]))
    assert cleaned.tolist()[0] == "Price" and cleaned.tolist()[4] == "No decision"
    assert cleaned.isna().tolist() == [False, True, True, True, False]


def test_scores_read_the_same_whichever_path_reads_them():
    """A pull of plain-number text is read by Arrow; one holding anything else goes through
    pandas and the full parser. Both give each value the same number, and only the full
    parser gives reasons (here, for the one value no path reads)."""
    from revops.snapshots.store import parse_scores

    plain = ["10", "-2", "+3", "1e3", ".5", "5.", "00012", None]
    numbers, problems = parse_scores(pd.Series(plain, dtype="str"))  # all plain: Arrow
    assert numbers.tolist()[:-1] == [10.0, -2.0, 3.0, 1000.0, 0.5, 5.0, 12.0]
    assert pd.isna(numbers.iloc[-1]) and problems.isna().all()

    mixed, reasons = parse_scores(pd.Series([*plain, " 7", "1,200", "n/a"], dtype="str"))  # pandas
    assert mixed.tolist()[: len(plain) - 1] == numbers.tolist()[:-1]
    assert mixed.tolist()[len(plain) : -1] == [7.0, 1200.0] and pd.isna(mixed.iloc[-1])
    assert reasons.notna().tolist() == [False] * (len(plain) + 2) + [True]
