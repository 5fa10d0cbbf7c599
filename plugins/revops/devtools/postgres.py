"""A PostgreSQL server for tests and the production check: use the one on loopback, start
the machine's cluster when it is down, and hand out throwaway databases."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

SERVER_URL = os.environ.get(
    "REVOPS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def ensure_server(url: str = SERVER_URL, wait_seconds: float = 30) -> None:
    """Connect, or start the local cluster (Debian's pg_ctlcluster) and wait for it."""
    if _reachable(url):
        return
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if not clusters:
        raise RuntimeError(f"PostgreSQL is not reachable at {url} and no local cluster to start")
    version = clusters[-1].parent.name
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if _reachable(url):
            return
        time.sleep(0.5)
    raise RuntimeError(f"PostgreSQL did not come up at {url}")


def _reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextmanager
def scratch_database(url: str = SERVER_URL) -> Iterator[str]:
    """A new empty database for the block; dropped afterwards. Yields its URL."""
    ensure_server(url)
    name = f"revops_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from revops.warehouse.engine import forget_engines

        forget_engines()

        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@contextmanager
def scratch_warehouse(kind: str, directory: Path) -> Iterator[str]:
    """An empty warehouse for the block: an embedded DuckDB file in `directory`, or a scratch
    database on the PostgreSQL server. Yields its URL."""
    if kind == "duckdb":
        yield f"duckdb:///{directory / 'warehouse.duckdb'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown warehouse kind {kind!r}; expected 'duckdb' or 'postgresql'")
    with scratch_database() as url:
        yield url
