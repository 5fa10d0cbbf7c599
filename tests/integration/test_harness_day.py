"""The harness's daily run: the score snapshot DAG's next day moves 1% of each object's scores
and the velocity refresh rebuilds only the prospects they belong to."""

import sqlalchemy as sa

from benchmarks.harness import stage_daily_snapshot, stage_snapshots, write_score_captures
from revops.snapshots.store import scores_as_of
from tests.helpers import stage


def test_the_next_day_moves_a_hundredth_of_each_objects_scores_and_rebuilds_only_theirs(
    small_world, small_exports, tmp_path
):
    engine, _ = stage(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", small_exports)
    write_score_captures(small_world, tmp_path / "scores")
    first = stage_snapshots(tmp_path)

    day = stage_daily_snapshot(tmp_path)

    with engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "select source, object, snapshot_at, scores_changed from snapshots.snapshot_runs"
                " where snapshot_at = (select max(snapshot_at) from snapshots.snapshot_runs)"
            )
        ).all()
        scored = scores_as_of(conn, runs[0].snapshot_at)
    assert {(r.source, r.object) for r in runs} == {("salesforce", "Lead"), ("hubspot", "contacts")}
    opened = sum(r.scores_changed for r in runs)
    assert opened == day["rows"]  # each moved score opened one interval that day
    assert 0.004 < opened / scored["score"].notna().sum() < 0.02  # about 1%
    assert 0 < day["prospects_rebuilt"] <= opened < first["prospects_scored"] / 10
