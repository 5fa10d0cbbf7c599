"""Operations on large frames of Arrow-backed text, where pandas' own paths are slow.

pandas 3 keeps text in Arrow; for a million rows some of its paths make one Python object
per value or factorise every text key first. These do the same work in Arrow or DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revops.warehouse.load import in_scan_batches


def is_in(keys: pd.Series, known: pd.Series | pd.Index) -> pd.Series:
    """`keys.isin(known)` for text keys, in Arrow (a missing key is in nothing): pandas' isin
    on Arrow-backed text makes one Python scalar per known value, 55x slower at 50k keys."""
    text = pa.large_string()
    found = among(pa.array(keys, type=text), pa.array(known, type=text))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=keys.index)


def casefolded(text: pd.Series) -> pd.Series:
    """`text.str.casefold()` for Arrow-backed text: Arrow lower-cases the ASCII values (for
    which casefold and lower agree) and Python case-folds only the rest. pandas case-folds
    every value in Python: 0.2 s a column at a million prospects, against 0.02 s."""
    folded = text.str.lower()
    other = ~text.str.isascii().fillna(True)
    if other.any():
        folded[other] = text[other].str.casefold()
    return folded


def mapped(values: pd.Series, mapping: Mapping) -> pd.Series:
    """`values.map(mapping)`, each distinct value looked up once and taken to its rows by
    code: pandas' `map` hashes every Arrow-backed value as a Python object (0.27 s for the
    892k stage changes of a million prospects)."""
    codes, distinct = pd.factorize(values)
    per_value = pd.Series(distinct, dtype=object).map(mapping)
    return pd.Series(per_value.reindex(codes).to_numpy(), index=values.index)  # code -1: missing


def as_dates(timestamps: pd.Series) -> pd.Series:
    """The calendar date of each timestamp, as Arrow dates: `.dt.date` makes a Python object
    per value (0.24 s for 892k stage changes)."""
    dates = pc.cast(pa.array(timestamps), pa.date32())
    return pd.Series(pd.arrays.ArrowExtensionArray(dates), index=timestamps.index)


def looked_up(rows: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """The row of `rows` (indexed by a unique key) for each of `keys`, missing where none, on
    `keys`' index: `keys.map(rows[column])` for every column in one lookup, where a lookup per
    column took 0.4 s each at a million prospects."""
    return rows.reindex(keys.to_numpy()).set_axis(keys.index)


def among(values: pa.Array | pa.ChunkedArray, known: pa.Array | Iterable[str]) -> pa.Array | pa.ChunkedArray:
    """Which of the Arrow text `values` are in `known` (a missing value is in nothing)."""
    value_set = known if isinstance(known, pa.Array) else pa.array(list(known), type=values.type)
    return pc.is_in(values, value_set=value_set, skip_nulls=True).fill_null(False)


def as_series(values: pa.ChunkedArray, like: pd.Series) -> pd.Series:
    """An Arrow column as a Series with `like`'s index and type: through Arrow's own
    conversion, not a Python object per value."""
    return values.to_pandas().set_axis(like.index).astype(like.dtype)


def query_arrow(sql: str, tables: dict[str, pa.Table], parameters: list | dict | None = None) -> pa.Table:
    """`sql` on an in-process DuckDB that reads each of `tables` by its name, zero-copy;
    the connection, and the memory its work took, end with the call. Each table is handed
    over in batches, so DuckDB scans it on every core."""
    with duckdb.connect() as local:
        for name, table in tables.items():
            local.register(name, in_scan_batches(table))
        return local.execute(sql, parameters).to_arrow_table()


def sorted_rows(frame: pd.DataFrame, by: list[str], ascending: bool | list[bool] = True) -> pd.DataFrame:
    """`frame.sort_values(by, ascending=ascending)`, the same order (stable, missing values
    last), sorted by DuckDB on every core: 3x faster on the 2.7M-row stage timeline, where
    pandas factorises each text key before sorting."""
    directions = ascending if isinstance(ascending, list) else [ascending] * len(by)
    sort_keys = pa.Table.from_pandas(frame[by], preserve_index=False)
    sort_keys = sort_keys.append_column("_position", pa.array(np.arange(len(frame))))
    order = ", ".join(
        f'"{name}" {"asc" if up else "desc"} nulls last' for name, up in zip(by, directions, strict=True)
    )
    sql = f"select _position from sort_keys order by {order}, _position"
    return frame.take(query_arrow(sql, {"sort_keys": sort_keys})["_position"].to_numpy())
