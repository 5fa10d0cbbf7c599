"""A DAG that always fails, for testing that the audit listener records failures. Only the
test Airflow sees this folder (a second DAG bundle, set up in tests/conftest.py)."""

from datetime import timedelta

from airflow.sdk import dag, task


@dag(dag_id="revops_test_failing", schedule=None, catchup=False, tags=["test"])
def failing():
    @task(retries=1, retry_delay=timedelta(0))
    def breaks():
        raise ValueError("the CRM said no")

    breaks()


failing()
