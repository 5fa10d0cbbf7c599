"""
### Retention
Purges raw extract batches older than `raw_extract_days` and days of score velocity older
than `score_velocity_days` (`include/config/retention.yaml`), except today's (the newest
staging build's batches, the newest velocity day) and what any scorecard sent within
`reproducible_days` needs to be reproduced. Older scorecards that lose their inputs are
named in a `retention` ledger entry as no longer reproducible. Daily, after midnight UTC.
"""

from airflow.sdk import dag, task

from revops.dag_defaults import DEFAULT_ARGS, START_DATE, TAGS
from revops.settings import WAREHOUSE_POOL


@dag(
    schedule="30 2 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "audit"],
    doc_md=__doc__,
)
def revops_retention():
    @task(pool=WAREHOUSE_POOL)
    def apply_retention(run_id=None, dag=None, data_interval_end=None):
        from revops import pipeline

        return pipeline.apply_retention(run_id, dag.dag_id, data_interval_end)

    apply_retention()


revops_retention()
