"""HubSpot extracts with hubspot-api-client: list paging, search windows, archived, associations.

- Full load: the list API with `after` paging (with `propertiesWithHistory` for the score
  and lifecycle stage, which backfills their history), then archived records.
- Incremental: the search API on the last-modified property, ascending. Search never pages
  past 10,000 results, so a window holding more is cut in two until each half fits; a
  window that cannot be cut further ends the extract as incomplete, never silently short.
- Archived records (search never returns them) come from the list API with archived=true.
- Contact-to-deal associations come from the v4 batch API for the contacts extracted.

Responses are read raw (`_preload_content=False`) so the payload lands exactly as sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest

from revops.configuration import read_config
from revops.extract.resilience import ExtractStopped, Retry, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubSpotSettings:
    """How to reach HubSpot; built from the `revops_hubspot` Airflow connection."""

    access_token: str
    host: str | None = None  # sandbox only: https://127.0.0.1:<port>
    ca_bundle: str | None = None  # sandbox only
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (10.0, 120.0)  # (connect, read) seconds per request

    @classmethod
    def from_connection(cls, conn: Any) -> HubSpotSettings:
        extra = conn.extra_dejson
        return cls(
            access_token=conn.password,
            host=extra.get("host") or None,
            ca_bundle=extra.get("ca_bundle"),
            retry=RetryPolicy(
                attempts=int(extra.get("retry_attempts", 5)),
                base_delay=float(extra.get("retry_base_seconds", 1.0)),
            ),
            timeout=(10.0, float(extra.get("read_timeout_seconds", 120.0))),
        )

    def __repr__(self) -> str:  # never print the token, even in a traceback
        return f"HubSpotSettings(host={self.host!r}, access_token='***')"


@dataclass(frozen=True)
class HubSpotObjectSpec:
    name: str
    watermark: str
    properties: tuple[str, ...]
    history: tuple[str, ...]
    associations: str | None


def object_specs() -> dict[str, HubSpotObjectSpec]:
    config = read_config("crm_objects")["hubspot"]["objects"]
    return {
        name: HubSpotObjectSpec(
            name,
            spec["watermark"],
            tuple(spec["properties"]),
            tuple(spec.get("history", [])),
            spec.get("associations"),
        )
        for name, spec in config.items()
    }


def hubspot_client(settings: HubSpotSettings) -> HubSpot:
    options: dict[str, Any] = {"access_token": settings.access_token}
    if settings.host:
        options["host"] = settings.host
    if settings.ca_bundle:
        options["ssl_ca_cert"] = settings.ca_bundle
    return HubSpot(**options)


def classify(error: Exception) -> Retry | None:
    """Which HubSpot errors are worth another try."""
    if isinstance(error, urllib3.exceptions.HTTPError):
        return Retry(f"connection problem ({type(error).__name__})")
    status = getattr(error, "status", None)
    if status is None:
        return Retry("malformed JSON in the response") if isinstance(error, json.JSONDecodeError) else None
    body = _json_or_empty(getattr(error, "body", None))
    if status == 429:
        if body.get("policyName") == "DAILY":
            raise ExtractStopped("HubSpot daily API limit reached") from error
        retry_after = (getattr(error, "headers", None) or {}).get("Retry-After")
        return Retry(
            f"rate limited ({body.get('policyName', 'unknown policy')})",
            after=float(retry_after) if retry_after else None,
        )
    if status == 401 and body.get("category") == "EXPIRED_AUTHENTICATION":
        return Retry("access token expired", after=0)
    if status == 0 or status >= 500:
        return Retry(f"server or connection error ({status})")
    return None


def _json_or_empty(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def epoch_ms(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(int(value.timestamp() * 1000))


def flatten(record: dict) -> dict:
    """One HubSpot object as a flat record: its properties beside id and timestamps."""
    flat = {
        "id": record["id"],
        "createdAt": record.get("createdAt"),
        "updatedAt": record.get("updatedAt"),
        "archived": record.get("archived", False),
        "archivedAt": record.get("archivedAt"),
        **(record.get("properties") or {}),
    }
    if record.get("propertiesWithHistory"):
        flat["propertiesWithHistory"] = record["propertiesWithHistory"]
    return flat


class HubSpotExtract:
    """Pages of one object type's records for a window."""

    def __init__(
        self,
        client: HubSpot,
        settings: HubSpotSettings,
        page_size: int = 100,
        search_page_size: int = 200,
        search_cap: int = 10_000,
    ):
        self.client = client
        self.settings = settings
        self.page_size = page_size
        self.search_page_size = search_page_size
        self.search_cap = search_cap

    def _call(self, call: Callable[[], Any], what: str) -> dict:
        def raw() -> dict:
            response = call()
            return json.loads(response.data)

        return call_with_retries(raw, classify, self.settings.retry, what)

    def _api(self, object_type: str):
        return getattr(self.client.crm, object_type)

    def list_pages(
        self, spec: HubSpotObjectSpec, archived: bool = False, with_history: bool = True
    ) -> Iterator[list[dict]]:
        """Every record (or every archived record) through the list API."""
        history = list(spec.history) if with_history and not archived else []
        limit = min(self.page_size, 50) if history else self.page_size
        after, page_number = None, 0
        while True:
            page_number += 1
            body = self._call(
                lambda a=after: self._api(spec.name).basic_api.get_page(
                    limit=limit,
                    after=a,
                    properties=list(spec.properties),
                    properties_with_history=history or None,
                    archived=archived,
                    _preload_content=False,
                    _request_timeout=self.settings.timeout,
                ),
                f"{spec.name} list page {page_number}",
            )
            if "results" not in body:
                raise ExtractStopped(f"{spec.name} list page {page_number}: no results in response")
            yield [flatten(r) for r in body["results"]]
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return

    def search_pages(self, spec: HubSpotObjectSpec, since: datetime, until: datetime) -> Iterator[list[dict]]:
        """Records modified in [since, until), cutting windows that exceed the search cap."""
        first = self._search(spec, since, until, after="0")
        total = int(first.get("total", 0))
        if total > self.search_cap:
            if until - since <= _SMALLEST_WINDOW:
                raise ExtractStopped(
                    f"{spec.name}: {total} records modified within {until - since}; "
                    f"search cannot page past {self.search_cap}"
                )
            middle = since + (until - since) / 2
            log.info(
                "%s: %d results in %s..%s exceed the search cap; splitting", spec.name, total, since, until
            )
            yield from self.search_pages(spec, since, middle)
            yield from self.search_pages(spec, middle, until)
            return
        body = first
        while True:
            yield [flatten(r) for r in body.get("results", [])]
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            body = self._search(spec, since, until, after=after)

    def _search(self, spec: HubSpotObjectSpec, since: datetime, until: datetime, after: str) -> dict:
        request = PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": spec.watermark, "operator": "GTE", "value": epoch_ms(since)},
                        {"propertyName": spec.watermark, "operator": "LT", "value": epoch_ms(until)},
                    ]
                }
            ],
            sorts=[{"propertyName": spec.watermark, "direction": "ASCENDING"}],
            properties=list(spec.properties),
            limit=self.search_page_size,
            after=after,
        )
        return self._call(
            lambda: self._api(spec.name).search_api.do_search(
                public_object_search_request=request,
                _preload_content=False,
                _request_timeout=self.settings.timeout,
            ),
            f"{spec.name} search {since:%Y-%m-%d %H:%M}..{until:%Y-%m-%d %H:%M} after {after}",
        )

    def associations(self, contact_ids: list[str], to_type: str) -> list[dict]:
        """One record per contact: the ids of its associated objects (empty list if none)."""
        found: dict[str, list[str]] = {c: [] for c in contact_ids}
        for start in range(0, len(contact_ids), 1000):
            chunk = contact_ids[start : start + 1000]
            body = self._call(
                lambda c=chunk: self.client.crm.associations.v4.batch_api.get_page(
                    from_object_type="contacts",
                    to_object_type=to_type,
                    batch_input_public_fetch_associations_batch_request={"inputs": [{"id": i} for i in c]},
                    _preload_content=False,
                    _request_timeout=self.settings.timeout,
                ),
                f"contact-{to_type} associations",
            )
            for result in body.get("results", []):
                found[str(result["from"]["id"])] = sorted(str(t["toObjectId"]) for t in result.get("to", []))
        return [{"contact_id": c, f"{to_type}_ids": ids} for c, ids in found.items()]


_SMALLEST_WINDOW = timedelta(seconds=1)
