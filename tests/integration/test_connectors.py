"""The connectors, driven through simple-salesforce and hubspot-api-client over HTTPS against
the CRM sandbox: full and incremental loads, paging, Bulk 2.0, search windows, and faults."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from revops.extract.crm import ExtractIncomplete, extract_hubspot_object, extract_salesforce_object
from revops.extract.landing import read_watermark
from revops.extract.salesforce import SalesforceSettings
from revops.sandbox.faults import Fault
from revops.sandbox.server import running_sandbox
from revops.warehouse import get_engine
from tests.helpers import FAST, hubspot_settings, salesforce_settings

UNTIL = datetime(2026, 11, 2)  # the small world's cut-off
LATER = datetime(2026, 11, 3)


@pytest.fixture
def sandbox(small_world):
    with running_sandbox(small_world) as sandbox:
        yield sandbox


@pytest.fixture
def engine(warehouse_url):
    return get_engine(warehouse_url)


def landed(engine, source: str, object_name: str) -> dict[str, int]:
    """record id -> number of (id, version) rows held by complete batches."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select r.record_id, count(*) from raw.records r join raw.extract_batches b "
                "using (batch_id) where b.status = 'complete' and r.source = :s and r.object = :o "
                "group by r.record_id"
            ),
            {"s": source, "o": object_name},
        ).all()
    return dict(rows)


def live_ids(sandbox, object_name: str) -> set[str]:
    return {r["Id"] for r in sandbox.store.salesforce[object_name] if not r["IsDeleted"]}


# --- Salesforce ---------------------------------------------------------------------------------


def test_full_load_pages_through_every_record_with_rest(sandbox, engine):
    batch = extract_salesforce_object(
        engine, salesforce_settings(sandbox), "Lead", UNTIL, "r1", page_size=200
    )
    leads = sandbox.store.salesforce["Lead"]
    assert batch.status == "complete" and batch.records_seen == len(leads) > 600
    assert set(landed(engine, "salesforce", "Lead")) == {r["Id"] for r in leads}
    assert sandbox.calls["salesforce"] >= 1 + 1 + len(leads) // 200  # login, count, pages
    assert read_watermark(engine, "salesforce", "Lead") == UNTIL


def test_bulk_api_2_above_the_threshold_gives_the_same_records(sandbox, engine, tmp_path):
    batch = extract_salesforce_object(
        engine,
        salesforce_settings(sandbox),
        "Opportunity",
        UNTIL,
        "r1",
        bulk_threshold=100,
        bulk_page_size=300,
    )
    assert batch.records_seen == len(sandbox.store.salesforce["Opportunity"])
    assert set(landed(engine, "salesforce", "Opportunity")) == live_ids(sandbox, "Opportunity")
    with engine.connect() as conn:
        payload = conn.execute(sa.text("select payload from raw.records limit 1")).scalar_one()
    assert '"IsClosed":' in payload  # the CSV's columns, keyed like the REST records


def test_incremental_picks_up_only_changes_deletions_and_merges(sandbox, engine):
    settings = salesforce_settings(sandbox)
    extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1")
    before = landed(engine, "salesforce", "Lead")
    leads = sandbox.store.salesforce["Lead"]
    changed, deleted, survivor, merged = leads[10]["Id"], leads[11]["Id"], leads[12]["Id"], leads[13]["Id"]
    sandbox.store.update_salesforce("Lead", changed, {"Status": "SQL"}, UNTIL + timedelta(hours=3))
    sandbox.store.delete_salesforce("Lead", deleted, UNTIL + timedelta(hours=4))
    sandbox.store.merge_salesforce_leads(survivor, merged, UNTIL + timedelta(hours=5))

    batch = extract_salesforce_object(engine, settings, "Lead", LATER, "r2")
    after = landed(engine, "salesforce", "Lead")
    assert batch.record_count == 4
    assert {k for k in after if after[k] > before.get(k, 0)} == {changed, deleted, survivor, merged}
    with engine.connect() as conn:
        flags = dict(
            conn.execute(
                sa.text("select record_id, is_deleted from raw.records where batch_id = :b"),
                {"b": batch.batch_id},
            ).all()
        )
    assert flags == {changed: False, deleted: True, survivor: False, merged: True}


def test_records_sharing_the_watermark_timestamp_are_neither_skipped_nor_duplicated(sandbox, engine):
    settings = salesforce_settings(sandbox)
    leads = sandbox.store.salesforce["Lead"]
    at_boundary, just_before = leads[20]["Id"], leads[21]["Id"]
    sandbox.store.update_salesforce("Lead", at_boundary, {}, UNTIL)  # == the window end
    sandbox.store.update_salesforce("Lead", just_before, {}, UNTIL - timedelta(minutes=1))
    extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1")
    assert at_boundary not in landed(engine, "salesforce", "Lead")  # [.., UNTIL) excludes it
    batch = extract_salesforce_object(engine, settings, "Lead", LATER, "r2")
    counts = landed(engine, "salesforce", "Lead")
    assert counts[at_boundary] == 1  # picked up by the next window (>=)
    assert counts[just_before] == 1  # seen again in the look-back, not landed twice
    assert batch.records_seen == 2 and batch.record_count == 1


def test_a_re_run_of_the_same_window_lands_nothing(sandbox, engine):
    settings = salesforce_settings(sandbox)
    extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1")
    extract_salesforce_object(engine, settings, "Lead", LATER, "r2")
    rerun = extract_salesforce_object(engine, settings, "Lead", LATER, "r3")
    assert rerun.record_count == 0
    assert max(landed(engine, "salesforce", "Lead").values()) == 1


def test_oauth_password_flow_works_and_bad_credentials_fail_without_leaking(sandbox, engine, caplog):
    c = sandbox.credentials
    oauth = salesforce_settings(
        sandbox,
        security_token=None,
        consumer_key=c.salesforce_consumer_key,
        consumer_secret=c.salesforce_consumer_secret,
    )
    assert extract_salesforce_object(engine, oauth, "User", UNTIL, "r1").records_seen == 21
    wrong = salesforce_settings(sandbox, password="not-the-password")
    with pytest.raises(Exception, match="INVALID_LOGIN") as raised:
        extract_salesforce_object(engine, wrong, "Lead", UNTIL, "r2")
    assert c.salesforce_security_token not in str(raised.value)
    assert c.salesforce_password not in caplog.text and c.salesforce_security_token not in caplog.text


SALESFORCE_RECOVERABLE = [
    Fault("salesforce", "rate_limit", "/01g", retry_after=0.05),
    Fault("salesforce", "server_error", "/01g", skip=1),
    Fault("salesforce", "expire_session", "/01g", skip=1),
    Fault("salesforce", "malformed_json", "/01g"),
    Fault("salesforce", "drop_connection", "/01g"),
    Fault("salesforce", "slow", "/01g", delay=1.5),
]


@pytest.mark.parametrize("fault", SALESFORCE_RECOVERABLE, ids=lambda f: f.action)
def test_salesforce_faults_mid_pagination_are_recovered(sandbox, engine, fault):
    fault = sandbox.faults.add(dataclasses.replace(fault))
    settings = salesforce_settings(sandbox, timeout=(5.0, 0.5))
    batch = extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1", page_size=200)
    assert fault.fired == 1
    assert batch.status == "complete"
    assert set(landed(engine, "salesforce", "Lead")) == {r["Id"] for r in sandbox.store.salesforce["Lead"]}


def test_an_expired_session_without_credentials_fails_clearly(sandbox, engine):
    with running_sandbox_login(sandbox) as (instance_url, session_id):
        sandbox.faults.add(Fault("salesforce", "expire_session", "/01g"))
        settings = SalesforceSettings(
            instance_url=instance_url,
            session_id=session_id,
            retry=FAST,
            route_to=sandbox.url.removeprefix("https://"),
            ca_bundle=str(sandbox.ca_path),
        )
        with pytest.raises(ExtractIncomplete, match="session expired and cannot be renewed"):
            extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1", page_size=200)
    assert read_watermark(engine, "salesforce", "Lead") is None


def running_sandbox_login(sandbox):
    """Log in once to get a session id, as a deployment with a pre-issued token has."""
    from contextlib import contextmanager

    from revops.extract.salesforce import SalesforceClient

    @contextmanager
    def login():
        client = SalesforceClient(salesforce_settings(sandbox))
        yield f"https://{client.sf.sf_instance}", client.sf.session_id

    return login()


def test_a_quota_that_does_not_recover_leaves_an_incomplete_batch_then_a_rerun_completes(sandbox, engine):
    settings = salesforce_settings(sandbox)
    extract_salesforce_object(engine, settings, "Lead", UNTIL, "r1")
    sandbox.store.update_salesforce(
        "Lead", sandbox.store.salesforce["Lead"][3]["Id"], {}, LATER - timedelta(hours=1)
    )
    sandbox.faults.add(Fault("salesforce", "rate_limit", "/queryAll", times=99))
    with pytest.raises(ExtractIncomplete, match="API request limit exceeded") as raised:
        extract_salesforce_object(engine, settings, "Lead", LATER, "r2")
    assert raised.value.batch.status == "incomplete"
    assert read_watermark(engine, "salesforce", "Lead") == UNTIL  # unmoved
    sandbox.faults.clear()
    batch = extract_salesforce_object(engine, settings, "Lead", LATER, "r3")
    assert batch.status == "complete" and batch.record_count == 1
    assert read_watermark(engine, "salesforce", "Lead") == LATER


# --- HubSpot ------------------------------------------------------------------------------------


def test_hubspot_full_load_with_history_archived_and_associations(sandbox, engine):
    archived = sandbox.store.hubspot["contacts"][7]["id"]
    sandbox.store.archive_hubspot("contacts", archived, UNTIL - timedelta(days=2))
    _contacts, associations = extract_hubspot_object(
        engine, hubspot_settings(sandbox), "contacts", UNTIL, "r1"
    )
    all_ids = {r["id"] for r in sandbox.store.hubspot["contacts"]}
    assert set(landed(engine, "hubspot", "contacts")) == all_ids
    with engine.connect() as conn:
        deleted = (
            conn.execute(
                sa.text("select record_id from raw.records where object = 'contacts' and is_deleted")
            )
            .scalars()
            .all()
        )
        history = conn.execute(
            sa.text(
                "select payload from raw.records where object = 'contacts' "
                "and payload like '%propertiesWithHistory%' limit 1"
            )
        ).scalar_one()
    assert deleted == [archived]
    assert '"hubspotscore":[{' in history.replace(" ", "")
    expected_pairs = sum(len(v) for k, v in sandbox.store.associations.items() if k != archived)
    with engine.connect() as conn:
        payloads = (
            conn.execute(
                sa.text("select payload from raw.records where object = 'contacts_deals_associations'")
            )
            .scalars()
            .all()
        )
    assert sum(p.count('"5') for p in payloads) == expected_pairs
    assert associations.records_seen == len(all_ids) - 1


def test_hubspot_incremental_search_splits_windows_past_the_cap(sandbox, engine):
    settings = hubspot_settings(sandbox)
    extract_hubspot_object(engine, settings, "contacts", UNTIL, "r1")
    sandbox.hubspot.search_cap = 40
    contacts = sandbox.store.hubspot["contacts"]
    touched = [c["id"] for c in contacts[:120]]
    for n, contact_id in enumerate(touched):
        sandbox.store.update_hubspot(
            "contacts", contact_id, {"hs_lead_status": "OPEN"}, UNTIL + timedelta(minutes=5 + n)
        )
    batch, _ = extract_hubspot_object(
        engine, settings, "contacts", LATER, "r2", search_cap=40, search_page_size=20
    )
    assert batch.status == "complete" and batch.record_count == 120
    counts = landed(engine, "hubspot", "contacts")
    assert all(counts[c] == 2 for c in touched)


HUBSPOT_RECOVERABLE = [
    Fault("hubspot", "rate_limit", "/crm/v3/objects/contacts", skip=2, retry_after=0.05),
    Fault("hubspot", "rate_limit", "/crm/v3/objects/contacts", skip=2),  # no Retry-After
    Fault("hubspot", "server_error", "/crm/v3/objects/contacts", skip=3),
    Fault("hubspot", "expire_session", "/crm/v3/objects/contacts", skip=1),
    Fault("hubspot", "malformed_json", "/crm/v3/objects/contacts", skip=1),
]


@pytest.mark.parametrize("fault", HUBSPOT_RECOVERABLE, ids=lambda f: f"{f.action}-{f.retry_after}")
def test_hubspot_faults_are_recovered(sandbox, engine, fault):
    fault = sandbox.faults.add(dataclasses.replace(fault))
    batch, _ = extract_hubspot_object(engine, hubspot_settings(sandbox), "contacts", UNTIL, "r1")
    assert fault.fired == 1 and batch.status == "complete"
    assert set(landed(engine, "hubspot", "contacts")) == {r["id"] for r in sandbox.store.hubspot["contacts"]}


def test_a_rate_limit_on_post_search_is_retried(sandbox, engine):
    settings = hubspot_settings(sandbox)
    extract_hubspot_object(engine, settings, "contacts", UNTIL, "r1")
    contact = sandbox.store.hubspot["contacts"][0]["id"]
    sandbox.store.update_hubspot("contacts", contact, {"hs_lead_status": "OPEN"}, UNTIL + timedelta(hours=1))
    fault = sandbox.faults.add(Fault("hubspot", "rate_limit", "/search"))
    batch, _ = extract_hubspot_object(engine, settings, "contacts", LATER, "r2")
    assert fault.fired == 1 and batch.record_count == 1


def test_the_hubspot_daily_limit_stops_the_extract_as_incomplete(sandbox, engine, caplog):
    sandbox.faults.add(Fault("hubspot", "daily_quota", "/crm/v3/objects/contacts", skip=2))
    with caplog.at_level(logging.INFO), pytest.raises(ExtractIncomplete, match="daily API limit"):
        extract_hubspot_object(engine, hubspot_settings(sandbox), "contacts", UNTIL, "r1")
    with engine.connect() as conn:
        status, reason = conn.execute(
            sa.text("select status, status_reason from raw.extract_batches where object = 'contacts'")
        ).one()
    assert status == "incomplete" and "daily API limit" in reason
    assert read_watermark(engine, "hubspot", "contacts") is None
    assert sandbox.credentials.hubspot_access_token not in caplog.text
