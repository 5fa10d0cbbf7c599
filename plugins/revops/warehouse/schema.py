"""Warehouse tables, as SQLAlchemy Core, so one definition serves DuckDB and PostgreSQL.

All timestamps are stored as naive UTC (`timestamp without time zone`): the two engines
disagree on how they present zoned values, and a single convention avoids that class of bug.

Layers:
- raw: append-only extract batches, one JSON payload per source record;
- staging: typed, reconciled tables that every KPI reads (rebuilt per reconcile run);
- snapshots: lead scores over time, stored change-only as intervals;
- marts: KPI results, score velocity and engagement trend;
- audit: the run ledger and delivery records.
"""

from __future__ import annotations

import sqlalchemy as sa

from revops.warehouse.engine import exclusive_transaction, is_duckdb

metadata = sa.MetaData()

SCHEMAS = ("raw", "staging", "snapshots", "marts", "audit")


def _ts(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), **kwargs)


extract_batches = sa.Table(
    "extract_batches",
    metadata,
    sa.Column("batch_id", sa.String, primary_key=True),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("extract_mode", sa.String, nullable=False),  # full | incremental
    sa.Column("run_id", sa.String),
    _ts("extracted_at", nullable=False),
    _ts("window_start"),
    _ts("window_end"),
    sa.Column("record_count", sa.Integer, nullable=False),  # records landed (new)
    sa.Column("records_seen", sa.Integer, nullable=False),  # records the source returned
    sa.Column("content_sha256", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),  # complete | incomplete | purged (retention)
    sa.Column("status_reason", sa.Text),
    sa.Column("origin", sa.Text),
    schema="raw",
)

raw_records = sa.Table(
    "records",
    metadata,
    sa.Column("batch_id", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("record_version", sa.String, nullable=False),  # modstamp, or the hash
    sa.Column("record_hash", sa.String, nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    schema="raw",
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("object", sa.String, primary_key=True),
    _ts("high_water", nullable=False),  # end of the last complete incremental window
    sa.Column("batch_id", sa.String, nullable=False),
    _ts("updated_at", nullable=False),
    schema="raw",
)


def _key_on_postgresql(column: str) -> sa.PrimaryKeyConstraint:
    """A primary key that PostgreSQL enforces and embedded DuckDB does not create. On DuckDB
    the key's index made a full build's rewrite of staging at a million prospects take 28.4 s
    instead of 8 s: deleting the old rows through it, inserting and committing it. Reconcile
    writes each key once; `test_reconcile.py` checks that on DuckDB too."""
    return sa.PrimaryKeyConstraint(column).ddl_if(dialect="postgresql")


prospects = sa.Table(
    "prospects",
    metadata,
    sa.Column("prospect_id", sa.String, nullable=False),
    _key_on_postgresql("prospect_id"),
    sa.Column("email_normalized", sa.String),
    _ts("created_at", nullable=False),
    sa.Column("region", sa.String),
    sa.Column("segment", sa.String),
    sa.Column("lead_owner_id", sa.String),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("sub_channel", sa.String, nullable=False),
    sa.Column("campaign_id", sa.String),
    sa.Column("lead_score", sa.Integer),
    sa.Column("lead_grade", sa.String),  # fit (A best), where the CRM grades leads
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String),
    sa.Column("company", sa.String),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("is_excluded", sa.Boolean, nullable=False),
    sa.Column("exclusion_rule", sa.String),
    schema="staging",
)

prospect_identities = sa.Table(
    "prospect_identities",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("match_rule", sa.String, nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    _ts("created_at", nullable=False),  # after any clock-skew correction
    sa.Column("clock_skew_minutes", sa.Double),  # set where the record's clock disagreed
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("sub_channel", sa.String, nullable=False),
    sa.Column("campaign_id", sa.String),  # the campaign the record names (Salesforce leads)
    sa.Column("converted_opportunity_id", sa.String),
    sa.Column("exclusion_rule", sa.String),
    # first name | last name | company, normalised: what the name-and-company rule matches on
    sa.Column("name_key", sa.String),
    # PostgreSQL: attribution finds the records of a period's deals' prospects by index
    # rather than hashing every identity each period (its slices 1.3x to 2x at 1M prospects).
    sa.Index("ix_prospect_identities_prospect", "prospect_id").ddl_if(dialect="postgresql"),
    schema="staging",
)

# The lead or opportunity each current history row belongs to: how an incremental build
# finds the history of the records it re-reconciles without reading every payload.
history_parents = sa.Table(
    "history_parents",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),  # LeadHistory | OpportunityHistory
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("parent_id", sa.String, nullable=False),
    schema="staging",
)

# The source records an incremental build re-reconciles, filled and emptied within its
# transaction (revops.reconcile.incremental).
reconcile_scope = sa.Table(
    "reconcile_scope",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    schema="staging",
)

prospect_stages = sa.Table(
    "prospect_stages",
    metadata,
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),  # 1 = first hand-off, 2+ = re-entries
    sa.Column("stage", sa.String, nullable=False),
    _ts("entered_at", nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("flags", sa.String, nullable=False),  # out_of_order, re_entered
    # PostgreSQL: a cohort's stages found by prospect (lead-to-opportunity v5 1.5x for the
    # whole company, 2.7x under EMEA, over the horizon at 100k prospects) rather than hashing
    # the whole timeline each period.
    sa.Index("ix_prospect_stages_prospect", "prospect_id").ddl_if(dialect="postgresql"),
    schema="staging",
)

# Each stage cycle's first entry into each stage, derived from prospect_stages with every
# build (revops.reconcile.first_entries): the KPIs that start from a prospect's first entry
# into a stage read it instead of grouping the whole timeline again for every period.
stage_first_entries = sa.Table(
    "stage_first_entries",
    metadata,
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("stage", sa.String, nullable=False),
    _ts("entered_at", nullable=False),  # the cycle's first entry into the stage
    # The prospect's first cycle to enter the stage (by that entry's time, then cycle number).
    sa.Column("is_first_cycle", sa.Boolean, nullable=False),
    # PostgreSQL: a period's first entries into a stage read by range rather than a scan of
    # every entry each period (funnel conversions 1.7x to 2.4x, lead response 1.4x to 1.6x at 1M).
    sa.Index("ix_stage_first_entries_stage", "stage", "entered_at").ddl_if(dialect="postgresql"),
    schema="staging",
)

opportunity_stages = sa.Table(
    "opportunity_stages",
    metadata,
    sa.Column("opportunity_id", sa.String, nullable=False),
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("stage_order", sa.Integer),  # position in the pipeline; null for unknown stages
    _ts("entered_at", nullable=False),  # first entry into the stage
    # The deal's next first entry, newest first by (entered_at, stage_order); null for its
    # newest. Between the two, the deal's stage as the KPIs read it.
    _ts("replaced_at"),
    # PostgreSQL: a period's deals find their stage entries by index rather than hashing every
    # entry each period (opportunity stage conversion 1.3x to 3.4x at 1M prospects).
    sa.Index("ix_opportunity_stages_opportunity", "opportunity_id").ddl_if(dialect="postgresql"),
    schema="staging",
)

score_intervals = sa.Table(
    "score_intervals",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    _ts("valid_from", nullable=False),
    _ts("valid_to"),  # null while the score is current
    sa.Column("origin", sa.String, nullable=False),  # snapshot | history (backfilled)
    _ts("recorded_at", nullable=False),  # the snapshot that wrote this row (re-runs undo it)
    # PostgreSQL needs it for the per-record joins; DuckDB's hash joins do better without.
    sa.Index("ix_score_intervals_record", "source", "object", "record_id").ddl_if(dialect="postgresql"),
    schema="snapshots",
)

# One snapshot's pull while it is applied: filled and emptied inside one transaction, so
# no other transaction ever sees a row of it.
score_capture = sa.Table(
    "score_capture",
    metadata,
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("score", sa.Double),
    sa.Column("keep", sa.Boolean, nullable=False),  # malformed: leave the current interval alone
    schema="snapshots",
)

snapshot_runs = sa.Table(
    "snapshot_runs",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    _ts("snapshot_at", nullable=False),
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("records_seen", sa.Integer, nullable=False),
    sa.Column("scores_changed", sa.Integer, nullable=False),  # new intervals opened
    sa.Column("records_gone", sa.Integer, nullable=False),  # deleted upstream: interval closed
    sa.Column("history_intervals", sa.Integer, nullable=False),  # backfilled from field history
    sa.Column("quarantined", sa.Integer, nullable=False),  # malformed scores, kept aside
    sa.Column("content_sha256", sa.String, nullable=False),
    _ts("recorded_at", nullable=False),
    schema="snapshots",
)

score_model_changes = sa.Table(
    "score_model_changes",
    metadata,
    _ts("starts_at", nullable=False),
    _ts("ends_at", nullable=False),  # score changes in [starts_at, ends_at] belong to the model
    sa.Column("origin", sa.String, nullable=False),  # configured | detected
    sa.Column("changed_share", sa.Double),  # share of scored prospects that moved at once
    sa.Column("note", sa.String, nullable=False),
    schema="snapshots",
)

score_changes = sa.Table(
    "score_changes",
    metadata,
    # A dozen rows a prospect: PostgreSQL's default sample (30,000 rows) counts 97k prospects
    # of 1M, and with random_page_cost 1.1 (deploy/postgres-init.sh) velocity then plans a
    # million index lookups where a hash join is faster; see `_set_statistics_targets`.
    sa.Column("prospect_id", sa.String, nullable=False, info={"statistics_target": 1000}),
    _ts("changed_at", nullable=False),
    sa.Column("delta", sa.Double, nullable=False),
    sa.Column("kind", sa.String, nullable=False),  # interest | model | baseline
    # Lead score validity reads the changes of one period's cohort, and a daily velocity
    # refresh deletes and recounts the changes of the prospects it rebuilds: by prospect, not
    # a scan of every change (validity at a million prospects: a week 1.2 -> 0.6 s, a month
    # 1.6 -> 1.05 s).
    sa.Index("ix_score_changes_prospect", "prospect_id").ddl_if(dialect="postgresql"),
    schema="marts",
)

# What `score_changes` was last built from, so a refresh redoes only the prospects whose scored
# record, or that record's intervals, changed since (`velocity.update_score_changes`): each
# prospect's chosen record, and the snapshot runs the changes covered.
score_change_sources = sa.Table(
    "score_change_sources",
    metadata,
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    schema="marts",
)

score_change_runs = sa.Table(
    "score_change_runs",
    metadata,
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    _ts("snapshot_at", nullable=False),
    _ts("recorded_at", nullable=False),  # a re-run of the snapshot records a new time
    schema="marts",
)

# Per hour, how many prospects' scores moved (a change after their first) and how many
# arrived (their first change), over all of `score_changes`: what model-change detection
# reads. A refresh adds and takes away the counts of the prospects it rebuilds, so a daily
# refresh does not read every change again (`velocity.update_score_changes`).
score_change_hours = sa.Table(
    "score_change_hours",
    metadata,
    _ts("hour", nullable=False),
    sa.Column("moved", sa.Integer, nullable=False),
    sa.Column("arrived", sa.Integer, nullable=False),
    schema="marts",
)

# A work table, empty between refreshes: the prospects whose changes a refresh rebuilds, with
# the record now chosen for each (null where none is any more).
score_change_scope = sa.Table(
    "score_change_scope",
    metadata,
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("source", sa.String),
    sa.Column("object", sa.String),
    sa.Column("record_id", sa.String),
    schema="marts",
)

score_velocity = sa.Table(
    "score_velocity",
    metadata,
    _ts("as_of", nullable=False),
    sa.Column("prospect_id", sa.String, nullable=False),
    sa.Column("score", sa.Double),
    sa.Column("change_7d", sa.Double),  # null while the history does not cover the window
    sa.Column("change_14d", sa.Double),
    sa.Column("model_change_points_14d", sa.Double, nullable=False),  # left out of the changes
    sa.Column("decayed_score", sa.Double),  # derived; the source score is never overwritten
    _ts("last_increase_at"),
    _ts("created_at", nullable=False),
    _ts("scored_since"),  # the prospect's first score change
    _ts("known_since"),  # its baseline: history before it is unknown (null: none)
    # Every refresh adds a day of rows (a million at 1M leads) and reads back one day: its own
    # for the trend, the latest for hot prospects. PostgreSQL would scan every day for it;
    # DuckDB's zone maps skip the other days' row groups, since the rows arrive in day order.
    sa.Index("ix_score_velocity_as_of", "as_of").ddl_if(dialect="postgresql"),
    schema="marts",
)

engagement_trend = sa.Table(
    "engagement_trend",
    metadata,
    _ts("as_of", nullable=False),
    _ts("week_start", nullable=False),
    _ts("week_end", nullable=False),
    sa.Column("eligible_prospects", sa.Integer, nullable=False),
    sa.Column("net_change", sa.Double, nullable=False),  # interest only
    sa.Column("model_change_points", sa.Double, nullable=False),
    sa.Column("average_change", sa.Double),
    sa.Column("moving_average_4w", sa.Double),
    sa.Column("surging_prospects", sa.Integer, nullable=False),
    schema="marts",
)

quality_checks = sa.Table(
    "quality_checks",
    metadata,
    sa.Column("build_id", sa.String, nullable=False),
    sa.Column("check_name", sa.String, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),  # pass | warn | fail
    sa.Column("measured", sa.Text, nullable=False),  # JSON
    sa.Column("message", sa.Text, nullable=False),
    schema="staging",
)

opportunities = sa.Table(
    "opportunities",
    metadata,
    sa.Column("opportunity_id", sa.String, nullable=False),
    _key_on_postgresql("opportunity_id"),
    sa.Column("prospect_id", sa.String),
    _ts("created_at"),  # some exports have none (maven-crm's prospecting deals)
    sa.Column("close_date", sa.Date),
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("is_closed", sa.Boolean, nullable=False),
    sa.Column("is_won", sa.Boolean, nullable=False),
    sa.Column("amount", sa.Double),
    sa.Column("owner_id", sa.String),  # the opportunity's owner
    sa.Column("lead_owner_id", sa.String),  # the owner of the lead it was converted from
    sa.Column("region", sa.String),
    sa.Column("segment", sa.String),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("sub_channel", sa.String, nullable=False),
    sa.Column("campaign_id", sa.String),
    sa.Column("is_from_converted_lead", sa.Boolean, nullable=False),
    sa.Column("is_excluded", sa.Boolean, nullable=False),
    sa.Column("exclusion_rule", sa.String),
    sa.Column("loss_reason", sa.String),  # why it was lost, where the rep recorded it
    schema="staging",
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String, primary_key=True),
    sa.Column("name", sa.String),
    sa.Column("region", sa.String),
    sa.Column("is_active", sa.Boolean),
    schema="staging",
)

opportunity_changes = sa.Table(  # every stage-history row: what the deal looked like from then on
    "opportunity_changes",
    metadata,
    sa.Column("opportunity_id", sa.String, nullable=False),
    _ts("changed_at", nullable=False),  # when it was recorded
    sa.Column("changed_by", sa.String),  # the user who recorded it
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("is_closed", sa.Boolean, nullable=False),
    sa.Column("amount", sa.Double),
    sa.Column("close_date", sa.Date),  # the close date expected then (the actual one, once closed)
    sa.Column("forecast_category", sa.String),  # pipeline | best_case | commit | closed | omitted
    _ts("replaced_at"),  # the deal's next row (null for its newest): this row holds until then
    schema="staging",
)

stage_probabilities = sa.Table(  # from opportunity_stages.yaml, with each build
    "stage_probabilities",
    metadata,
    sa.Column("stage", sa.String, primary_key=True),
    sa.Column("probability", sa.Double, nullable=False),  # percent chance of closing won
    schema="staging",
)

campaigns = sa.Table(  # Salesforce campaigns: what marketing spent, when, on which channel
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.String, primary_key=True),
    sa.Column("name", sa.String),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("actual_cost", sa.Double),  # as the CRM holds it: none where nobody entered one
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date),  # the last day it runs; none for a one-day campaign
    schema="staging",
)

targets = sa.Table(  # from the targets file (revops.reconcile.targets), with each build
    "targets",
    metadata,
    sa.Column("owner_id", sa.String, nullable=False),
    sa.Column("month", sa.Date, nullable=False),  # first day of the month
    sa.Column("target", sa.Double, nullable=False),
    schema="staging",
)

working_hours = sa.Table(  # from the business calendar (revops.reconcile.calendar), with each build
    "working_hours",
    metadata,
    sa.Column("region", sa.String, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the local working day
    _ts("start_at", nullable=False),  # its opening and closing, UTC
    _ts("end_at", nullable=False),
    schema="staging",
)

working_time = sa.Table(  # working_hours counted up by UTC day (revops.reconcile.calendar.working_time)
    "working_time",
    metadata,
    sa.Column("region", sa.String, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # each UTC day from the region's first working day to its last
    sa.Column("worked_before", sa.Double, nullable=False),  # the region's working seconds before the day
    _ts("start_at"),  # a part of a working interval inside the day (none on a day without work)
    _ts("end_at"),
    schema="staging",
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("build_id", sa.String, nullable=False),
    sa.Column("batch_id", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("object", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    schema="staging",
)

builds = sa.Table(
    "builds",
    metadata,
    sa.Column("build_id", sa.String, primary_key=True),
    sa.Column("run_id", sa.String),
    _ts("data_cutoff", nullable=False),
    sa.Column("batch_ids", sa.Text, nullable=False),  # JSON list
    sa.Column("summary", sa.Text, nullable=False),  # JSON data-quality summary
    _ts("built_at", nullable=False),
    schema="staging",
)

kpi_results = sa.Table(
    "kpi_results",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("build_id", sa.String, nullable=False),
    sa.Column("kpi_id", sa.String, nullable=False),
    sa.Column("kpi_version", sa.Integer, nullable=False),
    sa.Column("sql_sha256", sa.String, nullable=False),
    sa.Column("grain", sa.String, nullable=False),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("dimension", sa.String, nullable=False),
    sa.Column("segment", sa.String, nullable=False),
    sa.Column("numerator", sa.Double),
    sa.Column("denominator", sa.Double),
    sa.Column("value", sa.Double),
    sa.Column("ci_low", sa.Double),
    sa.Column("ci_high", sa.Double),
    sa.Column("volume", sa.Integer, nullable=False),
    sa.Column("flags", sa.String, nullable=False),
    _ts("data_cutoff", nullable=False),
    # What the slice's numbers follow from (revops.kpis.engine.slice_inputs); null where they
    # depend on more than the staging build, so the slice is never reused.
    sa.Column("inputs_sha256", sa.String),
    # The engine replaces a period's slices with a delete per period, and scorecards read a
    # scope's periods: without it, each delete scans every result stored so far.
    sa.Index("ix_kpi_results_period", "period_start", "scope", "grain").ddl_if(dialect="postgresql"),
    schema="marts",
)

kpi_exclusions = sa.Table(
    "kpi_exclusions",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("kpi_id", sa.String, nullable=False),
    sa.Column("kpi_version", sa.Integer, nullable=False),
    sa.Column("grain", sa.String, nullable=False),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),  # e.g. the outlier opportunity
    sa.Column("record_value", sa.Double),
    sa.Column("exclusion_rule", sa.Text, nullable=False),
    sa.Index("ix_kpi_exclusions_period", "period_start", "scope", "grain").ddl_if(dialect="postgresql"),
    schema="marts",
)

kpi_control_limits = sa.Table(
    "kpi_control_limits",
    metadata,
    sa.Column("kpi_id", sa.String, nullable=False),
    sa.Column("kpi_version", sa.Integer, nullable=False),
    sa.Column("grain", sa.String, nullable=False),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("dimension", sa.String, nullable=False),
    sa.Column("segment", sa.String, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("volume", sa.Integer, nullable=False),
    sa.Column("centre", sa.Double, nullable=False),
    sa.Column("lower", sa.Double, nullable=False),
    sa.Column("upper", sa.Double, nullable=False),
    sa.Column("signal", sa.String),  # above_upper | below_lower, or null
    schema="marts",
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String, primary_key=True),  # one per breach: never alerted twice
    sa.Column("kpi_id", sa.String, nullable=False),
    sa.Column("kpi_version", sa.Integer, nullable=False),
    sa.Column("grain", sa.String, nullable=False),
    sa.Column("timezone", sa.String, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("dimension", sa.String, nullable=False),
    sa.Column("segment", sa.String, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("rule", sa.String, nullable=False),  # warning | escalation | control_limit
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("limit_value", sa.Double, nullable=False),
    sa.Column("owner", sa.String, nullable=False),
    sa.Column("detected_run_id", sa.String, nullable=False),
    _ts("detected_at", nullable=False),
    _ts("emailed_at"),  # each channel is recorded on its own: a retry repeats only what failed
    _ts("posted_at"),
    sa.Column("notification_error", sa.Text),
    schema="marts",
)

run_ledger = sa.Table(
    "run_ledger",
    metadata,
    # Append-only and hash-chained: each entry's hash covers its content and the previous
    # entry's hash, so an edited or deleted entry breaks the chain (revops.audit.ledger).
    sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String, nullable=False, unique=True),
    sa.Column("kind", sa.String, nullable=False),  # run | artifact | dag_run | task | kpi_version | retention
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("dag_id", sa.String, nullable=False),
    sa.Column("logical_date", sa.String),
    sa.Column("data_interval_start", sa.String),
    sa.Column("data_interval_end", sa.String),
    sa.Column("code_version", sa.String, nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # JSON: inputs, KPI versions, outputs
    sa.Column("outcome", sa.String, nullable=False),
    _ts("recorded_at", nullable=False),
    sa.Column("previous_hash", sa.String, nullable=False),
    sa.Column("entry_hash", sa.String, nullable=False),
    schema="audit",
)


deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("audience", sa.String, nullable=False),
    sa.Column("recipient", sa.String, nullable=False),
    sa.Column("artifact_path", sa.Text, nullable=False),
    sa.Column("artifact_sha256", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),  # sent | failed
    sa.Column("error", sa.Text),
    _ts("attempted_at", nullable=False),
    schema="audit",
)


def ensure_schema(engine: sa.Engine) -> None:
    """Create schemas and tables that do not exist yet (idempotent). A column a newer version
    added is added to an older table when it may be empty (nullable); any other difference
    from what an older version created stops the run with what to do."""
    # Several workers may start on an empty database at once: "if not exists" is not atomic
    # in PostgreSQL's catalogue, so one creates while the others wait.
    with exclusive_transaction(engine, "warehouse schema") as conn:
        for schema in SCHEMAS:
            conn.execute(sa.text(f"create schema if not exists {schema}"))
        metadata.create_all(conn, checkfirst=True)
        _add_new_columns(conn)
        _drop_embedded_keys(conn)
        _widen_embedded_floats(conn)
        _add_new_indexes(conn)
        _set_statistics_targets(conn)


def _add_new_indexes(conn: sa.Connection) -> None:
    """PostgreSQL: create an index a newer version declares on a table an older one created
    (`create_all` creates indexes only with their tables). The embedded warehouse declares
    none: DuckDB's hash joins and zone maps do better without."""
    if is_duckdb(conn):
        return
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _set_statistics_targets(conn: sa.Connection) -> None:
    """PostgreSQL: sample more rows when analysing a column that declares a
    `statistics_target` (its `info`), where the default sample misjudges how many distinct
    values it holds. Set only where it differs, so a start writes nothing to the catalogue."""
    if is_duckdb(conn):
        return
    current = (
        "select attstattarget from pg_attribute "
        "where attrelid = cast(:table as regclass) and attname = :column"
    )
    for table in metadata.sorted_tables:
        for column in [c for c in table.columns if "statistics_target" in c.info]:
            target = column.info["statistics_target"]
            found = conn.execute(sa.text(current), {"table": table.fullname, "column": column.name})
            if found.scalar_one() != target:
                alter = f"alter table {table.fullname} alter column {column.name} set statistics {target}"
                conn.execute(sa.text(alter))


# New columns that hold what other columns of the same rows imply (reconcile writes them with
# the rest): filled when added to rows an older version wrote, so no reader sees them empty
# before the next build. Each expression is the rule reconcile applies (`build._replaced_at`).
DERIVED_COLUMNS = {
    ("staging.opportunity_changes", "replaced_at"): (
        "lag(changed_at) over (partition by opportunity_id order by changed_at desc, stage desc)"
    ),
    ("staging.opportunity_stages", "replaced_at"): (
        "lag(entered_at) over ("
        "partition by opportunity_id order by entered_at desc, stage_order desc nulls last)"
    ),
}


def _add_new_columns(conn: sa.Connection) -> None:
    """Bring tables an older version created up to date where that is safe: a new nullable
    column is added (staging refills it on the next build; a derived one is filled now).
    Anything else stops the run."""
    rows = conn.execute(
        sa.text("select table_schema, table_name, column_name from information_schema.columns")
    )
    existing = {(r.table_schema, r.table_name, r.column_name) for r in rows}
    for table in metadata.sorted_tables:
        missing = [c for c in table.columns if (table.schema, table.name, c.name) not in existing]
        for column in [c for c in missing if c.nullable]:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"alter table {table.fullname} add column {column.name} {kind}"))
            if (table.fullname, column.name) in DERIVED_COLUMNS:
                _derive(conn, table, column.name)
        required = [c.name for c in missing if not c.nullable]
        if required:
            raise RuntimeError(
                f"warehouse table {table.fullname} lacks columns {required}: it was created by an "
                "older version. Delete the embedded warehouse file (var/warehouse.duckdb) or "
                "migrate the table."
            )


def _derive(conn: sa.Connection, table: sa.Table, column: str) -> None:
    """Fill a derived column (`DERIVED_COLUMNS`) of the rows already there: the table is
    rewritten, since its rows have no key an update could name."""
    name, others = table.fullname, ", ".join(c.name for c in table.columns if c.name != column)
    derived = DERIVED_COLUMNS[(name, column)]
    for statement in (
        f"create temporary table derived_rows as select {others}, {derived} as {column} from {name}",
        f"delete from {name}",
        f"insert into {name} ({others}, {column}) select {others}, {column} from derived_rows",
    ):
        conn.execute(sa.text(statement))
    conn.execute(sa.text("drop table derived_rows"))


def _drop_embedded_keys(conn: sa.Connection) -> None:
    """Re-create without its primary key, rows kept, a staging table an older version created
    with one on DuckDB (see `_key_on_postgresql`). DuckDB cannot drop a constraint."""
    if not is_duckdb(conn):
        return
    keyed = set(
        conn.execute(
            sa.text(
                "select table_name from duckdb_constraints() "
                "where schema_name = 'staging' and constraint_type = 'PRIMARY KEY'"
            )
        ).scalars()
    )
    for table in [t for t in (prospects, opportunities) if t.name in keyed]:
        columns = ", ".join(column.name for column in table.columns)
        conn.execute(sa.text(f"create temporary table kept as select {columns} from {table.fullname}"))
        table.drop(conn)
        table.create(conn)
        conn.execute(sa.text(f"insert into {table.fullname} ({columns}) select {columns} from kept"))
        conn.execute(sa.text("drop table kept"))


def _widen_embedded_floats(conn: sa.Connection) -> None:
    """Hold as 8-byte doubles the real-number columns an older version created as DuckDB's
    4-byte FLOAT, whose 24-bit mantissa kept about seven digits: an amount of 1,234,567.89
    read back as 1,234,567.875. (On PostgreSQL they were double precision already.) The
    values already stored keep that rounding until staging's next full build rewrites them."""
    if not is_duckdb(conn):
        return
    rows = conn.execute(
        sa.text(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('FLOAT', 'REAL')"
        )
    )
    narrow = {(r.table_schema, r.table_name, r.column_name) for r in rows}
    for table in metadata.sorted_tables:
        for column in [c for c in table.columns if (table.schema, table.name, c.name) in narrow]:
            conn.execute(sa.text(f"alter table {table.fullname} alter column {column.name} type double"))
