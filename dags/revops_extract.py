"""
### Extract CRM data
Lands each configured object as an append-only raw batch (`raw.extract_batches`,
`raw.records`): from the Salesforce and HubSpot APIs (incremental from a watermark, full the
first time) or from CSV exports, per `REVOPS_EXTRACT_SOURCES`. A source that is not switched
on shows as *skipped*. An extract that stops early fails its task and its batch is marked
incomplete, so **revops_raw_crm** is published (starting `revops_reconcile`) only when every
enabled extract of the run is complete.
"""

from airflow.sdk import (
    CronDataIntervalTimetable,
    TaskGroup,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from revops.configuration import read_config
from revops.dag_defaults import DEFAULT_ARGS, RAW_CRM, START_DATE, TAGS, context_interval
from revops.settings import CRM_API_CONCURRENCY, WAREHOUSE_POOL

CRM_OBJECTS = read_config("crm_objects")


def _skip_unless_enabled(source: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from revops import pipeline

    if not pipeline.source_enabled(source):
        raise AirflowSkipException(f"{source} is not in REVOPS_EXTRACT_SOURCES")


@task(pool=WAREHOUSE_POOL)
def extract_salesforce(object_name: str, run_id=None, data_interval_end=None):
    from revops import pipeline

    _skip_unless_enabled("salesforce")
    return pipeline.extract_salesforce(run_id, object_name, data_interval_end)


@task(pool=WAREHOUSE_POOL)
def extract_hubspot(object_name: str, run_id=None, data_interval_end=None):
    from revops import pipeline

    _skip_unless_enabled("hubspot")
    return pipeline.extract_hubspot(run_id, object_name, data_interval_end)


@task(pool=WAREHOUSE_POOL)
def extract_csv_exports(run_id=None):
    from revops import pipeline

    _skip_unless_enabled("csv")
    return pipeline.extract_csv_exports(run_id)


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    max_active_tasks=CRM_API_CONCURRENCY,  # concurrent API extracts stay within CRM quotas
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "extract"],
    doc_md=__doc__,
)
def revops_extract():
    extracts = []
    with TaskGroup("salesforce"):
        for name in CRM_OBJECTS["salesforce"]["objects"]:
            extracts.append(extract_salesforce.override(task_id=f"extract_{name.lower()}")(name))
    with TaskGroup("hubspot"):
        for name in CRM_OBJECTS["hubspot"]["objects"]:
            extracts.append(extract_hubspot.override(task_id=f"extract_{name}")(name))
    extracts.append(extract_csv_exports())

    @task(outlets=[RAW_CRM], trigger_rule=TriggerRule.NONE_FAILED)
    def publish_raw_batches(summaries: list):
        """Every enabled extract completed: let reconcile run on the new batches."""
        return [s for s in summaries if s]

    @task(pool=WAREHOUSE_POOL)
    def record_audit(published: list, run_id=None, dag=None, logical_date=None):
        from revops import pipeline

        interval = context_interval(get_current_context())
        return pipeline.record_pipeline_run(
            run_id, dag.dag_id, logical_date, interval, {"extracts": published}
        )

    record_audit(publish_raw_batches(extracts))


revops_extract()
