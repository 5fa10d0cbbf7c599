"""The one function that decides "embedded DuckDB or PostgreSQL"."""

from __future__ import annotations

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


def forget_engines() -> None:
    """Drop every cached engine (after a database they point at was dropped)."""
    _engine_for.cache_clear()
