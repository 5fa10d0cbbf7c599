"""The current state of each source object, typed; what cannot be typed goes to quarantine.

Current state, per object: the newest complete full snapshot plus the complete increments
after it, newest version of each record first; records deleted (or archived) upstream are
dropped, since the warehouse never keeps what the CRM deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec
import pandas as pd
import sqlalchemy as sa

from revops.configuration import read_config
from revops.extract.csv_source import UNDECODABLE_FIELDS, UNEXPECTED_CELLS
from revops.reconcile.parsing import RecordSpec, type_records
from revops.warehouse.load import read_arrow_frame

SPECS = {
    ("salesforce", "Lead"): RecordSpec(
        required=("Id", "CreatedDate"),
        types={
            "CreatedDate": "timestamp",
            "ConvertedDate": "date",
            "IsConverted": "boolean",
            "Lead_Score__c": "number",
            "Is_Test__c": "boolean",
        },
    ),
    ("salesforce", "LeadHistory"): RecordSpec(
        required=("Id", "LeadId", "Field", "CreatedDate"), types={"CreatedDate": "timestamp"}
    ),
    # IsClosed / IsWon may be absent from an export: they follow from the stage then.
    ("salesforce", "Opportunity"): RecordSpec(
        required=("Id", "StageName"),
        types={
            "CreatedDate": "timestamp",
            "CloseDate": "date",
            "IsClosed": "boolean",
            "IsWon": "boolean",
            "Amount": "number",
        },
    ),
    ("salesforce", "OpportunityHistory"): RecordSpec(
        required=("Id", "OpportunityId", "StageName", "CreatedDate"),
        types={"CreatedDate": "timestamp", "Amount": "number", "CloseDate": "date"},
    ),
    ("salesforce", "User"): RecordSpec(required=("Id",), types={"IsActive": "boolean"}),
    # A campaign's cost is spread over its days: without a start it belongs to no period.
    ("salesforce", "Campaign"): RecordSpec(
        required=("Id", "StartDate"),
        types={"ActualCost": "number", "StartDate": "date", "EndDate": "date"},
        rules=(
            ("EndDate: before StartDate", lambda c: c["EndDate"] < c["StartDate"]),
            ("ActualCost: negative", lambda c: c["ActualCost"] < 0),
        ),
    ),
    ("hubspot", "contacts"): RecordSpec(
        required=("hs_object_id", "createdate"),
        types={
            "createdate": "timestamp",
            "hubspotscore": "number",
            "hs_lifecyclestage_marketingqualifiedlead_date": "timestamp",
        },
    ),
}

CURRENT_RECORDS_SQL = """
with batches as (
    select batch_id, extract_mode, extracted_at
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
            order by eligible.extracted_at desc, records.record_version desc, records.batch_id desc
        ) as version_rank
    from raw.records as records
    inner join eligible on eligible.batch_id = records.batch_id
)
select record_id, batch_id, is_deleted, payload
from versions
where version_rank = 1
order by record_id
"""


@dataclass
class TypedObjects:
    frames: dict[tuple[str, str], pd.DataFrame]  # typed, live records per (source, object)
    quarantined: pd.DataFrame
    counts: dict[str, dict[str, int]]

    def __getitem__(self, key: tuple[str, str]) -> pd.DataFrame:
        return self.frames[key]


def expected_fields(source: str, object_name: str) -> list[str]:
    """The fields an object is extracted with (`crm_objects.yaml`); a source that sends fewer
    (a CSV export without some columns) gets them as empty, never a missing column."""
    config = read_config("crm_objects")[source]["objects"].get(object_name, {})
    if source == "hubspot":
        return ["hs_object_id", *config.get("properties", [])]
    return list(config.get("fields", []))


def typed_objects(conn: sa.Connection, build_id: str) -> TypedObjects:
    naive_timezones = read_config("reconciliation")["timestamps"]["naive_timezones"]
    frames, quarantined, counts = {}, [], {}
    for (source, object_name), spec in SPECS.items():
        current = read_arrow_frame(conn, CURRENT_RECORDS_SQL, {"source": source, "object": object_name})
        live = current[~current["is_deleted"].astype(bool)]
        payloads = pd.DataFrame.from_records(_decoded(live["payload"]), index=live.index)
        for name in expected_fields(source, object_name):
            if name not in payloads:
                payloads[name] = pd.Series(pd.NA, index=payloads.index, dtype=object)
        timezone = naive_timezones.get(f"{source}.{object_name}", "UTC")
        frame, reasons = type_records(payloads, spec, timezone)
        reasons = _flag_reader_marks(frame, reasons)
        bad = reasons.notna()
        quarantined.append(
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
        frames[(source, object_name)] = frame[~bad].assign(_batch_id=live["batch_id"][~bad])
        counts[f"{source}.{object_name}"] = {
            "records": len(current),
            "deleted_upstream": int(current["is_deleted"].astype(bool).sum()),
            "quarantined": int(bad.sum()),
            "typed": int((~bad).sum()),
        }
    return TypedObjects(frames, pd.concat(quarantined, ignore_index=True), counts)


_JSON = msgspec.json.Decoder()
DECODE_CHUNK = 20_000


def _decoded(payloads: pd.Series) -> list[dict]:
    """Each payload as a dict: msgspec, 4x faster than `json.loads`, and `json.loads` for a
    payload msgspec refuses (`json.dumps` writes a float NaN as a bare `NaN`)."""
    decoded = []
    for start in range(0, len(payloads), DECODE_CHUNK):
        # A list per chunk: iterating an Arrow-backed Series is slow, and a list of every
        # payload at once would hold a second copy of them all.
        for text in payloads.iloc[start : start + DECODE_CHUNK].to_list():
            try:
                decoded.append(_JSON.decode(text))
            except msgspec.DecodeError:
                decoded.append(json.loads(text))
    return decoded


def _flag_reader_marks(frame: pd.DataFrame, reasons: pd.Series) -> pd.Series:
    """Add the problems the CSV reader marked rows with (see `revops.extract.csv_source`)."""
    marks = {
        UNEXPECTED_CELLS: lambda cells: "row has cells beyond the header",
        UNDECODABLE_FIELDS: lambda fields: (
            f"{', '.join(fields)}: bytes that are not text in the file's encoding"
            " (set `encoding` for this export in csv_sources.yaml)"
        ),
    }
    for column, describe in marks.items():
        if column not in frame:
            continue
        marked = frame[column].map(lambda v: isinstance(v, list) and len(v) > 0)
        described = frame[column].where(marked).map(describe, na_action="ignore")
        joined = reasons.fillna("").str.cat(described.fillna(""), sep="; ").str.strip("; ")
        reasons = reasons.where(~marked, joined)
    return reasons
