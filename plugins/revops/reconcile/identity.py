"""Identity resolution: one prospect per person across Salesforce and HubSpot.

Rule 1 (the only automatic rule so far): records with the same normalised e-mail (trimmed,
lower-cased) are one person. A record without an e-mail is its own prospect. Duplicates
inside one system (a recycled prospect's second lead) merge by the same rule.

Survivorship, per field:
- created_at: the earliest record (the person's first appearance anywhere);
- region, segment, owner, campaign, score: Salesforce before HubSpot, newest record first;
- channel: Salesforce before HubSpot, oldest record first (first touch), skipping records
  whose source did not map.
"""

from __future__ import annotations

import hashlib

import pandas as pd

SOURCE_RANK = {"salesforce": 0, "hubspot": 1}
NEWEST_FIRST_FIELDS = ["region", "segment", "owner_id", "campaign_id", "lead_score"]


def normalise_email(emails: pd.Series) -> pd.Series:
    cleaned = emails.astype("string").str.strip().str.lower()
    return cleaned.where(cleaned.str.contains("@", regex=False).fillna(False))


def assign_prospect_ids(records: pd.DataFrame) -> pd.DataFrame:
    """Add prospect_id and match_rule to identity records (one per source record)."""
    has_email = records["email_normalized"].notna()
    own_key = records["source"] + ":" + records["object"] + ":" + records["record_id"]
    key = records["email_normalized"].where(has_email, own_key)
    return records.assign(
        prospect_id=key.map(lambda k: "P" + hashlib.sha256(k.encode()).hexdigest()[:16]),
        match_rule=has_email.map({True: "email", False: "no_email_own_prospect"}),
    )


def merge_prospects(records: pd.DataFrame, unmapped_channel: str) -> pd.DataFrame:
    """One row per prospect_id, fields chosen by the survivorship rules above."""
    ranked = records.assign(source_rank=records["source"].map(SOURCE_RANK))
    newest_first = ranked.sort_values(
        ["prospect_id", "source_rank", "created_at", "record_id"], ascending=[True, True, False, True]
    ).groupby("prospect_id", sort=True)
    oldest_first = ranked.sort_values(["prospect_id", "source_rank", "created_at", "record_id"]).groupby(
        "prospect_id", sort=True
    )
    mapped_channel = ranked["channel"].where(ranked["channel"] != unmapped_channel)
    channel = (
        ranked.assign(channel=mapped_channel)
        .sort_values(["prospect_id", "source_rank", "created_at", "record_id"])
        .groupby("prospect_id", sort=True)["channel"]
        .first()
    )
    prospects = newest_first[NEWEST_FIRST_FIELDS].first()
    prospects["email_normalized"] = oldest_first["email_normalized"].first()
    prospects["created_at"] = oldest_first["created_at"].min()
    prospects["channel"] = channel.reindex(prospects.index).fillna(unmapped_channel)
    prospects["record_count"] = oldest_first.size()
    prospects["exclusion_rule"] = oldest_first["exclusion_rule"].first()
    prospects["is_excluded"] = prospects["exclusion_rule"].notna()
    return prospects.reset_index()
