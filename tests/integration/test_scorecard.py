"""The rendered scorecard: right numbers in the PDF text, deterministic bytes, not blank."""

from __future__ import annotations

import dataclasses
import io
from datetime import date

import pypdf
import pypdfium2
import pytest

from revops.kpis.registry import load_registry
from revops.periods import Period, period_containing
from revops.scorecards.audiences import ATTRIBUTION_MODELS, Audience, load_audiences
from revops.scorecards.formatting import format_value
from revops.scorecards.render import archive_pdf, render_html, render_pdf
from revops.scorecards.view_model import (
    EngagementSection,
    HotProspectRow,
    build_view,
    compute_scorecard_results,
    reporting_period,
)
from revops.synthetic.truth import truth_value
from tests.helpers import stage, table

PERIOD = period_containing("week", date(2026, 10, 26))


@pytest.fixture(scope="module")
def staged(small_exports, tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('scorecard') / 'warehouse.duckdb'}"
    engine, _build = stage(url, small_exports)
    return engine


def _view(engine, audience: Audience, period: Period):
    compute_scorecard_results(engine, audience, period, "render-test")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REVOPS_EXTRACT_SOURCES", "csv")  # this warehouse was filled from CSV exports
        with engine.connect() as conn:
            return build_view(conn, audience, period, "render-test")


@pytest.fixture(scope="module")
def view(staged):
    return _view(staged, load_audiences()["executive_weekly"], PERIOD)


@pytest.fixture(scope="module")
def pdf(view) -> bytes:
    return render_pdf(view)


def _text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_pdf_shows_each_kpi_with_its_ground_truth_value(view, pdf, small_world):
    text = _text(pdf)
    registry = load_registry()
    for tile in view.tiles:
        kpi = registry[tile.kpi_id]
        shown_period = reporting_period(kpi, PERIOD, small_world.config.as_of)
        _, _, value = truth_value(tile.kpi_id, small_world, shown_period)
        assert format_value(kpi.unit, value) in text, tile.kpi_id
        assert kpi.name in text
    assert "26 Oct – 1 Nov 2026 (week 44)" in text
    assert "Data complete to" in text and "02 Nov 2026 00:00 UTC" in text


def test_the_pdf_names_the_definition_versions_and_sql_hashes_used(view, pdf):
    text = _text(pdf)
    for definition in view.definitions:
        assert definition.sql_sha256_short in text
    assert "render-test" in text


def test_the_same_view_renders_to_the_same_bytes(view, pdf):
    assert render_pdf(view) == pdf


@pytest.mark.parametrize("audience_name", list(load_audiences()))
def test_page_one_of_every_audience_is_not_blank_and_carries_the_summary(staged, audience_name):
    audience = load_audiences()[audience_name]
    period = period_containing(audience.grain, date(2026, 10, 26), audience.timezone)
    view = _view(staged, audience, period)
    pdf = render_pdf(view)
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=0.5).to_pil().convert("L")
    dark_pixels = sum(image.histogram()[:128])
    assert dark_pixels > 0.01 * image.width * image.height
    page_one = _text_of_page_one(pdf)
    for expected in (view.title, view.period_label, view.scope_label, "What moved", *view.narrative[:1]):
        assert _squash(expected) in page_one
    for tile in view.tiles:
        assert _squash(tile.value_text) in page_one and _squash(tile.status_label) in page_one


def _text_of_page_one(pdf: bytes) -> str:
    return _squash(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()).lower()


def _squash(text: str) -> str:
    """Text without spacing or case: pypdf breaks wrapped lines wherever they wrap, and the
    stylesheet upper-cases some labels."""
    return "".join(text.split()).lower()


def test_the_regional_scorecard_shows_only_its_region(staged, small_world):
    audience = load_audiences()["emea_vp_monthly"]
    period = period_containing("month", date(2026, 10, 1), audience.timezone)
    view = _view(staged, audience, period)
    emea = dataclasses.replace(
        small_world,
        truth_opportunities=small_world.truth_opportunities.query("region == 'EMEA'"),
    )
    everyone = truth_value("win_rate_count", small_world, period)[2]
    (tile,) = [t for t in view.tiles if t.kpi_id == "win_rate_count"]
    _, _, expected = truth_value("win_rate_count", emea, period)
    assert tile.value_text == f"{expected * 100:.1f}%" != f"{everyone * 100:.1f}%"
    assert view.scope_label == "Region: EMEA"
    assert all(b.dimension != "region" for b in view.breakdowns)


def test_breakdown_cells_equal_the_truth_of_their_segment(view, small_world):
    (by_region,) = [b for b in view.breakdowns if b.dimension == "region"]
    column = by_region.kpi_names.index("Win rate (by count)")
    for row in by_region.rows:
        segment = dataclasses.replace(
            small_world,
            truth_opportunities=small_world.truth_opportunities.query("region == @row.segment"),
        )
        _won, closed, value = truth_value("win_rate_count", segment, PERIOD)
        cell = row.cells[column]
        assert cell.volume_text == f"n = {closed:,}"
        assert cell.value_text == (f"{value * 100:.1f}%" if closed else "–")


def test_the_funnel_and_balanced_scorecard_cover_every_kpi_shown(view):
    assert [s.name for s in view.funnel.steps] == [
        "MQL to SAL (acceptance)",
        "SAL to SQL",
        "SQL to opportunity",
    ]
    in_perspectives = {v.kpi_id for p in view.perspectives for v in p.values}
    assert {t.kpi_id for t in view.tiles} | {d.kpi_id for d in view.definitions} == in_perspectives
    assert [p.name for p in view.perspectives] == [
        "Financial",
        "Customer",
        "Internal process",
        "Learning and growth",
    ]


MONTH = period_containing("month", date(2026, 9, 1))  # the small world's weeks win too few deals


@pytest.fixture(scope="module")
def marketing_month(staged):
    return _view(staged, dataclasses.replace(load_audiences()["marketing_weekly"], grain="month"), MONTH)


def test_the_attribution_table_hands_out_the_periods_won_revenue_in_every_model(marketing_month, small_world):
    view, month = marketing_month, MONTH
    table = view.attribution
    parameters = load_registry()["attribution.revenue_linear"].parameters
    won, _, _ = truth_value("attribution", small_world, month, parameters)
    assert won > 0
    assert table.total_cells == (format_value("currency", won),) * 5
    assert table.model_names == ("First touch", "Last touch", "Linear", "Position (40/20/40)", "Time decay")
    linear = [float(row.cells[2].split(" ")[0].strip("$").replace(",", "")) for row in table.rows]
    assert linear == sorted(linear, reverse=True) and len(linear) > 2
    assert {f"attribution.revenue_{m}" for m in ATTRIBUTION_MODELS} <= {d.kpi_id for d in view.definitions}


def test_a_version_that_only_rewrote_a_query_is_no_restatement(staged, marketing_month):
    """Funnel v2 and v3 and attribution v2 to v5 only rewrote the query before them
    (published 3 to 6 Dec 2026, in effect since 2025): no note, and no older version is
    computed again. Lead-to-opportunity v2 changed the meaning, published 30 Oct 2026:
    September is still restated by v2, whose numbers its rewrites v4 and v5 compute."""
    notes = {t.kpi_id: [n for n in t.notes if n.startswith("Restated")] for t in marketing_month.tiles}
    assert notes["funnel_stage_conversion.mql_to_sal"] == []
    (restated,) = notes["lead_to_opportunity_rate"]
    assert restated.startswith("Restated by v2 (published 30 Oct 2026): v1 gave")
    stored = table(staged, "marts.kpi_results", "kpi_id")
    versions = stored.groupby(stored["kpi_id"].str.split(".").str[0])["kpi_version"].unique()
    assert set(versions["attribution"]) == {5} and set(versions["funnel_stage_conversion"]) == {3}
    assert set(versions["lead_to_opportunity_rate"]) == {1, 5}


def test_no_prospect_contact_details_reach_any_scorecard(staged, small_world):
    emails = set(small_world.truth_prospects["email"].dropna().str.lower())
    for name, audience in load_audiences().items():
        period = period_containing(audience.grain, date(2026, 10, 26), audience.timezone)
        text = " ".join(
            p.extract_text()
            for p in pypdf.PdfReader(io.BytesIO(render_pdf(_view(staged, audience, period)))).pages
        ).lower()
        assert not any(email in text for email in emails), name


def test_text_is_escaped_not_interpreted(view):
    row = HotProspectRow(
        1, "<script>alert('x')</script>", "<b>Acme</b>", "o", "EMEA", "s", "A", "1", "+1", "+1", "–"
    )
    section = EngagementSection("now", "All", (row,), "1", "+1", None, ())
    hostile = dataclasses.replace(view, title="<script>alert('x')</script>", engagement=section)
    html = render_html(hostile)
    assert "<script>" not in html and "<b>Acme" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;Acme&lt;/b&gt;" in html


def test_archive_path_is_content_addressed_and_never_overwrites(pdf, tmp_path):
    path, digest = archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    again, _ = archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    other, other_digest = archive_pdf(pdf + b"\n", tmp_path, "executive_weekly", "week-2026-10-26")
    assert path == again and path.name == f"{digest[:16]}.pdf"
    assert other != path and other_digest != digest and path.read_bytes() == pdf


def test_a_full_disk_fails_the_archive_clearly_and_leaves_no_half_file(pdf, tmp_path):
    """The partial file is the kernel's full device, so the write fails with ENOSPC for real;
    once space is back, the same call archives the same bytes."""
    import errno
    import hashlib

    digest = hashlib.sha256(pdf).hexdigest()
    folder = tmp_path / "scorecards" / "executive_weekly" / "week-2026-10-26"
    folder.mkdir(parents=True)
    partial = folder / f"{digest[:16]}.pdf.partial"
    partial.symlink_to("/dev/full")
    with pytest.raises(OSError, match="No space left on device") as failure:
        archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    assert failure.value.errno == errno.ENOSPC
    assert not (folder / f"{digest[:16]}.pdf").exists()  # no half-written scorecard to send
    partial.unlink()  # space is back
    path, again = archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    assert again == digest and path.read_bytes() == pdf


def test_a_restated_period_says_so_and_by_how_much(view, pdf):

    (tile,) = [t for t in view.tiles if t.kpi_id == "lead_to_opportunity_rate"]
    (note,) = [n for n in tile.notes if n.startswith("Restated")]
    # v2 was published on 30 Oct 2026 with effect from 1 Jan: the shown September cohort was
    # first reported with v1. v2 changes nothing, and the note says that too.
    assert note == f"Restated by v2 (published 30 Oct 2026): v1 gave {tile.value_text} (+0.0 pts)."
    assert "Restated by v2" in _text(pdf)
