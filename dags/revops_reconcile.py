"""
### Reconcile
Rebuilds the staging layer from the current raw batches in one transaction: typed values,
duplicates merged across Salesforce and HubSpot, test records excluded, lead sources mapped
to channels; bad records go to `staging.quarantine` with their reason. Runs when
**revops_raw_crm** changes; publishes **revops_staging**.
"""

from airflow.sdk import dag, task

from revops.dag_defaults import DEFAULT_ARGS, RAW_CRM, STAGING, START_DATE, TAGS
from revops.settings import WAREHOUSE_POOL


@dag(
    schedule=[RAW_CRM],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "reconcile"],
    doc_md=__doc__,
)
def revops_reconcile():
    @task(outlets=[STAGING], pool=WAREHOUSE_POOL)
    def build_staging(run_id=None):
        from revops import pipeline

        return pipeline.reconcile(run_id)

    @task(pool=WAREHOUSE_POOL)
    def record_audit(build: dict, run_id=None, dag=None):
        from revops import pipeline

        return pipeline.record_pipeline_run(run_id, dag.dag_id, None, (None, None), build)

    record_audit(build_staging())


revops_reconcile()
