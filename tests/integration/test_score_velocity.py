"""Lead score velocity on hand-computed fixtures, on DuckDB and PostgreSQL.

Each test builds a tiny staging layer (prospects and their CRM records) and score history,
then checks the figures worked out by hand in the comments.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from revops.kpis.scope import Scope
from revops.snapshots.hot_prospects import hot_prospects
from revops.snapshots.store import ScoreCapture, apply_snapshot
from revops.snapshots.velocity import ConfiguredModelChange, VelocitySettings, refresh_velocity
from revops.warehouse import get_engine
from revops.warehouse.load import read_frame
from tests.helpers import add_prospects, probed_before

T = datetime(2026, 9, 7)  # a Monday: "now" in every test
DAYS = timedelta(days=1)
WEEKS = timedelta(weeks=1)
SETTINGS = VelocitySettings(
    prefer_source="hubspot", surge_points=20, new_prospect_weeks=4, trend_weeks=4, model_changes=()
)


@pytest.fixture
def engine(any_warehouse_url):
    return get_engine(any_warehouse_url)


def snapshot(engine, at: datetime, scores: dict, source="hubspot", object_name="contacts", history=None):
    """Apply one snapshot: record id -> score, and optionally field-history versions."""
    frame = pd.DataFrame({"record_id": list(scores), "score": list(scores.values())})
    versions = (
        None if history is None else pd.DataFrame(history, columns=["record_id", "changed_at", "score"])
    )
    apply_snapshot(engine, ScoreCapture(source, object_name, at, frame, versions), f"run-{at:%Y%m%d}")


def snapshot_with_history(engine, at: datetime, history: dict[str, list[tuple[datetime, float]]]):
    """The store's first snapshot, its past taken from field history (HubSpot contacts)."""
    versions = [
        (record, changed_at, score) for record, changes in history.items() for changed_at, score in changes
    ]
    snapshot(engine, at, {record: changes[-1][1] for record, changes in history.items()}, history=versions)


def velocity(engine, as_of=T) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = read_frame(conn, "select * from marts.score_velocity where as_of = :t", {"t": as_of})
    return frame.set_index("prospect_id").sort_index()


def trend(engine, as_of=T) -> pd.DataFrame:
    with engine.connect() as conn:
        return read_frame(
            conn, "select * from marts.engagement_trend where as_of = :t order by week_start", {"t": as_of}
        )


def test_the_article_two_leads_the_second_ranks_first(engine):
    """Both created ten weeks ago, both at 100 points now. The first gained 10 a week; the
    second 10 in week one, nothing for seven weeks, then 45 in each of the last two."""
    created = T - 10 * WEEKS
    add_prospects(engine, {"steady": created, "urgent": created})
    weekly_gains = {"steady": [10] * 10, "urgent": [10, 0, 0, 0, 0, 0, 0, 0, 45, 45]}
    for week in range(11):  # a snapshot at creation (score 0) and at the end of each week
        scores = {lead: sum(gains[:week]) for lead, gains in weekly_gains.items()}
        snapshot(engine, created + week * WEEKS, scores)
    refresh_velocity(engine, T, SETTINGS)

    rows = velocity(engine)
    assert rows.loc["steady", "score"] == rows.loc["urgent", "score"] == 100
    assert (rows.loc["steady", "change_7d"], rows.loc["steady", "change_14d"]) == (10, 20)
    assert (rows.loc["urgent", "change_7d"], rows.loc["urgent", "change_14d"]) == (45, 90)
    with engine.connect() as conn:
        ranked = hot_prospects(conn, T, size=10)
    assert list(ranked["prospect_id"]) == ["urgent", "steady"]


def test_seven_day_change_window_and_unknown_history(engine):
    add_prospects(engine, {"A": T - 30 * DAYS, "B": T - 30 * DAYS, "C": T - 3 * DAYS})
    snapshot_with_history(
        engine,
        T - 10 * DAYS,
        {
            "A": [(T - 30 * DAYS, 10), (T - 12 * DAYS, 30)],
            "B": [(T - 30 * DAYS, 50)],
        },
    )
    # Later daily snapshots; a change exactly at T-7d belongs to the previous week.
    scores_by_day = {
        T - 9 * DAYS: {"A": 30, "B": 50},
        T - 7 * DAYS: {"A": 35, "B": 50},  # A +5 at T-7d: outside (T-7d, T]
        T - 2 * DAYS: {"A": 47, "B": 44, "C": 15},  # A +12, B -6, C arrives with 15
        T: {"A": 50, "B": 44, "C": 15},  # A +3 at T itself: inside
    }
    for at, scores in scores_by_day.items():
        snapshot(engine, at, scores)
    refresh_velocity(engine, T, SETTINGS)

    rows = velocity(engine)
    assert rows.loc["A", "change_7d"] == 12 + 3
    assert rows.loc["A", "change_14d"] == 20 + 5 + 12 + 3  # the history change at T-12d counts
    assert rows.loc["B", "change_7d"] == -6
    assert rows.loc["C", "change_7d"] == 15  # new this week: its whole score arrived in the window
    assert list(rows["score"]) == [50, 44, 15]
    # first scored: from field history (A, B) or its first snapshot (C); history is known
    # throughout for A and B, so neither has a baseline
    assert list(rows["scored_since"]) == [T - 30 * DAYS, T - 30 * DAYS, T - 2 * DAYS]
    assert rows["known_since"].isna().all()


def test_change_before_the_store_began_is_unknown_not_zero(engine):
    """A Salesforce lead without field history: its first snapshot is a baseline."""
    add_prospects(engine, {"L": T - 60 * DAYS}, source="salesforce", object_name="Lead")
    for at, score in [(T - 10 * DAYS, 40), (T - 1 * DAYS, 48)]:
        snapshot(engine, at, {"L": score}, "salesforce", "Lead")
    refresh_velocity(engine, T, SETTINGS)
    refresh_velocity(engine, T - 4 * DAYS, SETTINGS)

    now, earlier = velocity(engine).loc["L"], velocity(engine, T - 4 * DAYS).loc["L"]
    assert now["change_7d"] == 8
    assert pd.isna(now["change_14d"])  # the window starts before the store knew the score
    assert pd.isna(earlier["change_7d"])  # (T-11d, T-4d] starts before the baseline too
    assert earlier["score"] == 40
    assert now["known_since"] == now["scored_since"] == T - 10 * DAYS  # the baseline


def test_a_score_gone_upstream_falls_to_zero_and_returns_from_zero(engine):
    """B is deleted upstream at T-3d; C is missing from T-5d's snapshot and back at T-2d."""
    add_prospects(engine, dict.fromkeys("ABC", T - 30 * DAYS))
    scores_by_day = {
        T - 10 * DAYS: {"A": 20, "B": 30, "C": 40},  # the store's first snapshot: baselines
        T - 5 * DAYS: {"A": 20, "B": 30},  # C's interval closes: -40
        T - 3 * DAYS: {"A": 25},  # A +5; B's interval closes: -30
        T - 2 * DAYS: {"A": 25, "C": 15},  # C opens again from zero after the gap: +15
    }
    for at, scores in scores_by_day.items():
        snapshot(engine, at, scores)
    refresh_velocity(engine, T, SETTINGS)

    rows = velocity(engine)
    assert list(rows["score"]) == [25, 0, 15]
    assert list(rows["change_7d"]) == [5, -30, -40 + 15]


def test_four_week_moving_average_leaves_out_new_prospects(engine):
    add_prospects(engine, {"A": T - 100 * DAYS, "B": T - 60 * DAYS, "C": T - 40 * DAYS, "N": T - 10 * DAYS})
    snapshot_with_history(
        engine,
        T,
        {
            "A": [(T - 100 * DAYS, 10), (T - 25 * DAYS, 20), (T - 10 * DAYS, 25), (T - 1 * DAYS, 20)],
            "B": [(T - 60 * DAYS, 5), (T - 20 * DAYS, 25), (T - 3 * DAYS, 45)],
            "C": [(T - 40 * DAYS, 5), (T - 8 * DAYS, 13)],
            "N": [(T - 10 * DAYS, 50), (T - 2 * DAYS, 80)],  # new: +30 this week, never counted
        },
    )
    summary = refresh_velocity(engine, T, SETTINGS)

    weeks = trend(engine)
    # week 1 (T-28d, T-21d]: A, B established (C created T-40d is < 4 weeks before T-21d): A +10
    # week 2 (T-21d, T-14d]: A, B: B +20
    # week 3 (T-14d, T-7d]:  A, B, C: A +5, C +8
    # week 4 (T-7d, T]:      A, B, C: A -5, B +20
    assert list(weeks["eligible_prospects"]) == [2, 2, 3, 3]
    assert list(weeks["net_change"]) == [10, 20, 13, 15]
    assert weeks["average_change"].tolist() == pytest.approx([5, 10, 13 / 3, 5])
    assert weeks["moving_average_4w"].isna().tolist() == [True, True, True, False]
    assert weeks["moving_average_4w"].iloc[-1] == pytest.approx((5 + 10 + 13 / 3 + 5) / 4)
    # Surges count prospects that existed before the week: B's +20s, and N's +30 in week 4
    # (N arrived in week 3: its first 50 points are arrival, not a rise).
    assert list(weeks["surging_prospects"]) == [0, 1, 0, 2]
    assert summary.surging_prospects == 2
    assert summary.moving_average_4w == pytest.approx(73 / 12)


def test_a_long_known_prospect_first_scored_this_week_is_no_rise(engine):
    # A is scored from the store's first snapshot (T-30d); B, created as long ago, first gets
    # a score this week: its 30 points are its arrival, not a surge, and it is not yet
    # established (scored by the week's start) for the week's average
    add_prospects(engine, {"A": T - 60 * DAYS, "B": T - 60 * DAYS})
    snapshot(engine, T - 30 * DAYS, {"A": 10.0})
    snapshot(engine, T - 2 * DAYS, {"A": 10.0, "B": 30.0})
    refresh_velocity(engine, T, SETTINGS)

    this_week = trend(engine).iloc[-1]
    assert (this_week["eligible_prospects"], this_week["net_change"], this_week["surging_prospects"]) == (
        1,
        0,
        0,
    )
    assert velocity(engine).loc["B", "change_7d"] == 30  # its own velocity still shows the arrival


def test_decay_is_a_derived_score(engine):
    add_prospects(engine, {"idle": T - 200 * DAYS, "active": T - 200 * DAYS, "faded": T - 200 * DAYS})
    snapshot_with_history(
        engine,
        T,
        {
            "idle": [(T - 200 * DAYS, 40), (T - 24 * DAYS, 30)],  # last increase T-200d? no: a drop
            "active": [(T - 200 * DAYS, 10), (T - 2 * DAYS, 60)],
            "faded": [(T - 70 * DAYS, 5)],
        },
    )
    settings = replace(SETTINGS, decay_points_per_idle_week=5, decay_grace_weeks=1)
    refresh_velocity(engine, T, settings)

    rows = velocity(engine)
    # idle: last increase at T-200d (the drop at T-24d is no activity): 28 idle weeks,
    # 27 past the grace week -> 30 - 135 -> floored at 0
    assert rows.loc["idle", "decayed_score"] == 0
    assert rows.loc["active", "decayed_score"] == 60  # increased 2 days ago
    # faded: 10 idle weeks since T-70d, 9 past grace -> 5 - 45 -> 0
    assert rows.loc["faded", "decayed_score"] == 0
    assert list(rows["score"]) == [60, 5, 30]  # the source score is untouched


def test_decay_counts_idle_weeks_after_the_grace(engine):
    add_prospects(engine, {"P": T - 100 * DAYS})
    snapshot_with_history(engine, T, {"P": [(T - 100 * DAYS, 10), (T - 24 * DAYS, 40)]})
    refresh_velocity(engine, T, replace(SETTINGS, decay_points_per_idle_week=5, decay_grace_weeks=1))
    # 24 idle days = 3 whole weeks; 2 past the grace week: 40 - 2 * 5
    assert velocity(engine).loc["P", "decayed_score"] == 30


def test_configured_model_change_is_not_interest(engine):
    change_day = (T - 4 * DAYS).date()
    add_prospects(engine, {"A": T - 90 * DAYS, "B": T - 90 * DAYS})
    rescored = datetime.combine(change_day, datetime.min.time()) + timedelta(hours=10)
    snapshot_with_history(
        engine,
        T,
        {
            "A": [(T - 90 * DAYS, 10), (rescored, 20), (T - 1 * DAYS, 23)],
            "B": [(T - 90 * DAYS, 50), (rescored, 60)],
        },
    )
    settings = replace(SETTINGS, model_changes=(ConfiguredModelChange(change_day, "new rules"),))
    summary = refresh_velocity(engine, T, settings)

    rows = velocity(engine)
    assert (rows.loc["A", "change_7d"], rows.loc["A", "model_change_points_14d"]) == (3, 10)
    assert (rows.loc["B", "change_7d"], rows.loc["B", "model_change_points_14d"]) == (0, 10)
    assert rows.loc["A", "score"] == 23  # the score itself includes the new rules' points
    assert trend(engine)["model_change_points"].iloc[-1] == 20
    assert summary.model_changes == [f"{change_day:%Y-%m-%d} 00:00 (configured): new rules"]


def test_a_jump_across_most_prospects_is_detected(engine):
    ids = {f"P{i}": T - 90 * DAYS for i in range(5)}
    add_prospects(engine, ids)
    jump = T - 3 * DAYS + timedelta(hours=10, minutes=5)
    history = {
        p: [(T - 90 * DAYS, 10), (jump + i * timedelta(minutes=1), 25)] for i, p in enumerate(list(ids)[:4])
    }
    history["P4"] = [(T - 90 * DAYS, 10), (T - 2 * DAYS, 40)]  # real interest, another day
    snapshot_with_history(engine, T, history)
    summary = refresh_velocity(engine, T, replace(SETTINGS, detect_share=0.5, detect_min_prospects=3))

    rows = velocity(engine)
    assert list(rows["change_7d"]) == [0, 0, 0, 0, 30]
    assert list(rows["model_change_points_14d"]) == [15, 15, 15, 15, 0]
    assert len(summary.model_changes) == 1 and "4 of 5 scored prospects (80%)" in summary.model_changes[0]


def test_hot_list_filters_by_region_and_carries_context(engine):
    add_prospects(
        engine,
        {"E1": T - 50 * DAYS},
        region="EMEA",
        lead_grade="A",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
    )
    add_prospects(engine, {"N1": T - 50 * DAYS}, region="NA", lead_grade="B")
    snapshot_with_history(
        engine,
        T,
        {"E1": [(T - 50 * DAYS, 5), (T - 1 * DAYS, 30)], "N1": [(T - 50 * DAYS, 5), (T - 2 * DAYS, 60)]},
    )
    refresh_velocity(engine, T, SETTINGS)
    with engine.connect() as conn:
        everyone = hot_prospects(conn, T, size=10)
        emea = hot_prospects(conn, T, size=10, scope=Scope("region", "EMEA"))

    assert list(everyone["prospect_id"]) == ["N1", "E1"]
    row = emea.iloc[0]
    assert len(emea) == 1
    assert (row["name"], row["company"], row["region"], row["lead_grade"]) == (
        "Ada Lovelace",
        "Analytical Engines",
        "EMEA",
        "A",
    )
    assert (row["change_7d"], row["owner"], row["source"]) == (25, "unassigned", "paid_search")
    assert row["last_activity_at"] == T - 1 * DAYS


def test_recomputing_velocity_replaces_the_same_as_of(engine):
    add_prospects(engine, {"A": T - 50 * DAYS})
    snapshot_with_history(engine, T, {"A": [(T - 50 * DAYS, 5), (T - 1 * DAYS, 30)]})
    refresh_velocity(engine, T, SETTINGS)
    first = velocity(engine)
    refresh_velocity(engine, T, SETTINGS)
    pd.testing.assert_frame_equal(velocity(engine), first)
    assert len(trend(engine)) == SETTINGS.trend_weeks


def test_settings_come_from_the_configuration():
    settings = VelocitySettings.from_config()
    assert settings.surge_points == 20 and settings.new_prospect_weeks == 4
    assert settings.model_changes[0].day == date(2026, 6, 1)


def refreshed(engine, as_of, settings, full=False) -> tuple[int, list[pd.DataFrame]]:
    """Refresh, then what it wrote: every score change, the hourly counts model-change
    detection reads, and velocity and trend as of `as_of`."""
    summary = refresh_velocity(engine, as_of, settings, full=full)
    with engine.connect() as conn:
        changes = read_frame(conn, "select prospect_id, changed_at, delta, kind from marts.score_changes")
        hours = read_frame(conn, "select hour, moved, arrived from marts.score_change_hours order by hour")
    changes = changes.sort_values(list(changes.columns), ignore_index=True)
    return summary.changes_rebuilt_for, [changes, hours, velocity(engine, as_of), trend(engine, as_of)]


def assert_daily_refresh_equals_full(engine, as_of, settings, rebuilt: int) -> None:
    """The daily refresh rebuilds `rebuilt` prospects, and writes what a full rebuild writes."""
    daily_rebuilt, daily = refreshed(engine, as_of, settings)
    everyone, full = refreshed(engine, as_of, settings, full=True)
    assert daily_rebuilt == rebuilt < everyone
    for written, expected in zip(daily, full, strict=True):
        pd.testing.assert_frame_equal(written, expected)


def test_a_daily_refresh_rebuilds_only_what_changed_and_equals_a_full_rebuild(engine):
    contacts = [f"C{i}" for i in range(6)]
    add_prospects(engine, dict.fromkeys(contacts, T - 60 * DAYS))
    scores = {c: 10.0 * i for i, c in enumerate(contacts)}
    snapshot(engine, T - 4 * DAYS, scores)
    assert refresh_velocity(engine, T - 4 * DAYS, SETTINGS).changes_rebuilt_for == 6  # the first: whole

    # C1 rises, C2 is deleted upstream (its interval closes): those two only
    scores = {**scores, "C1": 25.0}
    del scores["C2"]
    snapshot(engine, T - 3 * DAYS, scores)
    assert_daily_refresh_equals_full(engine, T - 3 * DAYS, SETTINGS, rebuilt=2)

    # staging excludes C4; a Salesforce lead starts its store (a baseline); C0 rises
    with engine.begin() as conn:
        conn.execute(sa.text("update staging.prospects set is_excluded = true where prospect_id = 'C4'"))
    add_prospects(engine, {"L9": T - 60 * DAYS}, source="salesforce", object_name="Lead")
    snapshot(engine, T - 2 * DAYS, {"L9": 5.0}, source="salesforce", object_name="Lead")
    scores = {**scores, "C0": 5.0}
    snapshot(engine, T - 2 * DAYS, scores)
    assert_daily_refresh_equals_full(engine, T - 2 * DAYS, SETTINGS, rebuilt=3)

    # most prospects move within one hour: a model change, its changes labelled 'model'
    detecting = replace(SETTINGS, detect_share=0.5, detect_min_prospects=3)
    scores = {c: score + 10 for c, score in scores.items()}
    snapshot(engine, T - 1 * DAYS, scores)
    assert_daily_refresh_equals_full(engine, T - 1 * DAYS, detecting, rebuilt=4)  # C4 is excluded

    # the next day the window is still marked, without rebuilding the prospects in it
    scores = {**scores, "C3": scores["C3"] + 3}
    snapshot(engine, T, scores)
    assert_daily_refresh_equals_full(engine, T, detecting, rebuilt=1)
    with engine.connect() as conn:
        kinds = read_frame(conn, "select kind, count(*) as n from marts.score_changes group by kind")
    assert dict(zip(kinds["kind"], kinds["n"], strict=True))["model"] == 4

    # a re-run of the latest snapshot rewrites intervals the refresh covered: whole again
    snapshot(engine, T, {**scores, "C3": scores["C3"] + 4})
    rebuilt, daily = refreshed(engine, T, detecting)
    assert rebuilt == 6  # every prospect with a score history that is not excluded (C4)
    _, full = refreshed(engine, T, detecting, full=True)
    for written, expected in zip(daily, full, strict=True):
        pd.testing.assert_frame_equal(written, expected)

    # a model change configured, then taken out again: its changes are interest once more
    rules = (ConfiguredModelChange((T - 3 * DAYS).date(), "rules v2"),)
    assert_daily_refresh_equals_full(engine, T, replace(detecting, model_changes=rules), rebuilt=0)
    assert_daily_refresh_equals_full(engine, T, detecting, rebuilt=0)


def test_a_build_that_moves_scored_records_between_prospects_is_followed_daily(engine):
    """A new staging build can change which scored record stands for a prospect with no new
    snapshot at all: a record split off to a prospect of its own (chosen anew there, no longer
    chosen where it was), or a newer record of the same CRM object merged in (chosen instead).
    The daily refresh must rebuild those prospects as a full rebuild would."""
    contacts = [f"C{i}" for i in range(4)]
    add_prospects(engine, dict.fromkeys(contacts, T - 60 * DAYS))
    # C1b is scored but belongs to no prospect yet
    snapshot(engine, T - 4 * DAYS, {"C0": 10.0, "C1": 20.0, "C2": 30.0, "C3": 40.0, "C1b": 70.0})
    refresh_velocity(engine, T - 4 * DAYS, SETTINGS)

    add_prospects(engine, {"P3": T - 60 * DAYS})
    with engine.begin() as conn:
        split = "update staging.prospect_identities set prospect_id = 'P3' where record_id = 'C3'"
        conn.execute(sa.text(split))
        conn.execute(sa.text("delete from staging.prospect_identities where record_id = 'P3'"))
        merged = (
            "insert into staging.prospect_identities (source, object, record_id, prospect_id, match_rule,"
            " cycle, created_at, channel, sub_channel) select source, object, 'C1b', prospect_id,"
            " match_rule, cycle, :newer, channel, sub_channel from staging.prospect_identities"
            " where record_id = 'C1'"
        )
        conn.execute(sa.text(merged), {"newer": T - 5 * DAYS})
    # C1 is scored from C1b now, C3 from nothing, P3 from C3's record
    assert_daily_refresh_equals_full(engine, T - 3 * DAYS, SETTINGS, rebuilt=3)
    assert set(velocity(engine, T - 3 * DAYS)["score"].items()) == {
        ("C0", 10.0),
        ("C1", 70.0),
        ("C2", 30.0),
        ("P3", 40.0),
    }


def test_hourly_counts_are_kept_up_to_date_and_rebuilt_where_missing(engine):
    contacts = [f"C{i}" for i in range(4)]
    add_prospects(engine, dict.fromkeys(contacts, T - 60 * DAYS))
    snapshot(engine, T - 2 * DAYS, {c: 10.0 for c in contacts})
    _, first = refreshed(engine, T - 2 * DAYS, SETTINGS)
    # every contact arrived in the store's first hour (baselines): nothing moved yet
    assert first[1][["moved", "arrived"]].to_dict("records") == [{"moved": 0, "arrived": 4}]

    # C1 and C2 rise the next day: two moved in that hour, two days of counts after a daily refresh
    snapshot(engine, T - 1 * DAYS, {**dict.fromkeys(contacts, 10.0), "C1": 15.0, "C2": 12.0})
    _, daily = refreshed(engine, T - 1 * DAYS, SETTINGS)
    assert daily[1][["moved", "arrived"]].to_dict("records") == [
        {"moved": 0, "arrived": 4},
        {"moved": 2, "arrived": 0},
    ]

    # a warehouse from before the counts were kept: the next refresh rebuilds the series whole
    with engine.begin() as conn:
        conn.execute(sa.text("delete from marts.score_change_hours"))
    snapshot(engine, T, {**dict.fromkeys(contacts, 10.0), "C1": 15.0, "C2": 12.0, "C3": 11.0})
    rebuilt, restored = refreshed(engine, T, SETTINGS)
    assert rebuilt == 4
    assert restored[1]["moved"].tolist() == [0, 2, 1]


def test_on_postgresql_velocity_is_planned_with_the_change_series_counted(tmp_path):
    """The change series is rewritten in the refresh's own transaction, then read by model
    changes, velocity and the trend. Planned without statistics, PostgreSQL took its group-by
    for 200 prospects and read the prospects one index lookup at a time (velocity 14.5 s at a
    million prospects, 8.3 s planned with them). When velocity runs, the series' estimate must
    count its rows, on the first refresh and on a daily one."""
    seen = estimates_when_planned(tmp_path, "insert into marts.score_velocity", "score_changes")
    # two versions a contact (5, then 10 + i): 80 changes; the next day ten more, 90
    assert [estimate for estimate, _ in seen] == [count for _, count in seen] == [80, 90]


def test_on_postgresql_the_trend_is_planned_with_the_days_velocity_counted(tmp_path):
    """Velocity writes a row per prospect for the day, which the trend then reads. Planned as
    if that day had one row, PostgreSQL sorted a million prospects on disk (the trend 11.8 to
    12.4 s, 8.8 to 9.2 s planned with the rows counted). When the trend runs, the velocity
    table's estimate must count the day just written, on the first refresh and the next day's."""
    seen = estimates_when_planned(tmp_path, "with bounds as", "score_velocity")
    assert [estimate for estimate, _ in seen] == [count for _, count in seen] == [40, 80]


def estimates_when_planned(tmp_path, statement_start: str, table: str) -> list[tuple]:
    """Two refreshes on PostgreSQL of 40 contacts (a first one, from field history, then the
    next day's, in which ten rise): before each statement that starts with `statement_start`,
    the planner's row estimate for `marts.<table>` and its actual count."""
    from revops.devtools.postgres import scratch_warehouse

    estimate_and_count = (
        f"select reltuples, (select count(*) from marts.{table}) from pg_class where relname = '{table}'"
    )
    contacts = [f"C{i}" for i in range(40)]
    history = {c: [(T - 30 * DAYS, 5.0), (T - 9 * DAYS, 10.0 + i)] for i, c in enumerate(contacts)}
    rises = {c: 30.0 for c in contacts[:10]}
    with scratch_warehouse("postgresql", tmp_path) as url:
        engine = get_engine(url)
        seen = probed_before(engine, statement_start, estimate_and_count)
        add_prospects(engine, dict.fromkeys(contacts, T - 60 * DAYS))
        snapshot_with_history(engine, T - DAYS, history)
        refresh_velocity(engine, T - DAYS, SETTINGS)
        snapshot(engine, T, {c: versions[-1][1] for c, versions in history.items()} | rises)
        refresh_velocity(engine, T, SETTINGS)
    return seen
