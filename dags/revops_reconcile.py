"""
### Reconcile
Brings the staging layer up to date with the current raw batches in one transaction: typed values
(local times in their configured zones), duplicates merged across Salesforce and HubSpot
(e-mail, then name and company), clock skew corrected, test and internal records excluded,
lead sources mapped to channels, one stage timeline per prospect. Bad records go to
`staging.quarantine` with their reason; the data-quality summary is in the task log.
When only new increments arrived, only what they touch is re-reconciled (the same tables as a
full build); trigger with `full_rebuild: true` to rebuild staging whole.

Then each data-quality check runs as its own task (`include/config/data_quality.yaml`).
A check of severity *fail* fails its task, and **revops_staging** (which starts
`revops_kpis`) is only published when none failed. Runs when **revops_raw_crm** changes.
"""

from airflow.sdk import Param, dag, task

from revops.configuration import read_config
from revops.dag_defaults import DEFAULT_ARGS, RAW_CRM, STAGING, START_DATE, TAGS
from revops.settings import WAREHOUSE_POOL

CHECKS = list(read_config("data_quality")["checks"])


@task(pool=WAREHOUSE_POOL, retries=0)  # a failed check is a finding, not a glitch to retry
def check(check_name: str, dag_run=None):
    from revops import pipeline

    return pipeline.check_quality(check_name, dag_run.run_after)


@dag(
    schedule=[RAW_CRM],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "reconcile"],
    doc_md=__doc__,
    params={"full_rebuild": Param(False, type="boolean", description="Rebuild staging whole")},
)
def revops_reconcile():
    @task(pool=WAREHOUSE_POOL)
    def build_staging(run_id=None, params=None):
        from revops import pipeline

        return pipeline.reconcile(run_id, full=params["full_rebuild"])

    @task(outlets=[STAGING])
    def publish_staging(build: dict, checks: list):
        """Every check passed or only warned: let the KPIs run on this build."""
        return {"build_id": build["build_id"], "checks": {c["check"]: c["status"] for c in checks}}

    @task(pool=WAREHOUSE_POOL)
    def record_audit(published: dict, build: dict, run_id=None, dag=None):
        from revops import pipeline

        return pipeline.record_pipeline_run(
            run_id, dag.dag_id, None, (None, None), {**build, "quality_checks": published["checks"]}
        )

    build = build_staging()
    results = [check.override(task_id=f"check_{name}")(name) for name in CHECKS]
    for result in results:
        build >> result
    record_audit(publish_staging(build, results), build)


revops_reconcile()
