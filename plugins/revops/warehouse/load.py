"""Bulk reads and writes of DataFrames, with the fast path of each engine.

DuckDB scans the frame as Arrow; PostgreSQL gets `COPY ... FROM STDIN` in CSV.
Row-by-row INSERTs are never used for bulk data.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from revops.warehouse.engine import is_duckdb


def append_frame(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, constants: Mapping[str, Any] | None = None
) -> int:
    """Append `frame` (columns named as in `table`) inside the caller's transaction, with
    `constants` (column: value) filling their columns in every row. On DuckDB a constant is
    bound into the statement: the first score snapshot's four constant columns, 12.5M rows
    each, took pandas 2.1 s to build as a frame."""
    if frame.empty:
        return 0
    constants = dict(constants or {})
    columns = [c.name for c in table.columns if c.name in frame.columns and c.name not in constants]
    target = f"{table.schema}.{table.name}"
    column_list = ", ".join(columns + list(constants))
    if is_duckdb(conn):
        # As Arrow: DuckDB scans that 1.7x faster than the frame, whose object columns it reads
        # value by value (and the conversion copies reversed numpy views, which it cannot scan).
        arrow = in_scan_batches(pa.Table.from_pandas(frame[columns], preserve_index=False))
        selected = ", ".join(columns + ["?"] * len(constants))
        duck = conn.connection.dbapi_connection
        duck.register("_frame_to_append", arrow)
        try:
            duck.execute(
                f"insert into {target} ({column_list}) select {selected} from _frame_to_append",
                list(constants.values()),
            )
        finally:
            duck.unregister("_frame_to_append")
    else:
        cursor = conn.connection.dbapi_connection.cursor()
        for chunk in _copy_csv(frame[columns].assign(**constants), table):
            cursor.copy_expert(f"copy {target} ({column_list}) from stdin with (format csv)", chunk)
    return len(frame)


# Rows per record batch DuckDB is handed: its row group, so each thread scans whole groups.
SCAN_BATCH_ROWS = 122_880


def in_scan_batches(table: pa.Table) -> pa.Table:
    """`table` as record batches of `SCAN_BATCH_ROWS` (slices, not copies). DuckDB scans an
    Arrow table one batch per thread, and a frame converted whole is one batch: one core.
    At a million prospects, writing staging took 10.6 s from single batches and 6.3 s so."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_BATCH_ROWS), table.schema)


COPY_CHUNK_ROWS = 100_000  # rows per COPY: the CSV text of one chunk is all that is held


def _copy_csv(frame: pd.DataFrame, table: sa.Table) -> Iterator[io.BytesIO]:
    """The frame as CSV for COPY, a chunk at a time, written by Arrow in C++: every value
    quoted, nulls left bare, so no text (an empty string, `\\N`) can read as a null. At a
    million prospects this took 0.3 s where building COPY's text format in pandas took 9 to
    10 s (PostgreSQL reads the CSV 0.5 s slower)."""
    arrow = _integers_as_integers(pa.Table.from_pandas(frame, preserve_index=False), table)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
    for batch in arrow.to_batches(max_chunksize=COPY_CHUNK_ROWS):
        chunk = io.BytesIO()
        pa_csv.write_csv(batch, chunk, options)
        chunk.seek(0)
        yield chunk


def _integers_as_integers(arrow: pa.Table, table: sa.Table) -> pa.Table:
    """Integer columns as integers: pandas holds them as floats when values are missing, and
    COPY rejects '95.0' for an integer column."""
    for column in table.columns:
        if column.name in arrow.column_names and isinstance(column.type, sa.Integer):
            index = arrow.schema.get_field_index(column.name)
            values = arrow.column(index)
            if pa.types.is_floating(values.type):
                values = pc.round(values)
            arrow = arrow.set_column(index, column.name, values.cast(pa.int64()))
    return arrow


def replace_rows(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, where: Mapping[str, Any]) -> int:
    """Delete the rows matching `where`, then append `frame`: one slice replaced atomically.

    Call inside `engine.begin()` so a failure leaves the previous slice in place.
    """
    delete = table.delete()
    for column, value in where.items():
        delete = delete.where(table.c[column] == value)
    conn.execute(delete)
    return append_frame(conn, table, frame)


def empty_work_table(conn: sa.Connection, table: sa.Table) -> None:
    """Empty a work table (one a transaction fills, reads and empties again) before filling it.

    PostgreSQL: a TRUNCATE. Deleted rows stay in the table, dead, until a vacuum, and the
    statements that read the next fill scan them too: 30 daily score pulls of a million leads
    left 1.7 GB of them with autovacuum off. TRUNCATE locks the table until the commit, so
    two such transactions take turns. DuckDB: a delete, which frees its blocks itself."""
    if is_duckdb(conn):
        conn.execute(table.delete())
    else:
        conn.execute(sa.text(f"truncate table {table.fullname}"))


def replace_table(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Replace a whole table's contents (for staging tables rebuilt on every run)."""
    conn.execute(table.delete())
    return append_frame(conn, table, frame)


class BackgroundWriter:
    """Replaces tables (`replace_table`) in a second thread, one after another in the order
    given, while the caller's thread computes the next: DuckDB and PostgreSQL write without
    Python's lock, so the writes overlap pandas work. Until the block ends, the writer is
    the connection's only user. A failed write raises when the block ends; an error in the
    block drops the writes not yet begun and waits for the one under way, so the connection
    is free for the rollback."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="table-writer")
        self._writes: list[Future] = []
        self.written: set[sa.Table] = set()

    def write(self, table: sa.Table, frame: pd.DataFrame) -> None:
        self._writes.append(self._pool.submit(replace_table, self._conn, table, frame))
        self.written.add(table)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        self._pool.shutdown(wait=True, cancel_futures=error is not None)
        if error is None:
            for write in self._writes:
                write.result()


def read_frame(
    conn: sa.Connection, sql: str | sa.Executable, params: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Run a query and return its rows as a DataFrame."""
    statement = sa.text(sql) if isinstance(sql, str) else sql
    result = conn.execute(statement, dict(params or {}))
    # All rows in one fetch (row by row, DuckDB's fetchone costs 1.5x), as plain tuples:
    # pandas probes SQLAlchemy Row objects attribute by attribute (3x slower).
    return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=list(result.keys()))


def read_arrow(conn: sa.Connection, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
    """A large result of text, boolean and timestamp columns as an Arrow table: DuckDB hands
    its columns over as they are, not as Python rows (6x faster on 165k raw records), and
    PostgreSQL sends them as CSV, which Arrow reads in C++. Only for those types: a DuckDB
    HUGEINT sum would arrive as decimals where `read_frame` gives integers."""
    if not is_duckdb(conn):
        return _read_arrow_postgresql(conn, sql, params or {})
    result = conn.execute(sa.text(sql), dict(params or {}))
    try:
        return result.cursor.to_arrow_table()
    finally:
        result.close()


# The PostgreSQL types `read_arrow` reads (by type oid), as Arrow types.
_ARROW_TYPES = {16: pa.bool_(), 25: pa.string(), 1043: pa.string(), 1114: pa.timestamp("us")}


def _read_arrow_postgresql(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> pa.Table:
    """`COPY (query) TO STDOUT` as CSV, read by Arrow: at a million prospects, reading the raw
    records as rows through psycopg2 into a frame was a third of a full build on PostgreSQL.
    PostgreSQL quotes an empty string and leaves a null bare, and so Arrow reads them."""
    statement = sa.text(sql).bindparams(**params)
    query = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    csv = io.BytesIO()
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(f"select * from ({query}) as result limit 0")
        unreadable = [c.name for c in cursor.description if c.type_code not in _ARROW_TYPES]
        if unreadable:
            raise TypeError(f"read_arrow reads text, boolean and timestamp columns, not {unreadable}")
        schema = pa.schema([(c.name, _ARROW_TYPES[c.type_code]) for c in cursor.description])
        cursor.copy_expert(f"copy ({query}) to stdout with (format csv)", csv)
    if not csv.getbuffer().nbytes:
        return schema.empty_table()
    csv.seek(0)
    return pa_csv.read_csv(
        csv,
        read_options=pa_csv.ReadOptions(column_names=schema.names),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=schema,
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
