"""`staging.stage_first_entries`, derived from a hand-built stage timeline on DuckDB and
PostgreSQL: each cycle's first entry into each stage, and which cycle entered it first."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from revops.reconcile.first_entries import refresh_first_entries
from revops.reconcile.incremental import PROSPECT_KEYS
from revops.warehouse import get_engine, read_frame
from revops.warehouse.load import append_frame
from revops.warehouse.schema import prospect_stages, reconcile_scope
from tests.helpers import row_estimate

MARCH = datetime(2026, 3, 1)

# (prospect, cycle, stage, day of March, hour)
TIMELINE = [
    ("p1", 1, "mql", 10, 9),
    ("p1", 2, "mql", 5, 9),  # cycle 2's MQL was recorded before cycle 1's: it came first
    ("p1", 1, "sal", 12, 9),
    ("p1", 1, "sal", 11, 9),  # two acceptances in one cycle: the earlier one counts
    ("p2", 1, "mql", 5, 10),
    ("p2", 2, "mql", 5, 10),  # the same instant in two cycles: the lower cycle came first
]


def _stages(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (
                p,
                cycle,
                stage,
                MARCH.replace(day=day, hour=hour),
                "salesforce",
                f"{p}-{cycle}-{stage}-{day}",
                "",
            )
            for p, cycle, stage, day, hour in rows
        ],
        columns=["prospect_id", "cycle", "stage", "entered_at", "source", "record_id", "flags"],
    )


def _first_entries(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = read_frame(conn, "select * from staging.stage_first_entries")
    return sorted(
        (p, int(cycle), stage, pd.Timestamp(at).day, bool(first))
        for p, cycle, stage, at, first in rows[
            ["prospect_id", "cycle", "stage", "entered_at", "is_first_cycle"]
        ].itertuples(index=False)
    )


def test_each_cycles_first_entry_and_the_first_cycle_to_enter_each_stage(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, prospect_stages, _stages(TIMELINE))
        refresh_first_entries(conn, scoped=False)
    assert _first_entries(engine) == [
        ("p1", 1, "mql", 10, False),
        ("p1", 1, "sal", 11, True),
        ("p1", 2, "mql", 5, True),
        ("p2", 1, "mql", 5, True),
        ("p2", 2, "mql", 5, False),
    ]
    if engine.dialect.name == "postgresql":  # analysed, so the KPIs' joins are planned for its size
        with engine.connect() as conn:
            assert row_estimate(conn, "staging.stage_first_entries") == 5


def test_an_incremental_build_derives_the_prospects_it_lists(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        append_frame(conn, prospect_stages, _stages(TIMELINE))
        refresh_first_entries(conn, scoped=False)
        # Every cycle-2 entry is gone and p2 has a new stage, but only p1 and p3 are listed: p1
        # is in the scope, p3 is new (a scoped build can make a prospect outside its scope; the
        # build lists those too).
        conn.execute(prospect_stages.delete().where(prospect_stages.c.cycle == 2))
        append_frame(conn, prospect_stages, _stages([("p2", 1, "sal", 20, 9), ("p3", 1, "mql", 21, 9)]))
        source, name = PROSPECT_KEYS
        listed = pd.DataFrame({"source": source, "object": name, "record_id": ["p1", "p3"]})
        append_frame(conn, reconcile_scope, listed)
        refresh_first_entries(conn, scoped=True)
    assert _first_entries(engine) == [
        ("p1", 1, "mql", 10, True),  # cycle 1 is now p1's first MQL
        ("p1", 1, "sal", 11, True),
        ("p2", 1, "mql", 5, True),  # p2 as the last full derivation left it
        ("p2", 2, "mql", 5, False),
        ("p3", 1, "mql", 21, True),
    ]
