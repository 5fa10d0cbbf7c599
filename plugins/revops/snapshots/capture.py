"""Capturing every live record's score from the CRMs: a full, narrow pull of id and score.

A modstamp-based incremental extract misses score changes (formula fields and HubSpot
recalculations do not bump last-modified), so each snapshot reads the score of every live
record, and only that: two or three fields per record keeps a million-lead pull cheap.
With `with_history`, it also reads the field's history (the store's first snapshot backfills
from it): Salesforce `<Object>History` rows on the score field, HubSpot
`propertiesWithHistory`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from revops.configuration import read_config
from revops.extract import hubspot, salesforce
from revops.reconcile.parsing import parse_booleans, parse_timestamps
from revops.snapshots.store import ScoreCapture


@dataclass(frozen=True)
class ScoreSource:
    """Where one CRM keeps its score (include/config/scores.yaml `sources`)."""

    source: str
    object: str
    score_field: str
    field_history: str | None = None


def score_sources(config: dict[str, Any] | None = None) -> dict[str, ScoreSource]:
    config = config if config is not None else read_config("scores")
    return {
        name: ScoreSource(name, spec["object"], spec["score_field"], spec.get("field_history") or None)
        for name, spec in config["sources"].items()
    }


def capture_salesforce(
    settings: salesforce.SalesforceSettings, spec: ScoreSource, snapshot_at: datetime, with_history: bool
) -> ScoreCapture:
    """Id and score of every live record created before the snapshot; REST or Bulk 2.0 by size."""
    crm = read_config("crm_objects")["salesforce"]
    extract = salesforce.SalesforceExtract(
        salesforce.SalesforceClient(settings), crm["page_size"], crm["bulk_threshold"], crm["bulk_page_size"]
    )
    before = f"CreatedDate < {salesforce.soql_datetime(snapshot_at)}"
    fields = ("Id", spec.score_field, "CreatedDate", "IsDeleted")
    records = _frame(
        extract.pages_where(salesforce.ObjectSpec(spec.object, "SystemModstamp", fields), before), fields
    )
    live = records[~_flag(records["IsDeleted"])]
    scores = pd.DataFrame({"record_id": live["Id"], "score": live[spec.score_field]})
    history = None
    if with_history and spec.field_history:
        id_field = f"{spec.object}Id"  # LeadHistory.LeadId, ContactHistory.ContactId
        history_fields = (id_field, "OldValue", "NewValue", "CreatedDate", "IsDeleted")
        rows = _frame(
            extract.pages_where(
                salesforce.ObjectSpec(spec.field_history, "CreatedDate", history_fields),
                f"Field = '{spec.score_field}' AND {before}",
            ),
            history_fields,
        )
        history = salesforce_history(live, rows[~_flag(rows["IsDeleted"])], id_field)
    return ScoreCapture("salesforce", spec.object, snapshot_at, scores.reset_index(drop=True), history)


def salesforce_history(records: pd.DataFrame, changes: pd.DataFrame, id_field: str) -> pd.DataFrame:
    """Field history as versions. Salesforce writes a row per change (old and new value), not
    the value at creation: the first change's old value is the score from the record's creation."""
    changes = changes.assign(changed_at=parse_timestamps(changes["CreatedDate"])[0])
    changes = changes.sort_values([id_field, "changed_at"], kind="stable")
    first = changes.drop_duplicates(id_field)
    created = parse_timestamps(records.set_index("Id")["CreatedDate"])[0]
    initial = pd.DataFrame(
        {
            "record_id": first[id_field],
            "changed_at": created.reindex(first[id_field]).to_numpy(),
            "score": first["OldValue"],
        }
    )
    versions = pd.DataFrame(
        {"record_id": changes[id_field], "changed_at": changes["changed_at"], "score": changes["NewValue"]}
    )
    return pd.concat([initial.dropna(subset=["changed_at"]), versions], ignore_index=True)


def capture_hubspot(
    settings: hubspot.HubSpotSettings, spec: ScoreSource, snapshot_at: datetime, with_history: bool
) -> ScoreCapture:
    """Id and score of every contact created before the snapshot, through the list API."""
    crm = read_config("crm_objects")["hubspot"]
    extract = hubspot.HubSpotExtract(hubspot.hubspot_client(settings), settings, crm["page_size"])
    history_properties = (spec.score_field,) if with_history else ()
    object_spec = hubspot.HubSpotObjectSpec(
        spec.object, "lastmodifieddate", (spec.score_field,), history_properties, None
    )
    ids, scores, created, versions = [], [], [], []
    for page in extract.list_pages(object_spec, with_history=with_history):
        for record in page:
            ids.append(record["id"])
            scores.append(record.get(spec.score_field))
            created.append(record.get("createdAt"))
            for version in (record.get("propertiesWithHistory") or {}).get(spec.score_field, []):
                versions.append((record["id"], version.get("timestamp"), version.get("value")))
    created_after = parse_timestamps(pd.Series(created, dtype=object))[0] >= snapshot_at
    live = pd.DataFrame({"record_id": ids, "score": scores})[~created_after.to_numpy()]
    history = None
    if with_history:
        history = pd.DataFrame(versions, columns=["record_id", "changed_at", "score"])
        history["changed_at"] = parse_timestamps(history["changed_at"])[0]
    return ScoreCapture("hubspot", spec.object, snapshot_at, live.reset_index(drop=True), history)


def _frame(pages: Iterable[list[dict]], fields: tuple[str, ...]) -> pd.DataFrame:
    rows = [record for page in pages for record in page]
    return pd.DataFrame(rows, columns=list(fields))


def _flag(values: pd.Series) -> pd.Series:
    """Salesforce booleans: JSON true/false from REST, "true"/"false" text from Bulk 2.0."""
    return parse_booleans(values)[0].fillna(False).astype(bool)
