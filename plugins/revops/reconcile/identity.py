"""Identity resolution: one prospect per person across Salesforce and HubSpot.

Matching rules, in order (`include/config/reconciliation.yaml`, identity):
1. `email`: the same normalised e-mail (trimmed, lower-cased) is the same person, across
   systems and within one (a recycled prospect's second lead).
2. `name_and_company`: a record without an e-mail joins the prospect whose records carry the
   same first name, last name and company (normalised) when exactly one prospect does;
   with two or more candidates it stays apart (`ambiguous_name_and_company`).
3. Otherwise a record is a prospect of its own (`no_email_own_prospect`).

Survivorship, per field:
- created_at: the earliest record (the person's first appearance anywhere);
- region, segment, owner, campaign, score: Salesforce before HubSpot, newest record first;
- channel: Salesforce before HubSpot, oldest record first (first touch), skipping records
  whose source did not map; sub-channel: from a record of that channel whose UTM source
  names it (google, linkedin, ...) when there is one, else the deciding record's raw value.

Clock skew: the MQL hand-off is one event both systems record. A Salesforce lead of a
prospect's first cycle created further from the HubSpot MQL date than the tolerance was
stamped by a clock that is off; with `prefer_hubspot` its time is replaced by HubSpot's.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pandas as pd

from revops.reconcile.frames import is_in, sorted_rows

SOURCE_RANK = {"salesforce": 0, "hubspot": 1}
NEWEST_FIRST_FIELDS = [
    "region",
    "segment",
    "lead_owner_id",
    "campaign_id",
    "lead_score",
    "lead_grade",
    "first_name",
    "last_name",
    "company",
]
# Fields read oldest record first: the e-mail, the channel (first touch), the exclusion rule.
OLDEST_FIRST_FIELDS = ["email_normalized", "channel", "sub_channel", "sub_channel_from_utm", "exclusion_rule"]


def normalise_email(emails: pd.Series) -> pd.Series:
    cleaned = emails.astype("string").str.strip().str.lower()
    return cleaned.where(cleaned.str.contains("@", regex=False).fillna(False))


def name_key(records: pd.DataFrame) -> pd.Series:
    """First name, last name and company, trimmed and case-folded: null unless all three are
    present."""
    parts = [
        records[c].astype("string").str.strip().str.casefold() for c in ("first_name", "last_name", "company")
    ]
    key = parts[0] + "|" + parts[1] + "|" + parts[2]
    return key.where(parts[0].notna() & parts[1].notna() & parts[2].notna())


def _prospect_id(key: str) -> str:
    return "P" + hashlib.sha256(key.encode()).hexdigest()[:16]


def assign_prospect_ids(
    records: pd.DataFrame,
    fallbacks: tuple[str, ...] = ("name_and_company",),
    known_names: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add prospect_id, match_rule and name_key to identity records (one per source record).

    `known_names`: name_key and prospect_id of e-mailed records that are not among `records`
    but that a record without an e-mail may match too (an incremental build's scope)."""
    records = records.copy()
    has_email = records["email_normalized"].notna()
    records["prospect_id"] = records["email_normalized"].map(_prospect_id, na_action="ignore")
    records["match_rule"] = has_email.map({True: "email", False: "no_email_own_prospect"})
    records["name_key"] = name_key(records)
    if "name_and_company" in fallbacks:
        _match_by_name_and_company(records, has_email, known_names)
    own = records["prospect_id"].isna()
    own_key = records["source"] + ":" + records["object"] + ":" + records["record_id"]
    records.loc[own, "prospect_id"] = own_key[own].map(_prospect_id)
    return records


def _match_by_name_and_company(
    records: pd.DataFrame, has_email: pd.Series, known_names: pd.DataFrame | None
) -> None:
    key = records["name_key"]
    candidates = records.loc[has_email, ["name_key", "prospect_id"]]
    if known_names is not None:
        candidates = pd.concat([candidates, known_names[candidates.columns]])
    candidates = candidates.rename(columns={"name_key": "key"}).dropna().drop_duplicates()
    per_key = candidates.groupby("key")["prospect_id"]
    prospects_per_key = per_key.nunique()
    unique = per_key.first()[prospects_per_key == 1]
    ambiguous = prospects_per_key.index[prospects_per_key > 1]
    without_email = ~has_email & key.notna()
    matched = without_email & is_in(key, unique.index)
    records.loc[matched, "prospect_id"] = key[matched].map(unique)
    records.loc[matched, "match_rule"] = "name_and_company"
    records.loc[without_email & is_in(key, ambiguous), "match_rule"] = "ambiguous_name_and_company"


def correct_clock_skew(records: pd.DataFrame, tolerance_minutes: float, correction: str) -> pd.DataFrame:
    """Flag (and with `prefer_hubspot`, correct) first-cycle leads whose creation disagrees
    with the prospect's HubSpot MQL date by more than the tolerance."""
    records = records.copy()
    records["clock_skew_minutes"] = pd.Series(pd.NA, index=records.index, dtype="Float64")
    hubspot_mql = (
        records[records["source"] == "hubspot"]
        .dropna(subset=["mql_at"])
        .groupby("prospect_id")["mql_at"]
        .min()
    )
    first_leads = records[
        (records["source"] == "salesforce") & (records["cycle"] == 1) & records["is_mql_handoff"]
    ]
    mql = pd.Series(hubspot_mql.reindex(first_leads["prospect_id"]).to_numpy(), index=first_leads.index)
    delta = (first_leads["created_at"] - mql) / timedelta(minutes=1)
    skewed = delta.abs() > tolerance_minutes
    records.loc[skewed[skewed].index, "clock_skew_minutes"] = delta[skewed].round(1)
    if correction == "prefer_hubspot":
        records.loc[skewed[skewed].index, "created_at"] = mql[skewed]
    return records


def number_cycles(records: pd.DataFrame) -> pd.Series:
    """1 for a prospect's first Salesforce lead, 2 for the next (a re-entry), ...; HubSpot
    records belong to the first cycle."""
    salesforce = records["source"] == "salesforce"
    order = sorted_rows(records[salesforce], ["prospect_id", "created_at", "record_id"])
    cycles = order.groupby("prospect_id").cumcount() + 1
    return cycles.reindex(records.index).fillna(1).astype(int)


def merge_prospects(records: pd.DataFrame, unmapped_channel: str) -> pd.DataFrame:
    """One row per prospect_id, fields chosen by the survivorship rules above.

    Two sorts, each of the columns it serves only: at a million prospects, moving every
    column of every record into order was most of reconcile's rules."""
    ranked = records.assign(source_rank=records["source"].map(SOURCE_RANK))
    keys = ["prospect_id", "source_rank", "created_at", "record_id"]
    newest_first = sorted_rows(
        ranked[[*keys, *NEWEST_FIRST_FIELDS]], keys, ascending=[True, True, False, True]
    ).groupby("prospect_id", sort=True)
    oldest = sorted_rows(ranked[[*keys, *OLDEST_FIRST_FIELDS]], keys)  # keys are unique per record
    oldest_first = oldest.groupby("prospect_id", sort=True)
    mapped = oldest[oldest["channel"] != unmapped_channel]
    first_touch = mapped.groupby("prospect_id", sort=True)[["channel", "sub_channel"]].first()
    unmapped_first = oldest_first[["channel", "sub_channel"]].first()
    prospects = newest_first[NEWEST_FIRST_FIELDS].first()
    prospects["email_normalized"] = oldest_first["email_normalized"].first()
    prospects["created_at"] = oldest_first["created_at"].min()
    touch = first_touch.reindex(prospects.index)
    prospects["channel"] = touch["channel"].fillna(unmapped_first["channel"])
    prospects["sub_channel"] = touch["sub_channel"].fillna(unmapped_first["sub_channel"])
    same_channel_utm = oldest[
        oldest["sub_channel_from_utm"]
        & (oldest["channel"] == oldest["prospect_id"].map(prospects["channel"]))
    ]
    utm_sub = same_channel_utm.groupby("prospect_id")["sub_channel"].first()
    prospects["sub_channel"] = utm_sub.reindex(prospects.index).fillna(prospects["sub_channel"])
    prospects["record_count"] = oldest_first.size()
    prospects["exclusion_rule"] = oldest_first["exclusion_rule"].first()
    prospects["is_excluded"] = prospects["exclusion_rule"].notna()
    return prospects.reset_index()
