"""A PostgreSQL planner setting against the server's own, on a built warehouse: each KPI
family's horizon (both scopes, nothing reused) and full velocity refreshes, the two settings
alternated in the same run so the machine's drift falls on both.

    .venv/bin/python -m benchmarks.first_run --into URL   # once: the world's first run
    .venv/bin/python -m benchmarks.postgres_planner URL --setting random_page_cost=1.1 \\
        [--family attribution ...] [--velocity-runs 4]

URL names a PostgreSQL database a first run has filled, with no query string of its own. The
setting is given per connection (`options=-c ...`), so the server is left as it is.
Prints one JSON line per family and per velocity refresh.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from itertools import chain
from urllib.parse import quote

import sqlalchemy as sa

from revops.kpis.registry import load_registry
from revops.pipeline import kpi_horizon
from revops.snapshots.velocity import VelocitySettings, refresh_velocity
from revops.warehouse import get_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--setting", required=True, help="NAME=VALUE, e.g. random_page_cost=1.1")
    parser.add_argument("--family", nargs="*", help="only these KPI families")
    parser.add_argument("--velocity-runs", type=int, default=0, help="full refreshes, ABBA order")
    args = parser.parse_args()
    urls = {"server": args.url, args.setting: f"{args.url}?options={quote('-c ' + args.setting)}"}
    for line in chain(compare_families(urls, args.family), compare_velocity(urls, args.velocity_runs)):
        print(json.dumps(line), flush=True)


def compare_families(urls: dict[str, str], only: list[str] | None) -> Iterator[dict]:
    """Each family's horizon under each setting, the first setting first on every other family."""
    registry = load_registry().values()
    families = sorted({kpi.family_id for kpi in registry})
    for position, family in enumerate(f for f in families if not only or f in only):
        kpi_ids = [kpi.id for kpi in registry if kpi.family_id == family]
        order = list(urls) if position % 2 == 0 else list(reversed(urls))
        yield {"family": family} | {name: _horizon_seconds(urls[name], kpi_ids) for name in order}


def _horizon_seconds(url: str, kpi_ids: list[str]) -> float:
    engine = get_engine(url)
    started = time.perf_counter()
    kpi_horizon(engine, "benchmark", kpi_ids, reuse=False)
    return round(time.perf_counter() - started, 2)


def compare_velocity(urls: dict[str, str], runs: int) -> Iterator[dict]:
    """Full velocity refreshes in ABBA order (each rewrites 12M rows at 1M prospects, and the
    database slows a little with every one), a vacuum before each."""
    names = list(urls)
    order = [names[(i + i // 2) % 2] for i in range(runs)]  # A B B A A B B A ...
    for name in order:
        engine = get_engine(urls[name])
        # vacuum runs outside a transaction
        vacuuming = sa.create_engine(urls[name], isolation_level="AUTOCOMMIT")
        with vacuuming.connect() as conn:
            conn.execute(sa.text("vacuum analyze marts.score_changes, marts.score_velocity"))
            as_of = conn.execute(sa.text("select max(as_of) from marts.score_velocity")).scalar_one()
        vacuuming.dispose()  # its pooled connection closed, not left open for the rest of the run
        started = time.perf_counter()
        refresh_velocity(engine, as_of, VelocitySettings.from_config(), full=True)
        yield {"velocity_full": name, "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    main()
