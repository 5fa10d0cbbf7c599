from datetime import datetime

import sqlalchemy as sa

from revops.extract.landing import BatchSpec, BatchWriter, land_snapshot, read_watermark
from revops.warehouse import get_engine


def _spec(mode="full", **overrides):
    values = dict(
        source="salesforce",
        object="Lead",
        extract_mode=mode,
        window_start=None,
        window_end=datetime(2026, 11, 2),
        origin="test",
        id_field="Id",
        version_field="SystemModstamp" if mode == "incremental" else None,
        deleted_field="IsDeleted",
    )
    return BatchSpec(**{**values, **overrides})


def _count(engine, sql):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_an_identical_snapshot_lands_once(warehouse_url):
    engine = get_engine(warehouse_url)
    records = [{"Id": "00Q1", "Email": "a@x.io"}, {"Id": "00Q2", "Email": "b@x.io"}]
    first = land_snapshot(engine, _spec(), records, "run-1")
    second = land_snapshot(engine, _spec(), list(records), "run-2")
    changed = land_snapshot(engine, _spec(), records[:1], "run-3")
    assert second.already_landed and second.batch_id == first.batch_id
    assert not changed.already_landed and changed.record_count == 1
    assert _count(engine, "select count(*) from raw.records") == 3


def test_overlapping_incremental_windows_never_duplicate_a_version(warehouse_url):
    engine = get_engine(warehouse_url)
    version_1 = {"Id": "00Q1", "SystemModstamp": "2026-11-01T10:00:00.000+0000", "Status": "MQL"}
    version_2 = {**version_1, "SystemModstamp": "2026-11-01T12:00:00.000+0000", "Status": "SAL"}
    other = {"Id": "00Q2", "SystemModstamp": "2026-11-01T10:00:00.000+0000", "Status": "MQL"}
    writer = BatchWriter(engine, _spec("incremental"), "run-1")
    writer.write_page([version_1, other])
    writer.complete(high_water=datetime(2026, 11, 1, 11))
    # The next window overlaps the first (look-back): version_1 and other come back again.
    writer = BatchWriter(engine, _spec("incremental"), "run-2")
    landed = writer.write_page([version_1, other, version_2])
    batch = writer.complete(high_water=datetime(2026, 11, 1, 13))
    assert landed == 1 and batch.records_seen == 3 and batch.record_count == 1
    assert _count(engine, "select count(*) from raw.records") == 3
    assert read_watermark(engine, "salesforce", "Lead") == datetime(2026, 11, 1, 13)


def test_a_failed_batch_is_marked_incomplete_and_keeps_the_watermark(warehouse_url):
    engine = get_engine(warehouse_url)
    writer = BatchWriter(engine, _spec("incremental"), "run-1")
    writer.write_page([{"Id": "00Q1", "SystemModstamp": "2026-11-01T10:00:00.000+0000"}])
    writer.complete(high_water=datetime(2026, 11, 1, 11))
    failing = BatchWriter(engine, _spec("incremental"), "run-2")
    failing.write_page([{"Id": "00Q9", "SystemModstamp": "2026-11-01T12:00:00.000+0000"}])
    result = failing.fail("daily API quota reached after 1 page")
    assert result.status == "incomplete"
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select status, status_reason from raw.extract_batches where batch_id = :b"),
            {"b": failing.batch_id},
        ).one()
    assert tuple(row) == ("incomplete", "daily API quota reached after 1 page")
    assert read_watermark(engine, "salesforce", "Lead") == datetime(2026, 11, 1, 11)
    # A retry of the window lands the record again: only complete batches count as "known".
    retry = BatchWriter(engine, _spec("incremental"), "run-3")
    assert retry.write_page([{"Id": "00Q9", "SystemModstamp": "2026-11-01T12:00:00.000+0000"}]) == 1


def test_a_record_without_an_id_is_landed_under_its_position(warehouse_url):
    engine = get_engine(warehouse_url)
    land_snapshot(engine, _spec(), [{"Id": None, "Email": "a@x.io"}], "run-1")
    assert _count(engine, "select record_id from raw.records") == "<missing id: row 1>"
