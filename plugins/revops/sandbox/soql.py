"""The subset of SOQL the connectors send, parsed and evaluated over the sandbox's records.

    SELECT <fields> | COUNT() FROM <object>
    [WHERE <field> <op> <literal> [AND ...]]   op: = != < <= > >= IN
    [ORDER BY <field> [ASC|DESC], ...] [LIMIT n]

Anything else is answered the way Salesforce answers it: MALFORMED_QUERY, INVALID_FIELD or
INVALID_TYPE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(
    r"^\s*(?P<field>\w+)\s*(?:(?P<op><=|>=|!=|=|<|>)\s*(?P<literal>.+?)|\s+IN\s*\((?P<values>.*)\))\s*$",
    re.IGNORECASE,
)
DATETIME_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
DATE_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SoqlError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: object


@dataclass(frozen=True)
class Query:
    object: str
    fields: tuple[str, ...]  # empty for COUNT()
    conditions: tuple[Condition, ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int | None

    @property
    def is_count(self) -> bool:
        return not self.fields


def parse(text: str) -> Query:
    match = QUERY.match(text)
    if not match:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token in query: {text[:80]}")
    fields_text = match["fields"].strip()
    fields = () if fields_text.upper() == "COUNT()" else tuple(f.strip() for f in fields_text.split(","))
    if any(not re.fullmatch(r"\w+", f) for f in fields):
        raise SoqlError("MALFORMED_QUERY", f"unsupported select list: {fields_text}")
    conditions = ()
    if match["where"]:
        conditions = tuple(_condition(c) for c in re.split(r"\s+AND\s+", match["where"], flags=re.I))
    order = ()
    if match["order"]:
        order = tuple(_order_item(item) for item in match["order"].split(","))
    limit = int(match["limit"]) if match["limit"] else None
    return Query(match["object"], fields, conditions, order, limit)


def _condition(text: str) -> Condition:
    match = CONDITION.match(text)
    if not match:
        raise SoqlError("MALFORMED_QUERY", f"unexpected condition: {text.strip()[:80]}")
    if match["values"] is not None:
        values = tuple(_literal(v) for v in match["values"].split(","))
        return Condition(match["field"], "IN", values)
    return Condition(match["field"], match["op"], _literal(match["literal"]))


def _order_item(text: str) -> tuple[str, bool]:
    parts = text.split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
        raise SoqlError("MALFORMED_QUERY", f"unexpected ORDER BY: {text.strip()}")
    return parts[0], len(parts) == 2 and parts[1].upper() == "DESC"


def _literal(text: str):
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("\\'", "'")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if DATETIME_LITERAL.match(text):
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    if DATE_LITERAL.match(text):
        return text
    try:
        return float(text)
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"unexpected literal: {text}") from None


def run(query: Query, records: list[dict], include_deleted: bool) -> list[dict]:
    """Filter, order, limit and project `records` as Salesforce would."""
    if records:
        known = {k.lower(): k for k in records[0]}
        for name in (*query.fields, *(c.field for c in query.conditions), *(f for f, _ in query.order)):
            if name.lower() not in known:
                raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{query.object}'.")
    else:
        known = {}
    rows = [r for r in records if include_deleted or not r.get("IsDeleted")]
    for condition in query.conditions:
        name = known.get(condition.field.lower(), condition.field)
        rows = [r for r in rows if _matches(r.get(name), condition)]
    for field_name, descending in reversed(query.order):
        name = known.get(field_name.lower(), field_name)
        rows.sort(key=lambda r, n=name: (r.get(n) is None, r.get(n) or ""), reverse=descending)
    if query.limit is not None:
        rows = rows[: query.limit]
    if query.is_count:
        return rows
    names = [known[f.lower()] for f in query.fields]
    return [{n: r.get(n) for n in names} for r in rows]


def _matches(value, condition: Condition) -> bool:
    target = condition.value
    if condition.op == "IN":
        return value in target
    if condition.op == "=":
        return value == target
    if condition.op == "!=":
        return value != target
    if value is None or target is None:
        return False
    if isinstance(target, float) and not isinstance(value, (int, float)):
        return False
    return {
        "<": value < target,
        "<=": value <= target,
        ">": value > target,
        ">=": value >= target,
    }[condition.op]
