"""The performance issue's floors, measured again: how fast bare DuckDB is on this machine now.

    .venv/bin/python -m benchmarks.floors [--repeat 3]

The issue gives two floors "for scale": DuckDB answers ten KPI-style group-bys over 1M leads
and 150k opportunities in about 0.1 s, and turns 11M score changes (1M leads, a year, about 3%
changing a day) into intervals in about 2 s. This machine's speed changes from one session to
the next (the end-to-end row at 1M took 54 s in one session and 110 s in another), so a figure
compares only with one measured in the same hour. The harness measures these floors in its
run, and a figure divided by them compares across hours.

A third figure is this machine's own: the seconds to touch a GiB of memory the process has
not used before. This machine is a virtual machine (a Firecracker guest) whose kernel reports
the memory it frees, in 2 MiB blocks, to the host, which takes it back: on 6 Dec 2026 a GiB the
host had taken back took 1.6 to 3.7 s to touch, and the same GiB touched again at once, before
the kernel had reported it, 0.12 to 0.27 s. (The figure is numpy's, in huge pages; in small
pages a GiB took 0.6 to 0.96 s either way, 262,144 faults.) The report follows a freed block by
about two seconds, and a process that frees GiBs is reported over five or more, so the figure
waits that long first: measured sooner, it reads the memory the previous process gave back
(0.17 to 0.8 s a GiB after a process of 4 GiB ended). Both figures are printed: memory afresh
from the host, and the same memory recycled.

The data is generated inside DuckDB (hash-random, the same every run), so only the floors'
own work is timed, best of `--repeat`.
"""

from __future__ import annotations

import argparse
import json
import time

import duckdb
import numpy as np

LEADS, OPPORTUNITIES, SCORE_CHANGES = 1_000_000, 150_000, 11_000_000


def world_sql(leads: int, opportunities: int, score_changes: int) -> str:
    """The floors' data, generated inside DuckDB at the given sizes."""
    # hash() is unsigned; each draw is cast to a signed integer (`h`).
    return f"""
create macro h(i, salt, n) as (hash(i, salt) % n)::bigint;
create table leads as
select i as lead_id,
       timestamp '2025-10-01' + to_seconds(h(i, 'created', 365 * 86400)) as created_at,
       ['web', 'event', 'partner', 'paid', 'outbound', 'referral', 'email', 'social'][h(i, 'source', 8) + 1]
           as lead_source,
       ['NA', 'EMEA', 'APAC', 'LATAM'][h(i, 'region', 4) + 1] as region,
       ['SMB', 'MM', 'ENT'][h(i, 'segment', 3) + 1] as segment,
       h(i, 'converted', 10) = 0 as is_converted,
       h(i, 'mql', 4) = 0 as is_mql
from range({leads}) t(i);
create table opportunities as
select i as opportunity_id,
       h(i, 'lead', {leads}) as lead_id,
       h(i, 'amount', 100000) / 1.0 + 1000 as amount,
       h(i, 'closed', 3) > 0 as is_closed,
       h(i, 'won', 3) = 1 as is_won,
       timestamp '2025-10-01' + to_seconds(h(i, 'opened', 365 * 86400)) as created_at
from range({opportunities}) t(i);
create table score_changes as
select i % {leads} as lead_id,
       timestamp '2025-10-01' + to_seconds(h(i, 'at', 365 * 86400)) as changed_at,
       h(i, 'score', 100) as score
from range({score_changes}) t(i);
"""


WORLD = world_sql(LEADS, OPPORTUNITIES, SCORE_CHANGES)

# Ten group-bys of the kind the KPI catalogue runs: counts, rates and sums by a dimension.
GROUP_BYS = [
    "select lead_source, count(*) from leads group by 1",
    "select region, avg(is_converted::int) from leads group by 1",
    "select date_trunc('month', created_at), count(*) from leads group by 1",
    "select segment, lead_source, avg(is_mql::int) from leads group by 1, 2",
    "select region, avg(is_won::int) from opportunities join leads using (lead_id)"
    " where is_closed group by 1",
    "select segment, sum(amount) from opportunities join leads using (lead_id) where is_won group by 1",
    "select date_trunc('month', created_at), avg(amount) from opportunities where is_won group by 1",
    "select lead_source, count(distinct lead_id) from opportunities join leads using (lead_id) group by 1",
    "select region, segment, count(*) from leads where is_mql group by 1, 2",
    "select date_trunc('week', created_at), sum(is_closed::int) from opportunities group by 1",
]

INTERVALS = """
create or replace table score_intervals as
select lead_id, score, changed_at as valid_from,
       lead(changed_at) over (partition by lead_id order by changed_at) as valid_to
from score_changes
"""


def measure_floors(repeat: int = 3) -> dict[str, float]:
    """Seconds, best of `repeat`, for the issue's two floors on a fresh in-memory DuckDB, and
    the seconds a GiB of memory took to touch (measured first, before DuckDB's)."""
    fresh, recycled = _touch_seconds_per_gib()
    with duckdb.connect() as con:
        con.execute(WORLD)
        return {
            "group_bys_seconds": _best(repeat, lambda: [con.execute(sql).fetchall() for sql in GROUP_BYS]),
            "intervals_seconds": _best(repeat, lambda: con.execute(INTERVALS)),
            "fresh_memory_seconds_per_gib": fresh,
            "recycled_memory_seconds_per_gib": recycled,
        }


# Long enough for the kernel to report to the host what an earlier process freed (module doc).
HOST_TAKES_BACK_SECONDS = 8


def _touch_seconds_per_gib() -> tuple[float, float]:
    """A GiB touched once the host has taken back what was freed before, then again at once."""
    time.sleep(HOST_TAKES_BACK_SECONDS)
    return _write_one_gib(), _write_one_gib()


def _write_one_gib() -> float:
    started = time.perf_counter()
    np.ones(2**30 // 8)  # written whole: every page faulted in, then freed
    return time.perf_counter() - started


def _best(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    floors = measure_floors(parser.parse_args().repeat)
    print(
        f"ten group-bys over {LEADS:,} leads and {OPPORTUNITIES:,} opportunities: "
        f"{floors['group_bys_seconds']:.3f} s (the issue: about 0.1 s)\n"
        f"{SCORE_CHANGES:,} score changes into intervals: {floors['intervals_seconds']:.2f} s"
        " (the issue: about 2 s)\n"
        f"a GiB of fresh memory touched: {floors['fresh_memory_seconds_per_gib']:.2f} s"
        f" (the same GiB again at once: {floors['recycled_memory_seconds_per_gib']:.2f} s)"
    )
    print(json.dumps(floors))


if __name__ == "__main__":
    main()
