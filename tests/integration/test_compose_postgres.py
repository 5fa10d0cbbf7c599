"""docker-compose's postgres service, natively: the image runs deploy/postgres-init.sh once on
a new data directory; here it runs against a throwaway cluster of the machine's PostgreSQL,
with the environment the service gives it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from revops.devtools.ports import free_port
from revops.settings import PROJECT_ROOT

SERVICES = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
SERVICE = SERVICES["postgres"]
# Where the Airflow services look for the warehouse: the role and database the script makes.
WAREHOUSE = sa.engine.make_url(SERVICES["airflow-worker"]["environment"]["REVOPS_WAREHOUSE_URL"])
INIT_SCRIPT = PROJECT_ROOT / "deploy" / "postgres-init.sh"


def _server_command(program: str, *args: str | Path) -> None:
    """One of the machine's PostgreSQL programs. initdb and the server refuse to run as root:
    as root, they run as the postgres user."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*owner, binaries / program, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """A new cluster on its own socket and port, with the database the image creates before
    it runs its scripts. Yields the libpq environment that reaches it."""
    home = Path(tempfile.mkdtemp(prefix="revops-cluster-"))
    home.chmod(0o777)  # the server's user writes its data and socket here
    port, data = str(free_port()), home / "data"
    user, database = SERVICE["environment"]["POSTGRES_USER"], SERVICE["environment"]["POSTGRES_DB"]
    _server_command("initdb", "-D", data, "-U", user, "--auth=trust")
    options = f"-p {port} -k {home} -c listen_addresses=''"
    # The server's log to a file: a server writing to pg_ctl's pipe would keep it open.
    _server_command("pg_ctl", "-D", data, "-o", options, "-l", home / "server.log", "-w", "start")
    try:
        reach = {"PGHOST": str(home), "PGPORT": port}
        create = ["psql", "-U", user, "-d", "postgres", "-c", f"create database {database}"]
        subprocess.run(create, env={**os.environ, **reach}, check=True, capture_output=True)
        yield reach
    finally:
        _server_command("pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def warehouse(cluster) -> Iterator[sa.Connection]:
    """The init script run as the image runs it, then a connection to the warehouse database
    it creates, as the role the Airflow services use."""
    environment = {**os.environ, **cluster, **SERVICE["environment"], "POSTGRES_PASSWORD": "not-a-secret"}
    subprocess.run(["bash", INIT_SCRIPT], env=environment, check=True, capture_output=True)
    here = {"host": cluster["PGHOST"], "port": cluster["PGPORT"]}
    engine = sa.create_engine(WAREHOUSE.set(host=None, port=None, query=here))
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_the_init_script_creates_the_database_and_role_the_services_use(warehouse):
    owner = "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
    found = warehouse.execute(sa.text(f"select current_user, current_database(), ({owner})")).one()
    assert found == (WAREHOUSE.username, WAREHOUSE.database, WAREHOUSE.username)


def test_the_warehouse_plans_for_storage_without_seeks(warehouse):
    """random_page_cost 1.1 (the server's default is 4, for spinning disks): PostgreSQL then
    reads the indexes the KPI queries join on instead of hashing whole tables."""
    assert warehouse.execute(sa.text("show random_page_cost")).scalar_one() == "1.1"
