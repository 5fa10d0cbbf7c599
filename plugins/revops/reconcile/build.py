"""Build the staging layer from the current state of the raw layer, in one transaction.

Steps: current records per object (newest complete full snapshot plus later increments,
deletions removed) -> typed values (bad records to quarantine with their reason) ->
identity records -> prospects (merged by identity) -> opportunities -> data-quality summary.
The same raw input always gives the same staging tables and the same build id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from revops.extract.csv_source import UNEXPECTED_CELLS
from revops.reconcile import identity
from revops.reconcile.exclusions import opportunity_exclusions, prospect_exclusions
from revops.reconcile.parsing import RecordSpec, type_records
from revops.reconcile.sources import SourceMapping, utm_from_url
from revops.warehouse import read_frame
from revops.warehouse.load import replace_table
from revops.warehouse.schema import (
    builds,
    opportunities,
    prospect_identities,
    prospects,
    quarantine,
    users,
)

log = logging.getLogger(__name__)

SPECS = {
    ("salesforce", "Lead"): RecordSpec(
        required=("Id", "CreatedDate"),
        types={
            "CreatedDate": "timestamp",
            "ConvertedDate": "date",
            "IsConverted": "boolean",
            "Lead_Score__c": "number",
        },
    ),
    ("salesforce", "Opportunity"): RecordSpec(
        required=("Id", "CreatedDate", "StageName", "IsClosed", "IsWon"),
        types={
            "CreatedDate": "timestamp",
            "CloseDate": "date",
            "IsClosed": "boolean",
            "IsWon": "boolean",
            "Amount": "number",
        },
    ),
    ("salesforce", "User"): RecordSpec(required=("Id",), types={"IsActive": "boolean"}),
    ("hubspot", "contacts"): RecordSpec(
        required=("hs_object_id", "createdate"),
        types={"createdate": "timestamp", "hubspotscore": "number"},
    ),
}

CURRENT_RECORDS_SQL = """
with batches as (
    select batch_id, extract_mode, extracted_at, window_end
    from raw.extract_batches
    where source = :source and object = :object and status = 'complete'
),
latest_full as (
    select max(extracted_at) as extracted_at from batches where extract_mode = 'full'
),
eligible as (
    select batches.*
    from batches cross join latest_full
    where latest_full.extracted_at is null or batches.extracted_at >= latest_full.extracted_at
),
versions as (
    select
        records.record_id,
        records.batch_id,
        records.is_deleted,
        records.payload,
        row_number() over (
            partition by records.record_id
            order by eligible.extracted_at desc, records.batch_id desc
        ) as version_rank
    from raw.records as records
    inner join eligible on eligible.batch_id = records.batch_id
)
select record_id, batch_id, is_deleted, payload
from versions
where version_rank = 1
order by record_id
"""

ELIGIBLE_BATCHES_SQL = """
select batch_id, source, object, extract_mode, extracted_at, window_end, record_count
from raw.extract_batches
where status = 'complete'
order by source, object, extracted_at
"""


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    data_cutoff: datetime
    summary: dict


def build_staging(engine: sa.Engine, run_id: str) -> BuildResult:
    """Rebuild every staging table from raw, atomically, and record the build."""
    mapping = SourceMapping.load()
    with engine.begin() as conn:
        batches = _batches_in_use(conn)
        if batches.empty:
            raise RuntimeError("raw layer holds no complete extract batch: run the extract first")
        build_id = "B" + hashlib.sha256(",".join(sorted(batches["batch_id"])).encode()).hexdigest()[:16]
        typed, rejected, counts = _typed_objects(conn, build_id)
        identity_records = _identity_records(typed, mapping)
        prospect_rows = identity.merge_prospects(identity_records, mapping.unmapped_channel)
        opportunity_rows = _opportunities(typed, identity_records, prospect_rows, mapping)
        summary = _summary(counts, rejected, identity_records, prospect_rows, opportunity_rows)
        data_cutoff = _data_cutoff(batches)
        _write(
            conn,
            build_id,
            run_id,
            data_cutoff,
            batches,
            summary,
            typed,
            rejected,
            identity_records,
            prospect_rows,
            opportunity_rows,
        )
    log.info("staging build %s (cut-off %s): %s", build_id, data_cutoff, json.dumps(summary))
    return BuildResult(build_id=build_id, data_cutoff=data_cutoff, summary=summary)


def _batches_in_use(conn: sa.Connection) -> pd.DataFrame:
    """Batches the build reads: per object, the newest full snapshot and later increments."""
    batches = read_frame(conn, ELIGIBLE_BATCHES_SQL)
    if batches.empty:
        return batches
    keep = []
    for _, group in batches.groupby(["source", "object"], sort=True):
        full = group[group["extract_mode"] == "full"]
        since = full["extracted_at"].max() if not full.empty else group["extracted_at"].min()
        keep.append(group[group["extracted_at"] >= since])
    return pd.concat(keep, ignore_index=True)


def _data_cutoff(batches: pd.DataFrame) -> datetime:
    """The point in time the data is complete up to: the stalest object's newest window end."""
    ends = batches["window_end"].fillna(batches["extracted_at"])
    return pd.Timestamp(ends.groupby([batches["source"], batches["object"]]).max().min()).to_pydatetime()


def _typed_objects(conn, build_id: str):
    typed: dict[tuple[str, str], pd.DataFrame] = {}
    rejected: list[pd.DataFrame] = []
    counts: dict[str, dict] = {}
    for (source, object_name), spec in SPECS.items():
        current = read_frame(conn, CURRENT_RECORDS_SQL, {"source": source, "object": object_name})
        live = current[~current["is_deleted"].astype(bool)]
        payloads = pd.DataFrame.from_records([json.loads(p) for p in live["payload"]], index=live.index)
        frame, reasons = type_records(payloads, spec)
        if UNEXPECTED_CELLS in frame:
            extra = frame[UNEXPECTED_CELLS].notna()
            reasons = reasons.where(
                ~extra,
                reasons.fillna("")
                .str.cat(pd.Series("row has cells beyond the header", index=frame.index), sep="; ")
                .str.strip("; "),
            )
        bad = reasons.notna()
        rejected.append(
            pd.DataFrame(
                {
                    "build_id": build_id,
                    "batch_id": live["batch_id"][bad],
                    "source": source,
                    "object": object_name,
                    "record_id": live["record_id"][bad],
                    "reason": reasons[bad],
                    "payload": live["payload"][bad],
                }
            )
        )
        typed[(source, object_name)] = frame[~bad].assign(_batch_id=live["batch_id"][~bad])
        counts[f"{source}.{object_name}"] = {
            "records": len(current),
            "deleted_upstream": int(current["is_deleted"].astype(bool).sum()),
            "quarantined": int(bad.sum()),
            "typed": int((~bad).sum()),
        }
    return typed, pd.concat(rejected, ignore_index=True), counts


def _identity_records(typed, mapping: SourceMapping) -> pd.DataFrame:
    """One row per Salesforce lead and HubSpot contact, in a common shape."""
    leads = typed[("salesforce", "Lead")]
    contacts = typed[("hubspot", "contacts")]
    empty = pd.Series(pd.NA, index=contacts.index, dtype=object)
    contact_utm_source, contact_utm_medium = utm_from_url(contacts["hs_analytics_first_url"])
    lead_rows = pd.DataFrame(
        {
            "source": "salesforce",
            "object": "Lead",
            "record_id": leads["Id"],
            "email_normalized": identity.normalise_email(leads["Email"]),
            "first_name": leads["FirstName"],
            "last_name": leads["LastName"],
            "created_at": leads["CreatedDate"],
            "region": leads["Region__c"],
            "segment": leads["Segment__c"],
            "owner_id": leads["OwnerId"],
            "campaign_id": leads["CampaignId__c"],
            "lead_score": leads["Lead_Score__c"],
            "channel": mapping.channel_of(
                leads["LeadSource"],
                pd.Series(pd.NA, index=leads.index, dtype=object),
                leads["UTM_Source__c"],
                leads["UTM_Medium__c"],
            ),
            "converted_opportunity_id": leads["ConvertedOpportunityId"],
        }
    )
    contact_rows = pd.DataFrame(
        {
            "source": "hubspot",
            "object": "contacts",
            "record_id": contacts["hs_object_id"],
            "email_normalized": identity.normalise_email(contacts["email"]),
            "first_name": contacts["firstname"],
            "last_name": contacts["lastname"],
            "created_at": contacts["createdate"],
            "region": contacts["region"],
            "segment": contacts["segment"],
            "owner_id": empty,
            "campaign_id": empty,
            "lead_score": contacts["hubspotscore"],
            "channel": mapping.channel_of(
                empty, contacts["hs_analytics_source"], contact_utm_source, contact_utm_medium
            ),
            "converted_opportunity_id": empty,
        }
    )
    records = pd.concat([lead_rows, contact_rows], ignore_index=True)
    records["exclusion_rule"] = prospect_exclusions(records)
    records = identity.assign_prospect_ids(records)
    return records.sort_values(["source", "object", "record_id"], ignore_index=True)


def _opportunities(typed, identity_records, prospect_rows, mapping) -> pd.DataFrame:
    opps = typed[("salesforce", "Opportunity")]
    converted = identity_records.dropna(subset=["converted_opportunity_id"])
    prospect_of_opp = converted.set_index("converted_opportunity_id")["prospect_id"]
    prospect_of_opp = prospect_of_opp[~prospect_of_opp.index.duplicated()]
    prospect_id = opps["Id"].map(prospect_of_opp)
    prospect = prospect_rows.set_index("prospect_id")
    from_lead = prospect_id.notna()
    none = pd.Series(pd.NA, index=opps.index, dtype=object)
    own_channel = mapping.channel_of(opps["LeadSource"], none, none, none)
    name_rule = opportunity_exclusions(opps["Name"])
    prospect_rule = prospect_id.map(prospect["exclusion_rule"])
    exclusion = name_rule.fillna(("from_excluded_prospect:" + prospect_rule).where(prospect_rule.notna()))
    frame = pd.DataFrame(
        {
            "opportunity_id": opps["Id"],
            "prospect_id": prospect_id,
            "created_at": opps["CreatedDate"],
            "close_date": opps["CloseDate"].dt.date,
            "stage": opps["StageName"],
            "is_closed": opps["IsClosed"].astype(bool),
            "is_won": opps["IsWon"].astype(bool),
            "amount": opps["Amount"],
            "owner_id": opps["OwnerId"],
            "region": opps["Region__c"],
            "segment": opps["Segment__c"],
            "channel": prospect_id.map(prospect["channel"]).where(from_lead, own_channel),
            "campaign_id": opps["CampaignId"],
            "is_from_converted_lead": from_lead,
            "exclusion_rule": exclusion,
            "is_excluded": exclusion.notna(),
        }
    )
    return frame.sort_values("opportunity_id", ignore_index=True)


def _summary(counts, rejected, identity_records, prospect_rows, opportunity_rows) -> dict:
    reasons = rejected["reason"].str.replace(r" '.*?'", "", regex=True)
    real = prospect_rows[~prospect_rows["is_excluded"]]
    real_records = int(real["record_count"].sum())
    merged = real_records - len(real)
    return {
        "objects": counts,
        "quarantined_by_reason": {k: int(v) for k, v in reasons.value_counts().sort_index().items()},
        "identity_records": len(identity_records),
        "prospects": len(prospect_rows),
        "real_prospects": len(real),
        "duplicates_merged": merged,  # among real (not excluded) prospects
        "duplicate_rate": round(merged / max(real_records, 1), 4),
        "excluded_prospects_by_rule": _counts(prospect_rows["exclusion_rule"]),
        "excluded_opportunities_by_rule": _counts(opportunity_rows["exclusion_rule"]),
        "prospects_unmapped_channel": int((real["channel"] == "unmapped").sum()),
        "opportunities": len(opportunity_rows),
    }


def _counts(values: pd.Series) -> dict[str, int]:
    return {k: int(v) for k, v in values.dropna().value_counts().sort_index().items()}


def _write(
    conn,
    build_id,
    run_id,
    data_cutoff,
    batches,
    summary,
    typed,
    rejected,
    identity_records,
    prospect_rows,
    opportunity_rows,
) -> None:
    user_rows = typed[("salesforce", "User")]
    replace_table(conn, prospects, prospect_rows)
    replace_table(conn, prospect_identities, identity_records)
    replace_table(conn, opportunities, opportunity_rows)
    replace_table(
        conn,
        users,
        pd.DataFrame(
            {
                "user_id": user_rows["Id"],
                "name": user_rows["Name"],
                "region": user_rows["Region__c"],
                "is_active": user_rows["IsActive"].astype("boolean"),
            }
        ).sort_values("user_id"),
    )
    replace_table(conn, quarantine, rejected.sort_values(["source", "object", "record_id"]))
    conn.execute(builds.delete().where(builds.c.build_id == build_id))
    conn.execute(
        builds.insert().values(
            build_id=build_id,
            run_id=run_id,
            data_cutoff=data_cutoff,
            batch_ids=json.dumps(sorted(batches["batch_id"])),
            summary=json.dumps(summary, sort_keys=True),
            built_at=datetime.now(UTC).replace(tzinfo=None),
        )
    )
