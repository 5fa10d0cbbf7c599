"""Data-quality checks over a staging build; each runs as its own Airflow task.

A check measures something, compares it with its threshold in
`include/config/data_quality.yaml`, and records pass / warn / fail in
`staging.quality_checks`. A failing check with severity `fail` raises, so the Airflow task
fails and downstream stages do not run on bad data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from revops.configuration import read_config
from revops.warehouse import read_frame
from revops.warehouse.schema import quality_checks

log = logging.getLogger(__name__)


class DataQualityError(RuntimeError):
    pass


@dataclass(frozen=True)
class CheckResult:
    check: str
    severity: str
    status: str  # pass | warn | fail
    measured: dict
    message: str


def run_check(engine: sa.Engine, name: str, build_id: str, run_time: datetime | None = None) -> CheckResult:
    """Run one configured check on a build, record it, and raise if it failed with severity fail."""
    config = read_config("data_quality")["checks"][name]
    with engine.connect() as conn:
        failures, measured = CHECKS[name](conn, build_id, config, run_time)
    measured = json.loads(json.dumps(measured, default=str))  # plain JSON: it becomes an XCom
    status = "pass" if not failures else ("fail" if config["severity"] == "fail" else "warn")
    message = "; ".join(failures) if failures else "ok"
    result = CheckResult(name, config["severity"], status, measured, message)
    _record(engine, build_id, result)
    (log.info if status == "pass" else log.warning)("quality check %s: %s (%s)", name, status, message)
    if status == "fail":
        raise DataQualityError(f"data-quality check {name} failed: {message}")
    return result


def _record(engine: sa.Engine, build_id: str, result: CheckResult) -> None:
    with engine.begin() as conn:
        conn.execute(
            quality_checks.delete().where(
                (quality_checks.c.build_id == build_id) & (quality_checks.c.check_name == result.check)
            )
        )
        conn.execute(
            quality_checks.insert().values(
                build_id=build_id,
                check_name=result.check,
                severity=result.severity,
                status=result.status,
                measured=json.dumps(result.measured, sort_keys=True, default=str),
                message=result.message,
            )
        )


def _freshness(conn, build_id, config, run_time):
    ends = read_frame(
        conn,
        """
        select source || '.' || object as object, max(coalesce(window_end, extracted_at)) as window_end
        from raw.extract_batches where status = 'complete' group by 1 order by 1
    """,
    )
    newest = ends["window_end"].max()
    lag_hours = ((newest - ends["window_end"]) / timedelta(hours=1)).round(1)
    measured = {"lag_hours": dict(zip(ends["object"], lag_hours, strict=True)), "newest": newest}
    failures = [
        f"{o} lags the freshest object by {h:.1f} h (max {config['max_lag_hours']})"
        for o, h in zip(ends["object"], lag_hours, strict=True)
        if h > config["max_lag_hours"]
    ]
    if config.get("max_age_hours") is not None and run_time is not None:
        age = (run_time - newest) / timedelta(hours=1)
        measured["age_hours"] = round(age, 1)
        if age > config["max_age_hours"]:
            failures.append(f"newest data is {age:.1f} h old (max {config['max_age_hours']})")
    return failures, measured


def _row_count_drift(conn, build_id, config, run_time):
    builds = read_frame(conn, "select build_id, summary from staging.builds order by built_at desc")
    current = builds[builds["build_id"] == build_id]
    previous = builds[(builds["build_id"] != build_id)]
    counts = json.loads(current["summary"].iloc[0])["row_counts"]
    if previous.empty:
        return [], {"row_counts": counts, "previous": None}
    before = json.loads(previous["summary"].iloc[0]).get("row_counts", {})
    failures, changes = [], {}
    for table in config["tables"]:
        if not before.get(table):
            continue
        change = (counts[table] - before[table]) / before[table]
        changes[table] = round(change, 4)
        if abs(change) > config["max_change"]:
            failures.append(f"{table}: {before[table]} -> {counts[table]} rows ({change:+.0%})")
    return failures, {"row_counts": counts, "previous": before, "changes": changes}


def _null_rates(conn, build_id, config, run_time):
    failures, rates = [], {}
    for qualified, limit in config["max_rates"].items():
        table, column = qualified.split(".")
        rate = conn.execute(
            sa.text(
                f"select avg(case when {column} is null then 1.0 else 0.0 end) "  # whitelisted names
                f"from staging.{table} where not is_excluded"
            )
        ).scalar_one()
        rates[qualified] = round(float(rate or 0), 4)
        if rates[qualified] > limit:
            failures.append(f"{qualified} empty in {rates[qualified]:.1%} of rows (max {limit:.0%})")
    return failures, {"null_rates": rates}


def _unmapped_sources(conn, build_id, config, run_time):
    rate = conn.execute(
        sa.text(
            "select avg(case when channel = 'unmapped' then 1.0 else 0.0 end) "
            "from staging.prospects where not is_excluded"
        )
    ).scalar_one()
    rate = round(float(rate or 0), 4)
    failures = (
        [f"{rate:.1%} of prospects have an unmapped source (max {config['max_rate']:.0%})"]
        if rate > config["max_rate"]
        else []
    )
    return failures, {"unmapped_rate": rate}


def _referential_integrity(conn, build_id, config, run_time):
    missing_opportunity = conn.execute(
        sa.text("""
        select count(*) from staging.prospect_identities as identities
        left join staging.opportunities as opportunities
            on opportunities.opportunity_id = identities.converted_opportunity_id
        where identities.converted_opportunity_id is not null and opportunities.opportunity_id is null
    """)
    ).scalar_one()
    orphan_opportunity = conn.execute(
        sa.text("""
        select count(*) from staging.opportunities as opportunities
        left join staging.prospects as prospects on prospects.prospect_id = opportunities.prospect_id
        where opportunities.is_from_converted_lead and prospects.prospect_id is null
    """)
    ).scalar_one()
    measured = {
        "converted_leads_without_opportunity": missing_opportunity,
        "opportunities_without_prospect": orphan_opportunity,
    }
    failures = [
        f"{name.replace('_', ' ')}: {count}"
        for name, count in measured.items()
        if count > config["max_violations"]
    ]
    return failures, measured


CHECKS: dict[str, Callable] = {
    "freshness": _freshness,
    "row_count_drift": _row_count_drift,
    "null_rates": _null_rates,
    "unmapped_sources": _unmapped_sources,
    "referential_integrity": _referential_integrity,
}
