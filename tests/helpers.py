"""Small helpers the tests share: land CSV exports and build staging in one call."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from revops.extract.csv_source import csv_batches
from revops.extract.landing import land_snapshot
from revops.reconcile.build import BuildResult, build_staging
from revops.warehouse import get_engine


def land_exports(engine: sa.Engine, exports: Path, run_id: str = "test-run") -> list:
    return [land_snapshot(engine, spec, records, run_id) for spec, records in csv_batches(exports)]


def stage(url: str, exports: Path, run_id: str = "test-run") -> tuple[sa.Engine, BuildResult]:
    engine = get_engine(url)
    land_exports(engine, exports, run_id)
    return engine, build_staging(engine, run_id)


def table(engine: sa.Engine, name: str, order_by: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"select * from {name} order by {order_by}"), conn)
