"""An incremental build must leave staging exactly as a full build of the same raw layer.

A day of changes that reaches across records (a merge by e-mail, a name that makes another
record's name match ambiguous, a deletion, a fixed and a broken record, new lead and
opportunity history, a deal that closes) is landed as increments; the incremental build's
staging is then compared, table by table, with a full build of the same raw layer.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.extract.landing import BatchSpec, BatchWriter
from revops.reconcile import incremental
from revops.reconcile.build import build_staging
from revops.reconcile.incremental import existing_prospects
from revops.warehouse import get_engine, read_frame
from tests.helpers import land_exports, land_increment

STAGING_TABLES = [
    "prospects",
    "prospect_identities",
    "prospect_stages",
    "stage_first_entries",
    "opportunities",
    "opportunity_stages",
    "opportunity_changes",
    "users",
    "campaigns",
    "targets",
    "working_hours",
    "working_time",
    "stage_probabilities",
    "quarantine",
    "history_parents",
]


def _payloads(conn, source: str, object_name: str) -> dict[str, dict]:
    rows = read_frame(
        conn,
        """
        select records.record_id, records.payload
        from raw.records as records
        inner join raw.extract_batches as batches on batches.batch_id = records.batch_id
        where batches.source = :source and batches.object = :object
        """,
        {"source": source, "object": object_name},
    )
    return {rid: json.loads(payload) for rid, payload in zip(rows["record_id"], rows["payload"], strict=True)}


def _land(engine, source: str, object_name: str, records: list[dict], at: datetime) -> None:
    land_increment(engine, source, object_name, records, (at - timedelta(days=1), at), "incremental-test")


def _staging(engine) -> dict[str, pd.DataFrame]:
    """Every staging table's rows in a fixed order, without the build id they carry."""
    tables = {}
    with engine.connect() as conn:
        for name in STAGING_TABLES:
            frame = read_frame(conn, f"select * from staging.{name}").drop(
                columns=["build_id"], errors="ignore"
            )
            tables[name] = frame.sort_values(list(frame.columns), ignore_index=True)
    return tables


def _a_day_of_changes(engine, cutoff: datetime) -> None:
    """Changes that reach across records, each on a record picked from the landed data."""
    with engine.connect() as conn:
        leads = _payloads(conn, "salesforce", "Lead")
        contacts = _payloads(conn, "hubspot", "contacts")
        opportunities = _payloads(conn, "salesforce", "Opportunity")
        identities = read_frame(conn, "select * from staging.prospect_identities order by record_id")
    emailed = sorted(rid for rid, lead in leads.items() if lead.get("Email") and lead.get("FirstName"))
    stamp = (cutoff + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    changed = []

    def change(rid: str, **fields) -> None:
        changed.append({**leads[rid], **fields, "SystemModstamp": stamp})

    # A lead takes a HubSpot contact's e-mail: two prospects become one.
    contact = next(
        c
        for c in contacts.values()
        if c.get("email") and c["email"] not in {v.get("Email") for v in leads.values()}
    )
    change(emailed[0], Email=contact["email"])
    change(emailed[1], IsDeleted=True)  # deleted upstream
    change(emailed[2], CreatedDate="the day before yesterday")  # now quarantined
    # An e-mailed lead takes the name and company of a record matched by name alone: that
    # record's match becomes ambiguous, so it falls back to a prospect of its own.
    by_name = identities[identities["match_rule"] == "name_and_company"]
    assert not by_name.empty, "the small world has records matched by name and company"
    matched = by_name.iloc[0]
    named = leads.get(matched["record_id"]) or contacts[matched["record_id"]]
    first, last, company = (
        (named["FirstName"], named["LastName"], named["Company"])
        if "FirstName" in named
        else (named["firstname"], named["lastname"], named["company"])
    )
    change(emailed[3], FirstName=first, LastName=last, Company=company)
    # A new lead without an e-mail, named like an e-mailed lead: it joins that prospect.
    twin = leads[emailed[4]]
    changed.append(
        {
            **twin,
            "Id": "00QINCREMENT0001",
            "Email": None,
            "ConvertedOpportunityId": None,
            "SystemModstamp": stamp,
        }
    )
    _land(engine, "salesforce", "Lead", changed, cutoff + timedelta(hours=2))

    converted = next(lead for lead in leads.values() if lead.get("ConvertedOpportunityId") in opportunities)
    deal = opportunities[converted["ConvertedOpportunityId"]]
    won = {**deal, "StageName": "Closed Won", "IsClosed": True, "IsWon": True, "SystemModstamp": stamp}
    _land(engine, "salesforce", "Opportunity", [won], cutoff + timedelta(hours=2))
    history = {
        "Id": "008INCREMENT0001",
        "OpportunityId": deal["Id"],
        "StageName": "Closed Won",
        "CreatedDate": stamp,
    }
    _land(engine, "salesforce", "OpportunityHistory", [history], cutoff + timedelta(hours=2))
    status = {
        "Id": "017INCREMENT0001",
        "LeadId": emailed[5],
        "Field": "Status",
        "OldValue": leads[emailed[5]].get("Status"),
        "NewValue": "SQL",
        "CreatedDate": stamp,
    }
    _land(engine, "salesforce", "LeadHistory", [status], cutoff + timedelta(hours=2))
    # A contact loses its e-mail: it now matches by name, or stands alone.
    without_email = next(c for _, c in sorted(contacts.items()) if c.get("email"))
    _land(engine, "hubspot", "contacts", [{**without_email, "email": None}], cutoff + timedelta(hours=2))


@pytest.fixture(params=["duckdb", "postgresql"])
def updated(request, small_exports, tmp_path):
    """A warehouse built in full, then updated with a day of changes: (engine, first build,
    incremental build)."""
    from revops.devtools.postgres import scratch_warehouse

    with scratch_warehouse(request.param, tmp_path) as url:
        engine = get_engine(url)
        land_exports(engine, small_exports)
        first = build_staging(engine, "day-1")
        _a_day_of_changes(engine, first.data_cutoff)
        yield engine, first, build_staging(engine, "day-2")


def _assert_same_as_a_full_build(engine, incremental) -> None:
    assert incremental.update is not None  # it was an incremental build
    updated_staging = _staging(engine)
    full = build_staging(engine, "the-same-in-full", full=True)
    assert full.update is None
    assert incremental.build_id == full.build_id
    assert incremental.summary == full.summary
    for name, frame in _staging(engine).items():
        pd.testing.assert_frame_equal(updated_staging[name], frame, obj=f"staging.{name}")


def test_an_incremental_build_gives_the_staging_a_full_build_gives(updated):
    engine, first, incremental = updated
    assert first.update is None and incremental.build_id != first.build_id
    assert incremental.summary["objects"]["salesforce.Lead"]["quarantined"] == 1
    _assert_same_as_a_full_build(engine, incremental)


def test_a_record_fixed_upstream_leaves_quarantine(updated):
    engine, _, day_two = updated
    with engine.connect() as conn:
        broken_id = read_frame(conn, "select record_id from staging.quarantine")["record_id"].iloc[0]
        broken = _payloads(conn, "salesforce", "Lead")[broken_id]
    fixed = {**broken, "CreatedDate": "2026-01-05T09:00:00.000+0000", "SystemModstamp": "2099-01-01"}
    _land(engine, "salesforce", "Lead", [fixed], day_two.data_cutoff + timedelta(hours=3))
    day_three = build_staging(engine, "day-3")
    assert day_three.summary["objects"]["salesforce.Lead"]["quarantined"] == 0
    _assert_same_as_a_full_build(engine, day_three)


def test_quarantined_rows_an_incremental_build_keeps_carry_its_build_id(updated):
    engine, _, day_two = updated
    with engine.connect() as conn:
        quarantined_lead = read_frame(conn, "select record_id from staging.quarantine")["record_id"]
        contact = max(_payloads(conn, "hubspot", "contacts").items())[1]  # unrelated to that lead
    renamed = {**contact, "company": f"{contact.get('company') or ''} (renamed)"}
    _land(engine, "hubspot", "contacts", [renamed], day_two.data_cutoff + timedelta(hours=3))
    day_three = build_staging(engine, "day-3")
    assert day_three.update is not None and day_three.build_id != day_two.build_id
    with engine.connect() as conn:
        kept = read_frame(conn, "select record_id, build_id from staging.quarantine")
    assert kept["record_id"].tolist() == quarantined_lead.tolist()  # outside the day's scope
    assert set(kept["build_id"]) == {day_three.build_id}


def test_an_incremental_build_re_reconciles_a_small_part(updated):
    engine, _, incremental = updated
    with engine.connect() as conn:
        identities = conn.execute(sa.text("select count(*) from staging.prospect_identities")).scalar_one()
        scope_left = conn.execute(sa.text("select count(*) from staging.reconcile_scope")).scalar_one()
    assert incremental.update["changed_records"] == 5 + 1 + 1 + 1 + 1  # leads, deal, its history, ...
    assert incremental.update["scope_records"] < identities / 10
    assert scope_left == 0  # the work table is emptied within the build


def test_a_new_full_snapshot_rebuilds_in_full(updated):
    engine, _, day_two = updated
    with engine.connect() as conn:
        leads = list(_payloads(conn, "salesforce", "Lead").values())
    at = day_two.data_cutoff + timedelta(hours=3)
    spec = BatchSpec("salesforce", "Lead", "full", None, at, "test", "Id", None, "IsDeleted")
    writer = BatchWriter(engine, spec, "a-new-snapshot")
    writer.write_page([{**lead, "Company": "Snapshot Ltd"} for lead in leads[:100]])
    writer.complete(high_water=None)
    rebuilt = build_staging(engine, "after-snapshot")
    assert rebuilt.update is None
    assert rebuilt.summary["objects"]["salesforce.Lead"]["records"] == 100


def test_a_day_that_reaches_most_records_builds_in_full(updated):
    """Re-reconciling most of the data in place costs more time and memory than a full build."""
    engine, _, day_two = updated
    with engine.connect() as conn:
        leads = _payloads(conn, "salesforce", "Lead").values()
        contacts = _payloads(conn, "hubspot", "contacts").values()
    at = day_two.data_cutoff + timedelta(hours=3)
    _land(engine, "salesforce", "Lead", [{**lead, "Company": "Renamed Ltd"} for lead in leads], at)
    _land(engine, "hubspot", "contacts", [{**contact, "company": "Renamed Ltd"} for contact in contacts], at)
    day_three = build_staging(engine, "day-3")
    assert day_three.update is None
    assert day_three.summary == build_staging(engine, "the-same-in-full", full=True).summary


def test_a_scope_of_more_than_the_share_is_worth_a_full_build():
    counts = {"salesforce.Lead": {"records": 60, "deleted_upstream": 2}, "hubspot.contacts": {"records": 40}}
    at_the_share = int(incremental.FULL_BUILD_SHARE * 100)
    assert not incremental.worth_a_full_build(at_the_share, counts)
    assert incremental.worth_a_full_build(at_the_share + 1, counts)


@pytest.mark.parametrize("random_seed", [None, 1, 2])
def test_the_least_scope_size_bounds_the_closed_scope_from_below(random_seed, small_exports, tmp_path):
    """The full-build decision is taken on a count made before the scope is closed: it must
    never count a record the closed scope would not hold. Renaming prospects' records reaches
    nothing beyond those prospects, so there the count is the closed scope's size; a random
    day reaches further, and the count stays below."""
    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, small_exports)
    first = build_staging(engine, "day-1")
    at = first.data_cutoff + timedelta(hours=6)
    _rename_every_record_of_merged_prospects(engine, at)  # each prospect reached twice
    if random_seed is not None:
        _random_day(engine, random.Random(random_seed), at)
    with engine.connect() as conn, conn.begin() as transaction:
        days_batches = read_frame(
            conn, "select batch_id from raw.extract_batches where run_id = 'incremental-test' order by 1"
        )
        changed = incremental.changed_records(conn, days_batches["batch_id"].tolist())
        incremental.fill_scope(conn, incremental.Scope.of_changes(changed))
        least = incremental.least_scope_size(conn)
        transaction.rollback()
    closed = build_staging(engine, "day-2").update["scope_records"]
    assert len(changed) < least <= closed
    assert random_seed is not None or least == closed


def _rename_every_record_of_merged_prospects(engine, at: datetime, count: int = 10) -> None:
    with engine.connect() as conn:
        merged = read_frame(
            conn,
            """
            select source, object, record_id from staging.prospect_identities
            where prospect_id in (
                select prospect_id from staging.prospect_identities
                group by prospect_id having count(distinct source) = 2
                order by prospect_id limit :count
            )
            """,
            {"count": count},
        )
        leads, contacts = _payloads(conn, "salesforce", "Lead"), _payloads(conn, "hubspot", "contacts")
    ids = merged.groupby("source")["record_id"].apply(set)
    assert len(ids["salesforce"]) >= count and len(ids["hubspot"]) >= count
    renamed_leads = [{**leads[rid], "Company": "Renamed Ltd"} for rid in sorted(ids["salesforce"])]
    renamed_contacts = [{**contacts[rid], "company": "Renamed Ltd"} for rid in sorted(ids["hubspot"])]
    _land(engine, "salesforce", "Lead", renamed_leads, at)
    _land(engine, "hubspot", "contacts", renamed_contacts, at)


def _random_day(engine, rng: random.Random, at: datetime) -> None:
    """Random changes to about 3% of the records, of every kind the rules reach across."""
    with engine.connect() as conn:
        leads = _payloads(conn, "salesforce", "Lead")
        contacts = _payloads(conn, "hubspot", "contacts")
        opportunities = _payloads(conn, "salesforce", "Opportunity")
        statuses = _payloads(conn, "salesforce", "LeadHistory")
    people = [
        (lead.get("Email"), lead.get("FirstName"), lead.get("LastName"), lead.get("Company"))
        for lead in leads.values()
    ]
    people += [
        (c.get("email"), c.get("firstname"), c.get("lastname"), c.get("company")) for c in contacts.values()
    ]
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    lead_changes, contact_changes, deal_changes, lead_history, deal_history = [], [], [], [], []
    for lead in rng.sample(sorted(leads.values(), key=lambda r: r["Id"]), k=max(3, len(leads) // 30)):
        email, first, last, company = rng.choice(people)
        lead = {**lead, "SystemModstamp": stamp}
        kind = rng.choice(["email", "no_email", "name", "delete", "break", "convert", "source", "history"])
        if kind == "email":
            lead["Email"] = email
        elif kind == "no_email":
            lead.update(Email=None, FirstName=first, LastName=last, Company=company)
        elif kind == "name":
            lead.update(FirstName=first, LastName=last, Company=company)
        elif kind == "delete":
            lead["IsDeleted"] = True
        elif kind == "break":
            lead["CreatedDate"] = "soon"
        elif kind == "convert":
            lead["ConvertedOpportunityId"] = rng.choice([None, *sorted(opportunities)])
        elif kind == "source":
            lead["LeadSource"] = rng.choice(["Webinar", "Paid Search", "something odd", None])
        else:
            new_status = rng.choice(["SAL", "SQL", "Disqualified", "Recycled", "MQL"])
            row_id = f"017R{len(lead_history):06d}{rng.randrange(10**6)}"
            lead_history.append(
                {"Id": row_id, "LeadId": lead["Id"], "Field": "Status", "OldValue": lead.get("Status"),
                 "NewValue": new_status, "CreatedDate": stamp}
            )  # fmt: skip
            continue
        lead_changes.append(lead)
    for row in rng.sample(sorted(statuses.values(), key=lambda r: r["Id"]), k=max(2, len(statuses) // 60)):
        if rng.random() < 0.5:  # a history row deleted, or moved to another lead
            lead_history.append({**row, "IsDeleted": True})
        else:
            lead_history.append({**row, "LeadId": rng.choice(sorted(leads))})
    for contact in rng.sample(
        sorted(contacts.values(), key=lambda r: r["hs_object_id"]), k=max(2, len(contacts) // 30)
    ):
        email, first, last, company = rng.choice(people)
        kind = rng.choice(["email", "no_email", "mql"])
        if kind == "email":
            contact = {**contact, "email": email}
        elif kind == "no_email":
            contact = {**contact, "email": None, "firstname": first, "lastname": last, "company": company}
        else:
            contact = {**contact, "hs_lifecyclestage_marketingqualifiedlead_date": stamp}
        contact_changes.append(contact)
    for deal in rng.sample(
        sorted(opportunities.values(), key=lambda r: r["Id"]), k=max(2, len(opportunities) // 30)
    ):
        stage = rng.choice(["Closed Won", "Closed Lost", "Negotiation"])
        if rng.random() < 0.2:
            deal_changes.append({**deal, "IsDeleted": True, "SystemModstamp": stamp})
            continue
        deal_changes.append(
            {**deal, "StageName": stage, "IsClosed": None, "IsWon": None, "SystemModstamp": stamp}
        )
        deal_history.append(
            {"Id": f"008R{len(deal_history):06d}{rng.randrange(10**6)}", "OpportunityId": deal["Id"],
             "StageName": stage, "CreatedDate": stamp}
        )  # fmt: skip
    for source, name, records in [
        ("salesforce", "Lead", lead_changes),
        ("hubspot", "contacts", contact_changes),
        ("salesforce", "Opportunity", deal_changes),
        ("salesforce", "LeadHistory", lead_history),
        ("salesforce", "OpportunityHistory", deal_history),
    ]:
        if records:
            _land(engine, source, name, records, at)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_days_of_changes_give_what_a_full_build_gives(seed, small_exports, tmp_path):
    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, small_exports)
    build = build_staging(engine, "day-1")
    rng = random.Random(seed)
    for day in range(2, 5):
        _random_day(engine, rng, build.data_cutoff + timedelta(hours=6))
        build = build_staging(engine, f"day-{day}")
        _assert_same_as_a_full_build(engine, build)


def test_the_scope_check_names_the_prospects_staging_already_holds(updated):
    """The guard an incremental build falls back to a full build by: a prospect the scope's
    reconcile gives outside the scope must be new."""
    engine, _, _ = updated
    with engine.connect() as conn:
        held = read_frame(conn, "select prospect_id from staging.prospects order by prospect_id")[
            "prospect_id"
        ]
        assert existing_prospects(conn, [held.iloc[0], "P-not-there", held.iloc[-1]]) == [
            held.iloc[0],
            held.iloc[-1],
        ]
        assert existing_prospects(conn, []) == []


def test_the_benchmarks_working_day_is_built_in_place_as_a_full_build_would(small_exports, tmp_path):
    """The day the benchmarks time (`harness.land_a_working_day`) updates staging in place,
    to what a full build gives, so the incremental figures they report are of a correct build."""
    from benchmarks.harness import land_a_working_day

    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, small_exports)
    build_staging(engine, "day-1")
    landed = land_a_working_day(engine, every=20)
    assert all(landed.values()), landed  # every kind of change is in the day
    build = build_staging(engine, "day-2")
    assert build.update is not None
    with engine.connect() as conn:
        new_leads = "select count(*) from staging.prospect_identities where record_id like '00QDAY%'"
        moved_on = "select count(*) from staging.prospect_stages where entered_at > :cutoff"
        assert conn.execute(sa.text(new_leads)).scalar_one() > 0
        assert (
            conn.execute(sa.text(moved_on), {"cutoff": build.data_cutoff - timedelta(hours=1)}).scalar_one()
            > 0
        )
    _assert_same_as_a_full_build(engine, build)
