"""The current state of each source object, typed; what cannot be typed goes to quarantine.

Current state, per object: the newest complete full snapshot plus the complete increments
after it, newest version of each record first; records deleted (or archived) upstream are
dropped, since the warehouse never keeps what the CRM deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from revops.configuration import read_config
from revops.extract.csv_source import UNDECODABLE_FIELDS, UNEXPECTED_CELLS
from revops.reconcile.frames import query_arrow
from revops.reconcile.parsing import RecordSpec, type_records
from revops.warehouse.engine import release_cached_blocks
from revops.warehouse.load import read_arrow

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

_CURRENT_RECORDS_SQL = """
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
    inner join eligible on eligible.batch_id = records.batch_id{scope_join}
)
select record_id, batch_id, is_deleted, payload
from versions
where version_rank = 1
order by is_deleted, record_id
"""


@dataclass
class TypedObjects:
    frames: dict[tuple[str, str], pd.DataFrame]  # typed, live records per (source, object)
    quarantined: pd.DataFrame
    counts: dict[str, dict[str, int]]

    def __getitem__(self, key: tuple[str, str]) -> pd.DataFrame:
        return self.frames[key]

    def release(self, keys: tuple[tuple[str, str], ...]) -> None:
        """Drop the frames of objects no later step reads, so their memory is free for the
        steps that follow; reading one afterwards is a KeyError, never stale data."""
        for key in keys:
            del self.frames[key]


def expected_fields(source: str, object_name: str) -> list[str]:
    """The fields an object is extracted with (`crm_objects.yaml`); a source that sends fewer
    (a CSV export without some columns) gets them as empty, never a missing column."""
    config = read_config("crm_objects")[source]["objects"].get(object_name, {})
    if source == "hubspot":
        return ["hs_object_id", *config.get("properties", [])]
    return list(config.get("fields", []))


# Objects read whole even when the build updates a scope: a few dozen rows, on which no
# prospect depends.
UNSCOPED_OBJECTS = {("salesforce", "User"), ("salesforce", "Campaign")}


def current_records_sql(scoped: bool = False) -> str:
    """The current version of each record of one object (`:source`, `:object`), the live ones
    first, each part in record id order; `scoped`: of the records listed in
    `staging.reconcile_scope` only."""
    scope_join = """
    inner join staging.reconcile_scope as scope
        on scope.source = :source and scope.object = :object and scope.record_id = records.record_id"""
    return _CURRENT_RECORDS_SQL.format(scope_join=scope_join if scoped else "")


def typed_objects(conn: sa.Connection, build_id: str, scoped: bool = False) -> TypedObjects:
    """Every object's current records, typed. `scoped`: only the records listed in
    `staging.reconcile_scope` (and every User and Campaign), for an incremental build."""
    naive_timezones = read_config("reconciliation")["timestamps"]["naive_timezones"]
    frames, quarantined, counts = {}, [], {}
    for (source, object_name), spec in SPECS.items():
        in_scope = scoped and (source, object_name) not in UNSCOPED_OBJECTS
        sql = current_records_sql(scoped=in_scope)
        current = read_arrow(conn, sql, {"source": source, "object": object_name})
        if not scoped:  # raw read whole: DuckDB's cache of it is the typing's memory now
            release_cached_blocks(conn)
        deleted = int(pc.sum(current["is_deleted"].cast(pa.bool_())).as_py() or 0)
        # Sliced, not filtered: a filter copied every payload (1.5 s at a million leads).
        live = current.slice(0, current.num_rows - deleted)  # the query lists live records first
        fields = dict.fromkeys(
            [*expected_fields(source, object_name), *spec.required, *spec.types, *READER_MARKS]
        )
        payloads = payload_fields(live["payload"], list(fields))
        timezone = naive_timezones.get(f"{source}.{object_name}", "UTC")
        frame, reasons = type_records(payloads, spec, timezone)
        reasons = _flag_reader_marks(frame, reasons)
        bad = reasons.notna().to_numpy()
        # Copied (a take), not viewed: a frame viewing the read's buffers keeps all of them,
        # payloads too, alive for the rest of the build (its peak 0.7 GiB higher at 1M leads).
        keys = live.select(["record_id", "batch_id"]).take(np.arange(live.num_rows)).to_pandas()
        quarantined.append(
            keys[bad].assign(
                build_id=build_id,
                source=source,
                object=object_name,
                reason=reasons[bad],
                payload=live["payload"].filter(bad).to_numpy(zero_copy_only=False),
            )
        )
        frames[(source, object_name)] = frame[~bad].assign(_batch_id=keys["batch_id"][~bad])
        counts[f"{source}.{object_name}"] = {
            "records": current.num_rows,
            "deleted_upstream": deleted,
            "quarantined": int(bad.sum()),
            "typed": int((~bad).sum()),
        }
    return TypedObjects(frames, pd.concat(quarantined, ignore_index=True), counts)


# Lists the CSV reader marks a row with (see `revops.extract.csv_source`): absent elsewhere.
READER_MARKS = (UNEXPECTED_CELLS, UNDECODABLE_FIELDS)


def payload_fields(payloads: pa.ChunkedArray, fields: list[str]) -> pd.DataFrame:
    """One text column per field of the JSON payloads (null where a payload lacks it).

    DuckDB parses each payload once, in C++ on every core: 3x faster than decoding them
    to Python dicts and building a frame from those. A number or boolean arrives as its JSON
    text, which the parsers read; a list (a reader mark) as its JSON text."""
    shape = json.dumps(dict.fromkeys(fields, "VARCHAR"))
    raw_payloads = pa.table({"payload": payloads.cast(pa.large_string())})
    sql = "select unnest(json_transform(payload, ?)) from raw_payloads"
    frame = query_arrow(sql, {"raw_payloads": raw_payloads}, [shape]).to_pandas()
    _null_bare_nans(frame, payloads)
    return frame


def _null_bare_nans(frame: pd.DataFrame, payloads: pa.ChunkedArray) -> None:
    """`json.dumps` writes a float NaN, pandas' missing value, as a bare `NaN`, which DuckDB
    hands over as the text 'NaN': the few rows with a field reading 'NaN' are decoded in
    Python, to tell that missing value from the word, and their NaN fields set to null."""
    for row in np.flatnonzero((frame == "NaN").any(axis=1).to_numpy()):
        decoded = json.loads(payloads[int(row)].as_py())
        missing = [name for name, value in decoded.items() if value != value and name in frame]
        frame.loc[frame.index[row], missing] = None


def _flag_reader_marks(frame: pd.DataFrame, reasons: pd.Series) -> pd.Series:
    """Add the problems the CSV reader marked rows with (see `revops.extract.csv_source`):
    each mark is a JSON list, present only on the rows it concerns."""
    marks = {
        UNEXPECTED_CELLS: lambda cells: "row has cells beyond the header",
        UNDECODABLE_FIELDS: lambda fields: (
            f"{', '.join(fields)}: bytes that are not text in the file's encoding"
            " (set `encoding` for this export in csv_sources.yaml)"
        ),
    }
    reasons = reasons.copy()
    for column, describe in marks.items():
        listed = frame[column].dropna().map(json.loads)
        described = listed[listed.map(len) > 0].map(describe)
        before = reasons[described.index].fillna("")
        reasons[described.index] = before.str.cat(described, sep="; ").str.strip("; ")
    return reasons
