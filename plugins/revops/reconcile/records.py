"""The current state of each source object, typed; what cannot be typed goes to quarantine.

Current state, per object: the newest complete full snapshot plus the complete increments
after it, newest version of each record first; records deleted (or archived) upstream are
dropped, since the warehouse never keeps what the CRM deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from revops.configuration import read_config
from revops.extract.csv_source import UNDECODABLE_FIELDS, UNEXPECTED_CELLS
from revops.reconcile.frames import query_arrow
from revops.reconcile.parsing import RecordSpec, type_records
from revops.warehouse.engine import is_duckdb, release_cached_blocks
from revops.warehouse.load import read_arrow, read_frame

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
    inner join eligible on eligible.batch_id = records.batch_id{scope_join}{listed}
)
select record_id, batch_id, is_deleted, {payload}
from versions
where version_rank = 1
order by is_deleted, record_id
"""

# A payload's named fields (`:shape`, a JSON object naming each with the type VARCHAR), as a
# struct of their JSON text: DuckDB parses each payload once, in C++ on every core.
FIELDS_OF_PAYLOAD = "json_transform(payload, {shape}) as fields"


def _fields_shape(fields: list[str]) -> str:
    """The `:shape` `FIELDS_OF_PAYLOAD` reads `fields` by: each as its JSON text."""
    return json.dumps(dict.fromkeys(fields, "VARCHAR"))


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


def current_records_sql(scoped: bool = False, payload: str = "payload", listed: bool = False) -> str:
    """The current version of each record of one object (`:source`, `:object`), the live ones
    first, each part in record id order; `scoped`: of the records listed in
    `staging.reconcile_scope` only; `listed`: of the record ids `:record_ids` only. `payload`:
    what of the payload each row gives (an expression over `payload`)."""
    scope_join = """
    inner join staging.reconcile_scope as scope
        on scope.source = :source and scope.object = :object and scope.record_id = records.record_id"""
    listed_only = "\n    where records.record_id in (select unnest(:record_ids))"
    return _CURRENT_RECORDS_SQL.format(
        scope_join=scope_join if scoped else "", listed=listed_only if listed else "", payload=payload
    )


def current_fields(
    conn: sa.Connection, source: str, object_name: str, fields: list[str], scoped: bool = False
) -> pa.Table:
    """The current records of one object as `current_records_sql` lists them, each with its
    payload's `fields` as a struct column `fields` of JSON text (see `FIELDS_OF_PAYLOAD`).

    DuckDB reads the fields where the payloads lie: handing every payload over and reading
    them in-process cost 2.4 s more at a million prospects, and held the payloads (0.9 GiB of
    contacts) while typing. PostgreSQL sends the payloads, read in-process the same way."""
    params = {"source": source, "object": object_name}
    if is_duckdb(conn):
        sql = current_records_sql(scoped, payload=FIELDS_OF_PAYLOAD.format(shape=":shape"))
        return read_arrow(conn, sql, {**params, "shape": _fields_shape(fields)})
    return read_payload_fields(read_arrow(conn, current_records_sql(scoped), params), fields)


def current_payloads(conn: sa.Connection, source: str, object_name: str, record_ids: pd.Series) -> pd.Series:
    """The payload of each record's current version, by record id: for the few records whose
    payload typing needs whole (a quarantined record, a bare NaN)."""
    if record_ids.empty:
        return pd.Series([], dtype=object)
    params = {"source": source, "object": object_name, "record_ids": sorted(set(record_ids))}
    rows = read_frame(conn, current_records_sql(listed=True), params)
    return rows.set_index("record_id")["payload"]


def typed_objects(conn: sa.Connection, build_id: str, scoped: bool = False) -> TypedObjects:
    """Every object's current records, typed. `scoped`: only the records listed in
    `staging.reconcile_scope` (and every User and Campaign), for an incremental build.

    Each object is typed in a second thread while the next is read: DuckDB reads on both
    cores, pandas types on one (a full build's typing at a million prospects 11.1 to 12.2 s
    one after the other, 10.0 to 10.5 s so). The largest objects are read first, so the
    last one typed, which nothing overlaps, is small. Only this thread uses the connection."""
    timezones = read_config("reconciliation")["timestamps"]["naive_timezones"]
    frames, quarantined, counts = {}, {}, {}

    def settle(current: _LiveRecords, typing: Future) -> None:
        """The typed records kept, the rejected ones quarantined with their payloads."""
        frame, reasons = typing.result()
        bad = reasons.notna().to_numpy()
        bad_keys = current.keys[bad]
        source, object_name = current.key
        payloads = current_payloads(conn, source, object_name, bad_keys["record_id"])
        quarantined[current.key] = bad_keys.assign(
            build_id=build_id,
            source=source,
            object=object_name,
            reason=reasons[bad],
            payload=payloads.reindex(bad_keys["record_id"]).to_numpy(),
        )
        frames[current.key] = frame[~bad].assign(_batch_id=current.keys["batch_id"][~bad])
        counts[f"{source}.{object_name}"] = {
            **current.counts,
            "quarantined": int(bad.sum()),
            "typed": int((~bad).sum()),
        }

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="typing") as typist:
        previous = None
        for source, object_name in _largest_first(conn):
            spec = SPECS[(source, object_name)]
            in_scope = scoped and (source, object_name) not in UNSCOPED_OBJECTS
            current = _live_records(conn, source, object_name, spec, in_scope, release=not scoped)
            if previous:
                settle(*previous)
            timezone = timezones.get(f"{source}.{object_name}", "UTC")
            previous = (current, typist.submit(_typed, current.fields, spec, timezone))
        settle(*previous)
    return TypedObjects(
        {key: frames[key] for key in SPECS},
        pd.concat([quarantined[key] for key in SPECS], ignore_index=True),
        {f"{source}.{name}": counts[f"{source}.{name}"] for source, name in SPECS},
    )


def _largest_first(conn: sa.Connection) -> list[tuple[str, str]]:
    """The objects in `SPECS`, the most records landed first (a cheap estimate of the read's
    size from the batch log). At a million prospects, with HubSpot's contacts read last, the
    build waited 1.6 s for their typing at the end."""
    landed = conn.execute(
        sa.text(
            "select source, object, sum(record_count) from raw.extract_batches"
            " where status = 'complete' group by source, object"
        )
    ).all()
    sizes = {(source, name): int(count or 0) for source, name, count in landed}
    return sorted(SPECS, key=lambda key: -sizes.get(key, 0))


@dataclass
class _LiveRecords:
    """An object's live current records as read, before typing."""

    key: tuple[str, str]  # source, object
    keys: pd.DataFrame  # record_id, batch_id
    fields: pd.DataFrame  # one text column per field, bare NaNs nulled
    counts: dict[str, int]  # records, deleted_upstream


def _live_records(
    conn: sa.Connection, source: str, object_name: str, spec: RecordSpec, scoped: bool, release: bool
) -> _LiveRecords:
    """An object's live current records as read: their keys, and their fields as text.
    `release`: the raw layer was read whole, and DuckDB's cache of it is the typing's memory
    now."""
    fields = [*expected_fields(source, object_name), *spec.required, *spec.types, *READER_MARKS]
    current = current_fields(conn, source, object_name, list(dict.fromkeys(fields)), scoped=scoped)
    if release:
        release_cached_blocks(conn)
    deleted = int(pc.sum(current["is_deleted"].cast(pa.bool_())).as_py() or 0)
    # Sliced, not filtered: a filter copies every row (1.5 s at a million leads, payloads).
    live = current.slice(0, current.num_rows - deleted)  # the query lists live records first
    # Copied (a take), not viewed: a frame viewing the read's buffers keeps all of them
    # alive for the rest of the build (its peak 0.7 GiB higher at 1M leads, with payloads).
    keys = live.select(["record_id", "batch_id"]).take(np.arange(live.num_rows)).to_pandas()
    frame = fields_frame(live["fields"])
    _null_bare_nans(frame, keys["record_id"], partial(current_payloads, conn, source, object_name))
    counts = {"records": current.num_rows, "deleted_upstream": deleted}
    return _LiveRecords((source, object_name), keys, frame, counts)


def _typed(fields: pd.DataFrame, spec: RecordSpec, timezone: str) -> tuple[pd.DataFrame, pd.Series]:
    """The typed records and each one's reasons to reject it (None where typed)."""
    frame, reasons = type_records(fields, spec, timezone)
    return frame, _flag_reader_marks(frame, reasons)


# Lists the CSV reader marks a row with (see `revops.extract.csv_source`): absent elsewhere.
READER_MARKS = (UNEXPECTED_CELLS, UNDECODABLE_FIELDS)


def read_payload_fields(records: pa.Table, fields: list[str]) -> pa.Table:
    """`records` with its `payload` column read into the struct column `fields`, in-process:
    what DuckDB does within the warehouse's query (`current_fields`). A number or boolean
    arrives as its JSON text, which the parsers read; a list (a reader mark) as its JSON text;
    a bare NaN as 'NaN' (see `_null_bare_nans`)."""
    payloads = records["payload"].cast(pa.large_string())  # PostgreSQL's empty result is untyped
    records = records.set_column(records.schema.get_field_index("payload"), "payload", payloads)
    sql = f"select * exclude (payload), {FIELDS_OF_PAYLOAD.format(shape='$shape')} from records"
    return query_arrow(sql, {"records": records}, {"shape": _fields_shape(fields)})


def fields_frame(fields: pa.ChunkedArray) -> pd.DataFrame:
    """The struct column `fields` as one column per field."""
    return pa.Table.from_struct_array(fields).to_pandas()


def _null_bare_nans(
    frame: pd.DataFrame, record_ids: pd.Series, payloads_of: Callable[[pd.Series], pd.Series]
) -> None:
    """`json.dumps` writes a float NaN, pandas' missing value, as a bare `NaN`, which DuckDB
    hands over as the text 'NaN': the few rows with a field reading 'NaN' have their payloads
    (by record id, from `payloads_of`) decoded in Python, to tell that missing value from the
    word, and their NaN fields set to null."""
    rows = np.flatnonzero((frame == "NaN").any(axis=1).to_numpy())
    if not rows.size:
        return
    payloads = payloads_of(record_ids.iloc[rows])
    for row in rows:
        decoded = json.loads(payloads[record_ids.iloc[row]])
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
