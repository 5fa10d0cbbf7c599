"""Reconciliation on a hand-written fixture holding every mess the brief lists, checked row by
row against expectations worked out by hand (the comments say how)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import stage, table

SALESFORCE_LEAD = """\
Id,FirstName,LastName,Email,Company,Status,LeadSource,IsConverted,ConvertedOpportunityId,OwnerId,CreatedDate,SystemModstamp,IsDeleted,Region__c,Segment__c,UTM_Source__c,UTM_Medium__c,Is_Test__c
00QA1,Ana,Ruiz,Ana.Ruiz@ACME.io ,Acme,Converted,PPC,true,006A1,005R1,2026-01-20T10:05:00.000+01:00,2026-01-28T12:00:00.000+0000,false,EMEA,SMB,,,false
00QB1,Bo,Chen,bo.chen@initech.io,Initech,New,Cold Call,false,,005R2,2026-02-03,2026-02-03T00:00:00.000+0000,false,NA,Enterprise,,,false
00QC1,Cara,Diaz,,Globex,MQL,,false,,005R1,2026-02-12T10:03:00.000+0000,2026-02-12T10:03:00.000+0000,false,EMEA,Mid-Market,linkedin,paid_social,false
00QD1,Dan,Evans,dan@hooli.io,Hooli,Recycled,Webinar,false,,005R2,2026-01-10T14:00:00Z,2026-01-20T09:00:00.000+0000,false,NA,SMB,,,false
00QD2,Dan,Evans,DAN@HOOLI.IO,Hooli,Converted,webinar,true,006D2,005R2,2026-05-04T09:00:00.000+0000,2026-05-20T16:00:00.000+0000,false,NA,SMB,,,false
00QE1,Eve,Ng,qa.eve@example.com,Sandbox Co,Converted,Web,true,006E1,005R1,2026-03-01T09:00:00.000+0000,2026-03-02T09:00:00.000+0000,false,APAC,SMB,,,false
00QX1,Xavier,Broken,x@broken.io,Broken,MQL,Web,false,,005R1,yesterday,2026-03-01T09:00:00.000+0000,false,NA,SMB,,,false
"""

SALESFORCE_LEAD_HISTORY = """\
Id,LeadId,Field,OldValue,NewValue,CreatedDate,IsDeleted
017A1,00QA1,Status,MQL,SAL,2026-01-21T09:00:00.000+0000,false
017A2,00QA1,Status,SAL,SQL,2026-01-25T09:00:00.000+0000,false
017A3,00QA1,Status,SQL,Converted,2026-01-28T12:00:00.000+0000,false
017D1,00QD1,Status,MQL,SAL,2026-01-11T10:00:00.000+0000,false
017D2,00QD1,Status,SAL,Recycled,2026-01-20T09:00:00.000+0000,false
017D3,00QD2,Status,MQL,SAL,2026-05-06T09:00:00.000+0000,false
017D4,00QD2,Status,SAL,SQL,2026-05-05T09:00:00.000+0000,false
017D5,00QD2,Status,SQL,Converted,2026-05-20T16:00:00.000+0000,false
"""

SALESFORCE_OPPORTUNITY = """\
Id,Name,StageName,Amount,CloseDate,IsClosed,IsWon,LeadSource,OwnerId,CreatedDate,SystemModstamp,IsDeleted,Region__c,Segment__c
006A1,Acme expansion,Closed Won,"$12,000",2026-03-01,true,true,PPC,005R1,2026-01-28T12:00:00.000+0000,2026-03-01T15:00:00.000+0000,false,EMEA,SMB
006D2,Hooli pilot,Closed Lost,,2026-06-30,true,false,webinar,005R2,2026-05-20T16:00:00.000+0000,2026-06-30T12:00:00.000+0000,false,NA,SMB
006E1,TEST - demo deal,Closed Won,5000,2026-03-10,true,true,Web,005R1,2026-03-02T09:00:00.000+0000,2026-03-10T09:00:00.000+0000,false,APAC,SMB
006Z1,Existing account upsell,Proposal,8000,2026-12-01,false,false,Upsell,005R2,2026-04-01T09:00:00.000+0000,2026-04-01T09:00:00.000+0000,false,NA,SMB
"""

# Exported in New York local time, without an offset (reconciliation.yaml says so). Ana's
# deal went back from proposal to demo and forward again: each stage keeps its first entry.
SALESFORCE_OPPORTUNITY_HISTORY = """\
Id,OpportunityId,StageName,CreatedDate,Amount,IsDeleted
008A1,006A1,Prospecting,2026-01-28 07:00:00,12000,false
008A3,006A1,Demo,2026-02-02 09:00:00,12000,false
008A4,006A1,Proposal,2026-02-09 09:00:00,12000,false
008A5,006A1,Demo,2026-02-12 09:00:00,12000,false
008A6,006A1,Proposal,2026-02-16 09:00:00,12000,false
008A7,006A1,Negotiation,2026-02-20 09:00:00,12000,false
008A2,006A1,Closed Won,2026-03-01 10:00:00,12000,false
008D1,006D2,Prospecting,2026-05-20 12:00:00,,false
008D3,006D2,Demo,2026-06-01 12:00:00,,false
008D2,006D2,Closed Lost,2026-06-30 08:00:00,,false
"""

SALESFORCE_USER = """\
Id,Name,Email,IsActive,Region__c,SystemModstamp,IsDeleted
005R1,Rep One,rep1@revops-demo.com,true,EMEA,2025-01-01T00:00:00.000+0000,false
005R2,Rep Two,rep2@revops-demo.com,true,NA,2025-01-01T00:00:00.000+0000,false
"""

# HubSpot's export: labels as headers, epoch milliseconds for the create date.
HUBSPOT_CONTACTS = """\
Record ID,Email,First Name,Last Name,Company Name,Create Date,Original Source,First Page Seen,Region,Segment,Became a Marketing Qualified Lead Date
51,ana.ruiz@acme.io,Ana,Ruiz,Acme,1768473000000,PAID_SEARCH,https://x.io/?utm_source=google&utm_medium=cpc,EMEA,SMB,2026-01-20T09:00:00.000Z
52,cara@globex.io,Cara,Diaz,Globex,1770710400000,,https://x.io/pricing,EMEA,Mid-Market,2026-02-12T15:00:00.000Z
53,dan@hooli.io,Dan,Evans,Hooli,1767960000000,OFFLINE,https://x.io/,NA,SMB,2026-01-10T13:55:00.000Z
54,fay.testa@wonka.io,Fay,Testa,Wonka,1769000000000,OFFLINE,https://x.io/,LATAM,SMB,
55,gus@tyrell.io,Gus,Ortiz,Tyrell,1769100000000,SOMETHING_NEW,https://x.io/,APAC,SMB,
"""


def _write_exports(directory: Path) -> Path:
    files = {
        "salesforce/Lead.csv": SALESFORCE_LEAD,
        "salesforce/LeadHistory.csv": SALESFORCE_LEAD_HISTORY,
        "salesforce/Opportunity.csv": SALESFORCE_OPPORTUNITY,
        "salesforce/OpportunityHistory.csv": SALESFORCE_OPPORTUNITY_HISTORY,
        "salesforce/User.csv": SALESFORCE_USER,
        "hubspot/contacts.csv": HUBSPOT_CONTACTS,
        "export.json": '{"exported_at": "2026-11-02T00:00:00"}',
    }
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fixture")
    return stage(f"duckdb:///{directory / 'warehouse.duckdb'}", _write_exports(directory / "exports"))


def _by_email(engine) -> pd.DataFrame:
    return table(engine, "staging.prospects", "prospect_id").set_index("email_normalized")


def test_prospects_row_by_row(staged):
    engine, _ = staged
    prospects = _by_email(engine)
    columns = [
        "created_at",
        "channel",
        "sub_channel",
        "region",
        "segment",
        "lead_owner_id",
        "record_count",
        "exclusion_rule",
    ]
    actual = {email: tuple(row) for email, row in prospects[columns].iterrows()}
    ts = pd.Timestamp
    expected = {
        # HubSpot's epoch 1768473000000 is 15 Jan 10:30 UTC; the lead (+01:00) came later.
        # Salesforce's "PPC" decides the channel, the UTM source names the sub-channel.
        "ana.ruiz@acme.io": (
            ts("2026-01-15 10:30"),
            "paid_search",
            "google",
            "EMEA",
            "SMB",
            "005R1",
            2,
            None,
        ),
        # A date-only CreatedDate is midnight UTC; only Salesforce knows Bo.
        "bo.chen@initech.io": (
            ts("2026-02-03"),
            "outbound",
            "cold call",
            "NA",
            "Enterprise",
            "005R2",
            1,
            None,
        ),
        # The lead has no e-mail: name and company put it with HubSpot's Cara. Only UTM tags
        # say where she came from. 1770710400000 is 10 Feb 08:00 UTC.
        "cara@globex.io": (
            ts("2026-02-10 08:00"),
            "paid_social",
            "linkedin",
            "EMEA",
            "Mid-Market",
            "005R1",
            2,
            None,
        ),
        # Two leads (recycled, came back) and a contact, e-mail in three spellings: one person.
        # HubSpot's epoch 1767960000000 is 9 Jan 12:00 UTC, before either lead.
        "dan@hooli.io": (ts("2026-01-09 12:00"), "events", "webinar", "NA", "SMB", "005R2", 3, None),
        "qa.eve@example.com": (
            ts("2026-03-01 09:00"),
            "direct",
            "web",
            "APAC",
            "SMB",
            "005R1",
            1,
            "test_email_domain",
        ),
        # "Testa" is a surname, not a test record.
        "fay.testa@wonka.io": (ts("2026-01-21 12:53:20"), "events", "offline", "LATAM", "SMB", None, 1, None),
        # An analytics source nobody mapped: visible as unmapped, with the raw value kept.
        "gus@tyrell.io": (ts("2026-01-22 16:40"), "unmapped", "something_new", "APAC", "SMB", None, 1, None),
    }
    assert {k: _normalise(v) for k, v in actual.items()} == expected


def _normalise(row: tuple) -> tuple:
    return tuple(None if (not isinstance(v, str) and pd.isna(v)) else v for v in row)


def test_the_broken_record_is_quarantined_with_its_reason(staged):
    engine, build = staged
    quarantined = table(engine, "staging.quarantine", "record_id")
    assert quarantined[["object", "record_id", "reason"]].values.tolist() == [
        ["Lead", "00QX1", "CreatedDate: not a timestamp 'yesterday'"],
    ]
    assert build.summary["quarantined_by_reason"] == {"CreatedDate: not a timestamp": 1}


def test_opportunities_row_by_row(staged):
    engine, _ = staged
    opps = table(engine, "staging.opportunities", "opportunity_id").set_index("opportunity_id")
    prospects = table(engine, "staging.prospects", "prospect_id").set_index("prospect_id")
    owner_email = opps["prospect_id"].map(prospects["email_normalized"])
    got = {
        i: (
            owner_email[i] if pd.notna(owner_email[i]) else None,
            row["channel"],
            row["is_won"],
            None if pd.isna(row["amount"]) else row["amount"],
            None if pd.isna(row["exclusion_rule"]) else row["exclusion_rule"],
        )
        for i, row in opps.iterrows()
    }
    assert got == {
        "006A1": ("ana.ruiz@acme.io", "paid_search", True, 12000.0, None),  # "$12,000" parsed
        "006D2": ("dan@hooli.io", "events", False, None, None),  # no amount stays no amount
        "006E1": ("qa.eve@example.com", "direct", True, 5000.0, "test_opportunity_name"),
        "006Z1": (None, "sales_generated", False, 8000.0, None),  # created by sales, no lead
    }


def test_the_stage_timeline_row_by_row(staged):
    engine, _ = staged
    stages = table(engine, "staging.prospect_stages", "prospect_id, cycle, entered_at, stage")
    email = table(engine, "staging.prospects", "prospect_id").set_index("prospect_id")["email_normalized"]
    stages["email"] = stages["prospect_id"].map(email)

    def rows(who):
        person = stages[stages["email"] == who]
        return [(r.cycle, r.stage, r.entered_at.to_pydatetime(), r.flags) for r in person.itertuples()]

    assert rows("ana.ruiz@acme.io") == [
        (1, "created", datetime(2026, 1, 15, 10, 30), ""),
        (1, "mql", datetime(2026, 1, 20, 9, 0), ""),  # HubSpot, the MQL's system of record
        (1, "sal", datetime(2026, 1, 21, 9, 0), ""),
        (1, "sql", datetime(2026, 1, 25, 9, 0), ""),
        (1, "opportunity", datetime(2026, 1, 28, 12, 0), ""),
        (1, "won", datetime(2026, 3, 1, 15, 0), ""),  # 10:00 in New York, EST (UTC-5)
    ]
    assert rows("dan@hooli.io") == [
        (1, "created", datetime(2026, 1, 9, 12, 0), ""),
        (1, "mql", datetime(2026, 1, 10, 13, 55), ""),
        (1, "sal", datetime(2026, 1, 11, 10, 0), ""),
        (1, "recycled", datetime(2026, 1, 20, 9, 0), ""),
        (2, "mql", datetime(2026, 5, 4, 9, 0), "re_entered"),  # the second lead
        (2, "sql", datetime(2026, 5, 5, 9, 0), "out_of_order"),  # back-dated before its SAL
        (2, "sal", datetime(2026, 5, 6, 9, 0), ""),
        (2, "opportunity", datetime(2026, 5, 20, 16, 0), ""),
        (2, "lost", datetime(2026, 6, 30, 12, 0), ""),  # 08:00 in New York, EDT (UTC-4)
    ]


def test_clock_skew_on_the_lead_is_measured_and_corrected(staged):
    engine, build = staged
    identities = table(engine, "staging.prospect_identities", "record_id").set_index("record_id")
    # HubSpot says Cara became an MQL at 15:00; her lead claims 10:03: 297 minutes early.
    assert identities.loc["00QC1", "clock_skew_minutes"] == -297.0
    assert identities.loc["00QC1", "created_at"] == pd.Timestamp("2026-02-12 15:00")
    assert identities.loc["00QC1", "match_rule"] == "name_and_company"
    assert pd.isna(identities.loc["00QA1", "clock_skew_minutes"])  # 5 minutes of sync lag is fine
    assert build.summary["clock_skew_records"] == 1


def test_the_data_quality_summary(staged):
    _, build = staged
    summary = build.summary
    assert summary["real_prospects"] == 6
    # Ana 2 records, Cara 2, Dan 3: 4 merges among 10 records of real prospects.
    assert summary["duplicates_merged"] == 4 and summary["duplicate_rate"] == 0.4
    assert summary["match_rules"] == {"email": 10, "name_and_company": 1}
    assert summary["excluded_prospects_by_rule"] == {"test_email_domain": 1}
    assert summary["prospects_unmapped_channel"] == 1
    assert summary["unmapped_source_values"] == {"something_new": 1}
    assert summary["stage_flags"] == {"out_of_order": 1, "re_entered": 1}
