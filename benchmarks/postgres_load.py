"""Bulk loading on PostgreSQL: `append_frame` (COPY FROM STDIN) against row-by-row INSERTs
(SQLAlchemy executemany through psycopg2), same rows, same table, same run. Usage:

    .venv/bin/python -m benchmarks.postgres_load [--rows 200000]

Needs the local PostgreSQL server (as the tests do); works in a scratch database it drops.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from revops.devtools.postgres import scratch_database
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import raw_records


def raw_rows(count: int) -> pd.DataFrame:
    """Rows shaped like landed CRM records (a JSON payload of ~300 bytes each)."""
    ids = np.arange(count)
    payload = json.dumps(
        {"Email": "someone@example.com", "Company": "Globex Labs", "Score": 42} | {"pad": "x" * 200}
    )
    return pd.DataFrame(
        {
            "batch_id": "bench",
            "source": "salesforce",
            "object": "Lead",
            "record_id": [f"00Q{i:015d}" for i in ids],
            "record_version": "2026-11-02T00:00:00.000+0000",
            "record_hash": [f"{i:064x}" for i in ids],
            "is_deleted": False,
            "payload": payload,
        }
    )


def timed(load, engine, frame: pd.DataFrame) -> float:
    with engine.begin() as conn:
        conn.execute(raw_records.delete())
    started = time.perf_counter()
    with engine.begin() as conn:
        load(conn, frame)
    return time.perf_counter() - started


def insert_many(conn, frame: pd.DataFrame) -> None:
    """SQLAlchemy's executemany: psycopg2 with multi-row VALUES batches ("insertmanyvalues")."""
    conn.execute(raw_records.insert(), frame.to_dict("records"))


def insert_each(conn, frame: pd.DataFrame) -> None:
    """One INSERT statement per row: what a loop over records does."""
    for row in frame.to_dict("records"):
        conn.execute(raw_records.insert(), row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    frame = raw_rows(args.rows)
    with scratch_database() as url:
        engine = get_engine(url)
        copy_seconds = timed(lambda conn, f: append_frame(conn, raw_records, f), engine, frame)
        many_seconds = timed(insert_many, engine, frame)
        sample = frame.head(args.rows // 10)  # row by row is slow: a tenth, reported as a rate
        each_seconds = timed(insert_each, engine, sample) * len(frame) / len(sample)
    print(f"{args.rows:,} rows into raw.records on PostgreSQL")
    for name, seconds in [
        ("COPY (append_frame)", copy_seconds),
        ("INSERT executemany (batched)", many_seconds),
        ("INSERT per row (from a tenth)", each_seconds),
    ]:
        ratio = seconds / copy_seconds
        print(f"  {name:32s} {seconds:7.2f} s {args.rows / seconds:10,.0f} rows/s  {ratio:5.1f}x COPY's time")


if __name__ == "__main__":
    main()
