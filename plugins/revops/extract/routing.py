"""Send a client's HTTPS traffic to the local CRM sandbox instead of the vendor's hosts.

simple-salesforce always builds `https://login.salesforce.com/...` and
`https://<instance>/...` URLs. In sandbox mode its `requests.Session` gets this adapter,
which keeps the path and query but swaps the host for the sandbox's 127.0.0.1:port, and
trusts the sandbox's own certificate authority. Production sessions never get it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds


class TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: without one, a stuck server hangs an extract forever
    (simple-salesforce's Bulk 2.0 calls take no timeout argument)."""

    def __init__(self, timeout: tuple[float, float] = DEFAULT_TIMEOUT, **kwargs):
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class SandboxRouteAdapter(TimeoutAdapter):
    def __init__(self, target_host: str, ca_bundle: str, **kwargs):
        self.target_host = target_host
        self.ca_bundle = ca_bundle
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = urlunsplit((parts.scheme, self.target_host, parts.path, parts.query, ""))
        # REQUESTS_CA_BUNDLE in the environment would otherwise override session.verify.
        kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


def session_for(
    route_to: str | None, ca_bundle: str | None, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> requests.Session:
    """A requests session with timeouts; routed to the sandbox when `route_to` is given."""
    session = requests.Session()
    if route_to:
        if not ca_bundle:
            raise ValueError("routing to a sandbox needs its CA bundle (extra 'ca_bundle')")
        session.mount("https://", SandboxRouteAdapter(route_to, ca_bundle, timeout=timeout))
    else:
        session.mount("https://", TimeoutAdapter(timeout))
    return session
