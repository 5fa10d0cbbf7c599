"""The floors benchmark measures the work the performance issue names, at its sizes."""

import duckdb

from benchmarks.floors import GROUP_BYS, INTERVALS, LEADS, OPPORTUNITIES, SCORE_CHANGES, WORLD


def test_the_floors_run_on_the_issues_sizes_and_chain_each_leads_intervals():
    with duckdb.connect() as con:
        con.execute(WORLD)
        counts = con.execute(
            "select (select count(*) from leads), (select count(*) from opportunities),"
            " (select count(*) from score_changes),"
            " (select count(*) from opportunities where lead_id not in (select lead_id from leads))"
        ).fetchone()
        assert counts == (LEADS, OPPORTUNITIES, SCORE_CHANGES, 0)  # every deal has its lead
        assert len(GROUP_BYS) == 10 and all(con.execute(sql).fetchall() for sql in GROUP_BYS)
        con.execute(INTERVALS)
        open_per_lead, unchained = con.execute(
            "select count(*) filter (where valid_to is null) / count(distinct lead_id),"
            " count(*) filter (where valid_to < valid_from) from score_intervals"
        ).fetchone()
        assert (open_per_lead, unchained) == (1, 0)
