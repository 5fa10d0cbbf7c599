"""Reconciliation checked row by row against the generator's ground truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from revops.reconcile.build import build_staging
from revops.warehouse import get_engine
from tests.helpers import land_exports, stage, table


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
    assert joined["owner_id"].fillna("-").eq(joined["owner_id_staged"].fillna("-")).all()
    expected_records = joined["salesforce_leads"] + joined["in_hubspot"].astype(int)
    assert (joined["record_count"] == expected_records).all()


def test_test_records_are_excluded_but_stay_queryable(staged, small_world):
    engine, _build = staged
    prospects = table(engine, "staging.prospects", "prospect_id")
    excluded = prospects[prospects["is_excluded"]]
    assert len(excluded) > 0
    assert set(excluded["exclusion_rule"]) <= {"test_email_domain", "test_name"}
    # No real person is excluded: the surname "Testa" is not a test record.
    real_emails = set(small_world.truth_prospects["email"])
    assert not real_emails & set(excluded["email_normalized"])
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
    leads.write_text("\n".join([lines[0], ",".join(broken), ",".join(no_id), extra, *lines[4:]]) + "\n")

    engine = get_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    land_exports(engine, exports)
    build = build_staging(engine, "quarantine-test")
    quarantined = table(engine, "staging.quarantine", "record_id")
    reasons = dict(zip(quarantined["record_id"], quarantined["reason"], strict=True))
    assert reasons[broken[0]] == "CreatedDate: not a timestamp 'last tuesday'"
    assert reasons["<missing id: row 2>"] == "Id: missing"
    assert reasons[lines[3].split(",")[0]] == "row has cells beyond the header"
    assert json.loads(quarantined["payload"].iloc[0])  # the raw record is kept whole
    assert build.summary["objects"]["salesforce.Lead"]["quarantined"] == 3
    typed = build.summary["objects"]["salesforce.Lead"]["typed"]
    assert typed + 3 == build.summary["objects"]["salesforce.Lead"]["records"]
