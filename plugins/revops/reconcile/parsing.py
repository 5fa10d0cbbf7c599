"""Typing raw string values: timestamps to naive UTC, dates, numbers, booleans.

Every parser is vectorised and returns the parsed values plus, per row, the reason a
present value could not be parsed (None where it parsed or was absent), so a bad value sends
its record to quarantine instead of killing the run or vanishing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# ASCII digits only: `\d` would also match other scripts' digits, which no source sends.
EPOCH_MILLIS = re.compile(r"^[0-9]{12,13}$")
OFFSET_SUFFIX = r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$"

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
    is_epoch = text.str.fullmatch(EPOCH_MILLIS.pattern).fillna(False).astype(bool)
    has_offset = text.str.contains(OFFSET_SUFFIX, regex=True).fillna(False).astype(bool)
    is_naive = ~is_epoch & ~has_offset & text.notna()
    # Each shape is parsed on its own rows only (a parser's pass over a million missing
    # values costs as much as over a million present ones), and put back by position, since
    # callers' indexes may repeat labels.
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ms]")
    epoch = pd.to_numeric(text[is_epoch], errors="coerce")
    parsed[is_epoch] = pd.to_datetime(epoch, unit="ms", errors="coerce").to_numpy("datetime64[ms]")
    aware = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
    parsed[has_offset] = aware.dt.tz_localize(None).to_numpy("datetime64[ms]")
    naive = pd.to_datetime(text[is_naive], format="ISO8601", errors="coerce")
    naive_utc = naive.dt.tz_localize(naive_timezone, ambiguous=True, nonexistent="shift_forward")
    parsed[is_naive] = naive_utc.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ms]")
    return parsed, _reasons(text, parsed, "not a timestamp")


def parse_dates(values: pd.Series, naive_timezone: str = "UTC") -> tuple[pd.Series, pd.Series]:
    """`YYYY-MM-DD` -> that date at midnight; a full timestamp -> its date in UTC."""
    text = clean_text(values)
    date_only = text.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False).astype(bool)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ms]")
    plain = pd.to_datetime(text[date_only], format="%Y-%m-%d", errors="coerce")
    parsed[date_only] = plain.to_numpy("datetime64[ms]")
    parsed[~date_only] = parse_timestamps(text[~date_only], naive_timezone)[0].to_numpy()
    parsed = parsed.dt.normalize()
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
    problems = []  # per check, in order: its reason on each row that fails it, else None
    for name in spec.required:
        missing = typed[name].isna() if name in typed else pd.Series(True, index=frame.index)
        problems.append(_reason_where(missing, f"{name}: missing"))
    for name, kind in spec.types.items():
        if name not in typed:
            typed[name] = pd.Series(pd.NA, index=frame.index, dtype=object)
        if kind in ("timestamp", "date"):
            typed[name], reasons = PARSERS[kind](typed[name], naive_timezone)
        else:
            typed[name], reasons = PARSERS[kind](typed[name])
        problems.append(_reason_where(reasons.notna(), name + ": " + reasons.fillna("")))
    for reason, breaks in spec.rules:
        problems.append(_reason_where(breaks(typed).fillna(False), reason))
    return typed, _joined(problems, frame.index)


def _reason_where(fails: pd.Series, reason: str | pd.Series) -> pd.Series:
    return pd.Series(reason, index=fails.index, dtype=object).where(fails.fillna(False).astype(bool), None)


def _joined(problems: list[pd.Series], index: pd.Index) -> pd.Series:
    """Each row's reasons joined by "; " (None for a row that passed every check): only the
    failing rows are visited, since a clean export has none."""
    joined = pd.Series(None, index=index, dtype=object)
    if not problems:
        return joined
    table = pd.concat(problems, axis=1)
    failing = table.notna().any(axis=1).to_numpy()
    rows = table[failing].itertuples(index=False)
    joined[failing] = ["; ".join(r for r in row if r is not None) for row in rows]
    return joined
