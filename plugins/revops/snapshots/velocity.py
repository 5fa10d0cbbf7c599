"""Lead score velocity: how fast each prospect's score is moving, and the trend across all.

Read from the interval store, per prospect (a person once, however many CRM records):
1. `score_changes`: each prospect's score as a series of changes (delta at each interval
   start; a score that ends without a successor drops to zero). The prospect's score is its
   HubSpot contact's where it has one (configurable), else its newest Salesforce lead's.
   A record's first interval from the store's first snapshot is a *baseline*: its score was
   already there when the store began, so it is no change, and velocity over windows that
   start before it is unknown (left blank, never guessed).
2. Scoring-model changes (configured dates, or an hour in which most scored prospects moved
   at once) are marked; changes inside them are kind `model`, kept apart from interest.
3. `score_velocity` per prospect as of a time: score, 7- and 14-day change from interest
   only, the points a model change moved it, a decayed score (derived, never written over
   the source score), and its last increase.
4. `engagement_trend`: weekly net change over established prospects (created at least
   `new_prospect_weeks` before the week ends), its average and 4-week moving average, and
   the count of prospects up `surge_points`+ that week.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from revops.configuration import ConfigError, read_config
from revops.warehouse.engine import refresh_statistics
from revops.warehouse.load import empty_work_table, read_frame, replace_rows, replace_table
from revops.warehouse.schema import (
    engagement_trend,
    score_change_hours,
    score_change_runs,
    score_change_scope,
    score_change_sources,
    score_changes,
    score_model_changes,
    score_velocity,
)

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class ConfiguredModelChange:
    day: date  # score changes from this day's start to the next day's start are the model's
    note: str


@dataclass(frozen=True)
class VelocitySettings:
    prefer_source: str = "hubspot"
    surge_points: float = 20
    new_prospect_weeks: int = 4
    trend_weeks: int = 13
    hot_list_size: int = 50
    decay_enabled: bool = True
    decay_points_per_idle_week: float = 5
    decay_grace_weeks: int = 1
    model_changes: tuple[ConfiguredModelChange, ...] = ()
    detect_share: float = 0.5  # an hour in which more than this share of scored prospects moved
    detect_min_prospects: int = 20  # ...and at least this many (a handful moving is no model change)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None) -> VelocitySettings:
        config = config if config is not None else read_config("scores")
        try:
            velocity, decay = config["velocity"], config["decay"]
            changes = tuple(
                ConfiguredModelChange(_as_date(c["date"]), c["note"])
                for c in config.get("scoring_model_changes") or []
            )
            detect = config.get("model_change_detection", {})
            return cls(
                prefer_source=config["prefer_source"],
                surge_points=float(velocity["surge_points"]),
                new_prospect_weeks=int(velocity["new_prospect_weeks"]),
                trend_weeks=int(velocity["trend_weeks"]),
                hot_list_size=int(velocity["hot_list_size"]),
                decay_enabled=bool(decay["enabled"]),
                decay_points_per_idle_week=float(decay["points_per_idle_week"]),
                decay_grace_weeks=int(decay["grace_weeks"]),
                model_changes=changes,
                detect_share=float(detect.get("share", 0.5)),
                detect_min_prospects=int(detect.get("min_prospects", 20)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"include/config/scores.yaml: {error!r}") from error


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class VelocitySummary:
    as_of: datetime
    prospects_scored: int
    changes_rebuilt_for: int  # prospects whose change series this refresh rebuilt
    prospects_with_change: int  # change_7d known and not zero
    surging_prospects: int  # this week
    moving_average_4w: float | None
    model_changes: list[str]


def refresh_velocity(
    engine: sa.Engine, as_of: datetime, settings: VelocitySettings, full: bool = False
) -> VelocitySummary:
    """Bring the change series up to date (`full`: rebuild it whole), mark model changes,
    then velocity and trend as of `as_of`."""
    with engine.begin() as conn:
        with _timed("score changes"):
            rebuilt = update_score_changes(conn, settings, full)
        with _timed("model changes"):
            marked = mark_model_changes(conn, settings)
        with _timed("velocity"):
            compute_velocity(conn, as_of, settings)
        with _timed("trend"):
            trend = compute_trend(conn, as_of, settings)
        counts = conn.execute(
            sa.text(
                "select count(*), sum(case when change_7d <> 0 then 1 else 0 end) "
                "from marts.score_velocity where as_of = :as_of"
            ),
            {"as_of": as_of},
        ).one()
    latest = trend.iloc[-1] if not trend.empty else None
    return VelocitySummary(
        as_of=as_of,
        prospects_scored=int(counts[0]),
        changes_rebuilt_for=rebuilt,
        prospects_with_change=int(counts[1] or 0),
        surging_prospects=int(latest["surging_prospects"]) if latest is not None else 0,
        moving_average_4w=None
        if latest is None or pd.isna(latest["moving_average_4w"])
        else float(latest["moving_average_4w"]),
        model_changes=[f"{r.starts_at:%Y-%m-%d %H:%M} ({r.origin}): {r.note}" for r in marked.itertuples()],
    )


@contextmanager
def _timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log.info("score velocity: %s in %.1fs", step, time.perf_counter() - started)


# One scored record per prospect: the preferred source first, then the newest record.
_CHOSEN = """
select prospect_id, source, object, record_id from (
    select pi.prospect_id, pi.source, pi.object, pi.record_id,
           row_number() over (
               partition by pi.prospect_id
               order by case when pi.source = :prefer_source then 0 else 1 end,
                        pi.created_at desc, pi.record_id
           ) as preference
    from staging.prospect_identities pi
    join staging.prospects p on p.prospect_id = pi.prospect_id and not p.is_excluded
    -- a semi join; as `exists` DuckDB joined every interval to the identities first (2.2x slower)
    where (pi.source, pi.object, pi.record_id) in (
        select source, object, record_id from snapshots.score_intervals
    )
) ranked
where preference = 1
"""

# The prospects whose change series a refresh rebuilds, each with its chosen record now: the
# chosen record is not the one the stored series was built from (or there is none now), or
# it has intervals written or closed after the snapshots the stored series covered. With
# nothing stored, that is every scored prospect.
_SCOPE = f"""
insert into marts.score_change_scope (prospect_id, source, object, record_id)
with chosen as materialized ({_CHOSEN}),
covered as (
    select source, object, max(snapshot_at) as covered_to
    from marts.score_change_runs
    group by source, object
),
-- Found first (materialized: PostgreSQL otherwise joined each chosen record's intervals, 12.8M
-- index reads at a million prospects, 13.5 s; DuckDB joined every interval first).
touched as materialized (
    select i.source, i.object, i.record_id
    from snapshots.score_intervals i
    left join covered w on w.source = i.source and w.object = i.object
    where w.covered_to is null or i.recorded_at > w.covered_to or i.valid_to > w.covered_to
),
moved as (
    select distinct c.prospect_id
    from chosen c
    join touched t on t.source = c.source and t.object = c.object and t.record_id = c.record_id
),
-- Chosen anew, no longer chosen, or chosen otherwise: one full join on the prospect (one row
-- a prospect on each side). Two `except`s, comparing every prospect's record both ways, took
-- this statement 13.2 and 14.6 s on PostgreSQL at a million prospects; the join 10.9 and 11.2 s.
rescoped as (
    select coalesce(c.prospect_id, s.prospect_id) as prospect_id
    from chosen c
    full join marts.score_change_sources s on s.prospect_id = c.prospect_id
    where c.prospect_id is null or s.prospect_id is null
       or c.source <> s.source or c.object <> s.object or c.record_id <> s.record_id
    union
    select prospect_id from moved
)
select r.prospect_id, c.source, c.object, c.record_id
from rescoped r
left join chosen c on c.prospect_id = r.prospect_id
"""

# The change series of the prospects `{chosen}` lists, with their records.
_SCORE_CHANGES = """
insert into marts.score_changes (prospect_id, changed_at, delta, kind)
with chosen as ({chosen}),
first_snapshots as (
    select source, object, min(snapshot_at) as first_snapshot_at
    from snapshots.snapshot_runs group by source, object
),
ordered as (
    select c.prospect_id, i.score, i.valid_from, i.valid_to, i.origin, f.first_snapshot_at,
           lag(i.score) over w as previous_score,
           lag(i.valid_to) over w as previous_valid_to,
           lead(i.valid_from) over w as next_valid_from
    from chosen c
    join snapshots.score_intervals i
      on i.source = c.source and i.object = c.object and i.record_id = c.record_id
    left join first_snapshots f on f.source = i.source and f.object = i.object
    window w as (partition by c.prospect_id order by i.valid_from)  -- one record per prospect
),
changes as (
    -- each interval's start: its score less the score just before it (zero after a gap); and
    -- where an interval ends without a successor, the score cleared. One pass over `ordered`:
    -- named twice, DuckDB would write all of it out first.
    select prospect_id,
           case when cleared then valid_to else valid_from end as changed_at,
           case when cleared then -score
                else score - case when previous_valid_to = valid_from then previous_score else 0 end
           end as delta,
           case when not cleared and previous_score is null and origin = 'snapshot'
                     and valid_from = first_snapshot_at
                then 'baseline' else 'interest' end as kind
    from ordered
    cross join (values (false), (true)) as part (cleared)
    where not cleared or (valid_to is not null and (next_valid_from is null or next_valid_from <> valid_to))
)
select prospect_id, changed_at, delta, kind from changes where kind = 'baseline' or delta <> 0
"""

# The snapshot runs the stored series covered that are gone or were re-run since.
_COVERED_RUNS_REPLACED = """
select count(*) from marts.score_change_runs c
where not exists (
    select 1 from snapshots.snapshot_runs r
    where r.source = c.source and r.object = c.object
      and r.snapshot_at = c.snapshot_at and r.recorded_at = c.recorded_at
)
"""


def update_score_changes(conn: sa.Connection, settings: VelocitySettings, full: bool = False) -> int:
    """Bring `marts.score_changes` (and its hourly counts) up to date; returns how many
    prospects' series it rebuilt.

    A daily snapshot moves a few percent of the scores, so only the prospects it (or a new
    staging build) touched are rebuilt, not a year of history. The whole series is rebuilt
    with `full`, the first time, when a snapshot the stored series covered was re-run or
    removed since (a re-run rewrites intervals the store cannot tell apart afterwards), and
    when the series has no hourly counts yet (a warehouse from before they were kept)."""
    whole = full or _needs_whole_rebuild(conn)
    rebuilt = _rebuild_everyone(conn, settings) if whole else _rebuild_scope(conn, settings)
    # Model changes, velocity and the trend read it next. Planned without statistics, velocity
    # took PostgreSQL 14.5 s at a million prospects (its group-by taken for 200 prospects, then
    # an index read per prospect), 8.3 s with them.
    refresh_statistics(conn, score_changes)
    conn.execute(score_change_runs.delete())
    conn.execute(
        sa.text(
            "insert into marts.score_change_runs (source, object, snapshot_at, recorded_at) "
            "select source, object, snapshot_at, recorded_at from snapshots.snapshot_runs"
        )
    )
    return rebuilt


# The chosen record of every prospect, and of the prospects in scope (none where none is now).
_SOURCES = "select prospect_id, source, object, record_id from marts.score_change_sources"
_SCOPE_CHOSEN = (
    "select prospect_id, source, object, record_id from marts.score_change_scope where record_id is not null"
)
_INSERT_SOURCES = "insert into marts.score_change_sources (prospect_id, source, object, record_id) "
_IN_SCOPE = "prospect_id in (select prospect_id from marts.score_change_scope)"


def _rebuild_everyone(conn: sa.Connection, settings: VelocitySettings) -> int:
    """Every prospect's series from its chosen record, written straight to the sources (no
    scope table: at a million prospects, writing one cost a second)."""
    for table in (score_changes, score_change_sources, score_change_runs, score_change_hours):
        conn.execute(table.delete())
    conn.execute(sa.text(_INSERT_SOURCES + _CHOSEN), {"prefer_source": settings.prefer_source})
    refresh_statistics(conn, score_change_sources)  # the series joins every interval to it
    conn.execute(sa.text(_SCORE_CHANGES.format(chosen=_SOURCES)))
    _count_hours(conn, sign=1, everyone=True)
    return conn.execute(sa.select(sa.func.count()).select_from(score_change_sources)).scalar_one()


def _rebuild_scope(conn: sa.Connection, settings: VelocitySettings) -> int:
    """The series of the prospects whose chosen record, or its intervals, changed (`_SCOPE`)."""
    empty_work_table(conn, score_change_scope)
    conn.execute(sa.text(_SCOPE), {"prefer_source": settings.prefer_source})
    _count_hours(conn, sign=-1)  # what the rebuilt prospects' old changes counted
    conn.execute(sa.text(f"delete from marts.score_changes where {_IN_SCOPE}"))
    conn.execute(sa.text(f"delete from marts.score_change_sources where {_IN_SCOPE}"))
    conn.execute(sa.text(_INSERT_SOURCES + _SCOPE_CHOSEN))
    conn.execute(sa.text(_SCORE_CHANGES.format(chosen=_SCOPE_CHOSEN)))
    _count_hours(conn, sign=1)
    rebuilt = conn.execute(sa.select(sa.func.count()).select_from(score_change_scope)).scalar_one()
    conn.execute(score_change_scope.delete())
    return rebuilt


def _needs_whole_rebuild(conn: sa.Connection) -> bool:
    covered = conn.execute(sa.select(sa.func.count()).select_from(score_change_runs)).scalar_one()
    if not covered or conn.execute(sa.text(_COVERED_RUNS_REPLACED)).scalar_one() > 0:
        return True
    uncounted = (
        "select not exists (select 1 from marts.score_change_hours)"
        " and exists (select 1 from marts.score_changes)"
    )
    return bool(conn.execute(sa.text(uncounted)).scalar_one())


# Each prospect's moves (a change after its first; a baseline is no move) and its arrival
# (its first change), counted per hour. A prospect counts once per hour, so the counts of
# all prospects are the sums of each one's.
_HOUR_COUNTS = """
select hour,
       -- a change labelled 'model' by an earlier refresh still moved: detection must find it again
       cast(count(distinct case when kind <> 'baseline' and nth > 1 then prospect_id end) as integer)
           as moved,
       cast(sum(case when nth = 1 then 1 else 0 end) as integer) as arrived
from (
    select prospect_id, date_trunc('hour', changed_at) as hour, kind,
           row_number() over (partition by prospect_id order by changed_at) as nth
    from marts.score_changes
    {only_scope}
) numbered
group by hour
"""


def _count_hours(conn: sa.Connection, sign: int, everyone: bool = False) -> None:
    """Add (sign 1) or take away (-1) the hourly counts of the prospects in scope (`everyone`:
    of every prospect, reading no scope). The stored counts are a few thousand rows: read,
    summed and written back whole."""
    only_scope = "" if everyone else f"where {_IN_SCOPE}"
    counted = read_frame(conn, _HOUR_COUNTS.format(only_scope=only_scope))
    stored = read_frame(conn, sa.select(score_change_hours))
    counted[["moved", "arrived"]] *= sign
    totals = pd.concat([stored, counted]).groupby("hour", as_index=False)[["moved", "arrived"]].sum()
    totals = totals[(totals["moved"] != 0) | (totals["arrived"] != 0)]
    if (totals[["moved", "arrived"]] < 0).to_numpy().any():
        raise RuntimeError("score change hour counts went negative: rebuild with full=True")
    replace_table(conn, score_change_hours, totals.astype({"moved": "int64", "arrived": "int64"}))


def mark_model_changes(conn: sa.Connection, settings: VelocitySettings) -> pd.DataFrame:
    """Write configured and detected model changes; re-label the changes inside them."""
    configured = pd.DataFrame(
        {
            "starts_at": [datetime.combine(c.day, datetime.min.time()) for c in settings.model_changes],
            "ends_at": [
                datetime.combine(c.day, datetime.min.time()) + timedelta(days=1)
                for c in settings.model_changes
            ],
            "origin": "configured",
            "changed_share": None,
            "note": [c.note for c in settings.model_changes],
        }
    )
    detected = detect_model_changes(conn, settings, configured)
    marked = pd.concat([configured, detected], ignore_index=True).sort_values("starts_at", ignore_index=True)
    replace_table(conn, score_model_changes, marked)
    # Both ways: changes kept from an earlier refresh may sit in a window no longer marked.
    # The few windows are bound into the statement: as a semi join against their table, DuckDB
    # compared every interest change with them, 1.4 to 1.7 s at a million leads (13M changes).
    bounds = {}
    for n, (starts, ends) in enumerate(zip(marked["starts_at"], marked["ends_at"], strict=True)):
        bounds |= {
            f"starts_{n}": pd.Timestamp(starts).to_pydatetime(),
            f"ends_{n}": pd.Timestamp(ends).to_pydatetime(),
        }
    windows = " or ".join(f"changed_at between :starts_{n} and :ends_{n}" for n in range(len(marked)))
    in_a_window = f"({windows})" if windows else "false"
    relabel = "update marts.score_changes set kind = '{0}' where kind = '{1}' and {2}"
    conn.execute(sa.text(relabel.format("interest", "model", f"not {in_a_window}")), bounds)
    conn.execute(sa.text(relabel.format("model", "interest", in_a_window)), bounds)
    return marked


def detect_model_changes(
    conn: sa.Connection, settings: VelocitySettings, known: pd.DataFrame
) -> pd.DataFrame:
    """Hours in which more than `detect_share` of the prospects already scored moved at once."""
    hours = read_frame(conn, sa.select(score_change_hours).order_by(score_change_hours.c.hour))
    moved = hours.loc[hours["moved"] > 0, ["hour", "moved"]].reset_index(drop=True)
    arrivals = hours.loc[hours["arrived"] > 0, ["hour", "arrived"]]
    if moved.empty:
        return known.iloc[0:0]
    arrived_by = arrivals["arrived"].cumsum().to_numpy()
    position = np.searchsorted(arrivals["hour"].to_numpy(), moved["hour"].to_numpy(), side="left")
    moved["scored"] = np.where(position > 0, arrived_by[np.maximum(position - 1, 0)], 0)  # before the hour
    moved["share"] = moved["moved"] / moved["scored"].where(moved["scored"] > 0)
    hits = moved[(moved["share"] > settings.detect_share) & (moved["moved"] >= settings.detect_min_prospects)]
    already = [(s, e) for s, e in zip(known["starts_at"], known["ends_at"], strict=True)]
    hits = hits[np.array([not any(s <= h <= e for s, e in already) for h in hits["hour"]], dtype=bool)]
    return pd.DataFrame(
        {
            "starts_at": hits["hour"],
            "ends_at": hits["hour"] + timedelta(hours=1) - timedelta(microseconds=1),
            "origin": "detected",
            "changed_share": hits["share"],
            "note": [
                f"{int(m)} of {int(s)} scored prospects ({m / s:.0%}) changed score within the hour: "
                "read as a scoring-model change, not interest"
                for m, s in zip(hits["moved"], hits["scored"], strict=True)
            ],
        }
    )


_VELOCITY = """
insert into marts.score_velocity
    (as_of, prospect_id, score, change_7d, change_14d, model_change_points_14d,
     decayed_score, last_increase_at, created_at, scored_since, known_since)
with profile as (
    select prospect_id,
           sum(delta) as score,
           min(changed_at) as scored_since,
           max(case when kind = 'baseline' then changed_at end) as known_since,
           sum(case when kind = 'interest' and changed_at > :week_ago then delta else 0 end)
               as interest_7d,
           sum(case when kind = 'interest' and changed_at > :two_weeks_ago then delta else 0 end)
               as interest_14d,
           sum(case when kind = 'model' and changed_at > :two_weeks_ago then delta else 0 end)
               as model_14d,
           max(case when kind = 'interest' and delta > 0 then changed_at end) as last_increase_at
    from marts.score_changes
    where changed_at <= :as_of
    group by prospect_id
)
select :as_of, f.prospect_id, f.score,
       case when f.known_since > :week_ago then null else f.interest_7d end,
       case when f.known_since > :two_weeks_ago then null else f.interest_14d end,
       f.model_14d,
       case when :decay_enabled then greatest(
           f.score - :decay_points * greatest(
               floor(date_part('epoch', (:as_of - coalesce(f.last_increase_at, f.known_since))) / 604800)
               - :grace_weeks, 0),
           0) end,
       f.last_increase_at, p.created_at, f.scored_since, f.known_since
from profile f
join staging.prospects p on p.prospect_id = f.prospect_id
"""


def compute_velocity(conn: sa.Connection, as_of: datetime, settings: VelocitySettings) -> None:
    conn.execute(score_velocity.delete().where(score_velocity.c.as_of == as_of))
    conn.execute(
        sa.text(_VELOCITY),
        {
            "as_of": as_of,
            "week_ago": as_of - WEEK,
            "two_weeks_ago": as_of - 2 * WEEK,
            "decay_enabled": settings.decay_enabled,
            "decay_points": settings.decay_points_per_idle_week,
            "grace_weeks": settings.decay_grace_weeks,
        },
    )
    # The trend reads this day's rows next: planned as if they were one row, PostgreSQL sorted
    # its million prospects on disk (the trend 11.8 to 12.4 s at a million, 8.8 to 9.2 s so).
    refresh_statistics(conn, score_velocity)


# Weeks are counted back from `as_of`: week k is (as_of - 7(k+1) days, as_of - 7k days].
# Each prospect's ages (in weeks before as_of) bound the weeks it counts in:
# - established (averages): created `new_weeks` before the week ends, scored and its history
#   known by the week's start;
# - existing (surges): created, scored and known by the week's start, so its arrival points
#   are never read as a rise.
# Ages in seconds come from `date_part('epoch', ...)`, a double on both warehouses: PostgreSQL's
# `extract` gives a numeric, whose arithmetic over the trend's 4.6M changes at a million
# prospects cost about 1.9 s more (the same rows either way).
_TREND_BOUNDS = """
with ages as (
    select prospect_id,
           date_part('epoch', (:as_of - created_at)) / 604800 as created_age,
           date_part('epoch', (:as_of - scored_since)) / 604800 as scored_age,
           date_part('epoch', (:as_of - known_since)) / 604800 as known_age
    from marts.score_velocity
    where as_of = :as_of  -- written just before, from the same changes
)
select prospect_id,
       floor(least(created_age - :new_weeks, scored_age - 1, coalesce(known_age, 1e9) - 1))
           as last_established_week,
       floor(least(created_age - 1, scored_age - 1, coalesce(known_age, 1e9) - 1)) as last_existing_week
from ages
"""

_TREND = f"""
with bounds as ({_TREND_BOUNDS}),
in_window as (
    select prospect_id, kind, delta, floor(date_part('epoch', (:as_of - changed_at)) / 604800) as week
    from marts.score_changes
    where changed_at > :trend_start and changed_at <= :as_of
),
weekly as (
    select prospect_id, week,
           sum(case when kind = 'interest' then delta else 0 end) as interest,
           sum(case when kind = 'model' then delta else 0 end) as model
    from in_window
    group by prospect_id, week
),
established as (
    select last_established_week as last_week, count(*) as prospects
    from bounds where last_established_week >= 0
    group by last_established_week
),
sums as (
    select w.week,
           sum(case when b.last_established_week >= w.week then w.interest else 0 end) as net_change,
           sum(case when b.last_established_week >= w.week then w.model else 0 end) as model_change_points,
           sum(case when b.last_existing_week >= w.week and w.interest >= :surge_points then 1 else 0 end)
               as surging_prospects
    from weekly w join bounds b on b.prospect_id = w.prospect_id
    group by w.week
)
select 'established' as part, last_week as week, prospects as value, null as model, null as surging
from established
union all
select 'sums', week, net_change, model_change_points, surging_prospects from sums
"""


def compute_trend(conn: sa.Connection, as_of: datetime, settings: VelocitySettings) -> pd.DataFrame:
    """The weekly series ending at `as_of`, oldest week first, in one pass over the changes."""
    weeks = settings.trend_weeks
    params = {
        "as_of": as_of,
        "trend_start": as_of - weeks * WEEK,
        "new_weeks": float(settings.new_prospect_weeks),
        "surge_points": float(settings.surge_points),
    }
    parts = read_frame(conn, _TREND, params)
    established = parts[parts["part"] == "established"]
    established = established.groupby(established["week"].clip(upper=weeks - 1))["value"].sum()
    sums = parts[parts["part"] == "sums"].set_index("week")
    week = pd.RangeIndex(weeks)
    # a prospect established up to week k counts in every week from 0 to k
    eligible = established.reindex(week, fill_value=0).sort_index(ascending=False).cumsum().sort_index()
    trend = (
        pd.DataFrame(
            {
                "week_start": [as_of - (k + 1) * WEEK for k in week],
                "week_end": [as_of - k * WEEK for k in week],
                "eligible_prospects": eligible.astype("int64").to_numpy(),
                "net_change": sums["value"].reindex(week, fill_value=0).astype(float).to_numpy(),
                "model_change_points": sums["model"].reindex(week, fill_value=0).astype(float).to_numpy(),
                "surging_prospects": sums["surging"].reindex(week, fill_value=0).astype("int64").to_numpy(),
            }
        )
        .iloc[::-1]
        .reset_index(drop=True)
    )
    trend["average_change"] = trend["net_change"] / trend["eligible_prospects"].where(
        trend["eligible_prospects"] > 0
    )
    trend["moving_average_4w"] = trend["average_change"].rolling(4, min_periods=4).mean()
    trend.insert(0, "as_of", as_of)
    replace_rows(conn, engagement_trend, trend, {"as_of": as_of})
    return trend
