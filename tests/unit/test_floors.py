"""The floors benchmark measures the work the performance issue names, at its sizes."""

import duckdb

from benchmarks.floors import GROUP_BYS, INTERVALS, LEADS, OPPORTUNITIES, SCORE_CHANGES, WORLD, world_sql


def test_the_floors_are_measured_at_the_issues_sizes():
    assert (LEADS, OPPORTUNITIES, SCORE_CHANGES) == (1_000_000, 150_000, 11_000_000)
    assert world_sql(1_000_000, 150_000, 11_000_000) == WORLD


def test_the_world_has_its_sizes_and_the_intervals_chain_each_leads_changes():
    """At a hundredth of the issue's sizes: the same SQL, in a second rather than twenty."""
    leads, opportunities, score_changes = LEADS // 100, OPPORTUNITIES // 100, SCORE_CHANGES // 100
    with duckdb.connect() as con:
        con.execute(world_sql(leads, opportunities, score_changes))
        counts = con.execute(
            "select (select count(*) from leads), (select count(*) from opportunities),"
            " (select count(*) from score_changes),"
            " (select count(*) from opportunities where lead_id not in (select lead_id from leads))"
        ).fetchone()
        assert counts == (leads, opportunities, score_changes, 0)  # every deal has its lead
        assert len(GROUP_BYS) == 10 and all(con.execute(sql).fetchall() for sql in GROUP_BYS)
        con.execute(INTERVALS)
        open_per_lead, unchained = con.execute(
            "select count(*) filter (where valid_to is null) / count(distinct lead_id),"
            " count(*) filter (where valid_to < valid_from) from score_intervals"
        ).fetchone()
        assert (open_per_lead, unchained) == (1, 0)
