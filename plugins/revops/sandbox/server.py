"""The sandbox's HTTPS server: routes, authentication, fault injection.

    with running_sandbox(world) as sandbox:
        sandbox.url, sandbox.ca_path, sandbox.credentials, sandbox.faults, sandbox.store

Run it alone with `python -m revops.sandbox.server --port 8443` (used by `make airflow` and
docker-compose).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

from revops.sandbox.faults import Fault, FaultPlan
from revops.sandbox.http import Request, Response, json_response
from revops.sandbox.hubspot_api import HubSpotApi, hs_error
from revops.sandbox.salesforce_api import SalesforceApi, sf_error
from revops.sandbox.store import SandboxStore
from revops.settings import HUBSPOT_CONN_ID, SALESFORCE_CONN_ID
from revops.synthetic.world import World

log = logging.getLogger(__name__)

VERSION = r"v(?P<version>\d+\.\d+)"


@dataclass(frozen=True)
class SandboxCredentials:
    """Random per sandbox, so a test can grep logs for them and find nothing."""

    salesforce_username: str
    salesforce_password: str
    salesforce_security_token: str
    salesforce_consumer_key: str
    salesforce_consumer_secret: str
    hubspot_access_token: str

    @classmethod
    def derived_from(cls, name: str) -> SandboxCredentials:
        """Fixed credentials for a shared trial (docker-compose's, whose Airflow connections
        in deploy/crm-sandbox.env use them). They guard fake data, so they are not secret."""
        return cls(
            salesforce_username="integration@revops-demo.com",
            salesforce_password=f"pw-{name}",
            salesforce_security_token=f"tok{name}",
            salesforce_consumer_key=f"3MVG9{name}",
            salesforce_consumer_secret=f"secret-{name}",
            hubspot_access_token=f"pat-na1-{name}",
        )

    @classmethod
    def generate(cls) -> SandboxCredentials:
        return cls(
            salesforce_username="integration@revops-demo.com",
            salesforce_password=f"pw-{secrets.token_hex(8)}",
            salesforce_security_token=f"tok{secrets.token_hex(8)}",
            salesforce_consumer_key=f"3MVG9{secrets.token_hex(12)}",
            salesforce_consumer_secret=secrets.token_hex(16),
            hubspot_access_token=f"pat-na1-{secrets.token_hex(16)}",
        )


class Sandbox:
    def __init__(self, store: SandboxStore, credentials: SandboxCredentials):
        self.store = store
        self.credentials = credentials
        self.faults = FaultPlan()
        self.calls: Counter[str] = Counter()
        self.salesforce = SalesforceApi(
            store,
            credentials.salesforce_username,
            credentials.salesforce_password,
            credentials.salesforce_security_token,
            credentials.salesforce_consumer_key,
            credentials.salesforce_consumer_secret,
        )
        self.hubspot = HubSpotApi(store, credentials.hubspot_access_token)
        self.url = ""
        self.ca_path = Path()
        self._routes = self._build_routes()

    def airflow_connections(self, retry_base_seconds: float = 0.2) -> dict[str, str]:
        """AIRFLOW_CONN_* values that point the connectors at this sandbox."""
        route = {"route_to": self.url.removeprefix("https://"), "ca_bundle": str(self.ca_path)}
        retry = {"retry_base_seconds": retry_base_seconds}
        credentials = self.credentials
        return {
            f"AIRFLOW_CONN_{SALESFORCE_CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "generic",
                    "login": credentials.salesforce_username,
                    "password": credentials.salesforce_password,
                    "extra": {
                        "security_token": credentials.salesforce_security_token,
                        "bulk_poll_seconds": 0.2,
                        **route,
                        **retry,
                    },
                }
            ),
            f"AIRFLOW_CONN_{HUBSPOT_CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "generic",
                    "password": credentials.hubspot_access_token,
                    "extra": {"host": self.url, "ca_bundle": str(self.ca_path), **retry},
                }
            ),
        }

    def _build_routes(self):
        sf, hs = self.salesforce, self.hubspot
        data = rf"^/services/data/{VERSION}"
        return [
            (
                "salesforce",
                "POST",
                r"^/services/Soap/u/(?P<version>\d+\.\d+)$",
                False,
                lambda r, m: sf.soap_login(r),
            ),
            ("salesforce", "POST", r"^/services/oauth2/token$", False, lambda r, m: sf.oauth_token(r)),
            (
                "salesforce",
                "GET",
                rf"{data}/(?P<kind>query|queryAll)/?$",
                True,
                lambda r, m: sf.query(r, m["version"], m["kind"] == "queryAll"),
            ),
            (
                "salesforce",
                "GET",
                rf"{data}/(?P<kind>query|queryAll)/(?P<cursor>01g\d+)-(?P<offset>\d+)$",
                True,
                lambda r, m: sf.query_more(
                    r, m["version"], m["cursor"], int(m["offset"]), m["kind"] == "queryAll"
                ),
            ),
            (
                "salesforce",
                "GET",
                rf"{data}/sobjects/(?P<object>\w+)/deleted/?$",
                True,
                lambda r, m: sf.deleted(r, m["object"]),
            ),
            ("salesforce", "POST", rf"{data}/jobs/query/?$", True, lambda r, m: sf.create_job(r)),
            (
                "salesforce",
                "GET",
                rf"{data}/jobs/query/(?P<job>750\d+)$",
                True,
                lambda r, m: sf.job_status(m["job"]),
            ),
            (
                "salesforce",
                "GET",
                rf"{data}/jobs/query/(?P<job>750\d+)/results$",
                True,
                lambda r, m: sf.job_results(r, m["job"]),
            ),
            (
                "hubspot",
                "GET",
                r"^/crm/v3/objects/(?P<type>contacts|deals)/?$",
                True,
                lambda r, m: hs.list_objects(r, m["type"]),
            ),
            (
                "hubspot",
                "POST",
                r"^/crm/v3/objects/(?P<type>contacts|deals)/search/?$",
                True,
                lambda r, m: hs.search(r, m["type"]),
            ),
            (
                "hubspot",
                "POST",
                r"^/crm/v4/associations/contacts/deals/batch/read/?$",
                True,
                lambda r, m: hs.contact_deal_associations(r),
            ),
        ]

    def handle(self, request: Request) -> Response | None:
        """The response to `request`; None means: drop the connection."""
        for system, method, pattern, needs_auth, handler in self._routes:
            match = re.match(pattern, request.path)
            if not match or method != request.method:
                continue
            self.calls[system] += 1
            fault = self.faults.next_fault(system, request.path)
            if fault is not None:
                faulted = self._apply(fault, system)
                if faulted is not self._PASS:
                    return faulted
            if needs_auth and not self._authorised(system, request):
                return self._unauthorised(system)
            return handler(request, match)
        return json_response(
            404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        )

    _PASS = Response(0, b"")

    def _authorised(self, system: str, request: Request) -> bool:
        api = self.salesforce if system == "salesforce" else self.hubspot
        return api.authorised(request)

    @staticmethod
    def _unauthorised(system: str) -> Response:
        if system == "salesforce":
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return hs_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")

    def _apply(self, fault: Fault, system: str) -> Response | None:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.action == "slow":
            time.sleep(fault.delay)
            return self._PASS
        if fault.action == "drop_connection":
            return None
        if fault.action == "server_error":
            if system == "salesforce":
                return sf_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
            return hs_error(500, "INTERNAL_ERROR", "Internal server error")
        if fault.action == "malformed_json":
            return Response(200, b'{"totalSize": 3, "done": fal', {"Content-Type": "application/json"})
        if fault.action == "expire_session":
            if system == "salesforce":
                self.salesforce.expire_sessions()
                return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return hs_error(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired 0 second(s) ago.",
            )
        if system == "salesforce":  # rate_limit and daily_quota look alike in Salesforce
            response = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            response.headers.update(headers)
            return response
        policy = "DAILY" if fault.action == "daily_quota" else "TEN_SECONDLY_ROLLING"
        response = hs_error(
            429,
            "RATE_LIMITS",
            f"You have reached your {policy.lower()} limit.",
            errorType="RATE_LIMIT",
            policyName=policy,
        )
        response.headers.update(headers)
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k: v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        response = self.server.sandbox.handle(request)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:
        log.debug("sandbox: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: Sandbox


@contextmanager
def running_sandbox(
    world: World,
    port: int = 0,
    credentials: SandboxCredentials | None = None,
    certificate_dir: Path | None = None,
    bind: str = "127.0.0.1",
    hostname: str = "127.0.0.1",
) -> Iterator[Sandbox]:
    """Serve `world` over HTTPS for the duration of the block, on `bind` (loopback unless a
    container needs it reachable), under the name `hostname` its certificate carries."""
    sandbox = Sandbox(SandboxStore.from_world(world), credentials or SandboxCredentials.generate())
    server = _Server((bind, port), _Handler)
    server.sandbox = sandbox
    with tempfile.TemporaryDirectory(prefix="revops-sandbox-") as scratch:
        directory = certificate_dir or Path(scratch)
        server.socket = _tls_context(directory, hostname).wrap_socket(server.socket, server_side=True)
        sandbox.ca_path = directory / "sandbox-ca.pem"
        sandbox.url = f"https://{hostname}:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, name="crm-sandbox", daemon=True)
        thread.start()
        try:
            yield sandbox
        finally:
            server.shutdown()
            server.server_close()


def _tls_context(directory: Path, hostname: str) -> ssl.SSLContext:
    """A throwaway certificate authority and a server certificate for `hostname` (and for
    127.0.0.1 and localhost)."""
    authority = trustme.CA(organization_name="revops CRM sandbox")
    directory.mkdir(parents=True, exist_ok=True)
    authority.cert_pem.write_to_path(str(directory / "sandbox-ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    names = dict.fromkeys(["127.0.0.1", "localhost", hostname])
    authority.issue_cert(*names).configure_cert(context)
    return context


def main() -> None:
    """Serve a generated world until interrupted; print how to connect."""
    from revops.synthetic.world import WorldConfig, generate_world

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--prospects", type=int, default=12_000)
    parser.add_argument("--certificate-dir", type=Path, default=Path("var/sandbox"))
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--hostname", default="127.0.0.1", help="the name clients use; on its certificate")
    parser.add_argument("--fixed-credentials", metavar="NAME", help="derive the credentials from NAME")
    parser.add_argument("--current", action="store_true", help="a world whose data reaches today")
    args = parser.parse_args()
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    config = WorldConfig(n_prospects=args.prospects, **({"as_of": today} if args.current else {}))
    credentials = SandboxCredentials.derived_from(args.fixed_credentials) if args.fixed_credentials else None
    world = generate_world(config)
    with running_sandbox(
        world, args.port, credentials, args.certificate_dir, bind=args.bind, hostname=args.hostname
    ) as sandbox:
        print(f"CRM sandbox at {sandbox.url} (CA: {sandbox.ca_path})", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
