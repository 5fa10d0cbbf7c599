"""Airflow as production runs it, natively: the Celery executor with Redis as the broker,
PostgreSQL for Airflow's metadata and for the warehouse, and every component as its own
process (API server, scheduler, DAG processor, Celery worker). docker-compose.yml runs the
same parts in containers; this runs them on this machine, for the production test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from revops.devtools.ports import free_port
from revops.settings import WAREHOUSE_POOL, airflow_environment

REDIS_URL = os.environ.get("REVOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
COMPONENTS = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "celery-worker": ["celery", "worker", "--concurrency", "2"],
}


@dataclass
class ProductionStack:
    home: Path
    env: dict[str, str]
    base_url: str

    def airflow(self, *args: str) -> str:
        """Run an `airflow` CLI command against this stack; returns its stdout."""
        result = subprocess.run(
            [_airflow(), *args], env=self.env, check=True, capture_output=True, text=True, timeout=300
        )
        return result.stdout

    def wait_for_run(self, dag_id: str, timeout: float = 600, after_state: str = "success") -> dict:
        """The first run of `dag_id` to finish; raises if it failed or none finished in time."""
        deadline = time.monotonic() + timeout
        metadata = sa.create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=NullPool)
        query = sa.text(
            "select run_id, state from dag_run where dag_id = :d and state in ('success', 'failed') "
            "order by end_date limit 1"
        )
        while time.monotonic() < deadline:
            with metadata.connect() as conn:
                run = conn.execute(query, {"d": dag_id}).mappings().first()
            if run:
                if run["state"] != after_state:
                    raise RuntimeError(f"{dag_id} run {run['run_id']} {run['state']}: logs in {self.home}")
                return dict(run)
            time.sleep(3)

        raise TimeoutError(f"no run of {dag_id} finished within {timeout:.0f} s; logs in {self.home}")

    def unpause(self, dag_id: str, timeout: float = 180) -> None:
        """Unpause a DAG once the DAG processor has parsed it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.airflow("dags", "unpause", dag_id)
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def log(self, component: str) -> str:

        return (self.home / f"{component}.log").read_text(errors="replace")


@contextmanager
def production_stack(
    home: Path, metadata_url: str, warehouse_url: str, extra_env: dict[str, str]
) -> Iterator[ProductionStack]:
    """Start the four components against PostgreSQL and Redis; stop them on exit."""
    ensure_redis()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **airflow_environment(home),
        **extra_env,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "revops-production-test-only",
        "AIRFLOW__API__SECRET_KEY": "revops-production-test-only",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "REVOPS_WAREHOUSE_URL": warehouse_url,
    }
    _run(env, "db", "migrate")
    _run(env, "pools", "set", WAREHOUSE_POOL, "4", "Warehouse writers (PostgreSQL takes several)")
    with ExitStack() as stack:
        for name, arguments in COMPONENTS.items():
            stack.enter_context(_process(name, [a.format(port=port) for a in arguments], env, home))
        wait_until_healthy(base_url, home)
        yield ProductionStack(home, env, base_url)


@contextmanager
def _process(name: str, arguments: list[str], env: dict[str, str], home: Path) -> Iterator[None]:
    log = (home / f"{name}.log").open("w")
    process = subprocess.Popen([_airflow(), *arguments], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def ensure_redis(url: str = REDIS_URL, wait_seconds: float = 20) -> None:
    """Use the Redis on loopback, or start one (it keeps nothing on disk)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
        return
    except redis.ConnectionError:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError(f"Redis is not reachable at {url} and redis-server is not installed") from None
        port = str(client.connection_pool.connection_kwargs["port"])
        subprocess.Popen([server, "--port", port, "--save", ""])

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.3)
    raise RuntimeError(f"Redis did not come up at {url}")


def wait_until_healthy(
    base_url: str, logs: Path, process: subprocess.Popen | None = None, timeout: float = 180
) -> None:
    """Wait for an Airflow API server's health endpoint; fail early if its process exits."""
    url, deadline = f"{base_url}/api/v2/monitor/health", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the API server exited; logs in {logs}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer; logs in {logs}")


def _run(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([_airflow(), *args], env=env, capture_output=True, text=True, timeout=600)
    if result.returncode:
        raise RuntimeError(f"airflow {' '.join(args)} failed: {result.stderr[-3000:]}")


def _airflow() -> str:

    return str(Path(sys.executable).with_name("airflow"))
