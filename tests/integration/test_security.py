"""Hostile values in the data and in scopes stay values: SQL only ever binds them, a region
filter is applied in SQL, and overlapping runs of the same KPIs leave no duplicates."""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.warehouse.engine import exclusive_transaction
from revops.warehouse.load import append_frame
from revops.warehouse.schema import kpi_results
from tests.helpers import stage

PERIOD = period_containing("quarter", date(2026, 8, 1))
KPI = "lead_to_opportunity_rate"
HOSTILE_REGION = "EMEA'; drop table staging.prospects; --"
HOSTILE_SOURCE = "<script>alert(1)</script>' or '1'='1"


def _rows(results: pd.DataFrame, dimension: str) -> pd.DataFrame:
    chosen = results[(results["kpi_id"] == KPI) & (results["dimension"] == dimension)]
    return chosen.set_index("segment")[["numerator", "denominator"]]


@pytest.fixture(scope="module")
def hostile(small_exports, tmp_path_factory):
    """Staging where every EMEA prospect's region and every paid-search prospect's sub-channel
    carry SQL and HTML, and KPIs computed before and after the change."""
    url = f"duckdb:///{tmp_path_factory.mktemp('security') / 'warehouse.duckdb'}"
    engine, _ = stage(url, small_exports)
    before = compute_kpis(engine, [PERIOD], "before", kpi_ids=[KPI])
    with engine.begin() as conn:
        conn.execute(
            sa.text("update staging.prospects set region = :r where region = 'EMEA'"), {"r": HOSTILE_REGION}
        )
        conn.execute(
            sa.text("update staging.prospects set channel = :c where channel = 'paid_search'"),
            {"c": HOSTILE_SOURCE},
        )
        prospects = conn.execute(sa.text("select count(*) from staging.prospects")).scalar_one()
    after = compute_kpis(engine, [PERIOD], "after", kpi_ids=[KPI])
    return engine, before, after, prospects


def test_hostile_segment_names_are_grouped_as_plain_values(hostile):
    engine, before, after, prospects = hostile
    regions_before, regions_after = _rows(before, "region"), _rows(after, "region")
    assert HOSTILE_REGION in regions_after.index and "EMEA" not in regions_after.index
    assert regions_after.loc[HOSTILE_REGION].tolist() == regions_before.loc["EMEA"].tolist()
    channels_before, channels_after = _rows(before, "channel"), _rows(after, "channel")
    assert channels_after.loc[HOSTILE_SOURCE].tolist() == channels_before.loc["paid_search"].tolist()
    assert _rows(after, TOTAL).equals(_rows(before, TOTAL))
    with engine.connect() as conn:  # nothing was executed from the data
        assert conn.execute(sa.text("select count(*) from staging.prospects")).scalar_one() == prospects


def test_a_region_scope_is_a_bound_filter_in_sql(hostile):
    engine, before, _, _ = hostile
    emea_before = _rows(before, "region").loc["EMEA"].tolist()
    hostile_scope = compute_kpis(engine, [PERIOD], "scoped", Scope("region", HOSTILE_REGION), [KPI])
    assert _rows(hostile_scope, TOTAL).loc["all"].tolist() == emea_before
    assert set(_rows(hostile_scope, "region").index) == {HOSTILE_REGION}  # no other region's rows
    injected = compute_kpis(engine, [PERIOD], "injected", Scope("region", "x' or '1'='1"), [KPI])
    assert _rows(injected, TOTAL)["denominator"].fillna(0).sum() == 0  # matches nothing, leaks nothing


def test_an_overlapping_kpi_run_waits_its_turn_and_leaves_one_row_each(small_exports, any_warehouse_url):
    """A second run of the same KPIs (a manual trigger while the scheduled run is going)
    waits for the first to commit instead of conflicting or adding its rows beside it."""
    engine, _ = stage(any_warehouse_url, small_exports)
    single = compute_kpis(engine, [PERIOD], "single", kpi_ids=[KPI])
    errors: list[BaseException] = []

    def second_run() -> None:
        try:
            compute_kpis(engine, [PERIOD], "second", kpi_ids=[KPI])
        except BaseException as error:
            errors.append(error)

    second = threading.Thread(target=second_run)
    with exclusive_transaction(engine, "marts.kpi_results") as first:  # the first run, mid-way
        first.execute(sa.text("delete from marts.kpi_results where kpi_id = :k"), {"k": KPI})
        second.start()
        second.join(timeout=3)
        assert second.is_alive(), "the second run went ahead while the first held the results"
        append_frame(first, kpi_results, single.assign(run_id="first"))
    second.join(timeout=120)
    assert not second.is_alive() and errors == []
    keys = ["kpi_id", "kpi_version", "grain", "period_start", "scope", "dimension", "segment"]
    with engine.connect() as conn:
        stored = pd.read_sql(sa.text("select * from marts.kpi_results"), conn)
    assert not stored.duplicated(keys).any() and len(stored) == len(single)
    assert set(stored["run_id"]) == {"second"}  # it replaced the first run's rows, whole
    expected = single.sort_values(keys)[["numerator", "denominator"]].to_numpy().tolist()
    assert stored.sort_values(keys)[["numerator", "denominator"]].to_numpy().tolist() == expected
