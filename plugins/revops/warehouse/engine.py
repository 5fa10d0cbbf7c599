"""The one function that decides "embedded DuckDB or PostgreSQL"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from revops.settings import Settings


def get_engine(url: str | None = None) -> sa.Engine:
    """Engine for the warehouse at `url` (default: REVOPS_WAREHOUSE_URL, read on every call, so
    a process whose environment changes gets the warehouse it now names), schema ensured."""
    return _engine_for(url or Settings.from_env().warehouse_url)


@cache
def _engine_for(url: str) -> sa.Engine:
    """One engine per URL. DuckDB keeps a file lock while a connection is open, so DuckDB
    engines do not pool: each `begin()` opens the file and closing it lets another process
    (a second Airflow task, a CLI) take its turn."""
    if url.startswith("duckdb:///"):
        Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, poolclass=NullPool)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    from revops.warehouse.schema import ensure_schema

    ensure_schema(engine)
    return engine


def is_duckdb(engine_or_conn: sa.Engine | sa.Connection) -> bool:
    return engine_or_conn.dialect.name == "duckdb"


# Held exclusively while a reconcile replaces staging, shared while a KPI run reads it: a run
# on PostgreSQL queries staging on several connections, and each must see the same build.
STAGING_BUILD_LOCK = "staging build"

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


@contextmanager
def exclusive_transaction(engine: sa.Engine, name: str) -> Iterator[sa.Connection]:
    """A transaction no other writer holding `name` overlaps: two runs replacing the same
    results (a manual trigger during a scheduled run) take turns instead of conflicting or
    leaving both their rows. PostgreSQL: an advisory lock, across workers. DuckDB: one process
    holds the file at a time, so a lock within the process, held until the commit."""
    if is_duckdb(engine):
        with _local_locks_guard:
            lock = _local_locks.setdefault(name, threading.Lock())
        with lock, engine.begin() as conn:
            yield conn
        return
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
        yield conn


def share_lock(conn: sa.Connection, name: str) -> None:
    """Within `conn`'s transaction, keep out writers holding `name` in `exclusive_transaction`
    until it ends; other sharers are not kept out. PostgreSQL: a shared advisory lock. DuckDB:
    nothing to do, since no other process can write while this one holds the file."""
    if not is_duckdb(conn):
        conn.execute(sa.text("select pg_advisory_xact_lock_shared(hashtext(:name))"), {"name": name})


def refresh_statistics(conn: sa.Connection, *tables: sa.Table) -> None:
    """On PostgreSQL, ANALYZE these tables within `conn`'s transaction, so the planner sees
    the rows just written before the next statement reads them. Without statistics it takes a
    fresh or refilled table for a row or two and plans nested loops over it; autovacuum comes
    later, if it is on, and never sees a table filled and emptied in one transaction. DuckDB
    keeps its own statistics up to date: nothing to do."""
    if is_duckdb(conn):
        return
    for table in tables:
        conn.execute(sa.text(f"analyze {table.fullname}"))


def release_cached_blocks(conn: sa.Connection) -> None:
    """Hand back the memory DuckDB keeps as a cache of the blocks it has read, before work
    outside it needs that memory: a full build's typing of raw, 0.6 GiB at a million leads.
    Lowering the memory limit evicts them (the data stays on disk); the limit is then put
    back. PostgreSQL: nothing to do, its cache lives in the server."""
    if not is_duckdb(conn):
        return
    shown = conn.exec_driver_sql("select current_setting('memory_limit')").scalar_one()
    conn.exec_driver_sql("set memory_limit = '1MB'")
    conn.exec_driver_sql(f"set memory_limit = '{_memory_limit_setting(shown)}'")


def _memory_limit_setting(shown: str) -> str:
    """The setting that gives back a memory limit DuckDB shows as `shown`. It shows the limit
    cut to one decimal ('18.7 GiB' for 18.75), so setting that text would lower the limit a
    little each time; the middle of the range it stands for shows the same."""
    number, unit = shown.split()
    if unit == "PiB":  # no limit (-1), shown as 16383.9 PiB, a unit DuckDB does not read
        return "-1"
    return f"{float(number) + 0.05:.2f} {unit}"


def forget_engines() -> None:
    """Drop every cached engine (after a database they point at was dropped)."""
    _engine_for.cache_clear()
