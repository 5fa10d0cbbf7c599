import pandas as pd

from revops.reconcile.identity import assign_prospect_ids, merge_prospects, normalise_email


def test_email_normalisation_trims_and_lowercases_and_rejects_non_addresses():
    emails = pd.Series([" Ana.Ruiz@Acme.IO ", "ana.ruiz@acme.io", "n/a", None])
    normalised = [e if pd.notna(e) else None for e in normalise_email(emails)]
    assert normalised == ["ana.ruiz@acme.io", "ana.ruiz@acme.io", None, None]


def _record(source, record_id, email, created, **fields):
    base = {
        "source": source,
        "object": "Lead" if source == "salesforce" else "contacts",
        "record_id": record_id,
        "email_normalized": email,
        "created_at": pd.Timestamp(created),
        "region": None,
        "segment": None,
        "owner_id": None,
        "campaign_id": None,
        "lead_score": None,
        "channel": "unmapped",
        "exclusion_rule": None,
    }
    return {**base, **fields}


def test_survivorship_rules_on_a_hand_built_person():
    records = pd.DataFrame(
        [
            # HubSpot saw her first, via paid search, in EMEA.
            _record("hubspot", "51", "ana@acme.io", "2026-01-10", region="EMEA", channel="paid_search"),
            # Salesforce lead from the MQL, later moved to NA by sales; source spelled badly.
            _record("salesforce", "00Q1", "ana@acme.io", "2026-01-20", region="EMEA", owner_id="005A"),
            _record(
                "salesforce",
                "00Q2",
                "ana@acme.io",
                "2026-05-01",
                region="NA",
                owner_id="005B",
                channel="events",
            ),
            # Someone with no e-mail stays a prospect of their own.
            _record("salesforce", "00Q3", None, "2026-02-01"),
        ]
    )
    prospects = merge_prospects(assign_prospect_ids(records), "unmapped").set_index(
        "email_normalized", drop=False
    )
    ana = prospects.loc["ana@acme.io"]
    assert ana["created_at"] == pd.Timestamp("2026-01-10")  # earliest appearance
    assert ana["region"] == "NA" and ana["owner_id"] == "005B"  # newest Salesforce record
    assert ana["channel"] == "events"  # Salesforce first, oldest *mapped* record
    assert ana["record_count"] == 3
    assert len(prospects) == 2


def test_one_excluded_record_excludes_the_person():
    records = pd.DataFrame(
        [
            _record("hubspot", "1", "qa@acme.io", "2026-01-01"),
            _record("salesforce", "00Q9", "qa@acme.io", "2026-01-02", exclusion_rule="test_name"),
        ]
    )
    prospect = merge_prospects(assign_prospect_ids(records), "unmapped").iloc[0]
    assert prospect["is_excluded"] and prospect["exclusion_rule"] == "test_name"
