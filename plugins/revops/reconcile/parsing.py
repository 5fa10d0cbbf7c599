"""Typing raw string values: timestamps to naive UTC, dates, numbers, booleans.

Every parser is vectorised and returns the parsed values plus, per row, the reason a
present value could not be parsed (None where it parsed or was absent), so a bad value sends
its record to quarantine instead of killing the run or vanishing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# `Z`, `+hhmm` or `+hh:mm`, or `+hh` after a time's minutes or seconds (not after a date's day).
OFFSET_SUFFIX = r"(?:Z|[+-][0-9]{2}:?[0-9]{2}|:[0-9]{2}(?:[.,][0-9]+)?[+-][0-9]{2})$"
DATE_ONLY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f"}


def clean_text(values: pd.Series) -> pd.Series:
    """Text with surrounding blanks gone; an empty value is missing."""
    return values.astype("string").str.strip().replace("", pd.NA)


def parse_timestamps(values: pd.Series, naive_timezone: str = "UTC") -> tuple[pd.Series, pd.Series]:
    """ISO 8601 (any offset or `Z`), date-only, or epoch milliseconds -> naive UTC.

    A value without an offset is a local time in `naive_timezone` (UTC unless configured);
    in the repeated hour when clocks go back it is read as the first (summer) occurrence.
    """
    text = clean_text(values)
    arrow = _arrow_text(text)
    is_epoch = _is_epoch_millis(arrow)
    has_offset = _matches(arrow, OFFSET_SUFFIX)
    is_naive = ~is_epoch & ~has_offset & text.notna().to_numpy()
    # Each shape is parsed on its own rows only (a parser's pass over a million missing
    # values costs as much as over a million present ones), and put back by position, since
    # callers' indexes may repeat labels.
    parsed = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ms]")
    # 12 or 13 ASCII digits: an exact integer, and within datetime64's range.
    parsed[is_epoch] = pc.cast(_rows(arrow, is_epoch), pa.int64()).to_numpy().astype("datetime64[ms]")
    parsed[has_offset] = _iso8601(_rows(arrow, has_offset), utc=True)
    naive = pd.Series(_iso8601(_rows(arrow, is_naive), utc=False))
    naive_utc = naive.dt.tz_localize(naive_timezone, ambiguous=True, nonexistent="shift_forward")
    parsed[is_naive] = naive_utc.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ms]")
    parsed = pd.Series(parsed, index=text.index)
    return parsed, _reasons(text, parsed, "not a timestamp")


def _arrow_text(text: pd.Series) -> pa.ChunkedArray:
    """`clean_text`'s values as Arrow (their storage, not a copy)."""
    return pa.chunked_array(pa.array(text.array))


def _rows(strings: pa.ChunkedArray, mask: np.ndarray) -> pa.ChunkedArray:
    """The strings where `mask` is set: all of them without a copy, as in a clean column."""
    return strings if mask.all() else strings.filter(mask)


def _is_epoch_millis(strings: pa.ChunkedArray) -> np.ndarray:
    """12 or 13 ASCII digits (other scripts' digits are no epoch), as a regex would say but
    a tenth of its time."""
    digits = pc.and_(pc.ascii_is_decimal(strings), pc.is_in(pc.binary_length(strings), pa.array([12, 13])))
    return pc.fill_null(digits, False).to_numpy(zero_copy_only=False)


def _matches(strings: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Where each string matches `pattern` in full or at its end (as anchored), by Arrow's
    RE2: False where missing."""
    return pc.fill_null(pc.match_substring_regex(strings, pattern), False).to_numpy(zero_copy_only=False)


def _iso8601(strings: pa.ChunkedArray, utc: bool, pandas_format: str = "ISO8601") -> np.ndarray:
    """ISO 8601 text as datetime64[ms]: with `utc`, each value's offset applied (naive UTC);
    without, as written. NaT where a value cannot be read.

    Arrow reads the common shapes in C++, a tenth of pandas' time (which copies them to Python
    strings first), but fails the whole array on one it does not read (a single-digit month,
    a date without separators, a year beyond 1677-2262 in its nanoseconds); pandas then reads
    them all (by `pandas_format`). Where both read a value they agree (a property test)."""
    try:
        nanoseconds = pc.cast(strings, pa.timestamp("ns", "UTC" if utc else None))
        return nanoseconds.to_numpy(zero_copy_only=False).astype("datetime64[ms]")
    except pa.ArrowInvalid:
        return _read_by_pandas(pd.Series(strings.to_pylist(), dtype=object), utc, pandas_format)


def _read_by_pandas(text: pd.Series, utc: bool, pandas_format: str) -> np.ndarray:
    """`_iso8601` by pandas. Without `utc`, a value in which pandas finds an offset
    `OFFSET_SUFFIX` does not name (`+0`, or `+05` after an hour alone) is NaT: it is no local
    time, and pandas raises on a column mixing it with others, so such a column is read value
    by value."""
    if utc:
        parsed = pd.to_datetime(text, format=pandas_format, utc=True, errors="coerce")
        return parsed.dt.tz_localize(None).to_numpy("datetime64[ms]")
    try:
        parsed = pd.to_datetime(text, format=pandas_format, errors="coerce")
        if isinstance(parsed.dtype, np.dtype):  # no offset found
            return parsed.to_numpy("datetime64[ms]")
    except ValueError:  # offsets mixed with local times
        pass
    return np.array([_local_time(value, pandas_format) for value in text], dtype="datetime64[ms]")


def _local_time(value: str | None, pandas_format: str) -> np.datetime64:
    parsed = pd.to_datetime(value, format=pandas_format, errors="coerce")
    return np.datetime64("NaT") if pd.isna(parsed) or parsed.tzinfo is not None else parsed.to_datetime64()


def parse_dates(values: pd.Series, naive_timezone: str = "UTC") -> tuple[pd.Series, pd.Series]:
    """`YYYY-MM-DD` -> that date at midnight; a full timestamp -> its date in UTC."""
    text = clean_text(values)
    arrow = _arrow_text(text)
    date_only = _matches(arrow, DATE_ONLY)
    parsed = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ms]")
    parsed[date_only] = _iso8601(_rows(arrow, date_only), utc=False, pandas_format="%Y-%m-%d")
    parsed[~date_only] = parse_timestamps(text[~date_only], naive_timezone)[0].to_numpy()
    parsed = pd.Series(parsed, index=text.index).dt.normalize()
    return parsed, _reasons(text, parsed, "not a date")


def parse_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Plain or formatted amounts (`12300.00`, `$12,300`, `EUR 1 200,50` is rejected)."""
    text = clean_text(values)
    parsed = _finite(plain_numbers(text))
    # Only what is not a plain number is cleaned (the regex runs value by value in Python):
    # an optional sign, then a currency code and/or symbol: "-$1,200.50" -> "-1200.50".
    formatted = text[text.notna() & parsed.isna()]
    cleaned = formatted.str.replace(r"^(-?)\s*[A-Z]{0,3}\s?[$€£]?\s*", r"\1", regex=True).str.replace(",", "")
    parsed.loc[formatted.index] = _finite(pd.to_numeric(cleaned, errors="coerce"))
    return parsed, _reasons(text, parsed, "not a number")


def plain_numbers(values: pd.Series) -> pd.Series:
    """Each value as a float, NaN where it is no plain number. Text is read by Arrow when all
    of it is plain numbers: 12.5M score versions took 4 to 5 s in `pd.to_numeric`, 0.1 to
    0.3 s so. Arrow refuses the rest (blanks, thousands separators), which pandas then reads;
    where both read a value they agree."""
    if pd.api.types.is_string_dtype(values):
        try:
            arrow = pc.cast(pa.array(values, type=pa.large_string()), pa.float64())
            return pd.Series(arrow.to_numpy(zero_copy_only=False), index=values.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _finite(numbers: pd.Series) -> pd.Series:
    numbers = numbers.astype("float64")
    return numbers.where(np.isfinite(numbers))


def parse_booleans(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    text = clean_text(values).str.lower()
    parsed = pd.Series(
        np.where(text.isin(TRUE_WORDS), True, np.where(text.isin(FALSE_WORDS), False, None)),
        index=values.index,
        dtype="boolean",
    )
    return parsed, _reasons(text, parsed, "not a boolean")


def _reasons(text: pd.Series, parsed: pd.Series, what: str) -> pd.Series:
    """The reason on each row whose present value did not parse (text built for those only:
    a clean export has none, and a million rows of text cost seconds)."""
    failed = (text.notna() & parsed.isna()).to_numpy()
    reasons = np.full(len(text), None, dtype=object)
    reasons[failed] = (what + " '" + text[failed].str.slice(0, 60) + "'").to_numpy(dtype=object)
    return pd.Series(reasons, index=text.index, dtype=object)


PARSERS = {
    "timestamp": parse_timestamps,
    "date": parse_dates,
    "number": parse_numbers,
    "boolean": parse_booleans,
}


@dataclass(frozen=True)
class RecordSpec:
    """Which fields of a source object are required and how each typed field parses."""

    required: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict)  # field -> key of PARSERS
    # (reason, test): a typed row the test marks True is rejected with that reason.
    rules: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = ()


def type_records(
    frame: pd.DataFrame, spec: RecordSpec, naive_timezone: str = "UTC"
) -> tuple[pd.DataFrame, pd.Series]:
    """Parse the typed fields of `frame`; returns it typed and one reason per rejected row.

    `naive_timezone` is the zone of timestamps written without an offset.
    """
    typed = frame.copy()
    problems = []  # per check, in order: the rows failing it, and its reason (one, or one per such row)
    for name in spec.required:
        missing = typed[name].isna().to_numpy() if name in typed else np.ones(len(frame), dtype=bool)
        problems.append((missing, f"{name}: missing"))
    for name, kind in spec.types.items():
        if name not in typed:
            typed[name] = pd.Series(pd.NA, index=frame.index, dtype=object)
        if kind in ("timestamp", "date"):
            typed[name], reasons = PARSERS[kind](typed[name], naive_timezone)
        else:
            typed[name], reasons = PARSERS[kind](typed[name])
        failed = reasons.notna().to_numpy()
        problems.append((failed, [f"{name}: {reason}" for reason in reasons.to_numpy()[failed]]))
    for reason, breaks in spec.rules:
        problems.append((breaks(typed).fillna(False).to_numpy(dtype=bool), reason))
    return typed, _joined(problems, frame.index)


def _joined(problems: list[tuple[np.ndarray, str | list[str]]], index: pd.Index) -> pd.Series:
    """Each row's reasons joined by "; " (None for a row that passed every check). Reasons are
    written for the failing rows only: a clean export has none, and a million rows of text
    cost a second."""
    reasons: dict[int, list[str]] = {}  # by failing row's position
    for fails, reason in problems:
        for position, row in enumerate(np.flatnonzero(fails)):
            reasons.setdefault(row, []).append(reason if isinstance(reason, str) else reason[position])
    joined = np.full(len(index), None, dtype=object)
    joined[list(reasons)] = ["; ".join(texts) for texts in reasons.values()]
    return pd.Series(joined, index=index, dtype=object)
