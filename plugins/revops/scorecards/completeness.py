"""Completeness gate: is the data behind a scorecard complete and fresh enough to send?

A scorecard reads the newest staging build. Before it goes out we check, per CRM object the
build depends on, that the newest extract finished complete, that the build's data reaches
the end of the reporting period, and that it is not older than the audience allows at the
moment the run was scheduled for. The answer depends only on the warehouse and the run's
schedule, never on the wall clock, so a replayed run reaches the same verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from revops.configuration import read_config
from revops.warehouse import read_frame

SOURCE_LABELS = {"salesforce": "Salesforce", "hubspot": "HubSpot", "csv": "CSV export"}


@dataclass(frozen=True)
class ObjectFreshness:
    source: str
    object: str
    complete_to: datetime | None  # window end of the newest complete batch in the build
    newest_status: str  # status of the newest extract attempt: complete | incomplete | missing

    @property
    def label(self) -> str:
        return f"{SOURCE_LABELS.get(self.source, self.source)} {self.object}"


@dataclass(frozen=True)
class Completeness:
    problems: tuple[str, ...]
    objects: tuple[ObjectFreshness, ...]

    @property
    def complete(self) -> bool:
        return not self.problems


def expected_objects(api_sources: tuple[str, ...]) -> set[tuple[str, str]]:
    """(source, object) pairs the extract DAG pulls from the enabled CRM APIs."""
    configured = read_config("crm_objects")
    return {
        (source, name)
        for source in api_sources
        if source in configured
        for name in configured[source]["objects"]
    }


def check_completeness(
    conn: sa.Connection,
    build_id: str,
    period_end: datetime,
    reference_time: datetime,
    max_age: timedelta,
    expected: set[tuple[str, str]],
) -> Completeness:
    """Problems that make the build unfit for a scorecard of the period ending `period_end`,
    judged at `reference_time` (the run's scheduled time)."""
    objects = _object_freshness(conn, build_id, expected)
    problems = []
    for item in objects:
        if item.complete_to is None:
            problems.append(f"{item.label}: no complete extract in the data used.")
        elif item.newest_status != "complete":
            problems.append(
                f"{item.label}: the newest extract is {item.newest_status}; "
                f"data used is complete only to {item.complete_to:%d %b %Y %H:%M} UTC."
            )
        elif item.complete_to < period_end:
            problems.append(
                f"{item.label}: data ends {item.complete_to:%d %b %Y %H:%M} UTC, "
                "before the end of the reporting period."
            )
        elif reference_time - item.complete_to > max_age:
            hours = (reference_time - item.complete_to) / timedelta(hours=1)
            problems.append(
                f"{item.label}: data is {hours:,.0f} hours old "
                f"(allowed: {max_age / timedelta(hours=1):,.0f})."
            )
    return Completeness(tuple(problems), tuple(objects))


def _object_freshness(
    conn: sa.Connection, build_id: str, expected: set[tuple[str, str]]
) -> list[ObjectFreshness]:
    batch_ids = json.loads(
        conn.execute(
            sa.text("select batch_ids from staging.builds where build_id = :b"), {"b": build_id}
        ).scalar_one()
    )
    batches = read_frame(
        conn,
        "select batch_id, source, object, status, extracted_at, "
        "coalesce(window_end, extracted_at) as complete_to from raw.extract_batches",
    )
    in_build = batches[batches["batch_id"].isin(batch_ids)]
    used = set(zip(in_build["source"], in_build["object"], strict=True))
    result = []
    for source, name in sorted(used | expected):
        attempts = batches[(batches["source"] == source) & (batches["object"] == name)]
        mine = in_build[(in_build["source"] == source) & (in_build["object"] == name)]
        newest = attempts.sort_values("extracted_at").iloc[-1]["status"] if len(attempts) else "missing"
        complete_to = mine["complete_to"].max() if len(mine) else None
        result.append(
            ObjectFreshness(
                source, name, None if complete_to is None else complete_to.to_pydatetime(), newest
            )
        )
    return result
