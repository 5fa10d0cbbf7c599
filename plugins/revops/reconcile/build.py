"""Build the staging layer from the current state of the raw layer, in one transaction.

Steps: typed current records per object (bad ones to quarantine) -> identity records from
Salesforce leads and HubSpot contacts -> prospect ids (e-mail, then fallbacks) -> clock-skew
correction -> prospects (survivorship) -> opportunities -> the stage timeline (and each
cycle's first entry into each stage) -> the data-quality summary. The same raw input always
gives the same staging tables and build id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from revops.configuration import file_sha256, read_config
from revops.reconcile import identity, incremental
from revops.reconcile.calendar import load_calendars, working_hours, working_time
from revops.reconcile.campaigns import campaign_rows
from revops.reconcile.exclusions import opportunity_exclusions, prospect_exclusions
from revops.reconcile.first_entries import refresh_first_entries
from revops.reconcile.frames import as_dates, is_in, looked_up, mapped, sorted_rows
from revops.reconcile.parsing import clean_text
from revops.reconcile.records import UNSCOPED_OBJECTS, TypedObjects, typed_objects
from revops.reconcile.sources import SourceMapping, utm_from_url
from revops.reconcile.stages import OpportunityStages
from revops.reconcile.targets import load_targets
from revops.reconcile.timeline import build_timeline, initial_statuses
from revops.settings import config_dir
from revops.warehouse import read_frame
from revops.warehouse.engine import STAGING_BUILD_LOCK, exclusive_transaction, refresh_statistics
from revops.warehouse.load import BackgroundWriter, replace_table
from revops.warehouse.schema import (
    builds,
    campaigns,
    history_parents,
    metadata,
    opportunities,
    opportunity_changes,
    opportunity_stages,
    prospect_identities,
    prospect_stages,
    prospects,
    quarantine,
    reconcile_scope,
    stage_first_entries,
    stage_probabilities,
    targets,
    users,
)
from revops.warehouse.schema import working_hours as working_hours_table
from revops.warehouse.schema import working_time as working_time_table

log = logging.getLogger(__name__)

# The configuration the build's rules read, under include/config/: part of the build id, so
# the same batches under another mapping, quota or calendar are another build.
RULE_FILES = (
    "crm_objects.yaml",
    "reconciliation.yaml",
    "lead_sources.yaml",
    "exclusions.yaml",
    "opportunity_stages.yaml",
    "targets.csv",
    "business_calendar.yaml",
)

ELIGIBLE_BATCHES_SQL = """
select batch_id, source, object, extract_mode, extracted_at, window_end, record_count, content_sha256

from raw.extract_batches
where status = 'complete'
order by source, object, extracted_at
"""


@dataclass(frozen=True)
class BuildResult:
    build_id: str
    data_cutoff: datetime
    summary: dict
    # An incremental build: how many records the new batches changed and how many it
    # re-reconciled (None for a full build).
    update: dict | None = None


@dataclass
class Staging:
    """Everything one build writes, before it is written."""

    identities: pd.DataFrame
    prospects: pd.DataFrame
    opportunities: pd.DataFrame
    timeline: pd.DataFrame
    opportunity_stages: pd.DataFrame
    opportunity_changes: pd.DataFrame
    users: pd.DataFrame
    campaigns: pd.DataFrame
    targets: pd.DataFrame
    stage_probabilities: pd.DataFrame
    history_parents: pd.DataFrame


class _FullBuildInsteadError(Exception):
    """An update found a full build the better way: its transaction is rolled back whole."""


def build_staging(engine: sa.Engine, run_id: str, full: bool = False) -> BuildResult:
    """Bring every staging table up to date with raw, atomically, and record the build.

    When all that arrived since the last build is new batches, only what they touch is
    re-reconciled (`revops.reconcile.incremental`); otherwise, or with `full`, staging is
    rebuilt whole. Both give the same tables. An update that finds a full build the better
    way (its scope too large, or reaching beyond itself) gives up its transaction and the
    full build runs in a fresh one: the update's work table holds memory DuckDB cannot hand
    back within the transaction, which a full build at a million leads needs."""
    try:
        return _build(engine, run_id, full)
    except _FullBuildInsteadError:
        return _build(engine, run_id, full=True)


def _build(engine: sa.Engine, run_id: str, full: bool) -> BuildResult:
    with exclusive_transaction(engine, STAGING_BUILD_LOCK) as conn:  # waits for KPI runs
        batches = _batches_in_use(conn)
        if batches.empty:
            raise RuntimeError("raw layer holds no complete extract batch: run the extract first")
        data_cutoff = _data_cutoff(batches)
        rules = rule_file_digests()
        build_id = _build_id(batches, data_cutoff, rules)
        fingerprint = {
            "rule_files_sha256": rules,
            "reconcile_code_sha256": incremental.reconcile_code_digest(),
        }
        previous = None if full else incremental.previous_build(conn, set(batches["batch_id"]), fingerprint)
        if previous:
            counts, update = _update(conn, build_id, data_cutoff, previous, batches)
        else:
            counts, update = _rebuild(conn, build_id, data_cutoff), None
        # In SQL, once the build's frames are freed: at a million prospects the build still
        # peaks at 3.6 GiB, for 3.4 s more (5%).
        refresh_first_entries(conn, scoped=update is not None)
        conn.execute(reconcile_scope.delete())  # a work table: empty between builds
        _write_working_days(conn, data_cutoff)
        summary = {**_summary(conn, counts), **fingerprint}
        _record_build(conn, build_id, run_id, data_cutoff, batches, summary)
        if update is None:
            _analyze_staging(conn)
    log.info(
        "staging build %s (cut-off %s, %s): %s",
        build_id,
        data_cutoff,
        json.dumps(update) if update else "full",
        json.dumps(summary),
    )
    return BuildResult(build_id=build_id, data_cutoff=data_cutoff, summary=summary, update=update)


def _analyze_staging(conn: sa.Connection) -> None:
    """On PostgreSQL, statistics for every staging table a full build rewrote, before the KPI
    DAG plans its queries over them. Without them, at 100k prospects, the DAG's horizon took
    97 s against 45 s (the forecast cross-check 30.8 s against 1.6 s); autovacuum comes
    later, if it is on. An incremental build's few changes leave the statistics fair. The
    first-entry table is not analysed again: `refresh_first_entries` just did, for both kinds
    of build."""
    rewritten = [t for t in metadata.sorted_tables if t.schema == "staging" and t is not stage_first_entries]
    refresh_statistics(conn, *rewritten)


def _rebuild(conn: sa.Connection, build_id: str, data_cutoff: datetime) -> dict:
    """Every staging table from all current records; returns the per-object record counts.

    Each table is written as soon as the rules have finished it, while they go on: at a
    million prospects, the history lineage, identities and prospects (3 of the 5 s of
    writing) are written while the opportunities and the timeline are built."""
    typed = typed_objects(conn, build_id)
    with BackgroundWriter(conn) as writer:
        staging = reconcile(
            typed, data_cutoff, finished=lambda name, frame: writer.write(STAGED[name], frame)
        )
        for name, table in STAGED.items():
            if table not in writer.written:
                writer.write(table, getattr(staging, name))
        writer.write(quarantine, typed.quarantined.sort_values(["source", "object", "record_id"]))
    return typed.counts


def _update(
    conn: sa.Connection,
    build_id: str,
    data_cutoff: datetime,
    previous: incremental.PreviousBuild,
    batches: pd.DataFrame,
) -> tuple[dict, dict]:
    """Re-reconcile the scope the new batches touch and replace its rows; returns the
    per-object record counts and what was re-reconciled. Raises `_FullBuildInsteadError` when the
    scope is too large to be worth it, or reached beyond itself."""
    new_batch_ids = sorted(set(batches["batch_id"]) - previous.batch_ids)
    changed = incremental.changed_records(conn, new_batch_ids)
    incremental.fill_scope(conn, incremental.Scope.of_changes(changed))
    counts = incremental.record_counts(
        conn, previous.summary["objects"], sorted(batches["batch_id"]), new_batch_ids
    )
    if incremental.worth_a_full_build(incremental.least_scope_size(conn), counts):
        raise _FullBuildInsteadError
    scope = _closed_scope(conn, build_id, changed)
    typed = typed_objects(conn, build_id, scoped=True)
    staging = reconcile(typed, data_cutoff, scope.known_names)
    # A prospect outside the scope must be new (a record whose name match became ambiguous
    # gets its own): one with rows in staging means the scope missed a rule.
    outside = sorted(set(staging.prospects["prospect_id"]) - scope.prospect_ids)
    if incremental.existing_prospects(conn, outside):
        log.warning("incremental build: the scope reached prospects outside it; building in full")
        raise _FullBuildInsteadError
    incremental.list_new_prospects(conn, outside)  # the scope table lists all this build writes
    _replace_scope(conn, build_id, staging, typed.quarantined)
    return counts, {"changed_records": len(changed), "scope_records": scope.size()}


def _closed_scope(conn: sa.Connection, build_id: str, changed: pd.DataFrame) -> incremental.Scope:
    """The changed records (listed in the scope table), then all the rules tie to them."""
    scope = incremental.Scope.of_changes(changed)
    touched = typed_objects(conn, build_id, scoped=True)  # the changed records as they are now
    touched_identities = _prospect_ids(_identity_records(touched, SourceMapping.load()))
    owners = incremental.history_owners(conn, touched)
    scope.records[("salesforce", "Lead")] |= owners[("salesforce", "Lead")]
    scope.opportunity_ids |= owners[("salesforce", "Opportunity")]
    return incremental.close_scope(conn, scope, changed, touched_identities)


def _replace_scope(conn: sa.Connection, build_id: str, staging: Staging, quarantined: pd.DataFrame) -> None:
    for table, frame in _staged_tables(staging).items():
        if table in SCOPE_KEYS:
            incremental.replace_scope_rows(conn, table, SCOPE_KEYS[table], frame)
        else:  # users, campaigns, targets, stage probabilities: small, read whole
            replace_table(conn, table, frame)
    # The objects read whole were typed again; the rest of quarantine stays, under this build.
    conn.execute(
        quarantine.delete().where(
            sa.tuple_(quarantine.c.source, quarantine.c.object).in_(sorted(UNSCOPED_OBJECTS))
        )
    )
    conn.execute(quarantine.update().values(build_id=build_id))
    incremental.replace_scope_rows(conn, quarantine, "record", quarantined)


# How an incremental build finds each table's rows of its scope (incremental.replace_scope_rows).
SCOPE_KEYS = {
    prospects: "prospect_id",
    prospect_identities: "prospect_id",
    prospect_stages: "prospect_id",
    opportunities: "opportunity_id",
    opportunity_stages: "opportunity_id",
    opportunity_changes: "opportunity_id",
    history_parents: "record",
}


# Each of Staging's frames, by field, and the table it is written to.
STAGED = {
    "prospects": prospects,
    "identities": prospect_identities,
    "opportunities": opportunities,
    "timeline": prospect_stages,
    "opportunity_stages": opportunity_stages,
    "opportunity_changes": opportunity_changes,
    "users": users,
    "campaigns": campaigns,
    "targets": targets,
    "stage_probabilities": stage_probabilities,
    "history_parents": history_parents,
}


def _staged_tables(staging: Staging) -> dict[sa.Table, pd.DataFrame]:
    return {table: getattr(staging, name) for name, table in STAGED.items()}


def reconcile(
    typed: TypedObjects,
    data_cutoff: datetime,
    known_names: pd.DataFrame | None = None,
    finished: Callable[[str, pd.DataFrame], None] | None = None,
) -> Staging:
    """The reconciliation rules, applied to typed records (no database involved).

    `known_names`: e-mailed records outside `typed` that its records may match by name
    (`identity.assign_prospect_ids`). `finished(field, frame)`: told of some of Staging's
    frames as soon as no later rule changes them, so they can be written meanwhile."""
    finished = finished or (lambda field, frame: None)
    config = read_config("reconciliation")
    mapping = SourceMapping.load()
    stages = OpportunityStages.load()
    lineage = incremental.history_lineage(typed)
    finished("history_parents", lineage)
    records = _prospect_ids(_identity_records(typed, mapping), known_names)
    typed.release(IDENTITY_OBJECTS)  # not read again: at a million leads, 0.5 GiB the merge can use
    records["cycle"] = identity.number_cycles(records)
    records = identity.correct_clock_skew(
        records, config["clock_skew"]["tolerance_minutes"], config["clock_skew"]["correction"]
    )
    records = sorted_rows(records, ["source", "object", "record_id"]).reset_index(drop=True)
    finished("identities", records)
    prospect_rows = identity.merge_prospects(records, mapping.unmapped_channel)
    finished("prospects", prospect_rows)
    opportunity_rows = _opportunities(typed, records, prospect_rows, mapping, stages)
    changes = _opportunity_changes(typed, opportunity_rows, stages)
    stage_entries = _first_stage_entries(changes, stages)
    timeline = build_timeline(
        records,
        prospect_rows,
        typed[("salesforce", "LeadHistory")],
        opportunity_rows,
        stage_entries,
        config["stages"]["order"],
    )
    user_rows = typed[("salesforce", "User")]
    return Staging(
        identities=records,
        prospects=prospect_rows,
        opportunities=opportunity_rows,
        opportunity_stages=stage_entries,
        opportunity_changes=changes,
        timeline=timeline,
        users=pd.DataFrame(
            {
                "user_id": user_rows["Id"],
                "name": user_rows["Name"],
                "region": user_rows["Region__c"],
                "is_active": user_rows["IsActive"].astype("boolean"),
            }
        ).sort_values("user_id"),
        campaigns=campaign_rows(typed[("salesforce", "Campaign")], mapping),
        targets=load_targets(),
        stage_probabilities=stages.probability_frame(),
        history_parents=lineage,
    )


# The objects the identity records are made of (`_identity_records`).
IDENTITY_OBJECTS = (("salesforce", "Lead"), ("hubspot", "contacts"))


def _prospect_ids(records: pd.DataFrame, known_names: pd.DataFrame | None = None) -> pd.DataFrame:
    fallbacks = read_config("reconciliation")["identity"]["fallbacks"]
    return identity.assign_prospect_ids(records, tuple(fallbacks), known_names)


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


def rule_file_digests() -> dict[str, str | None]:
    """The sha256 of each configuration file the build reads (None where there is none)."""
    return {name: file_sha256(config_dir() / name) for name in RULE_FILES}


def _build_id(batches: pd.DataFrame, data_cutoff: datetime, rule_files: dict[str, str | None]) -> str:
    """Names the input, not the runs that landed it: the content of each batch that holds
    records, the cut-off and the configuration the rules read. A re-run after a failure that
    lands the same data as a clean run gets the same build id, so its scorecard is the same,
    byte for byte; a changed mapping or quota is a new build."""
    landed = batches[batches["record_count"] > 0]
    parts = sorted(
        f"{source}.{name}:{content}"
        for source, name, content in zip(
            landed["source"], landed["object"], landed["content_sha256"], strict=True
        )
    )
    parts.append(f"cut-off:{pd.Timestamp(data_cutoff).isoformat()}")
    parts.extend(f"{name}:{digest}" for name, digest in rule_files.items() if digest is not None)
    return "B" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _write_working_days(conn: sa.Connection, data_cutoff: datetime) -> None:
    """The business calendar over every day a prospect's response can span: from the first
    prospect's appearance to the cut-off, a day either side for time zones; and the same
    counted up by UTC day (`calendar.working_time`)."""
    first_created = conn.execute(sa.select(sa.func.min(prospects.c.created_at))).scalar_one()
    last = pd.Timestamp(data_cutoff).date() + timedelta(days=1)
    if first_created is None:
        calendar = working_hours({}, data_cutoff.date(), data_cutoff.date())
    else:
        calendar = working_hours(
            load_calendars(), pd.Timestamp(first_created).date() - timedelta(days=1), last
        )
    replace_table(conn, working_hours_table, calendar)
    replace_table(conn, working_time_table, working_time(calendar))


def _data_cutoff(batches: pd.DataFrame) -> datetime:
    """The point in time the data is complete up to: the stalest object's newest window end."""
    ends = batches["window_end"].fillna(batches["extracted_at"])
    return pd.Timestamp(ends.groupby([batches["source"], batches["object"]]).max().min()).to_pydatetime()


def _identity_records(typed: TypedObjects, mapping: SourceMapping) -> pd.DataFrame:
    """One row per Salesforce lead and HubSpot contact, in a common shape."""
    leads, contacts = (typed[key] for key in IDENTITY_OBJECTS)
    lead_sources = mapping.classify(
        leads["LeadSource"], _empty(leads), leads["UTM_Source__c"], leads["UTM_Medium__c"]
    )
    contact_utm_source, contact_utm_medium = utm_from_url(contacts["hs_analytics_first_url"])
    contact_sources = mapping.classify(
        _empty(contacts), contacts["hs_analytics_source"], contact_utm_source, contact_utm_medium
    )
    first_status = initial_statuses(leads, typed[("salesforce", "LeadHistory")])
    lead_rows = pd.DataFrame(
        {
            "source": "salesforce",
            "object": "Lead",
            "record_id": leads["Id"],
            "email_normalized": identity.normalise_email(leads["Email"]),
            "first_name": leads["FirstName"],
            "last_name": leads["LastName"],
            "company": leads["Company"],
            "created_at": leads["CreatedDate"],
            "mql_at": pd.NaT,
            "is_mql_handoff": (first_status == "MQL").to_numpy(),
            "region": leads["Region__c"],
            "segment": leads["Segment__c"],
            "lead_owner_id": leads["OwnerId"],
            "campaign_id": leads["CampaignId__c"],
            "lead_score": leads["Lead_Score__c"],
            "lead_grade": leads["Lead_Grade__c"],
            "channel": lead_sources["channel"].to_numpy(),
            "sub_channel": lead_sources["sub_channel"].to_numpy(),
            "sub_channel_from_utm": lead_sources["sub_channel_from_utm"].to_numpy(),
            "converted_opportunity_id": leads["ConvertedOpportunityId"],
            "is_test_flag": leads["Is_Test__c"].fillna(False).astype(bool),
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
            "company": contacts["company"],
            "created_at": contacts["createdate"],
            "mql_at": contacts["hs_lifecyclestage_marketingqualifiedlead_date"],
            "is_mql_handoff": False,
            "region": contacts["region"],
            "segment": contacts["segment"],
            "lead_owner_id": _empty(contacts),
            "campaign_id": _empty(contacts),
            "lead_score": contacts["hubspotscore"],
            "lead_grade": _empty(contacts),
            "channel": contact_sources["channel"].to_numpy(),
            "sub_channel": contact_sources["sub_channel"].to_numpy(),
            "sub_channel_from_utm": contact_sources["sub_channel_from_utm"].to_numpy(),
            "converted_opportunity_id": _empty(contacts),
            "is_test_flag": False,
        }
    )
    records = pd.concat([lead_rows, contact_rows], ignore_index=True)
    records["exclusion_rule"] = prospect_exclusions(records)
    return records


def _empty(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(pd.NA, index=frame.index, dtype=object)


def _opportunities(
    typed: TypedObjects, records, prospect_rows, mapping: SourceMapping, stages: OpportunityStages
) -> pd.DataFrame:
    opps = typed[("salesforce", "Opportunity")]
    converted = records.dropna(subset=["converted_opportunity_id"]).drop_duplicates(
        "converted_opportunity_id"
    )
    # Only the columns read are indexed: indexing all of the prospects copied every column.
    converting_lead = converted[["converted_opportunity_id", "prospect_id", "lead_owner_id"]]
    lead = looked_up(converting_lead.set_index("converted_opportunity_id"), opps["Id"])
    prospect_id = lead["prospect_id"]
    prospect_columns = prospect_rows[["prospect_id", "exclusion_rule", "channel", "sub_channel"]]
    prospect = looked_up(prospect_columns.set_index("prospect_id"), prospect_id)
    from_lead = prospect_id.notna()
    own_source = mapping.classify(opps["LeadSource"], _empty(opps), _empty(opps), _empty(opps))
    name_rule = opportunity_exclusions(opps["Name"])
    prospect_rule = prospect["exclusion_rule"]
    inherited = prospect_rule.map(lambda rule: f"from_excluded_prospect:{rule}", na_action="ignore")
    exclusion = name_rule.fillna(inherited)
    stage = stages.canonical(opps["StageName"])
    frame = pd.DataFrame(
        {
            "opportunity_id": opps["Id"],
            "prospect_id": prospect_id,
            "created_at": opps["CreatedDate"],
            "close_date": as_dates(opps["CloseDate"]),
            "stage": stage,
            # Flags the export carries win; an export without them gets them from the stage.
            "is_closed": opps["IsClosed"].fillna(stages.is_closed(stage)).astype(bool),
            "is_won": opps["IsWon"].fillna(stages.is_won(stage)).astype(bool),
            "amount": opps["Amount"],
            "owner_id": opps["OwnerId"],
            "lead_owner_id": lead["lead_owner_id"],
            "region": opps["Region__c"],
            "segment": opps["Segment__c"],
            "channel": prospect["channel"].where(from_lead, own_source["channel"].to_numpy()),
            "sub_channel": prospect["sub_channel"].where(from_lead, own_source["sub_channel"].to_numpy()),
            "campaign_id": opps["CampaignId"],
            "is_from_converted_lead": from_lead,
            "exclusion_rule": exclusion,
            "is_excluded": exclusion.notna(),
            "loss_reason": clean_text(opps["Loss_Reason__c"]),
        }
    )
    return frame.sort_values("opportunity_id", ignore_index=True)


def _opportunity_changes(
    typed: TypedObjects, opportunity_rows: pd.DataFrame, stages: OpportunityStages
) -> pd.DataFrame:
    """Every OpportunityHistory row: the deal's stage, amount, expected close date and forecast
    category from that moment on, so any past moment's pipeline can be read back."""
    history = typed[("salesforce", "OpportunityHistory")]
    history = history[is_in(history["OpportunityId"], opportunity_rows["opportunity_id"])]
    frame = pd.DataFrame(
        {
            "opportunity_id": history["OpportunityId"],
            "changed_at": history["CreatedDate"],
            "changed_by": clean_text(history["CreatedById"]),
            "stage": stages.canonical(history["StageName"]),
            "is_closed": stages.is_closed(history["StageName"]),
            "amount": history["Amount"],
            "close_date": as_dates(history["CloseDate"]),
            "forecast_category": stages.forecast_category(history["ForecastCategory"]),
        }
    )
    frame = sorted_rows(frame, ["opportunity_id", "changed_at", "stage"]).reset_index(drop=True)
    frame["replaced_at"] = _replaced_at(frame.iloc[::-1], "changed_at")
    return frame


def _first_stage_entries(changes: pd.DataFrame, stages: OpportunityStages) -> pd.DataFrame:
    """When each opportunity first entered each stage, with its place in the pipeline."""
    first = changes.drop_duplicates(["opportunity_id", "stage"], ignore_index=True)
    entries = pd.DataFrame(
        {
            "opportunity_id": first["opportunity_id"],
            "stage": first["stage"],
            "entered_at": first["changed_at"],
            "stage_order": mapped(first["stage"], stages.order),
        }
    )
    newest_first = sorted_rows(entries, ["opportunity_id", "entered_at", "stage_order"], [True, False, False])
    entries["replaced_at"] = _replaced_at(newest_first, "entered_at")
    return entries


def _replaced_at(newest_first: pd.DataFrame, at: str) -> pd.Series:
    """When each row stopped being its deal's newest: the `at` of the row before it in
    `newest_first` order, for the same opportunity (null for the newest). The row in effect
    at any moment is then the one whose [at, replaced_at) holds it, which a query finds with
    a range filter instead of ranking the deal's history before every moment it asks about."""
    newer_deal = newest_first["opportunity_id"].shift(1)
    return newest_first[at].shift(1).where(newer_deal.eq(newest_first["opportunity_id"]))


def _summary(conn: sa.Connection, counts: dict[str, dict[str, int]]) -> dict:
    """The data-quality summary, read from the staging tables as written (an incremental
    build has only its scope in memory); `counts`: each object's current and deleted records."""
    quarantined = read_frame(conn, "select source, object, reason from staging.quarantine")
    real_records, real_prospects, unmapped = conn.execute(
        sa.text(
            """
            select coalesce(sum(record_count), 0), count(*), count(*) filter (where channel = 'unmapped')
            from staging.prospects where not is_excluded
            """
        )
    ).one()
    merged = int(real_records) - real_prospects
    row_counts = {name: _scalar(conn, f"select count(*) from staging.{name}") for name in ROW_COUNTED}
    return {
        "objects": _object_counts(counts, quarantined),
        "quarantined_by_reason": _counts(quarantined["reason"].str.replace(r" '.*?'", "", regex=True)),
        "identity_records": _scalar(conn, "select count(*) from staging.prospect_identities"),
        "prospects": row_counts["prospects"],
        "real_prospects": real_prospects,
        "duplicates_merged": merged,  # among real (not excluded) prospects
        "duplicate_rate": round(merged / max(int(real_records), 1), 4),
        "match_rules": _grouped(conn, "match_rule", "staging.prospect_identities"),
        "excluded_prospects_by_rule": _grouped(conn, "exclusion_rule", "staging.prospects"),
        "excluded_opportunities_by_rule": _grouped(conn, "exclusion_rule", "staging.opportunities"),
        "prospects_unmapped_channel": unmapped,
        "unmapped_source_values": _grouped(
            conn, "sub_channel", "staging.prospects", "not is_excluded and channel = 'unmapped'"
        ),
        "clock_skew_records": _scalar(
            conn, "select count(*) from staging.prospect_identities where clock_skew_minutes is not null"
        ),
        "stage_flags": _grouped(conn, "flag", STAGE_FLAGS_SQL, "flag <> ''"),
        "opportunities": row_counts["opportunities"],
        "row_counts": row_counts,
    }


ROW_COUNTED = ("prospects", "opportunities", "prospect_stages")
# Each stage row's flags, one row per flag: counted in SQL (65k flagged rows at 1M prospects).
STAGE_FLAGS_SQL = """(
    select unnest(string_to_array(flags, ',')) as flag from staging.prospect_stages where flags <> ''
) as split_flags"""


def _object_counts(counts: dict[str, dict[str, int]], quarantined: pd.DataFrame) -> dict:
    per_object = (quarantined["source"] + "." + quarantined["object"]).value_counts()
    result = {}
    for name, count in counts.items():
        live = count["records"] - count["deleted_upstream"]
        bad = int(per_object.get(name, 0))
        result[name] = {
            "records": count["records"],
            "deleted_upstream": count["deleted_upstream"],
            "quarantined": bad,
            "typed": live - bad,
        }
    return result


def _scalar(conn: sa.Connection, sql: str) -> int:
    return int(conn.execute(sa.text(sql)).scalar_one())


def _grouped(conn: sa.Connection, column: str, table: str, where: str = "true") -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            f"select {column}, count(*) from {table} where {where} and {column} is not null group by {column}"
        )
    )
    return {str(key): int(count) for key, count in sorted(rows.all())}


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.dropna().value_counts().sort_index().items()}


def _record_build(conn, build_id, run_id, data_cutoff, batches, summary) -> None:
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
