"""A KPI run reads one staging build, even when a reconcile commits a new one meanwhile.

On PostgreSQL a run queries staging on several connections while a reconcile in another
worker may be replacing it. (DuckDB needs no test: one process holds the file at a time.)
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.devtools.postgres import scratch_warehouse
from revops.extract.landing import BatchSpec, BatchWriter
from revops.kpis import engine as kpi_engine
from revops.kpis.engine import TOTAL, compute_kpis, current_build
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.reconcile.build import build_staging
from tests.helpers import stage

SEPTEMBER = period_containing("month", date(2026, 9, 1))
EMEA = Scope("region", "EMEA")


@pytest.fixture
def postgres_staged(small_exports, tmp_path):
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine, _ = stage(url, small_exports)
        yield engine


def _wins(results: pd.DataFrame) -> float:
    return results.loc[results["dimension"] == TOTAL, "numerator"].iloc[0]


def _delete_a_won_deal_upstream(engine: sa.Engine) -> None:
    """Land an incremental batch in which one of September's won EMEA deals is deleted."""
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
        payload = conn.execute(
            sa.text(
                "select records.payload from raw.records as records"
                " inner join staging.opportunities as opportunities"
                " on opportunities.opportunity_id = records.record_id"
                " where records.object = 'Opportunity' and opportunities.is_won"
                " and opportunities.region = 'EMEA'"
                " and opportunities.close_date between :start and :end"
                " order by records.record_id limit 1"
            ),
            {"start": SEPTEMBER.start, "end": SEPTEMBER.end},
        ).scalar_one()
    later = cutoff + timedelta(hours=1)
    deleted = {**json.loads(payload), "IsDeleted": True, "SystemModstamp": later.isoformat()}
    spec = BatchSpec(
        "salesforce", "Opportunity", "incremental", cutoff, later, "api", "Id", "SystemModstamp", "IsDeleted"
    )
    writer = BatchWriter(engine, spec, "deletion")
    writer.write_page([deleted])
    writer.complete(later)


def _build_id(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return current_build(conn).build_id


def _waiting_on_advisory_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        query = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        return conn.execute(sa.text(query)).scalar_one() > 0


def test_a_reconcile_during_a_kpi_run_waits_for_it(postgres_staged, monkeypatch):
    engine = postgres_staged
    before = compute_kpis(engine, [SEPTEMBER], "before", EMEA, ["win_rate_count"])
    old_build = _build_id(engine)
    _delete_a_won_deal_upstream(engine)

    rebuild = threading.Thread(target=build_staging, args=(engine, "rebuild"))
    query_slices = kpi_engine._query_slices
    reconcile_state: list[str] = []

    def reconcile_starts_before_the_queries(*args, **kwargs):
        rebuild.start()
        deadline = time.monotonic() + 60
        while rebuild.is_alive() and not _waiting_on_advisory_lock(engine):
            assert time.monotonic() < deadline, "the reconcile neither finished nor waited"
            time.sleep(0.05)
        reconcile_state.append("waiting" if rebuild.is_alive() else "finished")
        return query_slices(*args, **kwargs)

    monkeypatch.setattr(kpi_engine, "_query_slices", reconcile_starts_before_the_queries)
    during = compute_kpis(engine, [SEPTEMBER], "during", EMEA, ["win_rate_count"])
    monkeypatch.undo()
    rebuild.join(timeout=120)

    assert reconcile_state == ["waiting"]  # it could not replace staging under the run
    assert set(during["build_id"]) == {old_build}
    assert _wins(during) == _wins(before)  # the numbers are the build they are labelled with
    after = compute_kpis(engine, [SEPTEMBER], "after", EMEA, ["win_rate_count"])
    assert set(after["build_id"]) == {_build_id(engine)} != {old_build}
    assert _wins(after) == _wins(before) - 1  # the new build did change the numbers
