"""Salesforce extracts with simple-salesforce: REST query paging or Bulk API 2.0.

Per object: count the changed records (queryAll, so deletions and merges are included),
then page through them with REST `query`/`query_more`, or run a Bulk 2.0 `queryAll` job when
there are more than `bulk_threshold`. Every page goes through retries (rate limits honour
`Retry-After`; an expired session logs in again once) and lands in the raw layer as it
arrives.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from revops.configuration import read_config
from revops.extract.resilience import ExtractStopped, Retry, RetryPolicy, call_with_retries
from revops.extract.routing import session_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SalesforceSettings:
    """How to reach Salesforce; built from the `revops_salesforce` Airflow connection."""

    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    domain: str = "login"
    instance_url: str | None = None
    session_id: str | None = None
    api_version: str = "59.0"
    route_to: str | None = None  # sandbox only: host:port all HTTPS traffic goes to
    ca_bundle: str | None = None  # sandbox only: its certificate authority
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    bulk_poll_seconds: float = 5.0
    timeout: tuple[float, float] = (10.0, 120.0)  # (connect, read) seconds per request

    @classmethod
    def from_connection(cls, conn: Any) -> SalesforceSettings:
        extra = conn.extra_dejson
        return cls(
            username=conn.login or None,
            password=conn.password or None,
            security_token=extra.get("security_token"),
            consumer_key=extra.get("consumer_key"),
            consumer_secret=extra.get("consumer_secret"),
            domain=extra.get("domain", "login"),
            instance_url=extra.get("instance_url"),
            session_id=extra.get("session_id"),
            api_version=str(extra.get("api_version", "59.0")),
            route_to=extra.get("route_to"),
            ca_bundle=extra.get("ca_bundle"),
            retry=RetryPolicy(
                attempts=int(extra.get("retry_attempts", 5)),
                base_delay=float(extra.get("retry_base_seconds", 1.0)),
            ),
            bulk_poll_seconds=float(extra.get("bulk_poll_seconds", 5.0)),
            timeout=(10.0, float(extra.get("read_timeout_seconds", 120.0))),
        )

    def __repr__(self) -> str:  # never print secrets, even in a traceback
        return f"SalesforceSettings(username={self.username!r}, domain={self.domain!r}, ...)"


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    watermark: str
    fields: tuple[str, ...]


def object_specs() -> dict[str, ObjectSpec]:
    config = read_config("crm_objects")["salesforce"]["objects"]
    return {name: ObjectSpec(name, spec["watermark"], tuple(spec["fields"])) for name, spec in config.items()}


class SalesforceClient:
    """A logged-in simple-salesforce client that can log in again when its session expires."""

    def __init__(self, settings: SalesforceSettings):
        self.settings = settings
        self.session = session_for(settings.route_to, settings.ca_bundle, settings.timeout)
        self.last_retry_after: float | None = None
        self.session.hooks["response"].append(self._remember_retry_after)
        self.sf = self._login()
        self.relogins = 0

    def _login(self) -> Salesforce:
        s = self.settings
        common = {"session": self.session, "version": s.api_version}
        if s.session_id and s.instance_url:
            return Salesforce(instance_url=s.instance_url, session_id=s.session_id, **common)
        if s.consumer_key and s.consumer_secret:
            return Salesforce(
                username=s.username,
                password=s.password,
                consumer_key=s.consumer_key,
                consumer_secret=s.consumer_secret,
                domain=s.domain,
                **common,
            )
        return Salesforce(
            username=s.username,
            password=s.password,
            security_token=s.security_token,
            domain=s.domain,
            **common,
        )

    def relogin(self) -> None:
        """Log in again once per extract; a second expiry in one extract is a real problem."""
        if self.relogins >= 1 or not (self.settings.username and self.settings.password):
            raise ExtractStopped("Salesforce session expired and cannot be renewed")
        self.relogins += 1
        log.warning("Salesforce session expired: logging in again")
        self.sf = self._login()

    def _remember_retry_after(self, response: requests.Response, *args, **kwargs) -> None:
        header = response.headers.get("Retry-After")
        self.last_retry_after = float(header) if header else None

    def classify(self, error: Exception) -> Retry | None:
        """Which errors are worth another try (simple-salesforce itself never retries)."""
        if isinstance(error, SalesforceExpiredSession):
            self.relogin()
            return Retry("session expired, logged in again", after=0)
        if isinstance(error, SalesforceRefusedRequest) and b"REQUEST_LIMIT_EXCEEDED" in _content(error):
            return Retry("API request limit exceeded", after=self.last_retry_after)
        if isinstance(error, SalesforceGeneralError) and error.status >= 500:
            return Retry(f"server error {error.status}")
        if isinstance(error, (requests.ConnectionError, requests.Timeout)):
            return Retry(f"connection problem ({type(error).__name__})")
        if isinstance(error, json.JSONDecodeError):
            return Retry("malformed JSON in the response")
        return None


def _content(error: Exception) -> bytes:
    content = getattr(error, "content", b"")
    return content if isinstance(content, bytes) else json.dumps(content).encode()


def soql_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_condition(spec: ObjectSpec, since: datetime | None, until: datetime) -> str:
    """`>=` the window start (records sharing the watermark's timestamp are not skipped)."""
    condition = f"{spec.watermark} < {soql_datetime(until)}"
    if since is not None:
        condition = f"{spec.watermark} >= {soql_datetime(since)} AND {condition}"
    return condition


class SalesforceExtract:
    """Pages of one object's records changed in a window, by REST or Bulk 2.0."""

    def __init__(self, client: SalesforceClient, page_size: int, bulk_threshold: int, bulk_page_size: int):
        self.client = client
        self.page_size = page_size
        self.bulk_threshold = bulk_threshold
        self.bulk_page_size = bulk_page_size
        self.method = "rest"

    def _retry(self, call, what: str):
        return call_with_retries(call, self.client.classify, self.client.settings.retry, what)

    def count(self, spec: ObjectSpec, condition: str) -> int:
        soql = f"SELECT COUNT() FROM {spec.name} WHERE {condition}"
        result = self._retry(lambda: self.client.sf.query(soql, include_deleted=True), f"{spec.name} count")
        return int(result["totalSize"])

    def pages(self, spec: ObjectSpec, since: datetime | None, until: datetime) -> Iterator[list[dict]]:
        """Records changed in the window [since, until)."""
        yield from self.pages_where(spec, window_condition(spec, since, until))

    def pages_where(self, spec: ObjectSpec, condition: str) -> Iterator[list[dict]]:
        """Records matching a SOQL condition, deleted ones included (queryAll)."""
        total = self.count(spec, condition)
        soql = f"SELECT {', '.join(spec.fields)} FROM {spec.name} WHERE {condition}"
        self.method = "bulk2" if total > self.bulk_threshold else "rest"
        log.info("%s: %d records match, extracting with %s", spec.name, total, self.method)
        if self.method == "bulk2":
            yield from self._bulk_pages(spec, soql)
        else:
            yield from self._rest_pages(spec, soql)

    def _rest_pages(self, spec: ObjectSpec, soql: str) -> Iterator[list[dict]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        result = self._retry(
            lambda: self.client.sf.query(soql, include_deleted=True, headers=headers),
            f"{spec.name} page 1",
        )
        page_number = 1
        while True:
            _check_page(result, spec.name, page_number)
            yield [_without_attributes(r) for r in result["records"]]
            if result["done"]:
                return
            next_url = result["nextRecordsUrl"]
            page_number += 1
            result = self._retry(
                lambda url=next_url: self.client.sf.query_more(url, identifier_is_url=True, headers=headers),
                f"{spec.name} page {page_number}",
            )

    def _bulk_pages(self, spec: ObjectSpec, soql: str) -> Iterator[list[dict]]:
        # The library's own Bulk 2.0 client: its generator cannot resume after a failed
        # page, so pages are fetched here, each with retries. The client is looked up per
        # call because a new login (after an expired session) replaces it.
        def bulk():
            return getattr(self.client.sf.bulk2, spec.name)._client

        job = self._retry(lambda: bulk().create_job("queryAll", soql), f"{spec.name} bulk job")
        try:
            self._retry(
                lambda: bulk().wait_for_job(job["id"], True, self.client.settings.bulk_poll_seconds),
                f"{spec.name} bulk job {job['id']}",
            )
        except SalesforceOperationError as error:
            raise ExtractStopped(f"{spec.name}: Bulk 2.0 job failed: {error}") from error
        locator, page_number = "", 0
        while True:
            page_number += 1
            result = self._retry(
                lambda loc=locator: bulk().get_query_results(job["id"], loc, self.bulk_page_size),
                f"{spec.name} bulk page {page_number}",
            )
            yield _csv_records(result["records"])
            locator = result["locator"]
            if not locator:
                return


def _check_page(result: Any, object_name: str, page_number: int) -> None:
    if not isinstance(result, dict) or "records" not in result or "done" not in result:
        raise ExtractStopped(f"{object_name} page {page_number}: response is not a query result")
    if not result["done"] and not result.get("nextRecordsUrl"):
        raise ExtractStopped(f"{object_name} page {page_number}: more pages promised, no nextRecordsUrl")


def _without_attributes(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "attributes"}


def _csv_records(text: str) -> list[dict]:
    """Bulk 2.0 CSV: an empty, unquoted field is null."""
    rows = csv.DictReader(io.StringIO(text))
    return [{k: (v if v != "" else None) for k, v in row.items()} for row in rows]


def lookback(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)
