"""Reproduce a past scorecard from its ledger entry, in a scratch warehouse, and compare.

The entry names the raw extract batches the run read (with content hashes), the KPI
definition versions, the audience as configured then, the run's scheduled time, a digest of
the KPI results the scorecard used and the PDF's sha256. Replaying copies exactly those
batches into an empty scratch warehouse (the production warehouse is never written),
rebuilds staging, computes the KPIs with the definitions as published on the run's day,
renders the PDF with the run's id, and compares the results' digest and the PDF bytes with
what was recorded. New data and KPI versions published since do not change the answer; a raw
batch deleted by retention makes the run unreproducible, and the error says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from revops.audit.retention import purged_by
from revops.extract.landing import batch_content_sha256
from revops.kpis.registry import definitions_as_of
from revops.periods import naive_utc, period_containing
from revops.reconcile.build import build_staging
from revops.scorecards.audiences import audience_from_config
from revops.scorecards.render import render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results
from revops.warehouse import get_engine, read_frame
from revops.warehouse.load import append_frame
from revops.warehouse.schema import builds, extract_batches, metadata, raw_records, run_ledger

VELOCITY_TABLES = ("marts.score_velocity", "marts.engagement_trend")


class NotReproducibleError(RuntimeError):
    """The inputs a ledger entry names are no longer there as they were."""


@dataclass(frozen=True)
class Reproduction:
    entry_id: str
    code_version: str  # the code that produced the original
    pdf_path: Path
    recorded_pdf_sha256: str
    reproduced_pdf_sha256: str
    recorded_results: tuple[str, int]  # (sha256, rows) of the KPI results the scorecard used
    reproduced_results: tuple[str, int]
    reproduced_pdf: bytes

    @property
    def same_results(self) -> bool:
        return self.recorded_results == self.reproduced_results

    @property
    def same_pdf(self) -> bool:
        return self.recorded_pdf_sha256 == self.reproduced_pdf_sha256


def reproduce(engine: sa.Engine, entry_id: str, scratch_url: str) -> Reproduction:
    """Re-run the scorecard of ledger entry `entry_id` into `scratch_url` (an empty warehouse)."""
    entry = _entry(engine, entry_id)
    with engine.connect() as conn:
        purge = purged_by(conn, entry["entry_id"])
    if purge:
        raise NotReproducibleError(
            f"entry {entry['entry_id']} is no longer reproducible: retention purged its "
            f"{' and '.join(purge['lost'])} (ledger entry {purge['sequence']}, as of {purge['as_of']})"
        )
    details = json.loads(entry["details"])
    scratch = get_engine(scratch_url)
    _copy_batches(engine, scratch, details["input_batches"])
    audience = audience_from_config(details["audience"], details["audience_config"])
    period = period_containing(
        details["period"]["grain"], date.fromisoformat(details["period"]["start"]), audience.timezone
    )
    with definitions_as_of(entry["recorded_at"].date()):
        build = build_staging(scratch, entry["run_id"])
        if build.build_id != details["build_id"]:
            raise NotReproducibleError(
                f"the batches rebuild as {build.build_id}, not {details['build_id']}: "
                + _what_changed(engine, details["build_id"], build.summary["rule_files_sha256"])
            )
        if details.get("velocity_as_of"):
            _copy_velocity(engine, scratch, naive_utc(details["velocity_as_of"]))

        compute_scorecard_results(scratch, audience, period, entry["run_id"])
        with scratch.connect() as conn:
            checked_at = naive_utc(details.get("checked_at"))
            view = build_view(conn, audience, period, entry["run_id"], checked_at=checked_at)
        pdf = render_pdf(view)
    (output,) = details["outputs"]
    return Reproduction(
        entry_id=entry["entry_id"],
        code_version=entry["code_version"],
        pdf_path=Path(output["path"]),
        recorded_pdf_sha256=output["sha256"],
        reproduced_pdf_sha256=hashlib.sha256(pdf).hexdigest(),
        recorded_results=(details["kpi_results"]["sha256"], details["kpi_results"]["rows"]),
        reproduced_results=(view.results_sha256, view.results_rows),
        reproduced_pdf=pdf,
    )


def _what_changed(engine: sa.Engine, build_id: str, rule_files_now: dict[str, str | None]) -> str:
    """Which configuration files differ from the ones the original build read."""
    with engine.connect() as conn:
        summary = conn.execute(
            sa.select(builds.c.summary).where(builds.c.build_id == build_id)
        ).scalar_one_or_none()
    recorded = json.loads(summary).get("rule_files_sha256") if summary else None
    if recorded is None:
        return "its build recorded no configuration digests, so the configuration or the build rules changed"
    changed = sorted(
        name for name in {*recorded, *rule_files_now} if recorded.get(name) != rule_files_now.get(name)
    )
    if not changed:
        return "the configuration is as it was, so the build rules changed"
    return f"{', '.join(changed)} changed since (include/config/)"


def _entry(engine: sa.Engine, entry_id: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(sa.select(run_ledger).where(run_ledger.c.entry_id == entry_id)).first()
    if row is None:
        raise LookupError(f"no ledger entry {entry_id}")
    entry = dict(row._mapping)
    if entry["kind"] != "artifact":
        raise ValueError(f"ledger entry {entry_id} is a {entry['kind']} entry, not a scorecard")
    return entry


def _copy_batches(source: sa.Engine, scratch: sa.Engine, recorded: list[dict]) -> None:
    """Copy the recorded batches, refusing any whose content no longer has its recorded hash."""
    ids = [b["batch_id"] for b in recorded]
    with source.connect() as conn:
        batches = read_frame(
            conn, "select * from raw.extract_batches where batch_id in :ids", {"ids": tuple(ids)}
        )
        records = read_frame(conn, "select * from raw.records where batch_id in :ids", {"ids": tuple(ids)})
    missing = sorted(set(ids) - set(batches["batch_id"]))
    if missing:
        raise NotReproducibleError(f"raw batches no longer kept: {', '.join(missing)}")
    for batch in recorded:
        payloads = records.loc[records["batch_id"] == batch["batch_id"], "payload"]
        if (
            len(payloads) != batch["record_count"]
            or batch_content_sha256(payloads) != batch["content_sha256"]
        ):
            raise NotReproducibleError(f"raw batch {batch['batch_id']} no longer has its recorded content")
    with scratch.begin() as conn:
        append_frame(conn, extract_batches, batches)
        append_frame(conn, raw_records, records)


def _copy_velocity(source: sa.Engine, scratch: sa.Engine, as_of: datetime) -> None:
    with source.connect() as conn:
        frames = {
            t: read_frame(conn, f"select * from {t} where as_of = :a", {"a": as_of}) for t in VELOCITY_TABLES
        }
    with scratch.begin() as conn:
        for name, frame in frames.items():
            append_frame(conn, metadata.tables[name], frame)
