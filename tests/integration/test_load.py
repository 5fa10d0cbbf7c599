"""Bulk loading keeps every value as it was, on DuckDB and through COPY on PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from revops.devtools.postgres import scratch_warehouse
from revops.reconcile.build import _first_stage_entries
from revops.reconcile.stages import OpportunityStages
from revops.warehouse import get_engine, load, read_frame
from revops.warehouse.engine import release_cached_blocks
from revops.warehouse.load import append_frame, read_arrow, replace_rows
from revops.warehouse.schema import (
    ensure_schema,
    opportunities,
    opportunity_stages,
    prospects,
    raw_records,
    users,
)

AWKWARD_TEXT = [
    "plain",
    'comma, and "quotes"',
    "line\nbreak and\r\ncarriage return",
    "\\N",  # COPY's null marker, as text
    "back\\slash",
    "",
    "tab\there",
    "ünïcødé — 東京 🚀",
    "'; drop table raw.records; --",
]


def _records(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": "b1",
            "source": "salesforce",
            "object": "Lead",
            "record_id": [f"id{i}" for i in range(len(texts))],
            "record_version": "v1",
            "record_hash": "h",
            "is_deleted": [i % 2 == 0 for i in range(len(texts))],
            "payload": texts,
        }
    )


def test_text_comes_back_exactly_as_written(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        assert append_frame(conn, raw_records, _records(AWKWARD_TEXT)) == len(AWKWARD_TEXT)
    with engine.connect() as conn:
        back = read_frame(conn, "select record_id, is_deleted, payload from raw.records order by record_id")
    expected = _records(AWKWARD_TEXT).sort_values("record_id")
    assert back["payload"].tolist() == expected["payload"].tolist()
    assert back["is_deleted"].tolist() == expected["is_deleted"].tolist()


def _opportunities(**columns: list) -> pd.DataFrame:
    """Opportunities with the given columns (one list each, of one length); the required
    columns the test does not give are filled in."""
    rows = len(next(iter(columns.values())))
    required = {"stage": "Demo", "is_closed": False, "is_won": False, "channel": "paid", "sub_channel": "ads"}
    required |= {"is_from_converted_lead": False, "is_excluded": False}
    return pd.DataFrame({"opportunity_id": [f"o{i}" for i in range(rows)], **required, **columns})


def test_a_missing_value_stays_apart_from_empty_text_and_from_the_null_marker(any_warehouse_url):
    """COPY's CSV reads a bare empty field as null: every value must arrive quoted."""
    engine = get_engine(any_warehouse_url)
    frame = _opportunities(
        prospect_id=[None, "", "\\N", "NULL"],
        created_at=[pd.NaT, pd.Timestamp("2026-11-02 09:30:15.123456"), pd.NaT, pd.NaT],
        close_date=[None, date(2026, 11, 30), None, None],
        is_closed=[False, True, False, False],
        amount=[float("nan"), 1234.5, 0.0, -0.25],
        sub_channel=['say "hi", then', "a\nb", "x", "y"],
    )
    with engine.begin() as conn:
        append_frame(conn, opportunities, frame)
    with engine.connect() as conn:
        back = read_frame(conn, "select * from staging.opportunities order by opportunity_id")
    assert [None if pd.isna(v) else v for v in back["prospect_id"]] == [None, "", "\\N", "NULL"]
    assert back["sub_channel"].tolist() == frame["sub_channel"].tolist()
    assert back["amount"].tolist()[1:] == [1234.5, 0.0, -0.25] and pd.isna(back["amount"][0])
    assert pd.isna(back["created_at"][0]) and pd.Timestamp(back["created_at"][1]) == frame["created_at"][1]
    assert [pd.isna(d) for d in back["close_date"]] == [True, False, True, True]
    assert pd.Timestamp(back["close_date"][1]).date() == date(2026, 11, 30)
    assert back["is_closed"].tolist() == [False, True, False, False]


def test_constants_fill_their_columns_in_every_row(any_warehouse_url):
    """A value every row shares is given once, not as a column of the frame."""
    engine = get_engine(any_warehouse_url)
    frame = _records(AWKWARD_TEXT).drop(columns=["source", "batch_id"])
    with engine.begin() as conn:
        written = append_frame(conn, raw_records, frame, {"source": 'it\'s "quoted", too', "batch_id": "b7"})
    with engine.connect() as conn:
        back = read_frame(conn, "select batch_id, source, payload from raw.records order by record_id")
    assert written == len(AWKWARD_TEXT)
    assert set(back["source"]) == {'it\'s "quoted", too'} and set(back["batch_id"]) == {"b7"}
    assert back["payload"].tolist() == _records(AWKWARD_TEXT).sort_values("record_id")["payload"].tolist()


def test_read_arrow_gives_text_booleans_and_timestamps_back_as_written(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, raw_records, _records(AWKWARD_TEXT))
    query = (
        "select record_id, payload, is_deleted, "
        "case when record_id <> 'id1' then batch_id end as batch_id, "
        "case when record_id <> 'id1' then is_deleted end as maybe_deleted, "
        "timestamp '2026-11-02 09:30:15.123456' as at "
        "from raw.records where source = :source order by record_id"
    )
    with engine.connect() as conn:
        table = read_arrow(conn, query, {"source": "salesforce"})
        empty = read_arrow(conn, query, {"source": "it's nowhere"})
    assert table.column("payload").to_pylist() == AWKWARD_TEXT
    assert table.column("is_deleted").to_pylist() == [i % 2 == 0 for i in range(len(AWKWARD_TEXT))]
    assert table.column("batch_id").to_pylist()[:3] == ["b1", None, "b1"]
    assert table.column("maybe_deleted").to_pylist()[:3] == [True, None, True]
    assert set(table.column("at").to_pylist()) == {datetime(2026, 11, 2, 9, 30, 15, 123456)}
    assert empty.num_rows == 0 and empty.column_names == table.column_names


def test_read_arrow_on_postgresql_refuses_a_type_it_does_not_read(tmp_path):
    with (
        scratch_warehouse("postgresql", tmp_path) as url,
        get_engine(url).connect() as conn,
        pytest.raises(TypeError, match="record_count"),
    ):
        read_arrow(conn, "select count(*) as record_count from raw.records")


def test_missing_integers_stay_missing_and_a_slice_is_replaced_whole(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    entered = pd.Timestamp("2026-11-01 10:00")
    frame = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o1", "o2"],
            "stage": ["Demo", "Mystery stage", "Demo"],
            "stage_order": [2, None, 2],  # pandas holds these as floats: 2.0, NaN
            "entered_at": [entered, entered + pd.Timedelta(hours=1), pd.Timestamp("2026-11-02 09:30:15.25")],
        }
    )
    with engine.begin() as conn:
        append_frame(conn, opportunity_stages, frame)
        replace_rows(conn, opportunity_stages, frame.head(1).assign(stage_order=3), {"opportunity_id": "o1"})
    with engine.connect() as conn:
        back = read_frame(conn, "select * from staging.opportunity_stages order by opportunity_id")
    assert back["opportunity_id"].tolist() == ["o1", "o2"]
    assert back["stage_order"].tolist() == [3, 2]
    assert pd.to_datetime(back["entered_at"]).tolist() == [entered, pd.Timestamp("2026-11-02 09:30:15.25")]
    with engine.begin() as conn:
        append_frame(conn, opportunity_stages, frame.iloc[[1]])
        missing = read_frame(
            conn, "select stage_order from staging.opportunity_stages where stage like 'Myst%'"
        )
    assert missing["stage_order"].isna().tolist() == [True]


def test_an_older_warehouse_gains_new_nullable_columns_and_stops_on_required_ones(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:  # as an older version left it
        conn.execute(sa.text("alter table staging.opportunities drop column loss_reason"))
        conn.execute(sa.text("alter table staging.opportunity_changes drop column changed_by"))
    ensure_schema(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("select loss_reason from staging.opportunities"))
        conn.execute(sa.text("select changed_by from staging.opportunity_changes"))
        conn.execute(sa.text("alter table staging.opportunities drop column channel"))
        conn.commit()
    with pytest.raises(RuntimeError, match=r"staging.opportunities lacks columns \['channel'\]"):
        ensure_schema(engine)


def _primary_keys(conn) -> set[str]:
    """The staging tables that have a primary key."""
    catalogue = (
        "duckdb_constraints() where schema_name"
        if conn.dialect.name == "duckdb"
        else "information_schema.table_constraints where table_schema"
    )
    sql = f"select table_name from {catalogue} = 'staging' and constraint_type = 'PRIMARY KEY'"
    return set(conn.execute(sa.text(sql)).scalars())


def test_prospects_and_opportunities_are_keyed_on_postgresql_only(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.connect() as conn:
        keyed = _primary_keys(conn)
    on_postgresql = engine.dialect.name == "postgresql"
    assert ("prospects" in keyed, "opportunities" in keyed) == (on_postgresql, on_postgresql)


def test_an_older_embedded_warehouse_loses_the_staging_keys_and_keeps_the_rows(warehouse_url):
    engine = get_engine(warehouse_url)
    created = pd.Timestamp("2026-11-01 10:00", tz="UTC")
    with engine.begin() as conn:  # as an older version created them: with primary keys
        for keyed in (prospects, opportunities):
            conn.execute(sa.text(f"drop table {keyed.fullname}"))
            conn.execute(sa.text(str(CreateTable(keyed).compile(dialect=postgresql.dialect()))))
        assert {"prospects", "opportunities"} <= _primary_keys(conn)
        conn.execute(
            sa.text(
                "insert into staging.prospects "
                "(prospect_id, created_at, channel, sub_channel, record_count, is_excluded) "
                "values ('P1', :at, 'paid', 'ads', 1, false), ('P2', :at, 'web', 'form', 2, true)"
            ),
            {"at": created},
        )
    ensure_schema(engine)
    with engine.connect() as conn:
        assert not {"prospects", "opportunities"} & _primary_keys(conn)
        kept = read_frame(conn, "select prospect_id, channel, is_excluded from staging.prospects order by 1")
    assert kept.values.tolist() == [["P1", "paid", False], ["P2", "web", True]]


MONEY = [1234567.89, 98765432.1, 0.01, -1e-7]  # none of them a 4-byte float


def test_amounts_keep_every_digit(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    frame = _opportunities(amount=MONEY)
    with engine.begin() as conn:
        append_frame(conn, opportunities, frame)
    with engine.connect() as conn:
        back = read_frame(conn, "select amount from staging.opportunities order by opportunity_id")
        total = conn.execute(sa.text("select sum(amount) from staging.opportunities")).scalar_one()
    assert back["amount"].tolist() == MONEY
    assert total == pytest.approx(sum(MONEY), rel=1e-15)


def test_an_older_embedded_warehouse_widens_its_floats_and_keeps_the_values(warehouse_url):
    engine = get_engine(warehouse_url)
    with engine.begin() as conn:  # as an older version created it: 4-byte floats
        conn.execute(sa.text("alter table staging.opportunities alter column amount type float"))
        append_frame(conn, opportunities, _opportunities(amount=[1234567.89]))
    narrow = (
        "select data_type from information_schema.columns "
        "where table_name = 'opportunities' and column_name = 'amount'"
    )
    with engine.connect() as conn:
        assert conn.execute(sa.text(narrow)).scalar_one() == "FLOAT"
    ensure_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text(narrow)).scalar_one() == "DOUBLE"
        kept = conn.execute(sa.text("select amount from staging.opportunities")).scalar_one()
        everywhere = (
            "select table_name, column_name from information_schema.columns where data_type = 'FLOAT'"
        )
        narrow_anywhere = conn.execute(sa.text(everywhere)).all()
    assert kept == 1234567.875  # the rounding it was stored with stays until the next full build
    assert narrow_anywhere == []


@pytest.mark.parametrize(
    ("schema", "table", "index"),
    [
        ("marts", "score_velocity", "ix_score_velocity_as_of"),
        ("staging", "prospect_stages", "ix_prospect_stages_prospect"),
        ("staging", "prospect_identities", "ix_prospect_identities_prospect"),
        ("staging", "stage_first_entries", "ix_stage_first_entries_stage"),
        ("staging", "opportunity_stages", "ix_opportunity_stages_opportunity"),
        ("marts", "kpi_results", "ix_kpi_results_period"),
        ("marts", "kpi_exclusions", "ix_kpi_exclusions_period"),
        ("marts", "score_changes", "ix_score_changes_prospect"),
    ],
)
def test_an_older_postgresql_warehouse_gets_the_indexes_a_newer_version_declares(
    tmp_path, schema, table, index
):
    declared = (
        f"select indexname from pg_indexes where schemaname = '{schema}' and tablename = '{table}' "
        "and indexname like 'ix_%' order by indexname"
    )
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        with engine.begin() as conn:  # as an older version created it
            conn.execute(sa.text(f"drop index {schema}.{index}"))
            assert conn.execute(sa.text(declared)).all() == []
        ensure_schema(engine)
        ensure_schema(engine)  # once there, it is left alone
        with engine.connect() as conn:
            assert conn.execute(sa.text(declared)).scalars().all() == [index]


def test_a_postgresql_warehouse_samples_more_of_the_columns_that_ask_for_it(tmp_path):
    target = (
        "select attstattarget from pg_attribute "
        "where attrelid = 'marts.score_changes'::regclass and attname = 'prospect_id'"
    )
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        with engine.begin() as conn:  # as an older version created it: the server's default
            default = "alter table marts.score_changes alter column prospect_id set statistics -1"
            conn.execute(sa.text(default))
            assert conn.execute(sa.text(target)).scalar_one() == -1
        ensure_schema(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text(target)).scalar_one() == 1000


def test_the_embedded_warehouse_declares_no_index(warehouse_url):
    engine = get_engine(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select index_name from duckdb_indexes()")).all() == []


def test_releasing_duckdbs_cached_blocks_frees_them_and_keeps_the_limit_and_the_data(warehouse_url):
    engine = get_engine(warehouse_url)
    payloads = [f"{i:07d} {hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(100_000)]
    with engine.begin() as conn:
        append_frame(conn, raw_records, _records(payloads))

    def cached_mib(conn: sa.Connection) -> float:
        sql = "select sum(memory_usage_bytes) / 2 ^ 20 from duckdb_memory() where tag = 'BASE_TABLE'"
        return conn.exec_driver_sql(sql).scalar_one()

    with engine.begin() as conn:  # a new connection: DuckDB's cache starts empty
        limit = conn.exec_driver_sql("select current_setting('memory_limit')").scalar_one()
        assert len(read_frame(conn, "select payload from raw.records")) == len(payloads)
        before = cached_mib(conn)
        release_cached_blocks(conn)
        after = cached_mib(conn)
        assert before > 2 and after < before / 4, (before, after)
        assert conn.exec_driver_sql("select current_setting('memory_limit')").scalar_one() == limit
        total = conn.exec_driver_sql("select count(*), min(payload) from raw.records").one()
    assert total == (len(payloads), min(payloads))


@pytest.mark.parametrize("limit", ["2GB", "500MB", "-1"])
def test_releasing_duckdbs_cached_blocks_puts_any_memory_limit_back_as_it_was(warehouse_url, limit):
    with get_engine(warehouse_url).connect() as conn:
        conn.exec_driver_sql(f"set memory_limit = '{limit}'")
        shown = conn.exec_driver_sql("select current_setting('memory_limit')").scalar_one()
        for _ in range(3):  # a build releases once per object: the limit must not creep down
            release_cached_blocks(conn)
        assert conn.exec_driver_sql("select current_setting('memory_limit')").scalar_one() == shown


START = pd.Timestamp("2026-03-02 09:00")


def _history(rows: list[tuple]) -> pd.DataFrame:
    """Stage-history rows as reconcile orders them (deal, time, stage), from (deal, minute,
    stage) tuples."""
    frame = pd.DataFrame(rows, columns=["opportunity_id", "minute", "stage"])
    frame["changed_at"] = START + pd.to_timedelta(frame.pop("minute"), unit="min")
    return frame.sort_values(["opportunity_id", "changed_at", "stage"], ignore_index=True)


# Two deals. O1 entered Qualification and an unknown stage (no place in the pipeline) at the
# same minute: newest first puts Qualification before the unknown one, whose span is then
# empty. O2 entered Demo and Proposal at the same minute: Proposal, later in the pipeline,
# holds from then on.
HISTORY = [
    ("O1", 0, "Prospecting"), ("O1", 10, "Mystery"), ("O1", 10, "Qualification"), ("O1", 30, "Closed Won"),
    ("O2", 5, "Proposal"), ("O2", 5, "Demo"),
]  # fmt: skip
# (deal, stage) -> the minute its entry stopped holding (None: it still holds)
REPLACED = {
    ("O1", "Prospecting"): 10, ("O1", "Mystery"): 10, ("O1", "Qualification"): 30, ("O1", "Closed Won"): None,
    ("O2", "Demo"): 5, ("O2", "Proposal"): None,
}  # fmt: skip


def _replaced_minutes(frame: pd.DataFrame) -> dict:
    minutes = (pd.to_datetime(frame["replaced_at"]) - START).dt.total_seconds() / 60
    return {
        (deal, stage): None if pd.isna(minute) else int(minute)
        for deal, stage, minute in zip(frame["opportunity_id"], frame["stage"], minutes, strict=True)
    }


def test_each_stage_entry_holds_until_the_deals_next_one_in_a_build_and_in_an_older_warehouse(
    any_warehouse_url,
):
    """`replaced_at`, which the as-of KPIs read: reconcile writes it, and a warehouse an
    older version wrote has it filled by the same rule when the column is added."""
    entries = _first_stage_entries(_history(HISTORY), OpportunityStages.load())
    assert _replaced_minutes(entries) == REPLACED
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:  # as an older version left it
        conn.execute(sa.text("alter table staging.opportunity_stages drop column replaced_at"))
        older = entries.drop(columns="replaced_at").astype(object)
        conn.execute(opportunity_stages.insert(), older.where(older.notna(), None).to_dict("records"))
    ensure_schema(engine)
    with engine.connect() as conn:
        filled = read_frame(conn, "select opportunity_id, stage, replaced_at from staging.opportunity_stages")
    assert _replaced_minutes(filled) == REPLACED


def test_a_frame_of_many_scan_batches_is_written_in_its_order(warehouse_url, monkeypatch):
    """DuckDB inserts the batches on both threads; staging keeps the frame's row order (the
    staging digest of a build compares rows in the order they were written)."""
    monkeypatch.setattr(load, "SCAN_BATCH_ROWS", 500)
    frame = pd.DataFrame(
        {
            "opportunity_id": [f"o{i:05d}" for i in range(20_000)][::-1],
            "stage": "Demo",
            "stage_order": 2,
            "entered_at": pd.Timestamp("2026-11-01 10:00"),
        }
    )
    engine = get_engine(warehouse_url)
    with engine.begin() as conn:
        assert append_frame(conn, opportunity_stages, frame) == 20_000
        back = read_frame(conn, "select opportunity_id from staging.opportunity_stages")
    assert back["opportunity_id"].tolist() == frame["opportunity_id"].tolist()


def _users(*ids: str | None) -> pd.DataFrame:
    return pd.DataFrame({"user_id": list(ids), "name": "Ada", "region": "EMEA", "is_active": True})


def _user_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return read_frame(conn, "select user_id from staging.users order by user_id")["user_id"].tolist()


def test_a_write_in_the_background_that_fails_raises_and_rolls_back_the_writes_before_it(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        load.replace_table(conn, users, _users("005A"))
    with (
        pytest.raises(Exception, match=r"(?i)null"),
        engine.begin() as conn,
        load.BackgroundWriter(conn) as writer,
    ):
        writer.write(users, _users("005B", "005C"))
        writer.write(users, _users("005D", None))  # user_id is required
    assert _user_ids(engine) == ["005A"]


def test_an_error_beside_the_writes_is_the_one_raised_and_nothing_is_written(any_warehouse_url):
    """The block's own error ends it: the write under way is waited for (the connection is
    the rollback's), the ones not begun are dropped."""
    engine = get_engine(any_warehouse_url)
    many = _users(*(f"005{n:06d}" for n in range(200_000)))
    with (
        pytest.raises(ValueError, match="a rule failed"),
        engine.begin() as conn,
        load.BackgroundWriter(conn) as writer,
    ):
        writer.write(users, many)
        writer.write(users, _users("005B"))
        raise ValueError("a rule failed")
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("table-writer")]
    assert _user_ids(engine) == []


def test_writes_in_the_background_land_in_the_order_given(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn, load.BackgroundWriter(conn) as writer:
        writer.write(users, _users("005A", "005B"))
        writer.write(users, _users("005C"))  # replaces the first
    assert writer.written == {users}
    assert _user_ids(engine) == ["005C"]
