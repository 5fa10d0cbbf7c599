"""
### Scorecard: {title}
Renders the **{audience}** scorecard ({grain}ly, scope: {scope}) for the period before each
run, archives the PDF under its sha256 and e-mails it to {recipients} recipient(s).
When the data is incomplete or stale it {on_incomplete}. Trigger with `dry_run: true` to
render and see what would be sent to whom, without sending.
Generated from `include/config/audiences.yaml`: one DAG per audience.
"""

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from revops.dag_defaults import DEFAULT_ARGS, START_DATE, TAGS, context_interval
from revops.scorecards.audiences import Audience, load_audiences
from revops.settings import WAREHOUSE_POOL


def scorecard_dag(audience: Audience):
    @dag(
        dag_id=f"revops_scorecard__{audience.name}",
        schedule=CronDataIntervalTimetable(audience.schedule, timezone=audience.timezone),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[*TAGS, "scorecard"],
        params={"dry_run": Param(False, type="boolean", description="Render, but send nothing")},
        doc_md=__doc__.format(
            title=audience.title,
            audience=audience.name,
            grain=audience.grain,
            scope=audience.scope.key,
            recipients=len(audience.recipients),
            on_incomplete={
                "hold": "holds the send and alerts the data engineers",
                "banner": "sends with an 'incomplete data' banner",
            }[audience.on_incomplete],
        ),
    )
    def scorecard():
        @task(pool=WAREHOUSE_POOL)
        def compute_kpis(run_id=None, data_interval_start=None):
            from revops import pipeline

            return pipeline.compute_scorecard_kpis(audience.name, run_id, data_interval_start)

        @task(pool=WAREHOUSE_POOL)
        def render_pdf(run_id=None, data_interval_start=None, data_interval_end=None):
            from revops import pipeline

            return pipeline.render_scorecard(audience.name, run_id, data_interval_start, data_interval_end)

        @task(pool=WAREHOUSE_POOL, retries=3)
        def email_pdf(rendered: dict, run_id=None, params=None, ti=None):
            from revops import pipeline

            final_try = ti.try_number > ti.max_tries
            return pipeline.send_scorecard(audience.name, run_id, rendered, params["dry_run"], final_try)

        @task(pool=WAREHOUSE_POOL)
        def record_audit(rendered: dict, delivered: dict, run_id=None, dag=None, logical_date=None):
            from revops import pipeline

            interval = context_interval(get_current_context())
            return pipeline.record_scorecard_run(
                audience.name, run_id, dag.dag_id, logical_date, interval, rendered, delivered
            )

        rendered = render_pdf()
        compute_kpis() >> rendered
        record_audit(rendered, email_pdf(rendered))

    return scorecard()


for configured in load_audiences().values():
    scorecard_dag(configured)
