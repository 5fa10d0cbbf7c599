"""The run history inside the Airflow UI: a read-only FastAPI app the project's plugin mounts
at /revops-audit (with a "Run history" entry in Airflow's navigation).

Auditors see every ledger entry (runs, tasks, scorecards sent, KPI definition versions,
retention), filter them, open an archived PDF, and see whether the hash chain verifies. Only
GET routes exist; every route requires a signed-in Airflow user (Airflow's own token cookie).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from revops.settings import TEMPLATES_DIR

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "audit"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _signed_in():
    """Airflow's authentication when running inside its API server; none in a bare app."""
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


def create_app(require_user: bool = True) -> FastAPI:
    app = FastAPI(
        title="revops run history",
        description="Read-only audit view of the revops ledger",
        dependencies=[_signed_in()] if require_user else [],
    )

    @app.get("/", response_class=HTMLResponse)
    async def run_history(
        since: date | None = None,
        until: date | None = None,
        dag: str | None = None,
        audience: str | None = None,
        kpi: str | None = None,
        kind: list[str] = Query(default=[]),  # noqa: B008 - FastAPI's way to declare a list query
    ) -> str:
        kinds = tuple(k for k in kind if k)  # the form sends "" for "any"
        return await asyncio.to_thread(_page, since, until, dag, audience, kpi, kinds)

    @app.get("/pdf/{entry_id}")
    async def archived_pdf(entry_id: str) -> FileResponse:
        path, sha256 = await asyncio.to_thread(_artifact, entry_id)
        return FileResponse(path, media_type="application/pdf", headers={"X-Content-SHA256": sha256})

    return app


def _page(since, until, dag, audience, kpi, kinds) -> str:
    from revops.audit.history import HistoryFilter, history
    from revops.audit.verify import verify
    from revops.warehouse import get_engine

    engine = get_engine()
    wanted = HistoryFilter(since=since, until=until, dag_id=dag, audience=audience, kpi=kpi, kinds=kinds)
    with engine.connect() as conn:
        entries = history(conn, wanted)
    rows = [] if entries.empty else entries.iloc[::-1].to_dict("records")  # newest first
    return _templates.get_template("history.html.j2").render(
        rows=rows,
        verification=verify(engine),
        filters={"since": since, "until": until, "dag": dag, "audience": audience, "kpi": kpi, "kind": kinds},
        kinds=["artifact", "run", "dag_run", "task", "kpi_version", "retention"],
    )


def _artifact(entry_id: str) -> tuple[Path, str]:
    """The archived PDF of a scorecard entry; only files the ledger names are ever served."""
    import sqlalchemy as sa

    from revops.warehouse import get_engine
    from revops.warehouse.schema import run_ledger

    with get_engine().connect() as conn:
        details = conn.execute(
            sa.select(run_ledger.c.details).where(
                (run_ledger.c.entry_id == entry_id) & (run_ledger.c.kind == "artifact")
            )
        ).scalar()
    if details is None:
        raise HTTPException(404, f"no scorecard entry {entry_id}")
    (output,) = json.loads(details)["outputs"]
    path = Path(output["path"])
    if not path.exists():
        raise HTTPException(410, f"the archived file of entry {entry_id} is gone")
    return path, output["sha256"]
