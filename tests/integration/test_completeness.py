"""The completeness gate: a scorecard knows when the data behind it is not complete or fresh."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timedelta

import pypdf
import pytest
import sqlalchemy as sa

from revops.kpis.engine import current_build
from revops.scorecards.completeness import check_completeness, expected_objects
from revops.warehouse.schema import extract_batches
from tests.helpers import stage

DAY = timedelta(hours=24)


@pytest.fixture
def staged(small_exports, warehouse_url):
    engine, build = stage(warehouse_url, small_exports)
    with engine.connect() as conn:
        cutoffs = conn.execute(
            sa.text(
                "select object, max(coalesce(window_end, extracted_at)) from raw.extract_batches group by 1"
            )
        ).all()
    return engine, build, dict(cutoffs)


def _check(engine, build_id, period_end, checked_at, expected=frozenset()):
    with engine.connect() as conn:
        return check_completeness(conn, build_id, period_end, checked_at, DAY, set(expected))


def test_complete_fresh_data_passes(staged):
    engine, build, cutoffs = staged
    newest = min(cutoffs.values())
    gate = _check(engine, build.build_id, newest - DAY, newest + timedelta(hours=2))
    assert gate.complete and gate.problems == ()
    assert {o.object for o in gate.objects} == set(cutoffs)


def test_stale_data_is_named_with_its_age(staged):
    engine, build, cutoffs = staged
    newest = min(cutoffs.values())
    gate = _check(engine, build.build_id, newest - DAY, newest + timedelta(hours=50))
    assert not gate.complete
    assert len(gate.problems) == len(cutoffs)
    assert all("data is 50 hours old (allowed: 24)" in p for p in gate.problems)


def test_data_that_ends_before_the_period_does_is_incomplete(staged):
    engine, build, cutoffs = staged
    newest = min(cutoffs.values())
    gate = _check(engine, build.build_id, newest + timedelta(days=3), newest + timedelta(days=3))
    assert gate.problems and all("before the end of the reporting period" in p for p in gate.problems)


def test_a_failed_newer_extract_and_a_missing_object_are_problems(staged):
    engine, build, cutoffs = staged
    newest = min(cutoffs.values())
    with engine.begin() as conn:
        conn.execute(
            extract_batches.insert(),
            {
                "batch_id": "late-and-broken",
                "source": "salesforce",
                "object": "Lead",
                "extract_mode": "full",
                "extracted_at": datetime(2100, 1, 1),
                "record_count": 0,
                "records_seen": 0,
                "content_sha256": "-",
                "status": "incomplete",
                "status_reason": "connection reset",
            },
        )
    expected = {("salesforce", "Lead"), ("salesforce", "Task")}
    gate = _check(engine, build.build_id, newest - DAY, newest, expected)
    assert "Salesforce Task: no complete extract in the data used." in gate.problems
    (leads,) = [p for p in gate.problems if p.startswith("Salesforce Lead:")]
    assert "the newest extract is incomplete" in leads
    assert len(gate.problems) == 2


def test_expected_objects_come_from_the_connector_configuration():
    objects = expected_objects(("salesforce",))
    assert ("salesforce", "Lead") in objects and ("salesforce", "Opportunity") in objects
    assert not any(source == "hubspot" for source, _ in objects)
    assert expected_objects(("csv",)) == set()


def test_an_incomplete_scorecard_carries_the_banner_in_pdf_and_email(staged, monkeypatch):
    from revops.periods import period_containing
    from revops.scorecards.audiences import load_audiences
    from revops.scorecards.delivery import compose
    from revops.scorecards.render import render_pdf
    from revops.scorecards.view_model import INCOMPLETE_BANNER, build_view, compute_scorecard_results

    engine, _build, _ = staged

    monkeypatch.setenv("REVOPS_EXTRACT_SOURCES", "csv")
    audience = dataclasses.replace(load_audiences()["executive_weekly"], max_data_age_hours=1)
    with engine.connect() as conn:
        cutoff = current_build(conn).data_cutoff
    period = period_containing("week", (cutoff - timedelta(days=8)).date())
    compute_scorecard_results(engine, audience, period, "banner-test")
    with engine.connect() as conn:
        late = build_view(conn, audience, period, "banner-test", checked_at=cutoff + timedelta(days=3))
        on_time = build_view(conn, audience, period, "banner-test", checked_at=cutoff)
    assert on_time.banner is None and late.banner == INCOMPLETE_BANNER
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(render_pdf(late))).pages)
    assert "Incomplete data" in text and "hours old" in text
    message = compose(late)
    assert message.subject.startswith("[Incomplete data] ") and "hours old" in message.html
