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

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from revops.reconcile.frames import as_series, casefolded, is_in, query_arrow, sorted_rows

# Survivorship's two orders of a prospect's records: Salesforce before HubSpot, then by creation.
NEWEST_FIRST = "order by source <> 'salesforce', created_at desc, record_id"
OLDEST_FIRST = "order by source <> 'salesforce', created_at, record_id"
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


def _first(field: str, order: str, where: str | None = None) -> str:
    """The first non-null value of a field among a prospect's records, in `order`."""
    return f"first({field} {order}) filter (where {where or f'{field} is not null'})"


# Survivorship as grouped queries over every identity record, on every core (a pandas
# version sorted all records twice and looked each field up by prospect id: 2x slower at 1M
# prospects). Two queries, each in prospect id order, since one holding every field's state
# for a million prospects took 0.8 GiB more.
NEWEST_FIRST_SQL = f"""
select
    prospect_id,
    {", ".join(f"{_first(name, NEWEST_FIRST)} as {name}" for name in NEWEST_FIRST_FIELDS)}
from identity_records
group by prospect_id
order by prospect_id
"""
OLDEST_FIRST_SQL = f"""
with prospects as (
    select
        prospect_id,
        {_first("email_normalized", OLDEST_FIRST)} as email_normalized,
        min(created_at) as created_at,
        coalesce(
            {_first("channel", OLDEST_FIRST, "channel <> $unmapped")}, {_first("channel", OLDEST_FIRST)}
        ) as channel,
        coalesce(
            {_first("sub_channel", OLDEST_FIRST, "channel <> $unmapped")},
            {_first("sub_channel", OLDEST_FIRST)}
        ) as sub_channel,
        count(*) as record_count,
        {_first("exclusion_rule", OLDEST_FIRST)} as exclusion_rule
    from identity_records
    group by prospect_id
),
-- the sub-channel a UTM source names, from the oldest record of the prospect's channel
utm as (
    select records.prospect_id, {_first("records.sub_channel", OLDEST_FIRST)} as sub_channel
    from identity_records as records
    inner join (select prospect_id, channel from prospects) as chosen
        on chosen.prospect_id = records.prospect_id and chosen.channel = records.channel
    where records.sub_channel_from_utm
    group by records.prospect_id
)
select
    prospects.* replace (coalesce(utm.sub_channel, prospects.sub_channel) as sub_channel),
    prospects.exclusion_rule is not null as is_excluded
from prospects
left join utm on utm.prospect_id = prospects.prospect_id
order by prospects.prospect_id
"""


def normalise_email(emails: pd.Series) -> pd.Series:
    cleaned = emails.astype("string").str.strip().str.lower()
    return cleaned.where(cleaned.str.contains("@", regex=False).fillna(False))


def name_key(records: pd.DataFrame) -> pd.Series:
    """First name, last name and company, trimmed and case-folded: null unless all three are
    present."""
    parts = [
        casefolded(records[c].astype("string").str.strip()) for c in ("first_name", "last_name", "company")
    ]
    key = parts[0] + "|" + parts[1] + "|" + parts[2]
    return key.where(parts[0].notna() & parts[1].notna() & parts[2].notna())


def prospect_ids(keys: pd.Series) -> pd.Series:
    """A prospect id per key: "P" and the first 16 hex digits of the key's SHA-256 (a missing
    key has none). Hashed in DuckDB: one by one in Python, the 1.4M keys of a 1M build took
    1.8 s."""
    table = pa.table({"key": pa.array(keys, type=pa.string())})
    hashed = query_arrow("select 'P' || left(sha256(key), 16) as prospect_id from keys", {"keys": table})
    return as_series(hashed["prospect_id"], keys)


def assign_prospect_ids(
    records: pd.DataFrame,
    fallbacks: tuple[str, ...] = ("name_and_company",),
    known_names: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add prospect_id, match_rule and name_key to identity records (one per source record).

    `known_names`: name_key and prospect_id of e-mailed records that are not among `records`
    but that a record without an e-mail may match too (an incremental build's scope)."""
    records = records.copy(deep=False)  # copy on write: only the columns set here are new
    has_email = records["email_normalized"].notna()
    records["prospect_id"] = prospect_ids(records["email_normalized"])
    rule = np.where(has_email, "email", "no_email_own_prospect")
    records["match_rule"] = pd.Series(rule, index=records.index, dtype="str")
    records["name_key"] = name_key(records)
    if "name_and_company" in fallbacks:
        _match_by_name_and_company(records, has_email, known_names)
    own = records["prospect_id"].isna()
    own_rows = records.loc[own, ["source", "object", "record_id"]]
    own_key = own_rows["source"] + ":" + own_rows["object"] + ":" + own_rows["record_id"]
    records.loc[own, "prospect_id"] = prospect_ids(own_key)
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
    with the prospect's HubSpot MQL date by more than the tolerance. Rows are selected from
    the six columns read, and the copy returned shares every column it does not change: at a
    million prospects, copying all 25 took half of the step's 0.66 s."""
    records = records.copy(deep=False)  # copy on write: only the columns set below are copied
    records["clock_skew_minutes"] = pd.Series(pd.NA, index=records.index, dtype="Float64")
    read = records[["source", "prospect_id", "mql_at", "cycle", "is_mql_handoff", "created_at"]]
    hubspot_mql = (
        read[read["source"] == "hubspot"].dropna(subset=["mql_at"]).groupby("prospect_id")["mql_at"].min()
    )
    first_leads = read[(read["source"] == "salesforce") & (read["cycle"] == 1) & read["is_mql_handoff"]]
    mql = pd.Series(hubspot_mql.reindex(first_leads["prospect_id"]).to_numpy(), index=first_leads.index)
    delta = (first_leads["created_at"] - mql) / timedelta(minutes=1)
    skewed = delta.abs() > tolerance_minutes
    records.loc[skewed[skewed].index, "clock_skew_minutes"] = delta[skewed].round(1)
    if correction == "prefer_hubspot":
        records.loc[skewed[skewed].index, "created_at"] = mql[skewed]
    return records


def number_cycles(records: pd.DataFrame) -> pd.Series:
    """1 for a prospect's first Salesforce lead, 2 for the next (a re-entry), ...; HubSpot
    records belong to the first cycle. Only the three columns sorted by are selected (all of
    them: 0.55 s at a million prospects, against 0.23 s)."""
    salesforce = records["source"] == "salesforce"
    keys = ["prospect_id", "created_at", "record_id"]
    order = sorted_rows(records.loc[salesforce, keys], keys)
    cycles = order.groupby("prospect_id").cumcount() + 1
    return cycles.reindex(records.index).fillna(1).astype(int)


def merge_prospects(records: pd.DataFrame, unmapped_channel: str) -> pd.DataFrame:
    """One row per prospect_id, fields chosen by the survivorship rules above, in prospect
    id order."""
    columns = ["prospect_id", "source", "created_at", "record_id", *NEWEST_FIRST_FIELDS]
    columns += ["email_normalized", "channel", "sub_channel", "sub_channel_from_utm", "exclusion_rule"]
    tables = {"identity_records": pa.Table.from_pandas(records[columns], preserve_index=False)}
    newest = query_arrow(NEWEST_FIRST_SQL, tables)
    oldest = query_arrow(OLDEST_FIRST_SQL, tables, {"unmapped": unmapped_channel})
    if not newest["prospect_id"].equals(oldest["prospect_id"]):
        raise AssertionError("survivorship's two queries disagree on the prospects")
    for name in oldest.column_names[1:]:
        newest = newest.append_column(name, oldest[name])
    return newest.to_pandas()
