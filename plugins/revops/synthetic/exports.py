"""Write a generated world as the CSV exports each system produces.

Salesforce exports (Data Loader) use API field names and ISO timestamps, some written with a
local offset by users in other time zones. HubSpot exports use property *labels* as headers
and epoch milliseconds for the create date; `include/config/csv_sources.yaml` maps them back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from revops.extract.csv_source import EXPORT_MANIFEST
from revops.synthetic.world import World

HUBSPOT_CONTACT_LABELS = {
    "hs_object_id": "Record ID",
    "email": "Email",
    "firstname": "First Name",
    "lastname": "Last Name",
    "company": "Company Name",
    "createdate": "Create Date",
    "lastmodifieddate": "Last Modified Date",
    "lifecyclestage": "Lifecycle Stage",
    "hs_lead_status": "Lead Status",
    "hs_analytics_source": "Original Source",
    "hs_analytics_first_url": "First Page Seen",
    "hubspotscore": "HubSpot Score",
    "region": "Region",
    "segment": "Segment",
    "hs_lifecyclestage_marketingqualifiedlead_date": "Became a Marketing Qualified Lead Date",
    "hs_lifecyclestage_salesqualifiedlead_date": "Became a Sales Qualified Lead Date",
    "hs_lifecyclestage_opportunity_date": "Became an Opportunity Date",
    "hs_lifecyclestage_customer_date": "Became a Customer Date",
}

SALESFORCE_DATETIME_FIELDS = ("CreatedDate", "SystemModstamp")
# The stage-history report is exported in its owner's time zone, without an offset;
# include/config/reconciliation.yaml says so (timestamps.naive_timezones).
NAIVE_REPORT_TIMEZONE = "America/New_York"
SALESFORCE_DATE_FIELDS = ("ConvertedDate", "CloseDate", "StartDate", "EndDate")
# Offsets some exporting users' time zones put on Lead timestamps (same instant, other clock).
LOCAL_OFFSETS_MINUTES = (60, -300, 330, 120)


def write_csv_exports(world: World, directory: Path) -> list[Path]:
    """Write every object of the world under `directory`; returns the files written."""
    written = []
    for name, frame in world.salesforce.items():
        path = directory / "salesforce" / f"{name}.csv"
        written.append(_write(_salesforce_strings(frame, name), path))
    contacts = world.hubspot["contacts"][list(HUBSPOT_CONTACT_LABELS)]
    contacts = _hubspot_strings(contacts).rename(columns=HUBSPOT_CONTACT_LABELS)
    written.append(_write(contacts, directory / "hubspot" / "contacts.csv"))
    manifest = directory / EXPORT_MANIFEST
    manifest.write_text(json.dumps({"exported_at": world.config.as_of.isoformat()}) + "\n")
    return [*written, manifest]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def _salesforce_strings(frame: pd.DataFrame, object_name: str) -> pd.DataFrame:
    """Lead timestamps carry mixed offsets; the history report is in New York local time."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column in SALESFORCE_DATETIME_FIELDS and object_name == "OpportunityHistory":
            out[column] = _naive_local(values, NAIVE_REPORT_TIMEZONE)
        elif column in SALESFORCE_DATETIME_FIELDS:
            out[column] = _salesforce_datetimes(values, messy_offsets=object_name == "Lead")
        elif column in SALESFORCE_DATE_FIELDS:
            out[column] = pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")
        else:
            out[column] = _plain_strings(values)
    return out


def _naive_local(values: pd.Series, timezone: str) -> pd.Series:
    """`2026-01-15 05:30:00`: a report's local time with no offset at all."""
    local = pd.to_datetime(values).dt.tz_localize("UTC").dt.tz_convert(timezone)
    return local.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")


def _salesforce_datetimes(values: pd.Series, messy_offsets: bool) -> pd.Series:
    """`2026-01-15T10:30:00.000+0000`; every tenth row in a user's local offset if messy."""
    times = pd.to_datetime(values)
    utc_text = times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "+0000"
    if not messy_offsets:
        return utc_text.fillna("")
    rows = np.arange(len(values))
    offsets = np.array(LOCAL_OFFSETS_MINUTES)[rows % len(LOCAL_OFFSETS_MINUTES)]
    local = times + pd.to_timedelta(offsets, unit="min")
    sign = np.where(offsets < 0, "-", "+")
    hours, minutes = np.abs(offsets) // 60, np.abs(offsets) % 60
    # Half with a colon in the offset (+05:30), half without (+0530): both are ISO 8601.
    colon = np.where(rows % 20 == 0, ":", "")
    offset_text = [f"{s}{h:02d}{c}{m:02d}" for s, h, c, m in zip(sign, hours, colon, minutes, strict=True)]
    local_text = local.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + offset_text
    return pd.Series(np.where(rows % 10 == 0, local_text, utc_text), index=values.index).fillna("")


def _hubspot_strings(contacts: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=contacts.index)
    for column in contacts.columns:
        values = contacts[column]
        if column == "createdate":
            epoch_ms = pd.to_datetime(values).astype("datetime64[ms]").astype("int64")
            out[column] = epoch_ms.astype(str)
        elif column.endswith("_date") or column == "lastmodifieddate":
            out[column] = pd.to_datetime(values).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3]
            out[column] = (out[column] + "Z").fillna("")
        else:
            out[column] = _plain_strings(values)
    return out


def _plain_strings(values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values.map({True: "true", False: "false"})
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    return values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
