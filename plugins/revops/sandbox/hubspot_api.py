"""The HubSpot side of the sandbox: CRM v3 object lists and search, v4 associations."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from revops.sandbox.http import Request, Response, json_response
from revops.sandbox.store import SandboxStore

DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
ALWAYS_PROPERTIES = {
    "contacts": ("hs_object_id", "createdate", "lastmodifieddate"),
    "deals": ("hs_object_id", "createdate", "hs_lastmodifieddate"),
}
SEARCH_CAP = 10_000


def hs_error(status: int, category: str, message: str, **extra) -> Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return json_response(status, body)


@dataclass
class HubSpotApi:
    store: SandboxStore
    access_token: str
    search_cap: int = SEARCH_CAP  # lowered by tests to exercise window splitting cheaply

    def authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.access_token}"

    def list_objects(self, request: Request, object_type: str) -> Response:
        with_history = _list_param(request, "propertiesWithHistory")
        limit = int(request.query.get("limit", ["10"])[0])
        if limit > (50 if with_history else 100):
            return hs_error(400, "VALIDATION_ERROR", f"limit {limit} is above the maximum")
        archived = request.query.get("archived", ["false"])[0].lower() == "true"
        with self.store.lock:
            records = [r for r in self.store.hubspot[object_type] if r["archived"] == archived]
            records.sort(key=lambda r: int(r["id"]))
            start = _decode_after(request.query.get("after", [""])[0])
            page = records[start : start + limit]
            results = [
                self._shape(object_type, r, _list_param(request, "properties"), with_history) for r in page
            ]
        body = {"results": results}
        if start + limit < len(records):
            after = _encode_after(start + limit)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(200, body)

    def search(self, request: Request, object_type: str) -> Response:
        spec = json.loads(request.body or b"{}")
        limit = int(spec.get("limit", 10))
        after = int(spec.get("after") or 0)
        if limit > 200:
            return hs_error(400, "VALIDATION_ERROR", "limit must be at most 200")
        if after >= self.search_cap:
            return hs_error(
                400, "VALIDATION_ERROR", f"paging past {self.search_cap} results is not supported for search"
            )
        with self.store.lock:
            matches = [
                r
                for r in self.store.hubspot[object_type]
                if not r["archived"] and _matches_groups(r, spec.get("filterGroups", []))
            ]
            for sort in reversed(spec.get("sorts", [])):
                name = sort["propertyName"]
                matches.sort(
                    key=lambda r, n=name: _sortable(r["properties"].get(n)),
                    reverse=sort.get("direction", "ASCENDING") == "DESCENDING",
                )
            page = matches[after : min(after + limit, self.search_cap)]
            results = [self._shape(object_type, r, spec.get("properties") or [], []) for r in page]
        body = {"total": len(matches), "results": results}
        if after + limit < min(len(matches), self.search_cap):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, body)

    def contact_deal_associations(self, request: Request) -> Response:
        inputs = json.loads(request.body or b"{}").get("inputs", [])
        results = []
        with self.store.lock:
            for item in inputs:
                deal_ids = self.store.associations.get(str(item["id"]), [])
                if deal_ids:
                    results.append(
                        {
                            "from": {"id": str(item["id"])},
                            "to": [
                                {
                                    "toObjectId": int(d),
                                    "associationTypes": [
                                        {"category": "HUBSPOT_DEFINED", "typeId": 4, "label": None}
                                    ],
                                }
                                for d in deal_ids
                            ],
                        }
                    )
        now = datetime(2026, 1, 1).isoformat() + "Z"
        return json_response(
            200, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        )

    def _shape(self, object_type: str, record: dict, properties, with_history) -> dict:
        wanted = list(properties) or list(DEFAULT_PROPERTIES[object_type])
        wanted += [p for p in ALWAYS_PROPERTIES[object_type] if p not in wanted]
        shaped = {
            "id": record["id"],
            "properties": {p: record["properties"].get(p) for p in wanted},
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }
        if record.get("archivedAt"):
            shaped["archivedAt"] = record["archivedAt"]
        if with_history:
            history = self.store.hubspot_history.get(record["id"], {})
            shaped["propertiesWithHistory"] = {p: history.get(p, []) for p in with_history}
        return shaped


def _list_param(request: Request, name: str) -> list[str]:
    values = []
    for value in request.query.get(name, []):
        values += [v for v in value.split(",") if v]
    return values


def _encode_after(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _decode_after(after: str) -> int:
    return int(base64.urlsafe_b64decode(after.encode()).decode()) if after else 0


def _epoch_ms(value) -> float | None:
    if value is None or value == "":
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _sortable(value):
    stamp = _epoch_ms(value) if isinstance(value, str) and value[:4].isdigit() else None
    return (value is None, stamp if stamp is not None else (value or ""))


def _matches_groups(record: dict, groups: list[dict]) -> bool:
    if not groups:
        return True
    return any(all(_matches(record, f) for f in group.get("filters", [])) for group in groups)


def _matches(record: dict, spec: dict) -> bool:
    value = record["properties"].get(spec["propertyName"])
    operator = spec["operator"]
    if operator == "HAS_PROPERTY":
        return value is not None
    if operator == "NOT_HAS_PROPERTY":
        return value is None
    if operator in ("EQ", "NEQ"):
        return (str(value) == str(spec["value"])) == (operator == "EQ")
    left, right = _epoch_ms(value), _epoch_ms(spec.get("value"))
    if left is None or right is None:
        return False
    if operator == "BETWEEN":
        return right <= left <= _epoch_ms(spec["highValue"])
    return {"GT": left > right, "GTE": left >= right, "LT": left < right, "LTE": left <= right}[operator]
