"""Property-based tests: whatever text the sources send, every parser and mapping answers
with a value or a reason, never an exception and never silence."""

from __future__ import annotations

import calendar
import csv
import io
import os
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.extract.csv_source import UNDECODABLE_FIELDS, UNEXPECTED_CELLS, read_export
from revops.reconcile.parsing import (
    RecordSpec,
    parse_booleans,
    parse_dates,
    parse_numbers,
    parse_timestamps,
    type_records,
)
from revops.reconcile.sources import SourceMapping, normalise

# CI runs the same 150 examples per property every time (a red build is never luck); set
# REVOPS_HYPOTHESIS_PROFILE=thorough to search 3,000 fresh random examples per property.
settings.register_profile("ci", deadline=None, max_examples=150, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=3000)
settings.load_profile(os.environ.get("REVOPS_HYPOTHESIS_PROFILE", "ci"))


# Text as CRMs and spreadsheets produce it: anything, plus things that nearly parse.
NEARLY = st.sampled_from(
    ["2026-02-30", "2026-13-01T00:00:00Z", "99999999999999", "1e309", "-0", "NaN", "inf", "$", "1,2,3",
     "USD", "２０２６-01-01", "2026-01-01T25:00:00+0000", "0x1A", "TRUE ", " no", "\ufeff1", "\x00",
     "2026-01-26T10:58:12+05", "2026-01-26T10:58:12+0", "2026-01-26T10+05"]
)  # fmt: skip
CELLS = st.one_of(st.none(), st.text(max_size=40), NEARLY)
PARSERS = [parse_timestamps, parse_dates, parse_numbers, parse_booleans]


def _blank(value) -> bool:
    return value is None or not str(value).strip()


@given(st.lists(CELLS, max_size=30), st.sampled_from(PARSERS))
def test_every_present_value_parses_or_has_a_reason_and_nothing_raises(values, parser):
    parsed, reasons = parser(pd.Series(values, dtype=object))
    assert len(parsed) == len(reasons) == len(values)
    for value, result, reason in zip(values, parsed, reasons, strict=True):
        if _blank(value):
            assert pd.isna(result) and reason is None
        else:
            assert pd.isna(result) != (reason is None), (value, result, reason)


OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# Epoch milliseconds are read from 12-13 digits (March 1973 to 2286): longer or shorter digit
# strings are more likely ids than instants.
INSTANTS = st.datetimes(min_value=datetime(1974, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)


@given(INSTANTS, OFFSETS, st.sampled_from(["salesforce", "iso_colon", "hubspot", "epoch_ms"]))
def test_a_timestamp_in_any_offset_and_format_lands_on_its_utc_instant(instant, offset, style):
    utc = instant.replace(tzinfo=UTC)
    local = utc.astimezone(offset)
    text = {
        "salesforce": local.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{local.microsecond // 1000:03d}"
        + local.strftime("%z"),
        "iso_colon": local.isoformat(timespec="milliseconds"),
        "hubspot": utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z",
        "epoch_ms": str(calendar.timegm(utc.utctimetuple()) * 1000 + utc.microsecond // 1000),  # exact
    }[style]
    parsed, reasons = parse_timestamps(pd.Series([text]))
    assert reasons[0] is None, text
    assert parsed[0] == pd.Timestamp(instant), text


@given(
    st.decimals(min_value=-(10**12), max_value=10**12, places=2),
    st.sampled_from(["{:.2f}", "${:,.2f}", "USD {:,.2f}", "€{:,.2f}"]),
)
def test_an_amount_with_currency_and_separators_reads_as_its_value(amount, pattern):
    text = pattern.format(amount)
    if text.startswith(("$-", "€-", "USD -")):
        text = "-" + text.replace("-", "", 1)  # how exports write negative amounts
    parsed, reasons = parse_numbers(pd.Series([text]))
    assert reasons[0] is None, text
    assert round(parsed[0], 2) == float(amount), text


@given(st.lists(st.sampled_from(["Id", "CreatedDate", "Amount", "IsWon"]), unique=True), st.data())
def test_records_with_columns_missing_are_typed_with_reasons_never_a_crash(columns, data):
    rows = data.draw(st.integers(min_value=0, max_value=5))
    frame = pd.DataFrame(
        {c: data.draw(st.lists(CELLS, min_size=rows, max_size=rows)) for c in columns}, index=range(rows)
    )
    spec = RecordSpec(
        required=("Id", "CreatedDate"),
        types={"CreatedDate": "timestamp", "Amount": "number", "IsWon": "boolean"},
    )
    typed, reasons = type_records(frame, spec)
    assert len(typed) == len(reasons) == rows
    for column in ("Id", "CreatedDate"):
        if column not in columns:
            assert all(f"{column}: missing" in r for r in reasons)


@given(st.one_of(st.none(), st.text(max_size=40)))
def test_source_labels_normalise_idempotently(label):
    once = normalise(label)
    assert once is None or (once == normalise(once) and once == once.strip())


@given(st.lists(st.tuples(*[st.one_of(st.none(), st.text(max_size=30))] * 4), max_size=20))
def test_lead_source_mapping_classifies_every_row_and_never_raises(rows):
    frame = pd.DataFrame(rows, columns=["lead_source", "hs_source", "utm_source", "utm_medium"], dtype=object)
    mapping = SourceMapping.load()
    classified = mapping.classify(
        frame["lead_source"], frame["hs_source"], frame["utm_source"], frame["utm_medium"]
    )
    assert len(classified) == len(rows)
    assert classified["channel"].notna().all()  # an unmappable source gets the stated fallback channel


# Few labels, so that rows repeat combinations (classify works once per distinct one), and
# both kinds of missing value a frame can hold.
SOURCE_LABELS = st.sampled_from(
    [None, float("nan"), "Paid Search", " paid  SEARCH", "Webinar", "PAID_SEARCH", "google", "cpc",
     "email", "referral", "partner-portal", "asdf", ""]
)  # fmt: skip


@given(st.lists(st.tuples(*[SOURCE_LABELS] * 4), max_size=12))
def test_lead_source_mapping_classifies_a_row_the_same_whatever_its_neighbours(rows):
    mapping = SourceMapping.load()
    labels = [f"r{i * 7 % 29}" for i in range(len(rows))]  # an index not in order
    frame = pd.DataFrame(
        rows, index=labels, columns=["lead", "hubspot", "utm_source", "utm_medium"], dtype=object
    )
    classified = mapping.classify(*(frame[column] for column in frame.columns))
    assert classified.index.tolist() == labels
    for row, values in enumerate(rows):
        alone = mapping.classify(*(pd.Series([value], dtype=object) for value in values))
        assert classified.iloc[row].tolist() == alone.iloc[0].tolist(), values


# A cell's text as a spreadsheet writes it: quotes, separators, line breaks, any Unicode.
CSV_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r"), max_size=60)


@given(st.lists(st.tuples(CSV_TEXT, CSV_TEXT), max_size=15), st.booleans())
def test_csv_rows_come_back_exactly_one_record_each(rows, with_bom):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Id", "Company"])
    writer.writerows(rows)
    data = ("\ufeff" if with_bom else "") + buffer.getvalue()
    records = _read(data.encode("utf-8"))
    assert [(r["Id"], r["Company"]) for r in records] == [(a or None, b or None) for a, b in rows]
    assert not any(UNEXPECTED_CELLS in r or UNDECODABLE_FIELDS in r for r in records)


@given(st.lists(st.tuples(st.text("abcé€ü", max_size=8), st.booleans()), min_size=1, max_size=10))
def test_bytes_in_another_encoding_mark_their_row_for_quarantine_and_keep_it(rows):
    lines = [b"Id,Company"] + [
        f"r{i},".encode() + company.encode("cp1252" if legacy else "utf-8")
        for i, (company, legacy) in enumerate(rows)
    ]
    records = _read(b"\r\n".join(lines) + b"\r\n")
    assert [r["Id"] for r in records] == [f"r{i}" for i in range(len(rows))]
    for record, (company, legacy) in zip(records, rows, strict=True):
        written = company.encode("cp1252" if legacy else "utf-8")
        # Some Windows-1252 text is also valid UTF-8 ("é€€" is "退"): no reader can tell.
        readable = _utf8(written)
        assert (UNDECODABLE_FIELDS in record) == (readable is None), (company, legacy, record)
        if readable is None:
            assert record[UNDECODABLE_FIELDS] == ["Company"] and "\\x" in record["Company"]
            record["Company"].encode("utf-8")  # storable as it is
        else:
            assert record["Company"] == (readable or None)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_a_huge_field_is_read_not_fatal(tmp_path):
    notes = "x" * 5_000_000
    path = tmp_path / "Lead.csv"
    path.write_text(f"Id,Description\n1,{notes}\n2,short\n")
    records = read_export(path, {})
    assert [len(r["Description"]) for r in records] == [5_000_000, 5]


def test_an_export_in_a_configured_encoding_reads_cleanly(tmp_path):
    path = tmp_path / "Lead.csv"
    path.write_bytes("Id,Company\n1,Société Générale\n".encode("cp1252"))
    assert read_export(path, {}, encoding="cp1252") == [{"Id": "1", "Company": "Société Générale"}]


def _read(data: bytes) -> list[dict]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "export.csv"
        path.write_bytes(data)
        return read_export(path, {})


TIMESTAMP_CELLS = st.one_of(
    CELLS,
    INSTANTS.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.000+0000")),
    INSTANTS.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),  # naive: the zone's local time
    INSTANTS.map(lambda d: d.strftime("%Y-%m-%d")),
    INSTANTS.map(lambda d: str(calendar.timegm(d.utctimetuple()) * 1000)),
)


@given(
    st.lists(TIMESTAMP_CELLS, max_size=30),
    st.sampled_from([parse_timestamps, parse_dates]),
    st.sampled_from(["UTC", "America/New_York"]),
    st.booleans(),
)
def test_a_value_parses_the_same_whatever_its_neighbours(values, parser, zone, repeated_labels):
    """The parsers split a column by shape and parse each shape on its rows alone: every row
    must come back as it does when parsed on its own, under any index (shuffled, or with
    every label the same)."""
    labels = ["row"] * len(values) if repeated_labels else [f"row{i * 7 % 31}" for i in range(len(values))]
    parsed, reasons = parser(pd.Series(values, index=labels, dtype=object), zone)
    for row, value in enumerate(values):
        alone, alone_reason = parser(pd.Series([value], dtype=object), zone)
        assert parsed.iloc[row] is alone[0] or parsed.iloc[row] == alone[0], value
        assert reasons.iloc[row] == alone_reason[0], value


# ISO 8601 as it is written, and nearly: fields out of range, a year outside 1677-2262 (beyond
# Arrow's nanoseconds, within pandas' reach), fractions of any length, offsets with and without
# a colon, a space for the `T`.
TWO_DIGITS = st.integers(min_value=0, max_value=61).map("{:02d}".format)
SIGNS = st.sampled_from("+-")
ISO_TEXT = st.builds(
    "{}-{}-{}{}{}".format,
    st.integers(min_value=1500, max_value=2600).map(str),
    st.integers(min_value=0, max_value=13).map("{:02d}".format),
    st.integers(min_value=0, max_value=32).map("{:02d}".format),
    st.one_of(
        st.just(""),
        st.builds(
            "{}{}{}{}".format,
            st.sampled_from(["T", " "]),
            st.integers(min_value=0, max_value=25).map("{:02d}".format),
            st.sampled_from(["", ":{}", ":{}:{}"]).flatmap(
                lambda shape: st.tuples(TWO_DIGITS, TWO_DIGITS).map(lambda mm_ss: shape.format(*mm_ss))
            ),
            st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=10).map(lambda f: "." + f)),
        ),
    ),
    st.one_of(
        st.just(""),
        st.just("Z"),
        st.builds("{}{}{}{}".format, SIGNS, TWO_DIGITS, st.sampled_from(["", ":"]), TWO_DIGITS),
        st.builds("{}{}".format, SIGNS, st.sampled_from(["0", "00", "05", "14"])),  # short, or no offset
    ),
)
# Neighbours Arrow does not read, one of each shape the parsers split a column into (an offset,
# a local time, a date): with them, each shape is read by pandas whole. pandas reads the first
# two (a single-digit month); no one reads the third.
READ_BY_PANDAS_ONLY = ["2026-1-06T10:58:12Z", "2026-1-06T10:58:12", "2026-02-30"]


@given(ISO_TEXT, st.sampled_from([parse_timestamps, parse_dates]), st.sampled_from(["UTC", "Europe/Berlin"]))
def test_arrow_and_pandas_read_iso_8601_alike(text, parser, zone):
    """Timestamps and dates are read by Arrow where it reads a whole shape, else by pandas:
    a value must read the same either way (the same instant, or the same reason)."""
    alone, alone_reasons = parser(pd.Series([text], dtype=object), zone)
    beside, beside_reasons = parser(pd.Series([text, *READ_BY_PANDAS_ONLY], dtype=object), zone)
    assert beside[1:3].notna().all()  # read, so by pandas
    assert alone[0] is beside[0] or alone[0] == beside[0], text
    assert alone_reasons[0] == beside_reasons[0], text


def test_a_short_offset_is_read_as_an_offset_never_as_a_local_time():
    """`+05` after a time is ISO 8601's offset of five hours (an older version raised on it,
    ending the build); an offset pandas finds where none is expected is quarantined."""
    values = ["2026-01-26T10:58:12+05", "2026-01-26T10:58-03", "2026-01-26T10:58:12", "2026-01-26T10+05"]
    parsed, reasons = parse_timestamps(pd.Series(values), "Europe/Berlin")
    assert parsed[:3].tolist() == [
        pd.Timestamp(2026, 1, 26, 5, 58, 12),
        pd.Timestamp(2026, 1, 26, 13, 58),
        pd.Timestamp(2026, 1, 26, 9, 58, 12),  # a local time in Berlin (UTC+1 in January)
    ]
    assert reasons[:3].isna().all()
    assert pd.isna(parsed[3]) and reasons[3] == "not a timestamp '2026-01-26T10+05'"


def test_a_clean_column_is_read_without_pandas_parsing_a_value(monkeypatch):
    """What the CRMs send is read by Arrow: pandas' `to_datetime` goes value by value."""
    import revops.reconcile.parsing as parsing

    def refuse(*args, **kwargs):
        raise AssertionError("pandas parsed the column")

    monkeypatch.setattr(parsing.pd, "to_datetime", refuse)
    parsed, reasons = parse_timestamps(
        pd.Series(["2026-01-15T10:30:00.000+0000", "2026-01-15T10:30:00Z", "1768473000000", "2026-01-15"]),
        "Europe/Berlin",
    )
    assert parsed.tolist()[:3] == [pd.Timestamp(2026, 1, 15, 10, 30)] * 3
    assert parsed[3] == pd.Timestamp(2026, 1, 14, 23) and reasons.isna().all()
    dates, reasons = parse_dates(pd.Series(["2026-03-01", "2026-03-01T23:30:00-0500"]))
    assert dates.tolist() == [pd.Timestamp(2026, 3, 1), pd.Timestamp(2026, 3, 2)] and reasons.isna().all()
