"""
### KPIs
Computes every published KPI version for the recent weeks, months and fiscal quarters, for
each allowed dimension and each audience scope, into `marts.kpi_results` (each period
replaced atomically). Then p-chart control limits over every rate's weekly series, per
segment (`marts.kpi_control_limits`), and alerts: a KPI past its warning or escalation
level, or a segment outside its limits, is recorded once in `marts.alerts` and its owner is
told by e-mail and webhook. Runs when **revops_staging** changes; publishes
**revops_kpi_results**.
"""

from airflow.sdk import dag, task

from revops.dag_defaults import DEFAULT_ARGS, KPI_RESULTS, STAGING, START_DATE, TAGS
from revops.settings import WAREHOUSE_POOL


@dag(
    schedule=[STAGING],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "kpis"],
    doc_md=__doc__,
)
def revops_kpis():
    @task(outlets=[KPI_RESULTS], pool=WAREHOUSE_POOL)
    def compute_kpis(run_id=None):
        from revops import pipeline

        return pipeline.compute_kpi_horizon(run_id)

    @task(pool=WAREHOUSE_POOL)
    def update_control_limits(computed: dict, run_id=None):
        from revops import pipeline

        return pipeline.update_control_limits(run_id)

    @task(pool=WAREHOUSE_POOL)
    def raise_alerts(limits: dict, run_id=None):
        from revops import pipeline

        return pipeline.raise_alerts(run_id)

    @task(pool=WAREHOUSE_POOL)
    def record_audit(computed: dict, alerted: dict, run_id=None, dag=None):
        from revops import pipeline

        return pipeline.record_kpi_run(run_id, dag.dag_id, {**computed, "alerts": alerted})

    computed = compute_kpis()
    record_audit(computed, raise_alerts(update_control_limits(computed)))


revops_kpis()
