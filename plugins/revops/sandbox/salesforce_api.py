"""The Salesforce side of the sandbox: SOAP and OAuth login, REST query paging, the
`deleted` resource and Bulk API 2.0 query jobs, as `crm-wire-protocols.md` describes them."""

from __future__ import annotations

import csv
import io
import itertools
import json
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs

from revops.sandbox import soql
from revops.sandbox.http import Request, Response, json_response
from revops.sandbox.store import SandboxStore, salesforce_datetime

INSTANCE_HOST = "revops-sandbox.my.salesforce.com"
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000999AAA"
DEFAULT_PAGE_SIZE = 2000


def sf_error(status: int, code: str, message: str) -> Response:
    return json_response(status, [{"message": message, "errorCode": code}])


@dataclass
class SalesforceApi:
    store: SandboxStore
    username: str
    password: str
    security_token: str
    consumer_key: str
    consumer_secret: str
    sessions: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)  # every session token ever issued (tests grep for them)
    cursors: dict[str, list[dict]] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- authentication -------------------------------------------------------------------------

    def soap_login(self, request: Request) -> Response:
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            return self._soap_fault("INVALID_LOGIN", "Invalid request body")
        values = {element.tag.split("}")[-1]: (element.text or "") for element in root.iter()}
        if (values.get("username"), values.get("password")) != (
            self.username,
            self.password + self.security_token,
        ):
            return self._soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        session_id = self._new_session()
        server_url = f"https://{INSTANCE_HOST}/services/Soap/u/59.0/{ORG_ID}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            f"<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{server_url}</serverUrl><sessionId>{session_id}</sessionId>"
            f"<userId>{USER_ID}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})

    def oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        valid = (
            form.get("grant_type") == "password"
            and form.get("client_id") == self.consumer_key
            and form.get("client_secret") == self.consumer_secret
            and form.get("username") == self.username
            and form.get("password") in (self.password, self.password + self.security_token)
        )
        if not valid:
            return json_response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        return json_response(
            200,
            {
                "access_token": self._new_session(),
                "instance_url": f"https://{INSTANCE_HOST}",
                "id": f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": "1768473000000",
                "signature": "sandbox",
            },
        )

    def authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.sessions

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def _new_session(self) -> str:
        token = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.sessions.add(token)
            self.issued.append(token)
        return token

    def issued_tokens(self) -> list[str]:
        with self.lock:
            return list(self.issued)

    def _soap_fault(self, code: str, message: str) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
            f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
            f"<detail><sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(500, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})

    # --- REST query ------------------------------------------------------------------------------

    def query(self, request: Request, version: str, include_deleted: bool) -> Response:
        text = request.query.get("q", [""])[0]
        try:
            parsed = soql.parse(text)
            records = self._records(parsed.object)
            rows = soql.run(parsed, records, include_deleted)
        except soql.SoqlError as error:
            return sf_error(400, error.code, str(error))
        if parsed.is_count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        rows = [self._with_attributes(parsed.object, version, row) for row in rows]
        cursor = f"01g{next(self.ids):015d}"
        with self.lock:
            self.cursors[cursor] = rows
        return self._page(cursor, 0, version, include_deleted, self._page_size(request))

    def query_more(
        self, request: Request, version: str, cursor: str, offset: int, include_deleted: bool
    ) -> Response:
        if cursor not in self.cursors:
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, offset, version, include_deleted, self._page_size(request))

    def deleted(self, request: Request, object_name: str) -> Response:
        try:
            start = _iso_param(request, "start")
            end = _iso_param(request, "end")
        except ValueError as error:
            return sf_error(400, "INVALID_INPUT", str(error))
        rows = [
            {"id": r["Id"], "deletedDate": r["SystemModstamp"]}
            for r in self._records(object_name)
            if r.get("IsDeleted") and start <= r["SystemModstamp"] < end
        ]
        return json_response(
            200,
            {
                "deletedRecords": rows,
                "earliestDateAvailable": salesforce_datetime(datetime(2025, 1, 1)),
                "latestDateCovered": end,
            },
        )

    def _page(self, cursor: str, offset: int, version: str, include_deleted: bool, size: int):
        rows = self.cursors[cursor]
        page = rows[offset : offset + size]
        done = offset + size >= len(rows)
        body = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            kind = "queryAll" if include_deleted else "query"
            body["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{cursor}-{offset + size}"
        else:
            with self.lock:
                self.cursors.pop(cursor, None)
        return json_response(200, body, {"Sforce-Limit-Info": "api-usage=18/15000"})

    def _page_size(self, request: Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        if options.startswith("batchSize="):
            return max(200, min(2000, int(options.split("=", 1)[1])))
        return DEFAULT_PAGE_SIZE

    def _records(self, object_name: str) -> list[dict]:
        if object_name not in self.store.salesforce:
            raise soql.SoqlError("INVALID_TYPE", f"sObject type '{object_name}' is not supported.")
        with self.store.lock:
            return [dict(r) for r in self.store.salesforce[object_name]]

    @staticmethod
    def _with_attributes(object_name: str, version: str, row: dict) -> dict:
        url = f"/services/data/v{version}/sobjects/{object_name}/{row.get('Id', '')}"
        return {"attributes": {"type": object_name, "url": url}, **row}

    # --- Bulk API 2.0 query jobs ------------------------------------------------------------------

    def create_job(self, request: Request) -> Response:
        spec = json.loads(request.body or b"{}")
        include_deleted = spec.get("operation") == "queryAll"
        try:
            parsed = soql.parse(spec.get("query", ""))
            rows = soql.run(parsed, self._records(parsed.object), include_deleted)
        except soql.SoqlError as error:
            return sf_error(400, error.code, str(error))
        job_id = f"750{next(self.ids):015d}"
        with self.lock:
            self.jobs[job_id] = {"rows": rows, "fields": parsed.fields, "polls": 0}
        return json_response(
            200,
            {
                "id": job_id,
                "operation": spec.get("operation"),
                "object": parsed.object,
                "state": "UploadComplete",
                "apiVersion": 59.0,
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            },
        )

    def job_status(self, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        job["polls"] += 1
        state = "InProgress" if job["polls"] == 1 else "JobComplete"
        return json_response(
            200,
            {
                "id": job_id,
                "state": state,
                "numberRecordsProcessed": len(job["rows"]),
            },
        )

    def job_results(self, request: Request, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        max_records = int(request.query.get("maxRecords", ["50000"])[0])
        start = int(request.query.get("locator", ["0"])[0] or 0)
        page = job["rows"][start : start + max_records]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(job["fields"])
        for row in page:
            writer.writerow([_csv_value(row.get(f)) for f in job["fields"]])
        following = start + max_records
        locator = str(following) if following < len(job["rows"]) else "null"
        return Response(
            200,
            buffer.getvalue().encode(),
            {
                "Content-Type": "text/csv; charset=UTF-8",
                "Sforce-Locator": locator,
                "Sforce-NumberOfRecords": str(len(page)),
            },
        )


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _iso_param(request: Request, name: str) -> str:
    raw = request.query.get(name, [""])[0]
    if not raw or raw.endswith(":") or len(raw) < 19:
        raise ValueError(f"{name}: invalid date '{raw}'")
    stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"{name}: a time zone is required")
    return salesforce_datetime(stamp)
