"""What the sandbox CRM holds: a World's records in each vendor's wire format, mutable.

Tests change records between extracts (update, delete, merge, archive) to prove the
connectors pick up exactly what changed; each change carries the time it happened.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from revops.synthetic.world import World

SALESFORCE_DATE_FIELDS = {"ConvertedDate", "CloseDate", "StartDate", "EndDate"}
HUBSPOT_HISTORY_PROPERTIES = ("hubspotscore", "lifecyclestage")


def salesforce_datetime(value: datetime | pd.Timestamp) -> str:
    """`2026-01-15T10:30:00.000+0000`: how the Salesforce API writes every datetime."""
    value = pd.Timestamp(value)
    if value.tzinfo is not None:
        value = value.tz_convert(UTC).tz_localize(None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def hubspot_datetime(value: datetime | pd.Timestamp) -> str:
    """`2026-01-15T10:30:00.000Z`: how HubSpot writes datetimes."""
    return salesforce_datetime(value)[:-5] + "Z"


@dataclass
class SandboxStore:
    """Records per object, as the vendors' APIs would return them."""

    salesforce: dict[str, list[dict]]
    hubspot: dict[str, list[dict]]
    hubspot_history: dict[str, dict[str, list[dict]]]  # contact id -> property -> versions
    associations: dict[str, list[str]]  # contact id -> deal ids
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def from_world(cls, world: World) -> SandboxStore:
        salesforce = {name: _salesforce_records(frame) for name, frame in world.salesforce.items()}
        contacts = _hubspot_records(world.hubspot["contacts"], "lastmodifieddate")
        deals = _hubspot_records(world.hubspot["deals"], "hs_lastmodifieddate")
        associations: dict[str, list[str]] = {}
        for contact_id, deal_id in world.hubspot["contact_deal_associations"].itertuples(index=False):
            associations.setdefault(contact_id, []).append(deal_id)
        return cls(
            salesforce=salesforce,
            hubspot={"contacts": contacts, "deals": deals},
            hubspot_history=_score_history(world.hubspot["contact_score_history"], contacts),
            associations=associations,
        )

    # --- Salesforce changes ---------------------------------------------------------------------

    def salesforce_record(self, object_name: str, record_id: str) -> dict:
        return next(r for r in self.salesforce[object_name] if r["Id"] == record_id)

    def update_salesforce(self, object_name: str, record_id: str, changes: dict, at: datetime) -> None:
        with self.lock:
            record = self.salesforce_record(object_name, record_id)
            record.update(changes)
            record["SystemModstamp"] = salesforce_datetime(at)

    def add_salesforce(self, object_name: str, record: dict) -> None:
        with self.lock:
            self.salesforce[object_name].append(record)

    def delete_salesforce(self, object_name: str, record_id: str, at: datetime) -> None:
        self.update_salesforce(object_name, record_id, {"IsDeleted": True}, at)

    def merge_salesforce_leads(self, survivor_id: str, merged_id: str, at: datetime) -> None:
        """Salesforce deletes the merged lead and points it at the survivor."""
        with self.lock:
            self.update_salesforce("Lead", merged_id, {"IsDeleted": True, "MasterRecordId": survivor_id}, at)
            self.update_salesforce("Lead", survivor_id, {}, at)

    # --- HubSpot changes ------------------------------------------------------------------------

    def hubspot_record(self, object_type: str, record_id: str) -> dict:
        return next(r for r in self.hubspot[object_type] if r["id"] == record_id)

    def update_hubspot(
        self, object_type: str, record_id: str, properties: dict, at: datetime, touch: bool = True
    ) -> None:
        """Change properties; `touch=False` models a recalculated score that leaves
        lastmodifieddate alone (HubSpot score recalculations do exactly that)."""
        with self.lock:
            record = self.hubspot_record(object_type, record_id)
            stamp = hubspot_datetime(at)
            for name, value in properties.items():
                record["properties"][name] = None if value is None else str(value)
                if object_type == "contacts" and name in HUBSPOT_HISTORY_PROPERTIES:
                    versions = self.hubspot_history.setdefault(record_id, {}).setdefault(name, [])
                    versions.insert(0, {"value": str(value), "timestamp": stamp, "sourceType": "CALCULATED"})
            if touch:
                record["updatedAt"] = stamp
                modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
                record["properties"][modified] = stamp

    def archive_hubspot(self, object_type: str, record_id: str, at: datetime) -> None:
        with self.lock:
            record = self.hubspot_record(object_type, record_id)
            record["archived"] = True
            record["archivedAt"] = hubspot_datetime(at)
            record["updatedAt"] = hubspot_datetime(at)


def _salesforce_records(frame: pd.DataFrame) -> list[dict]:
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            if name in SALESFORCE_DATE_FIELDS:
                text = values.dt.strftime("%Y-%m-%d")
            else:
                text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "+0000"
            columns[name] = text.astype(object).where(values.notna(), None).tolist()
        elif pd.api.types.is_bool_dtype(values):
            columns[name] = values.astype(bool).tolist()
        elif pd.api.types.is_numeric_dtype(values):
            columns[name] = [None if pd.isna(v) else _native_number(v) for v in values]
        else:
            columns[name] = [None if (v is None or v is pd.NA or v != v) else str(v) for v in values]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _native_number(value) -> int | float:
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _hubspot_records(frame: pd.DataFrame, modified_property: str) -> list[dict]:
    """HubSpot objects: every property value is a string; createdAt / updatedAt beside them."""
    properties = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
            properties[name] = text.astype(object).where(values.notna(), None).tolist()
        elif pd.api.types.is_bool_dtype(values):
            properties[name] = ["true" if v else "false" for v in values]
        elif pd.api.types.is_float_dtype(values):
            properties[name] = [None if pd.isna(v) else f"{v:g}" for v in values]
        else:
            properties[name] = [None if (v is None or v is pd.NA or v != v) else str(v) for v in values]
    names = list(properties)
    records = []
    for row in zip(*properties.values(), strict=True):
        props = dict(zip(names, row, strict=True))
        records.append(
            {
                "id": props["hs_object_id"],
                "properties": props,
                "createdAt": props["createdate"],
                "updatedAt": props[modified_property],
                "archived": False,
            }
        )
    return records


def _score_history(history: pd.DataFrame, contacts: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """Per contact, hubspotscore versions newest first (HubSpot's order), plus lifecycle."""
    result: dict[str, dict[str, list[dict]]] = {}
    stamps = history["changed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    for contact_id, stamp, score in zip(history["contact_id"], stamps, history["score"], strict=True):
        versions = result.setdefault(contact_id, {}).setdefault("hubspotscore", [])
        versions.insert(0, {"value": str(int(score)), "timestamp": stamp, "sourceType": "CALCULATED"})
    for contact in contacts:
        props = contact["properties"]
        stages = [("lead", props["createdate"])] + [
            (stage, props.get(f"hs_lifecyclestage_{stage}_date"))
            for stage in ("marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
        ]
        result.setdefault(contact["id"], {})["lifecyclestage"] = [
            {"value": stage, "timestamp": stamp, "sourceType": "AUTOMATION_PLATFORM"}
            for stage, stamp in reversed(stages)
            if stamp is not None
        ]
    return result
