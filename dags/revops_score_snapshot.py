"""
### Lead score snapshot and velocity
Once a day, pulls the score of every live Salesforce lead and HubSpot contact (a narrow full
pull: score recalculations do not touch last-modified) into the change-only score history
(`snapshots.score_intervals`); the first snapshot backfills field history. Then rebuilds the
score changes of the prospects the day touched, marks scoring-model changes, computes
velocity as of the snapshot (`marts.score_velocity`, `marts.engagement_trend`) and writes the
hot-prospect list as CSV
(everyone, and per region) under the archive. Re-running a day replaces that day's snapshot.
"""

from airflow.sdk import CronDataIntervalTimetable, TriggerRule, dag, get_current_context, task

from revops.dag_defaults import DEFAULT_ARGS, START_DATE, TAGS, context_interval
from revops.settings import WAREHOUSE_POOL


@task(pool=WAREHOUSE_POOL)
def snapshot_scores(source: str, run_id=None, data_interval_end=None):
    from airflow.sdk.exceptions import AirflowSkipException

    from revops import pipeline

    if not pipeline.source_enabled(source):
        raise AirflowSkipException(f"{source} is not in REVOPS_EXTRACT_SOURCES")
    return pipeline.snapshot_scores(source, run_id, data_interval_end)


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # snapshots are applied in time order
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "scores"],
    doc_md=__doc__,
)
def revops_score_snapshot():
    snapshots = [
        snapshot_scores.override(task_id=f"snapshot_{source}_scores")(source)
        for source in ("salesforce", "hubspot")
    ]

    @task(pool=WAREHOUSE_POOL, trigger_rule=TriggerRule.NONE_FAILED)
    def compute_velocity(snapshots: list, data_interval_end=None):
        from revops import pipeline

        return pipeline.compute_score_velocity(data_interval_end)

    @task(pool=WAREHOUSE_POOL)
    def export_hot_prospects(velocity: dict, data_interval_end=None):
        from revops import pipeline

        return pipeline.export_hot_prospects(data_interval_end)

    @task(pool=WAREHOUSE_POOL)
    def record_audit(
        snapshots: list, velocity: dict, exported: dict, run_id=None, dag=None, logical_date=None
    ):
        from revops import pipeline

        details = {"snapshots": [s for s in snapshots if s], "velocity": velocity, "hot_prospects": exported}
        interval = context_interval(get_current_context())
        return pipeline.record_pipeline_run(run_id, dag.dag_id, logical_date, interval, details)

    velocity = compute_velocity(snapshots)
    record_audit(snapshots, velocity, export_hot_prospects(velocity))


revops_score_snapshot()
