"""Score snapshots pulled from the CRM sandbox through simple-salesforce and
hubspot-api-client: the backfill from field history equals the world's true score history,
and later snapshots record exactly what changed, including changes that leave
last-modified alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest

from revops.reconcile.identity import normalise_email
from revops.sandbox.server import running_sandbox
from revops.snapshots.capture import capture_hubspot, capture_salesforce, score_sources
from revops.snapshots.store import apply_snapshot, read_intervals, scores_as_of
from revops.synthetic.truth import scores_at
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine
from tests.helpers import hubspot_settings, salesforce_settings

AT = datetime(2026, 11, 2)
NEXT_DAY = AT + timedelta(days=1)
TRACKED_WORLD = WorldConfig(n_prospects=600, seed=23, as_of=AT, salesforce_score_history=True)


@pytest.fixture(scope="module")
def world():
    return generate_world(TRACKED_WORLD)


@pytest.fixture
def sandbox(world):
    with running_sandbox(world) as sandbox:
        yield sandbox


def capture_both(sandbox, at: datetime, with_history: bool):
    sources = score_sources()
    return (
        capture_salesforce(salesforce_settings(sandbox), sources["salesforce"], at, with_history),
        capture_hubspot(hubspot_settings(sandbox), sources["hubspot"], at, with_history),
    )


def stored_scores(engine, at, source, object_name) -> pd.Series:
    with engine.connect() as conn:
        frame = scores_as_of(conn, at, source, object_name)
    return frame.set_index("record_id")["score"]


def true_scores(world, ids: pd.Series, emails: pd.Series, created: pd.Series, at) -> pd.Series:
    """Each record's true score at `at` (records created by then whose person is known),
    found through its e-mail address and the world's own score history."""
    person_of_email = world.truth_prospects.set_index("email")["person"]
    person = normalise_email(emails).map(person_of_email)
    known = person.notna() & (created <= at)
    truth = scores_at(world, at)
    return pd.Series(truth.reindex(person[known].astype("int64")).to_numpy(), index=ids[known].to_numpy())


def test_backfill_equals_the_true_score_history(sandbox, world, warehouse_url):
    engine = get_engine(warehouse_url)
    for captured in capture_both(sandbox, AT, with_history=True):
        assert captured.history is not None and len(captured.history) > 0
        apply_snapshot(engine, captured, "first-snapshot")

    contacts, leads = world.hubspot["contacts"], world.salesforce["Lead"]
    history = world.salesforce["LeadHistory"]
    tracked = leads["Id"].isin(history.loc[history["Field"] == "Lead_Score__c", "LeadId"])
    live = ~leads["IsDeleted"]
    compared = 0
    for instant in [AT - timedelta(days=d) for d in (200, 90, 30, 7, 1)]:
        for source, object_name, records, columns in [
            ("hubspot", "contacts", contacts, ("hs_object_id", "email", "createdate")),
            # Salesforce history only knows leads whose score changed after creation.
            ("salesforce", "Lead", leads[live & tracked], ("Id", "Email", "CreatedDate")),
        ]:
            ids, emails, created = (records[c] for c in columns)
            truth = true_scores(world, ids, emails, pd.to_datetime(created), instant)
            truth = truth[truth > 0]  # a zero score before any change is no interval
            stored = stored_scores(engine, instant, source, object_name)
            assert stored.reindex(truth.index).tolist() == truth.astype(float).tolist(), (source, instant)
            compared += len(truth)
        # A lead without history has no past in the store: unknown, not guessed.
        untracked = leads.loc[live & ~tracked, "Id"]
        assert not stored_scores(engine, instant, "salesforce", "Lead").index.isin(untracked).any()
    assert compared > 2000


def test_later_snapshots_record_only_what_changed(sandbox, world, warehouse_url):
    engine = get_engine(warehouse_url)
    for captured in capture_both(sandbox, AT, with_history=True):
        apply_snapshot(engine, captured, "day-1")
    with engine.connect() as conn:
        before = read_intervals(conn)

    lead = next(r for r in sandbox.store.salesforce["Lead"] if not r["IsDeleted"])
    gone = next(r for r in sandbox.store.salesforce["Lead"] if not r["IsDeleted"] and r is not lead)
    contact = sandbox.store.hubspot["contacts"][0]
    changed_at = AT + timedelta(hours=3)
    sandbox.store.update_salesforce("Lead", lead["Id"], {"Lead_Score__c": 777}, changed_at)
    sandbox.store.delete_salesforce("Lead", gone["Id"], changed_at)
    # A recalculated HubSpot score: lastmodifieddate does not move, the snapshot still sees it.
    modified = contact["properties"]["lastmodifieddate"]
    sandbox.store.update_hubspot("contacts", contact["id"], {"hubspotscore": 555}, changed_at, touch=False)
    assert contact["properties"]["lastmodifieddate"] == modified

    results = [
        apply_snapshot(engine, c, "day-2") for c in capture_both(sandbox, NEXT_DAY, with_history=False)
    ]

    assert [(r.scores_changed, r.records_gone) for r in results] == [(1, 1), (1, 0)]
    with engine.connect() as conn:
        after = read_intervals(conn)
    new = after[after["valid_from"] == NEXT_DAY]
    assert sorted(zip(new["record_id"], new["score"], strict=True)) == sorted(
        [(lead["Id"], 777.0), (contact["id"], 555.0)]
    )
    closed = after[after["valid_to"] == NEXT_DAY]
    assert set(closed["record_id"]) == {lead["Id"], gone["Id"], contact["id"]}
    assert len(after) == len(before) + 2  # nothing else was written


def test_the_benchmarks_captures_are_what_the_first_snapshot_pulls(world, tmp_path):
    """The harness's snapshots stage applies captures written from the world instead of
    pulling them (extraction is not what it times): the same scores of the same records, and
    HubSpot's score history, as the score snapshot DAG's first run pulls from the sandbox."""
    from benchmarks.harness import read_score_captures, write_score_captures

    leads = world.salesforce["Lead"].copy()
    leads.loc[leads.index[:3], "IsDeleted"] = True  # deleted upstream: in no pull
    world = replace(world, salesforce={**world.salesforce, "Lead": leads})
    write_score_captures(world, tmp_path / "scores")
    written = {(c.source, c.object): c for c in read_score_captures(tmp_path)}
    with running_sandbox(world) as sandbox:
        pulled = {(c.source, c.object): c for c in capture_both(sandbox, AT, with_history=True)}

    def versions(frame: pd.DataFrame, *columns: str) -> list[tuple]:
        numbers = pd.to_numeric(frame["score"]).astype(float)
        return sorted(zip(*(frame[c] for c in columns), numbers, strict=True))

    assert set(written) == set(pulled) == {("salesforce", "Lead"), ("hubspot", "contacts")}
    for key, capture in written.items():
        assert capture.snapshot_at == AT
        assert versions(capture.scores, "record_id") == versions(pulled[key].scores, "record_id"), key
    assert not written[("salesforce", "Lead")].scores["record_id"].isin(leads["Id"][:3]).any()
    history = written[("hubspot", "contacts")].history
    assert len(history) > 1000
    assert versions(history, "record_id", "changed_at") == versions(
        pulled[("hubspot", "contacts")].history, "record_id", "changed_at"
    )

    def each_records_order(frame: pd.DataFrame) -> dict:
        return frame.groupby("record_id")["changed_at"].agg(list).to_dict()

    # in HubSpot's order (each contact's newest first), which the backfill reads without a sort
    assert each_records_order(history) == each_records_order(pulled[("hubspot", "contacts")].history)
    # Salesforce does not track the score field in the benchmark's world: no history to backfill.
    assert written[("salesforce", "Lead")].history is None
