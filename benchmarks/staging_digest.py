"""A fingerprint of every staging table, to show a change to reconcile left staging as it was.

    .venv/bin/python -m benchmarks.staging_digest WAREHOUSE.duckdb > after.json
    diff before.json after.json

Per table: its row count and an MD5 of every row's hash in the order the rows were written,
so a different value, a missing row or another row order all change it. The build's id, its
run id and the time it was built are left out: they differ between two builds of the same data.
Run a reconcile from the same landed raw layer before and after the change, then compare.
A change that adds a column can leave it out of both digests: `--ignore-columns name_key`.
"""

from __future__ import annotations

import argparse
import json

import duckdb

# Columns that name or time one build rather than describe the data.
PER_BUILD_COLUMNS = ("build_id", "run_id", "built_at")


def staging_digest(warehouse: str, ignored: tuple[str, ...] = ()) -> dict[str, dict]:
    with duckdb.connect(warehouse, read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'staging' order by 1"
        ).fetchall()
        return {name: _table_digest(con, name, (*PER_BUILD_COLUMNS, *ignored)) for (name,) in tables}


def _table_digest(con: duckdb.DuckDBPyConnection, table: str, ignored: tuple[str, ...]) -> dict:
    columns = [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'staging' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        if name not in ignored
    ]
    row_hash = "hash(" + ", ".join(f'"{name}"' for name in columns) + ")"
    rows, digest = con.execute(
        f"select count(*), md5(string_agg({row_hash}::varchar, ',' order by rowid)) from staging.{table}"
    ).fetchone()
    return {"rows": rows, "md5": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", help="path of a DuckDB warehouse file")
    parser.add_argument("--ignore-columns", nargs="*", default=[], help="columns to leave out of every table")
    arguments = parser.parse_args()
    digest = staging_digest(arguments.warehouse, tuple(arguments.ignore_columns))
    print(json.dumps(digest, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
