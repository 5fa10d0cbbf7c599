"""The rendered scorecard: right numbers in the PDF text, deterministic bytes, not blank."""

from __future__ import annotations

import dataclasses
import io
from datetime import date

import pypdf
import pypdfium2
import pytest

from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.scorecards.audiences import load_audiences
from revops.scorecards.render import archive_pdf, render_html, render_pdf
from revops.scorecards.view_model import build_view, compute_scorecard_results, reporting_period
from revops.synthetic.truth import truth_value
from tests.helpers import stage

PERIOD = period_containing("week", date(2026, 10, 26))


@pytest.fixture(scope="module")
def view(small_exports, tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('scorecard') / 'warehouse.duckdb'}"
    engine, _build = stage(url, small_exports)
    audience = load_audiences()["executive_weekly"]
    compute_scorecard_results(engine, audience, PERIOD, "render-test")
    with engine.connect() as conn:
        return build_view(conn, audience, PERIOD, "render-test")


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
        assert f"{value * 100:.1f}%" in text, tile.kpi_id
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


def test_page_one_is_a_single_page_that_is_not_blank(pdf):
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    image = document[0].render(scale=0.5).to_pil().convert("L")
    dark_pixels = sum(image.histogram()[:128])
    assert dark_pixels > 0.01 * image.width * image.height


def test_text_is_escaped_not_interpreted(view):
    hostile = dataclasses.replace(view, title="<script>alert('x')</script>")
    html = render_html(hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_archive_path_is_content_addressed_and_never_overwrites(pdf, tmp_path):
    path, digest = archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    again, _ = archive_pdf(pdf, tmp_path, "executive_weekly", "week-2026-10-26")
    other, other_digest = archive_pdf(pdf + b"\n", tmp_path, "executive_weekly", "week-2026-10-26")
    assert path == again and path.name == f"{digest[:16]}.pdf"
    assert other != path and other_digest != digest and path.read_bytes() == pdf


def test_a_restated_period_says_so_and_by_how_much(view, pdf):
    (tile,) = [t for t in view.tiles if t.kpi_id == "lead_to_opportunity_rate"]
    (note,) = [n for n in tile.notes if n.startswith("Restated")]
    # v2 was published on 30 Oct 2026 with effect from 1 Jan: the shown September cohort was
    # first reported with v1. v2 changes nothing, and the note says that too.
    assert note == f"Restated by v2 (published 30 Oct 2026): v1 gave {tile.value_text} (+0.0 pts)."
    assert "Restated by v2" in _text(pdf)
