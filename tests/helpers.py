"""Small helpers the tests share: sandbox settings, landing CSV exports, building staging."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import sqlalchemy as sa

from revops.extract.csv_source import csv_batches
from revops.extract.hubspot import HubSpotSettings
from revops.extract.landing import BatchSpec, BatchWriter, land_snapshot
from revops.extract.resilience import RetryPolicy
from revops.extract.salesforce import SalesforceSettings
from revops.reconcile.build import BuildResult, build_staging
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import builds, prospect_identities, prospects

FAST = RetryPolicy(attempts=4, base_delay=0.01)  # retries without the production back-off


def salesforce_settings(sandbox, **changes) -> SalesforceSettings:
    """Settings that reach the CRM sandbox, as a connection would give them."""
    c = sandbox.credentials
    values = dict(
        username=c.salesforce_username,
        password=c.salesforce_password,
        security_token=c.salesforce_security_token,
        route_to=sandbox.url.removeprefix("https://"),
        ca_bundle=str(sandbox.ca_path),
        retry=FAST,
        bulk_poll_seconds=0.01,
    )
    return SalesforceSettings(**{**values, **changes})


def hubspot_settings(sandbox, **changes) -> HubSpotSettings:
    values = dict(
        access_token=sandbox.credentials.hubspot_access_token,
        host=sandbox.url,
        ca_bundle=str(sandbox.ca_path),
        retry=FAST,
    )
    return HubSpotSettings(**{**values, **changes})


def land_exports(engine: sa.Engine, exports: Path, run_id: str = "test-run") -> list:
    return [land_snapshot(engine, spec, records, run_id) for spec, records in csv_batches(exports)]


def land_increment(
    engine: sa.Engine,
    source: str,
    object_name: str,
    records: list[dict],
    window: tuple[datetime, datetime],
    run_id: str,
    origin: str = "test",
) -> None:
    """Land `records` of a CRM object as one complete incremental batch for `window`, keyed
    as the connectors key them (Salesforce by Id, with IsDeleted; HubSpot by hs_object_id)."""
    id_field = "hs_object_id" if source == "hubspot" else "Id"
    deleted = "IsDeleted" if source == "salesforce" else None
    spec = BatchSpec(source, object_name, "incremental", *window, origin, id_field, None, deleted)
    writer = BatchWriter(engine, spec, run_id)
    writer.write_page(records)
    writer.complete(high_water=None)


def stage(url: str, exports: Path, run_id: str = "test-run") -> tuple[sa.Engine, BuildResult]:
    engine = get_engine(url)
    land_exports(engine, exports, run_id)
    return engine, build_staging(engine, run_id)


def table(engine: sa.Engine, name: str, order_by: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"select * from {name} order by {order_by}"), conn)


@contextmanager
def webhook_receiver(status: int = 200):
    """A local HTTP endpoint that records what is POSTed to it (a Slack-style webhook)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = SimpleNamespace(
        url=f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts", received=received, status=status
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def add_prospects(engine, created: Mapping[str, datetime], source="hubspot", object_name="contacts", **extra):
    """One prospect per record (record id = prospect id), as reconcile would write them:
    staging for score velocity, which reads prospects and their identities."""
    ids = list(created)
    common = {"channel": "paid_search", "sub_channel": "none"}
    with engine.begin() as conn:
        append_frame(
            conn,
            prospects,
            pd.DataFrame(
                {
                    "prospect_id": ids,
                    "created_at": list(created.values()),
                    "record_count": 1,
                    "is_excluded": False,
                    **common,
                    **extra,
                }
            ),
        )
        append_frame(
            conn,
            prospect_identities,
            pd.DataFrame(
                {
                    "source": source,
                    "object": object_name,
                    "record_id": ids,
                    "prospect_id": ids,
                    "match_rule": "email",
                    "cycle": 1,
                    "created_at": list(created.values()),
                    **common,
                }
            ),
        )


def record_build(
    conn: sa.Connection, data_cutoff: datetime, build_id: str = "b1", built_at: datetime | None = None
) -> None:
    """A staging build row, for tests that write staging tables by hand: the KPI engine
    reads the newest build's id and data cut-off."""
    row = {"build_id": build_id, "data_cutoff": data_cutoff, "batch_ids": "[]", "summary": "{}"}
    append_frame(conn, builds, pd.DataFrame([{**row, "built_at": built_at or data_cutoff}]))


def row_estimate(conn: sa.Connection, table: str) -> float:
    """PostgreSQL's row count estimate for a table (`reltuples`): -1 until it is analysed, and
    the exact count once analysed while smaller than ANALYZE's sample."""
    estimate = "select reltuples from pg_class where oid = cast(:name as regclass)"
    return conn.execute(sa.text(estimate), {"name": table}).scalar_one()


def probed_before(engine: sa.Engine, statement_start: str, probe: str) -> list[tuple]:
    """The row `probe` returns just before each statement that starts with `statement_start`,
    on that statement's connection and inside its transaction (filled as they run): what
    PostgreSQL knew when it planned that statement, say a table's row estimate."""
    seen: list[tuple] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def run_probe(conn, cursor, statement, *_):
        if statement.lstrip().startswith(statement_start):
            probe_cursor = cursor.connection.cursor()
            probe_cursor.execute(probe)
            seen.append(probe_cursor.fetchone())

    return seen
