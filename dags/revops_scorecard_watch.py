"""
### Late scorecard watch
Hourly: alerts the data engineers, once per scorecard, when an audience's newest scheduled
scorecard has not been sent (or held, or failed) within its `deliver_within_hours`
(`include/config/audiences.yaml`). It catches what the scorecard DAGs cannot report
themselves: a run stuck in the queue, a paused DAG, a scheduler that was down. Each report
is a `late_scorecard` entry in the audit ledger.
"""

from airflow.sdk import dag, task

from revops.dag_defaults import DEFAULT_ARGS, START_DATE, TAGS


@dag(
    schedule="5 * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "scorecard"],
    doc_md=__doc__,
)
def revops_scorecard_watch():
    @task
    def alert_on_late_scorecards(dag=None, data_interval_end=None):
        from revops import pipeline

        return pipeline.alert_late_scorecards(dag.dag_id, data_interval_end)

    alert_on_late_scorecards()


revops_scorecard_watch()
