"""Render a scorecard view model to PDF with Jinja2 and WeasyPrint, deterministically.

The PDF carries no creation time and a fixed identifier, so the same view model always
gives the same bytes: an archived scorecard can be reproduced and compared by hash.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import jinja2

from revops.scorecards.view_model import ScorecardView
from revops.settings import TEMPLATES_DIR

TEMPLATE_DIR = TEMPLATES_DIR / "scorecard"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,  # CRM text is data, never markup: a lead named <script> prints as text
    undefined=jinja2.StrictUndefined,
)


def render_html(view: ScorecardView) -> str:
    return _environment.get_template("scorecard.html.j2").render(view=view)


def render_pdf(view: ScorecardView) -> bytes:
    from weasyprint import HTML  # heavy import, kept out of DAG parsing

    html = render_html(view)
    identifier = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    with _fixed_build_time():
        return HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(pdf_identifier=identifier)


@contextmanager
def _fixed_build_time():
    """Font subsetting stamps the current time into each embedded font unless
    SOURCE_DATE_EPOCH (the reproducible-builds convention) says otherwise."""
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def archive_pdf(pdf: bytes, archive_dir: Path, audience: str, period_key: str) -> tuple[Path, str]:
    """Store the PDF under a content-addressed path; returns (path, sha256).

    `<archive>/scorecards/<audience>/<period>/<sha256>.pdf` never overwrites a different
    scorecard, and writing the same bytes twice is a no-op.
    """
    digest = hashlib.sha256(pdf).hexdigest()
    path = archive_dir / "scorecards" / audience / period_key / f"{digest[:16]}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        partial = path.with_suffix(".pdf.partial")
        partial.write_bytes(pdf)
        partial.replace(path)  # atomic: a reader never sees half a file
    return path, digest
