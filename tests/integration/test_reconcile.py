"""Reconciliation checked row by row against the generator's ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from revops.devtools.postgres import scratch_warehouse
from revops.extract.landing import BatchSpec, BatchWriter
from revops.reconcile.build import build_staging
from revops.reconcile.records import (
    current_fields,
    current_records_sql,
    fields_frame,
    read_payload_fields,
    typed_objects,
)
from revops.warehouse import get_engine
from revops.warehouse.load import read_frame
from revops.warehouse.schema import ensure_schema, metadata
from tests.helpers import land_exports, row_estimate, stage, table


@pytest.fixture(scope="module")
def staged(small_exports, tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('reconcile') / 'warehouse.duckdb'}"
    return stage(url, small_exports)


def _real_prospects(engine) -> pd.DataFrame:
    return table(engine, "staging.prospects", "prospect_id").query("not is_excluded")


def test_every_real_person_becomes_exactly_one_prospect(staged, small_world):
    engine, _ = staged
    prospects = _real_prospects(engine).set_index("email_normalized")
    truth = small_world.truth_prospects.set_index("email")
    assert sorted(prospects.index) == sorted(truth.index)
    joined = truth.merge(prospects, left_index=True, right_index=True, suffixes=("", "_staged"))
    assert (joined["created_at"] == joined["created_at_staged"]).all()
    assert (joined["region"] == joined["region_staged"]).all()
    assert (joined["segment"] == joined["segment_staged"]).all()
    assert (joined["channel"] == joined["channel_staged"]).all()
    assert joined["owner_id"].fillna("-").eq(joined["lead_owner_id"].fillna("-")).all()
    expected_records = joined["salesforce_leads"] + joined["in_hubspot"].astype(int)
    assert (joined["record_count"] == expected_records).all()


def test_each_prospect_and_opportunity_is_written_once(staged):
    """Embedded DuckDB holds these tables without a primary key (it slowed every build), so
    nothing but reconcile keeps their keys unique."""
    engine, _ = staged
    for name, key in (("staging.prospects", "prospect_id"), ("staging.opportunities", "opportunity_id")):
        keys = table(engine, name, key)[key]
        assert len(keys) > 100 and keys.is_unique, name


def test_test_records_are_excluded_but_stay_queryable(staged, small_world):
    engine, _build = staged
    prospects = table(engine, "staging.prospects", "prospect_id")
    excluded = prospects[prospects["is_excluded"]].set_index("email_normalized")
    leads = small_world.salesforce["Lead"]
    test_leads = leads[leads["Email"].str.contains("qa.user|sandbox.user|employee|demo.account", na=False)]
    expected_rule = {
        "qa.user": "test_email_domain",
        "sandbox.user": "test_name",
        "employee": "internal_email_domain",
        "demo.account": "test_flag",  # only Salesforce's Is_Test__c gives it away
    }
    assert sorted(excluded.index) == sorted(test_leads["Email"])
    for email, rule in excluded["exclusion_rule"].items():
        assert rule == next(r for prefix, r in expected_rule.items() if email.startswith(prefix))
    # No real person is excluded: the surname "Testa" is not a test record.
    assert not set(small_world.truth_prospects["email"]) & set(excluded.index)
    opps = table(engine, "staging.opportunities", "opportunity_id")
    truth_test_ids = set(small_world.truth_opportunities.query("is_test")["opportunity_id"])
    assert set(opps[opps["is_excluded"]]["opportunity_id"]) == truth_test_ids


def test_opportunities_link_to_their_prospects_and_channels(staged, small_world):
    engine, _ = staged
    opps = table(engine, "staging.opportunities", "opportunity_id").set_index("opportunity_id")
    prospects = table(engine, "staging.prospects", "prospect_id").set_index("prospect_id")
    truth = small_world.truth_opportunities.query("not is_test").set_index("opportunity_id")
    staged_real = opps.loc[truth.index]
    assert (staged_real["is_from_converted_lead"] == truth["is_from_converted_lead"]).all()
    assert (staged_real["channel"] == truth["channel"]).all()
    assert (staged_real["is_won"] == truth["is_won"]).all()
    assert staged_real["amount"].isna().equals(truth["amount"].isna())
    # The prospect an opportunity links to is the person the generator converted.
    email_of = prospects["email_normalized"]
    person_email = small_world.truth_prospects.set_index("person")["email"]
    from_lead = truth[truth["is_from_converted_lead"]]
    linked = email_of.reindex(staged_real.loc[from_lead.index, "prospect_id"]).to_numpy()
    expected = person_email.reindex(from_lead["person"].astype(int)).to_numpy()
    assert (linked == expected).all()


def test_duplicate_rate_matches_the_ground_truth(staged, small_world):
    _, build = staged
    truth = small_world.truth_prospects
    records = truth["salesforce_leads"] + truth["in_hubspot"]
    assert build.summary["real_prospects"] == len(truth)
    assert build.summary["duplicates_merged"] == int((records - 1).sum())
    assert build.summary["duplicate_rate"] == round((records - 1).sum() / records.sum(), 4)
    assert build.summary["prospects_unmapped_channel"] == int((truth["channel"] == "unmapped").sum())
    assert build.summary["quarantined_by_reason"] == {}


def test_the_same_raw_input_reconciled_twice_gives_identical_staging(staged):
    engine, first = staged
    before = {name: table(engine, f"staging.{name}", order) for name, order in _TABLES.items()}
    second = build_staging(engine, "another-run")
    assert second.build_id == first.build_id
    for name, order in _TABLES.items():
        pd.testing.assert_frame_equal(before[name], table(engine, f"staging.{name}", order))


_TABLES = {
    "prospects": "prospect_id",
    "prospect_identities": "source, object, record_id",
    "opportunities": "opportunity_id",
    "prospect_stages": "prospect_id, cycle, entered_at, stage, record_id",
    "quarantine": "source, object, record_id",
}


def test_malformed_records_are_quarantined_with_their_reason(small_exports, tmp_path):
    exports = tmp_path / "exports"
    for path in small_exports.rglob("*"):
        if path.is_file():
            target = exports / path.relative_to(small_exports)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    leads = exports / "salesforce" / "Lead.csv"
    lines = leads.read_text().splitlines()
    header = lines[0].split(",")
    broken = lines[1].split(",")
    broken[header.index("CreatedDate")] = "last tuesday"
    no_id = lines[2].split(",")
    no_id[header.index("Id")] = ""
    extra = lines[3] + ",unexpected"
    legacy = lines[4].split(",")
    legacy[header.index("Company")] = "Soci\xe9t\xe9 G\xe9n\xe9rale"  # written in Windows-1252 below
    huge = lines[5].split(",")
    huge[header.index("Company")] = "Globex " * 40_000  # 280 KB: past the csv module's default limit
    text = "\n".join([lines[0], ",".join(broken), ",".join(no_id), extra, "\x00LEGACY\x00", ",".join(huge)])
    rest = "\n".join(lines[6:])
    leads.write_bytes(
        text.encode().replace(b"\x00LEGACY\x00", ",".join(legacy).encode("cp1252"))
        + b"\n"
        + rest.encode()
        + b"\n"
    )

    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, exports)
    build = build_staging(engine, "quarantine-test")
    quarantined = table(engine, "staging.quarantine", "record_id")
    reasons = dict(zip(quarantined["record_id"], quarantined["reason"], strict=True))
    assert reasons[broken[0]] == "CreatedDate: not a timestamp 'last tuesday'"
    assert reasons["<missing id: row 2>"] == "Id: missing"
    assert reasons[lines[3].split(",")[0]] == "row has cells beyond the header"
    assert reasons[legacy[0]].startswith("Company: bytes that are not text in the file's encoding")
    kept = json.loads(quarantined.set_index("record_id").loc[legacy[0], "payload"])
    assert kept["Company"] == "Soci\\xe9t\\xe9 G\\xe9n\\xe9rale"  # the bytes, shown, not guessed at

    assert huge[0] not in reasons  # long, but nothing wrong with it
    assert json.loads(quarantined["payload"].iloc[0])  # the raw record is kept whole
    assert build.summary["objects"]["salesforce.Lead"]["quarantined"] == 4
    typed = build.summary["objects"]["salesforce.Lead"]["typed"]
    assert typed + 4 == build.summary["objects"]["salesforce.Lead"]["records"] == len(lines) - 1


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"])
def test_a_payload_with_a_bare_nan_is_typed_not_lost(warehouse, tmp_path):
    """`json.dumps` writes a float NaN as `NaN`, which strict JSON decoders refuse."""
    with scratch_warehouse(warehouse, tmp_path) as url:
        engine = get_engine(url)
        landed_at = datetime(2026, 3, 2, tzinfo=UTC)
        spec = BatchSpec("salesforce", "Lead", "full", None, landed_at, "api", "Id", "SystemModstamp")
        writer = BatchWriter(engine, spec, "nan-test")
        lead = {"Id": "00Q1", "CreatedDate": "2026-03-01T09:00:00Z", "Email": "a@example.com"}
        writer.write_page(
            [{**lead, "Lead_Score__c": float("nan")}, {**lead, "Id": "00Q2", "Lead_Score__c": 42}]
        )
        writer.complete(landed_at)
        with engine.connect() as conn:
            payloads = conn.execute(sa.text("select payload from raw.records order by record_id")).scalars()
            assert '"Lead_Score__c":NaN' in next(payloads)
            leads = typed_objects(conn, "nan-test")[("salesforce", "Lead")].set_index("Id")
    assert leads["Lead_Score__c"].isna().tolist() == [True, False]
    assert leads.loc["00Q2", "Lead_Score__c"] == 42.0


def test_duckdb_reads_the_fields_in_its_query_as_they_are_read_in_process(tmp_path):
    """On DuckDB the fields are read within the warehouse's query; elsewhere the payloads are
    sent and read in-process (`read_payload_fields`, checked against Python's decoder in the
    unit tests). Both must give the same text for awkward fields and values."""
    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    landed_at = datetime(2026, 3, 2, tzinfo=UTC)
    spec = BatchSpec("salesforce", "Lead", "full", None, landed_at, "api", "Id", None, "IsDeleted")
    writer = BatchWriter(engine, spec, "fields-test")
    values = [None, "", " 12 ", "NaN", "naïve", 'say "hi"', 12, 12.5, -0.0, True, ["a", "b"], 2**62]
    fields = ["Id", "Lead Score", "naïve", 'say "hi"', "absent"]
    records = [
        {
            "Id": f"00Q{n}",
            "Lead Score": value,
            "naïve": values[-1 - n],
            'say "hi"': str(n),
            "IsDeleted": n == 3,
        }
        for n, value in enumerate(values)
    ]
    writer.write_page(records)
    writer.complete(landed_at)
    with engine.connect() as conn:
        in_query = current_fields(conn, "salesforce", "Lead", fields)
        sent = read_frame(conn, current_records_sql(), {"source": "salesforce", "object": "Lead"})
    in_process = read_payload_fields(pa.Table.from_pandas(sent, preserve_index=False), fields)
    assert in_query.column_names == ["record_id", "batch_id", "is_deleted", "fields"]
    assert in_query["record_id"].to_pylist() == in_process["record_id"].to_pylist()
    assert in_query["is_deleted"].to_pylist()[-1] is True  # live records first
    assert fields_frame(in_query["fields"]).equals(fields_frame(in_process["fields"]))
    assert fields_frame(in_query["fields"])["absent"].isna().all()


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"])
def test_a_quarantined_record_keeps_the_payload_of_its_current_version(warehouse, tmp_path):
    """Typing reads only the payloads' fields; a quarantined record's payload is read again by
    its id, and must be the version that was typed, not an older one of the same record."""
    first, later = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    lead = {"Id": "00Q1", "CreatedDate": "2026-03-01T09:00:00Z", "SystemModstamp": "2026-03-01T10:00:00Z"}
    with scratch_warehouse(warehouse, tmp_path) as url:
        engine = get_engine(url)
        full = BatchSpec("salesforce", "Lead", "full", None, first, "api", "Id", "SystemModstamp")
        writer = BatchWriter(engine, full, "run-1")
        writer.write_page([{**lead, "Lead_Score__c": "high"}, {**lead, "Id": "00Q2", "Lead_Score__c": 7}])
        writer.complete(first)
        changes = BatchSpec("salesforce", "Lead", "incremental", first, later, "api", "Id", "SystemModstamp")
        writer = BatchWriter(engine, changes, "run-2")
        writer.write_page([{**lead, "SystemModstamp": "2026-03-02T10:00:00Z", "Lead_Score__c": "higher"}])
        writer.complete(later)
        with engine.connect() as conn:
            typed = typed_objects(conn, "quarantine-version-test")
            newest = conn.execute(
                sa.text("select payload from raw.records where record_version like '2026-03-02%'")
            ).scalar_one()
    quarantined = typed.quarantined.set_index("record_id")
    assert quarantined.index.tolist() == ["00Q1"]
    assert quarantined.loc["00Q1", "reason"] == "Lead_Score__c: not a number 'higher'"
    assert quarantined.loc["00Q1", "payload"] == newest
    assert json.loads(newest)["Lead_Score__c"] == "higher"
    assert typed[("salesforce", "Lead")]["Id"].tolist() == ["00Q2"]


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"])
def test_records_deleted_upstream_are_counted_and_not_typed(warehouse, tmp_path):
    """Typing slices the live records off the current versions (the query lists them first):
    deleted ones between live ones in id order must neither be typed nor cost a live one."""
    with scratch_warehouse(warehouse, tmp_path) as url:
        engine = get_engine(url)
        landed_at = datetime(2026, 3, 2, tzinfo=UTC)
        spec = BatchSpec(
            "salesforce", "Lead", "full", None, landed_at, "api", "Id", "SystemModstamp", "IsDeleted"
        )
        writer = BatchWriter(engine, spec, "deleted-test")
        writer.write_page(
            [
                {
                    "Id": lead_id,
                    "CreatedDate": "2026-03-01T09:00:00Z",
                    "IsDeleted": lead_id in ("00Q1", "00Q3"),
                }
                for lead_id in ("00Q1", "00Q2", "00Q3", "00Q4")
            ]
        )
        writer.complete(landed_at)
        with engine.connect() as conn:
            typed = typed_objects(conn, "deleted-test")
    assert typed[("salesforce", "Lead")]["Id"].tolist() == ["00Q2", "00Q4"]
    assert typed.counts["salesforce.Lead"] == {
        "records": 4,
        "deleted_upstream": 2,
        "quarantined": 0,
        "typed": 2,
    }


def test_leads_without_email_join_their_person_by_name_and_company(staged, small_world):
    engine, build = staged
    identities = table(engine, "staging.prospect_identities", "record_id").set_index("record_id")
    emailless = sorted(small_world.truth_mess["emailless_leads"])
    assert len(emailless) > 5
    assert set(identities.loc[emailless, "match_rule"]) == {"name_and_company"}
    prospects = table(engine, "staging.prospects", "prospect_id").set_index("prospect_id")
    # Each joined a prospect that also holds the person's e-mail from HubSpot.
    assert prospects.loc[identities.loc[emailless, "prospect_id"], "email_normalized"].notna().all()
    assert build.summary["match_rules"]["name_and_company"] == len(emailless)


def test_clock_skew_is_detected_and_corrected_exactly_where_it_was_injected(staged, small_world):
    engine, build = staged
    identities = table(engine, "staging.prospect_identities", "record_id")
    skewed = identities[identities["clock_skew_minutes"].notna()]
    assert set(skewed["record_id"]) == small_world.truth_mess["clock_skew_leads"]
    # Five hours early, give or take the minutes a sync takes.
    assert skewed["clock_skew_minutes"].between(-300, -285).all()
    assert build.summary["clock_skew_records"] == len(skewed)


def test_back_dated_stage_changes_are_flagged_out_of_order(staged, small_world):
    engine, build = staged
    stages = table(engine, "staging.prospect_stages", "prospect_id, cycle, entered_at")
    flagged = stages[stages["flags"].str.contains("out_of_order")]
    assert set(flagged["record_id"]) == small_world.truth_mess["out_of_order_leads"]
    assert set(flagged["stage"]) == {"sql"}
    assert build.summary["stage_flags"]["out_of_order"] == len(flagged)


def test_the_timeline_agrees_with_what_happened(staged, small_world):
    engine, _ = staged
    stages = table(engine, "staging.prospect_stages", "prospect_id, cycle, entered_at")
    prospects = table(engine, "staging.prospects", "prospect_id")
    email_of = prospects[~prospects["is_excluded"]].set_index("prospect_id")["email_normalized"]
    stages = stages[stages["prospect_id"].isin(email_of.index)].assign(
        email=lambda s: s["prospect_id"].map(email_of)
    )
    truth = small_world.truth_prospects.set_index("email")
    first_opportunity = stages[stages["stage"] == "opportunity"].groupby("email")["entered_at"].min()
    expected = truth["first_opportunity_created_at"].dropna()
    assert first_opportunity.sort_index().to_dict() == expected.sort_index().to_dict()
    re_entered = set(stages[stages["flags"].str.contains("re_entered")]["email"])
    assert re_entered == set(truth.index[truth["salesforce_leads"] == 2])


def test_close_times_exported_in_new_york_local_time_land_on_the_true_instant(staged, small_world):
    engine, _ = staged
    stages = table(engine, "staging.prospect_stages", "record_id")
    closes = stages[stages["stage"].isin(["won", "lost"])].set_index("record_id")["entered_at"]
    # The instant the CRM recorded the close: the true close, except for the rep who records
    # a month's changes at once (world._record_late).
    history = small_world.salesforce["OpportunityHistory"]
    recorded = history[history["StageName"].isin(["Closed Won", "Closed Lost"])]
    truth = recorded.groupby("OpportunityId")["CreatedDate"].min()
    assert len(closes) > 50
    # The CSV holds "2026-03-01 10:00:00" (New York); the truth is the UTC instant. Exports keep
    # whole seconds, so compare at that precision.
    assert (closes.dt.floor("s") == truth.reindex(closes.index).dt.floor("s")).all()


def test_two_warehouses_built_from_the_same_exports_hold_byte_identical_staging(small_exports, tmp_path):
    digests = []
    for name in ("first", "second"):
        engine, _ = stage(f"duckdb:///{tmp_path / name}.duckdb", small_exports, run_id=name)
        digests.append({t: _table_digest(engine, t, order) for t, order in _TABLES.items()})
    assert digests[0] == digests[1]


def test_a_full_build_on_postgresql_leaves_every_staging_table_analysed(small_exports, tmp_path):
    """The KPI DAG runs right after a build: its queries must be planned for the tables'
    real sizes, not PostgreSQL's guess for a table it has no statistics of."""
    staging_tables = [t for t in metadata.sorted_tables if t.schema == "staging"]
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine, _ = stage(url, small_exports)
        with engine.connect() as conn:
            for t in staging_tables:
                rows = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                # a table below ANALYZE's sample size is read whole: the estimate is the count
                assert row_estimate(conn, f"staging.{t.name}") == rows, t.name
    assert {"prospects", "working_hours", "stage_first_entries"} <= {t.name for t in staging_tables}


def _table_digest(engine, name: str, order: str) -> str:
    """sha256 of the table dumped as CSV in a fixed order: equal digests, equal bytes."""
    import hashlib

    frame = table(engine, f"staging.{name}", order)
    return hashlib.sha256(frame.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def test_on_the_demo_world_duplicates_and_sources_match_the_ground_truth(tmp_path):
    from revops.demo import DEMO_WORLD
    from revops.synthetic.exports import write_csv_exports
    from revops.synthetic.world import generate_world

    world = generate_world(DEMO_WORLD)
    write_csv_exports(world, tmp_path / "exports")
    engine, build = stage(f"duckdb:///{tmp_path / 'demo.duckdb'}", tmp_path / "exports")
    truth = world.truth_prospects
    records = truth["salesforce_leads"] + truth["in_hubspot"]
    assert build.summary["real_prospects"] == len(truth)
    assert build.summary["duplicates_merged"] == int((records - 1).sum())
    prospects = table(engine, "staging.prospects", "prospect_id").query("not is_excluded")
    channels = prospects.set_index("email_normalized")["channel"].sort_index()
    assert channels.to_dict() == truth.set_index("email")["channel"].sort_index().to_dict()


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_an_older_warehouse_gets_the_spans_a_build_writes(small_exports, tmp_path, kind):
    """`replaced_at` filled in a warehouse an older version built (`schema.DERIVED_COLUMNS`)
    equals what reconcile writes, on every history row and stage entry of the small world."""
    spanned = {
        "opportunity_changes": "opportunity_id, changed_at, stage",
        "opportunity_stages": "opportunity_id, entered_at, stage",
    }
    with scratch_warehouse(kind, tmp_path) as url:
        engine, _ = stage(url, small_exports)
        built = {name: table(engine, f"staging.{name}", order) for name, order in spanned.items()}
        with engine.begin() as conn:  # as an older version left them
            for name in spanned:
                conn.execute(sa.text(f"alter table staging.{name} drop column replaced_at"))
        ensure_schema(engine)
        for name, order in spanned.items():
            filled = table(engine, f"staging.{name}", order)
            pd.testing.assert_frame_equal(filled, built[name], check_dtype=False)
            held = built[name]["replaced_at"]
            assert held.notna().sum() > 100 and held.isna().sum() == built[name]["opportunity_id"].nunique()
