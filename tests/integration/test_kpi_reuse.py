"""Reusing stored KPI slices: a run on the same build and definitions computes nothing again,
and anything its numbers follow from (a new build, an edited definition, data beyond
staging) makes it compute afresh. On DuckDB and PostgreSQL."""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.kpis.engine import TOTAL, Build, compute_kpis, current_build, slice_inputs
from revops.kpis.registry import KPI_DIR, load_registry
from revops.kpis.scope import Scope
from revops.periods import period_containing
from tests.helpers import record_build, stage

# Two staging-only KPIs, and one that reads the raw layer, which changes without a new build.
STAGING_ONLY = ["win_rate_count", "stale_opportunity_share"]
READS_RAW = "quarantine_rate"
PERIODS = period_containing("month", date(2026, 9, 1)).history(2)
SCOPE = Scope("region", "EMEA")


@pytest.fixture
def staged(any_warehouse_url, small_exports):
    engine, _ = stage(any_warehouse_url, small_exports)
    return engine


def _statements(engine: sa.Engine) -> list[str]:
    """Every statement the engine sends from now on."""
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def _kpi_queries(sent: list[str]) -> list[str]:
    """The engine's KPI statements (they label each row's dimension), one per slice computed:
    a statement for several periods (`every_period_sql`) once per row of its period table."""
    return [s for s in sent if " as dimension" in s for _ in range(_periods_in(s))]


def _periods_in(statement: str) -> int:
    together = re.search(r"from \(values (.*?)\) as kpi_period", statement, re.DOTALL)
    return together.group(1).count("), (") + 1 if together else 1


def _totals(results: pd.DataFrame) -> pd.DataFrame:
    totals = results[results["dimension"] == TOTAL].copy()
    totals["period_start"] = pd.to_datetime(totals["period_start"]).dt.date
    columns = ["kpi_id", "period_start", "numerator", "denominator", "volume", "flags"]
    return totals[columns].sort_values(columns[:2]).reset_index(drop=True)


def test_a_second_run_on_the_same_build_reuses_every_staging_slice(staged):
    kpi_ids = [*STAGING_ONLY, READS_RAW]
    first = compute_kpis(staged, PERIODS, "first", SCOPE, kpi_ids, reuse=True)
    sent = _statements(staged)
    second = compute_kpis(staged, PERIODS, "second", SCOPE, kpi_ids, reuse=True)

    queries = _kpi_queries(sent)
    assert len(queries) == len(PERIODS)  # the raw-layer KPI only, once per period
    assert all("raw.extract_batches" in q for q in queries)
    pd.testing.assert_frame_equal(_totals(second), _totals(first))
    assert len(second) == len(first)  # every dimension's rows come back, not only totals
    # Reused rows still name the run that computed them.
    assert set(second.loc[second["kpi_id"].isin(STAGING_ONLY), "run_id"]) == {"first"}
    assert set(second.loc[second["kpi_id"] == READS_RAW, "run_id"]) == {"second"}


def test_without_reuse_every_slice_is_computed(staged):
    compute_kpis(staged, PERIODS, "first", SCOPE, STAGING_ONLY, reuse=True)
    sent = _statements(staged)
    compute_kpis(staged, PERIODS, "second", SCOPE, STAGING_ONLY)
    assert len(_kpi_queries(sent)) == len(PERIODS) * len(STAGING_ONLY)


def test_a_new_build_is_computed_afresh(staged):
    first = compute_kpis(staged, PERIODS, "first", SCOPE, STAGING_ONLY, reuse=True)
    with staged.begin() as conn:  # the next build has lost a won deal of September
        build = current_build(conn)
        won = conn.execute(
            sa.text(
                "select opportunity_id from staging.opportunities where is_won and region = 'EMEA'"
                " and close_date >= :start and close_date <= :end order by opportunity_id limit 1"
            ),
            {"start": PERIODS[-1].start, "end": PERIODS[-1].end},
        ).scalar_one()
        conn.execute(sa.text("delete from staging.opportunities where opportunity_id = :id"), {"id": won})
        built_at = conn.execute(sa.text("select max(built_at) from staging.builds")).scalar_one()
        record_build(conn, build.data_cutoff, "B-next", built_at=built_at + timedelta(seconds=1))
    sent = _statements(staged)
    reused = compute_kpis(staged, PERIODS, "second", SCOPE, STAGING_ONLY, reuse=True)
    assert len(_kpi_queries(sent)) == len(PERIODS) * len(STAGING_ONLY)
    fresh = compute_kpis(staged, PERIODS, "third", SCOPE, STAGING_ONLY)
    pd.testing.assert_frame_equal(_totals(reused), _totals(fresh))
    before, after = _september_wins(first), _september_wins(reused)
    assert after == before - 1


def test_an_edited_definition_is_computed_afresh(staged, tmp_path, monkeypatch):
    compute_kpis(staged, PERIODS, "first", SCOPE, STAGING_ONLY, reuse=True)
    catalogue = tmp_path / "kpis"
    shutil.copytree(KPI_DIR, catalogue)
    definition = catalogue / "stale_opportunity_share" / "definition.yaml"
    definition.write_text(definition.read_text().replace("stale_days: 60", "stale_days: 30"))
    monkeypatch.setenv("REVOPS_KPI_DIR", str(catalogue))

    sent = _statements(staged)
    compute_kpis(staged, PERIODS, "second", SCOPE, STAGING_ONLY, reuse=True)
    queries = _kpi_queries(sent)
    assert len(queries) == len(PERIODS)  # stale share only: win rate's definition is as it was
    assert all("stale" in q for q in queries)


def test_only_sql_that_reads_staging_alone_can_be_reused():
    registry = load_registry()
    with_digest = {}
    for kpi_id in ["win_rate_count", "lead_score_validity", READS_RAW]:
        kpi = registry[kpi_id]
        version = kpi.version_for(PERIODS[0].start)
        build = _build("B1")
        with_digest[kpi_id] = slice_inputs(kpi, version, PERIODS[0], SCOPE, build)
    assert with_digest["lead_score_validity"] is None  # score history
    assert with_digest[READS_RAW] is None  # the raw layer
    win_rate = registry["win_rate_count"]
    version = win_rate.version_for(PERIODS[0].start)
    same = slice_inputs(win_rate, version, PERIODS[0], SCOPE, _build("B1"))
    assert with_digest["win_rate_count"] == same
    assert slice_inputs(win_rate, version, PERIODS[0], SCOPE, _build("B2")) != same
    assert slice_inputs(win_rate, version, PERIODS[1], SCOPE, _build("B1")) != same
    assert slice_inputs(win_rate, version, PERIODS[0], Scope(), _build("B1")) != same


def _september_wins(results: pd.DataFrame) -> float:
    totals = _totals(results)
    wins = totals[(totals["kpi_id"] == "win_rate_count") & (totals["period_start"] == PERIODS[-1].start)]
    return wins["numerator"].iloc[0]


def _build(build_id: str) -> Build:
    return Build(build_id, datetime(2026, 10, 1))
