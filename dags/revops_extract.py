"""
### Extract CRM data
Lands the CRM exports as append-only raw batches (`raw.extract_batches`, `raw.records`),
one batch per object, each with its record count and sha256. Identical data lands once, so
a re-run never duplicates. Publishes **revops_raw_crm**, which starts `revops_reconcile`.
"""

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from revops.dag_defaults import DEFAULT_ARGS, RAW_CRM, START_DATE, TAGS, context_interval
from revops.settings import WAREHOUSE_POOL


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "extract"],
    doc_md=__doc__,
)
def revops_extract():
    @task(outlets=[RAW_CRM], pool=WAREHOUSE_POOL)
    def extract_csv_exports(run_id=None):
        from revops import pipeline

        return pipeline.extract_csv_exports(run_id)

    @task(pool=WAREHOUSE_POOL)
    def record_audit(extracted: dict, run_id=None, dag=None, logical_date=None):
        from revops import pipeline

        interval = context_interval(get_current_context())
        return pipeline.record_pipeline_run(run_id, dag.dag_id, logical_date, interval, extracted)

    record_audit(extract_csv_exports())


revops_extract()
