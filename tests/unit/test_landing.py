from datetime import datetime

import sqlalchemy as sa

from revops.extract.landing import Batch, land_batch
from revops.warehouse import get_engine


def _batch(records):
    return Batch(
        source="salesforce",
        object="Lead",
        records=records,
        id_field="Id",
        extract_mode="full",
        window_start=None,
        window_end=datetime(2026, 11, 2),
        origin="test",
    )


def test_landing_the_same_data_twice_lands_it_once(warehouse_url):
    engine = get_engine(warehouse_url)
    records = [{"Id": "00Q1", "Email": "a@x.io"}, {"Id": "00Q2", "Email": "b@x.io"}]
    with engine.begin() as conn:
        first = land_batch(conn, _batch(records), "run-1", datetime(2026, 11, 2, 1))
        second = land_batch(conn, _batch(list(records)), "run-2", datetime(2026, 11, 2, 2))
        changed = land_batch(conn, _batch(records[:1]), "run-3", datetime(2026, 11, 2, 3))
        count = conn.execute(sa.text("select count(*) from raw.records")).scalar_one()
    assert first.batch_id == second.batch_id and second.already_landed
    assert changed.batch_id != first.batch_id
    assert count == 3  # two records, then one more batch of one


def test_a_record_without_an_id_is_landed_under_its_position(warehouse_url):
    engine = get_engine(warehouse_url)
    with engine.begin() as conn:
        land_batch(conn, _batch([{"Id": None, "Email": "a@x.io"}]), "run-1", datetime(2026, 11, 2))
        record_id = conn.execute(sa.text("select record_id from raw.records")).scalar_one()
    assert record_id == "<missing id: row 1>"
