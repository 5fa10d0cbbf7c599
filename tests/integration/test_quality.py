"""Data-quality checks pass on clean data and catch each problem they exist for."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from revops.extract.landing import BatchSpec, BatchWriter
from revops.reconcile.build import build_staging
from revops.reconcile.quality import DataQualityError, run_check
from revops.warehouse import get_engine
from tests.helpers import land_exports, stage

CHECKS = ("freshness", "row_count_drift", "null_rates", "unmapped_sources", "referential_integrity")


@pytest.fixture
def staged(small_exports, tmp_path):
    return stage(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", small_exports)


@pytest.mark.parametrize("check", CHECKS)
def test_every_check_passes_on_the_clean_world(staged, check):
    engine, build = staged
    result = run_check(engine, check, build.build_id, run_time=datetime(2026, 11, 2, 1))
    assert result.status == "pass", result.message
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("select status from staging.quality_checks where build_id = :b and check_name = :c"),
            {"b": build.build_id, "c": check},
        ).scalar_one()
    assert stored == "pass"


def _land_changes(engine, object_name: str, records: list[dict], window_end: datetime) -> None:
    writer = BatchWriter(
        engine,
        BatchSpec(
            source="salesforce",
            object=object_name,
            extract_mode="incremental",
            window_start=None,
            window_end=window_end,
            origin="test",
            id_field="Id",
            version_field="SystemModstamp",
            deleted_field="IsDeleted",
        ),
        "quality-test",
    )
    writer.write_page(records)
    writer.complete(high_water=None)


def test_a_deleted_opportunity_behind_a_converted_lead_fails_referential_integrity(staged, small_world):
    engine, _ = staged
    converted = small_world.salesforce["Lead"].dropna(subset=["ConvertedOpportunityId"]).iloc[0]
    _land_changes(
        engine,
        "Opportunity",
        [
            {
                "Id": converted["ConvertedOpportunityId"],
                "SystemModstamp": "2026-11-01T12:00:00.000+0000",
                "IsDeleted": True,
            },
        ],
        datetime(2026, 11, 2),
    )
    build = build_staging(engine, "after-delete")
    with pytest.raises(DataQualityError, match="converted leads without opportunity: 1"):
        run_check(engine, "referential_integrity", build.build_id)


def test_an_object_left_behind_fails_freshness(staged):
    engine, _ = staged
    _land_changes(engine, "Lead", [], datetime(2026, 11, 5))  # Leads are now three days ahead
    build = build_staging(engine, "leads-ahead")
    with pytest.raises(DataQualityError, match=r"lags the freshest object by 72\.0 h"):
        run_check(engine, "freshness", build.build_id)


def test_a_shrinking_table_warns_about_row_count_drift(small_exports, tmp_path):
    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, small_exports)
    build_staging(engine, "first")
    leads = (small_exports / "salesforce" / "Lead.csv").read_text().splitlines()
    contacts = (small_exports / "hubspot" / "contacts.csv").read_text().splitlines()
    shrunk = tmp_path / "exports"
    for path in small_exports.rglob("*"):
        if path.is_file():
            target = shrunk / path.relative_to(small_exports)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (shrunk / "salesforce" / "Lead.csv").write_text("\n".join(leads[: len(leads) // 2]) + "\n")
    (shrunk / "hubspot" / "contacts.csv").write_text("\n".join(contacts[: len(contacts) // 2]) + "\n")
    land_exports(engine, shrunk)
    build = build_staging(engine, "second")
    result = run_check(engine, "row_count_drift", build.build_id)
    assert result.status == "warn"  # severity warn: recorded, the run goes on
    assert "prospects:" in result.message and result.measured["changes"]["prospects"] < -0.25


def test_missing_amounts_warn_about_null_rates(staged):
    engine, build = staged
    with engine.begin() as conn:
        conn.execute(
            sa.text("update staging.opportunities set amount = null where opportunity_id like '%1AAA'")
        )
    result = run_check(engine, "null_rates", build.build_id)
    assert result.status == "warn" and "opportunities.amount" in result.message
    assert json.loads(json.dumps(result.measured))["null_rates"]["opportunities.amount"] > 0.05
