import hashlib
from datetime import datetime

import pandas as pd

from revops.reconcile.exclusions import prospect_exclusions
from revops.reconcile.identity import (
    assign_prospect_ids,
    correct_clock_skew,
    merge_prospects,
    normalise_email,
    number_cycles,
    prospect_ids,
)


def test_email_normalisation_trims_and_lowercases_and_rejects_non_addresses():
    emails = pd.Series([" Ana.Ruiz@Acme.IO ", "ana.ruiz@acme.io", "n/a", None])
    normalised = [e if pd.notna(e) else None for e in normalise_email(emails)]
    assert normalised == ["ana.ruiz@acme.io", "ana.ruiz@acme.io", None, None]


def test_a_prospect_id_is_p_and_the_first_16_hex_digits_of_the_keys_sha256():
    keys = pd.Series(["ana.ruiz@acme.io", None, "jürgen.müller@bäckerei.de"], index=[4, 2, 9])
    ids = prospect_ids(keys)
    expected = ["P" + hashlib.sha256(k.encode("utf-8")).hexdigest()[:16] for k in (keys[4], keys[9])]
    assert ids.index.equals(keys.index) and pd.isna(ids[2])
    assert [ids[4], ids[9]] == expected
    assert ids[4] == "P6e1563c4c4102989"  # pinned: staging's existing ids must not change


def _record(source, record_id, email, created, **fields):
    base = {
        "source": source,
        "object": "Lead" if source == "salesforce" else "contacts",
        "record_id": record_id,
        "email_normalized": email,
        "first_name": "Ana",
        "last_name": "Ruiz",
        "company": "Acme",
        "created_at": pd.Timestamp(created),
        "mql_at": pd.NaT,
        "is_mql_handoff": source == "salesforce",
        "region": None,
        "segment": None,
        "lead_owner_id": None,
        "campaign_id": None,
        "lead_score": None,
        "lead_grade": None,
        "channel": "unmapped",
        "sub_channel": "none",
        "sub_channel_from_utm": False,
        "exclusion_rule": None,
    }
    return {**base, **fields}


def test_survivorship_rules_on_a_hand_built_person():
    records = pd.DataFrame(
        [
            # HubSpot saw her first, via paid search, in EMEA.
            _record(
                "hubspot",
                "51",
                "ana@acme.io",
                "2026-01-10",
                region="EMEA",
                channel="paid_search",
                sub_channel="google",
            ),
            # Salesforce lead from the MQL, later moved to NA by sales; source spelled badly.
            _record("salesforce", "00Q1", "ana@acme.io", "2026-01-20", region="EMEA", lead_owner_id="005A"),
            _record(
                "salesforce",
                "00Q2",
                "ana@acme.io",
                "2026-05-01",
                region="NA",
                lead_owner_id="005B",
                channel="events",
                sub_channel="webinar",
            ),
            # Someone with no e-mail and another name stays a prospect of their own.
            _record("salesforce", "00Q3", None, "2026-02-01", first_name="Bo"),
        ]
    )
    prospects = merge_prospects(assign_prospect_ids(records), "unmapped").set_index(
        "email_normalized", drop=False
    )
    ana = prospects.loc["ana@acme.io"]
    assert ana["created_at"] == pd.Timestamp("2026-01-10")  # earliest appearance
    assert ana["region"] == "NA" and ana["lead_owner_id"] == "005B"  # newest Salesforce record
    assert (ana["channel"], ana["sub_channel"]) == ("events", "webinar")  # Salesforce first, oldest mapped
    assert ana["record_count"] == 3
    assert len(prospects) == 2


def test_a_record_without_email_joins_the_one_prospect_with_its_name_and_company():
    records = pd.DataFrame(
        [
            _record("hubspot", "51", "ana@acme.io", "2026-01-10"),
            _record("salesforce", "00Q1", None, "2026-01-20", first_name=" ANA ", company="acme"),
            # Two different people called Bo Chen at Initech: a record without e-mail can't choose.
            _record(
                "hubspot",
                "52",
                "bo@initech.io",
                "2026-01-10",
                first_name="Bo",
                last_name="Chen",
                company="Initech",
            ),
            _record(
                "hubspot",
                "53",
                "bo.chen@initech.io",
                "2026-01-11",
                first_name="Bo",
                last_name="Chen",
                company="Initech",
            ),
            _record(
                "salesforce", "00Q2", None, "2026-01-20", first_name="Bo", last_name="Chen", company="Initech"
            ),
        ]
    )
    resolved = assign_prospect_ids(records).set_index("record_id")
    assert resolved.loc["00Q1", "prospect_id"] == resolved.loc["51", "prospect_id"]
    assert resolved.loc["00Q1", "match_rule"] == "name_and_company"
    assert resolved.loc["00Q2", "match_rule"] == "ambiguous_name_and_company"
    assert resolved.loc["00Q2", "prospect_id"] not in {
        resolved.loc["52", "prospect_id"],
        resolved.loc["53", "prospect_id"],
    }


def test_a_first_lead_stamped_by_a_skewed_clock_takes_hubspots_mql_time():
    mql = pd.Timestamp("2026-03-02 15:00")
    records = pd.DataFrame(
        [
            _record("hubspot", "51", "ana@acme.io", "2026-03-01", mql_at=mql),
            # Synced 5 minutes after the MQL: normal.
            _record("salesforce", "00Q1", "ana@acme.io", "2026-03-02 15:05"),
            _record("hubspot", "61", "bo@acme.io", "2026-03-01", first_name="Bo", mql_at=mql),
            # Written in New York time as if it were UTC: five hours early.
            _record("salesforce", "00Q2", "bo@acme.io", "2026-03-02 10:03", first_name="Bo"),
        ]
    )
    records = assign_prospect_ids(records)
    records["cycle"] = number_cycles(records)
    corrected = correct_clock_skew(records, tolerance_minutes=60, correction="prefer_hubspot").set_index(
        "record_id"
    )
    assert pd.isna(corrected.loc["00Q1", "clock_skew_minutes"])
    assert corrected.loc["00Q1", "created_at"] == pd.Timestamp("2026-03-02 15:05")
    assert corrected.loc["00Q2", "clock_skew_minutes"] == -297.0
    assert corrected.loc["00Q2", "created_at"] == mql
    flagged = correct_clock_skew(records, 60, "flag_only").set_index("record_id")
    assert flagged.loc["00Q2", "created_at"] == datetime(2026, 3, 2, 10, 3)


def test_a_recycled_prospects_second_lead_is_cycle_two():
    records = assign_prospect_ids(
        pd.DataFrame(
            [
                _record("salesforce", "00Q9", "ana@acme.io", "2026-06-01"),
                _record("hubspot", "51", "ana@acme.io", "2026-01-01"),
                _record("salesforce", "00Q1", "ana@acme.io", "2026-02-01"),
            ]
        )
    )
    assert number_cycles(records).tolist() == [2, 1, 1]


def test_one_excluded_record_excludes_the_person():
    records = pd.DataFrame(
        [
            _record("hubspot", "1", "qa@acme.io", "2026-01-01"),
            _record("salesforce", "00Q9", "qa@acme.io", "2026-01-02", exclusion_rule="test_name"),
        ]
    )
    prospect = merge_prospects(assign_prospect_ids(records), "unmapped").iloc[0]
    assert prospect["is_excluded"] and prospect["exclusion_rule"] == "test_name"


def test_exclusion_rules_match_whole_names_in_any_case_and_the_domain_after_the_last_at():
    long_s = "\u017f"  # LATIN SMALL LETTER LONG S, which case-folds to "s"
    people = pd.DataFrame(
        {
            "email_normalized": ["a@example.com", "b@x.example.com", '"a@b"@test.com', None, "e@ac.io", None],
            "first_name": ["Ana", " TEST ", "Ana", "Testa", f"{long_s}andbox", None],
            "last_name": ["Lee", "Lee", "Lee", "Lee", "Lee", "Sandbox"],
            "is_test_flag": [False, False, False, True, False, False],
        }
    )
    # b@x.example.com is a subdomain, not example.com: its test name excludes it instead.
    assert prospect_exclusions(people).tolist() == [
        "test_email_domain",
        "test_name",
        "test_email_domain",
        "test_flag",
        "test_name",
        "test_name",
    ]
