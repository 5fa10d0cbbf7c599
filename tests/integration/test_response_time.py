"""Lead response time and its SLA in working hours, on a hand-built staging layer and a
hand-written business calendar, on DuckDB and PostgreSQL. The hours are worked out in the
comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.registry import load_registry
from revops.periods import period_containing
from revops.reconcile.calendar import load_calendars, working_hours, working_time
from revops.reconcile.first_entries import refresh_first_entries
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import prospect_stages, prospects
from revops.warehouse.schema import working_hours as working_hours_table
from revops.warehouse.schema import working_time as working_time_table
from tests.helpers import record_build

CALENDAR = """\
regions:
  EMEA: {timezone: Europe/London, days: [mon, tue, wed, thu, fri], hours: ["09:00", "17:30"],
         holidays: [2026-03-27]}
  NA: {timezone: America/New_York, days: [mon, tue, wed, thu, fri], hours: ["09:00", "17:00"]}
  default: {timezone: UTC, days: [mon, tue, wed, thu, fri], hours: ["09:00", "17:00"]}
"""
WEEK = period_containing("week", date(2026, 3, 23))  # Mon 23 to Sun 29 March
CUTOFF = datetime(2026, 4, 2)  # Thursday, midnight UTC
KPI_IDS = ["lead_response_time", "lead_response_sla", "lead_response_sla.48h"]
# The first version and every rewrite of it give the hand-worked numbers.
REGISTRY = load_registry()
VERSIONS = {
    kpi_id: [
        v.version for v in REGISTRY[kpi_id].usable_versions() if REGISTRY[kpi_id].numbers_of(v).version == 1
    ]
    for kpi_id in KPI_IDS
}

# prospect: (region, excluded, [(cycle, stage, entered_at UTC)])
PROSPECTS = {
    # London: Thu 26 Mar 15:00-17:30 (2.5 h), Fri 27 a holiday, the weekend, then Mon 30 in
    # summer time, open from 08:00 UTC: 08:00-10:00 (2 h). 4.5 h.
    "a": ("EMEA", False, [(1, "mql", datetime(2026, 3, 26, 15)), (1, "sal", datetime(2026, 3, 30, 10))]),
    # New York in summer time opens 13:00 UTC: Mon 8 h, Tue 8 h, Wed 13:00-14:00 1 h. 17 h.
    "b": ("NA", False, [(1, "mql", datetime(2026, 3, 23, 12)), (1, "sal", datetime(2026, 3, 25, 14))]),
    # Accepted before the MQL (back-dated): no time.
    "c": ("EMEA", False, [(1, "mql", datetime(2026, 3, 24, 10)), (1, "sal", datetime(2026, 3, 24, 9, 30))]),
    # No calendar of its own: the default one. Saturday, then Mon 09:00-09:30. 0.5 h.
    "d": (
        "unknown",
        False,
        [(1, "mql", datetime(2026, 3, 28, 10)), (1, "sal", datetime(2026, 3, 30, 9, 30))],
    ),
    # Never accepted. To the cut-off: Wed, Thu, Mon, Tue, Wed at 8.5 h (Fri a holiday): 42.5 h.
    "e": ("EMEA", False, [(1, "mql", datetime(2026, 3, 25, 9))]),
    # Never accepted: Fri 20:00-21:00 UTC (1 h), Mon, Tue, Wed 8 h each: 25 h.
    "f": ("NA", False, [(1, "mql", datetime(2026, 3, 27, 20))]),
    # Its first MQL was in February: not this week's cohort.
    "h": (
        "EMEA",
        False,
        [
            (1, "mql", datetime(2026, 2, 10, 10)),
            (2, "mql", datetime(2026, 3, 24, 10)),
            (2, "sal", datetime(2026, 3, 24, 11)),
        ],
    ),
    # A test record.
    "i": ("EMEA", True, [(1, "mql", datetime(2026, 3, 24, 10)), (1, "sal", datetime(2026, 3, 24, 11))]),
    # MQL on the London holiday, accepted on the Saturday: no working hour between them.
    "k": ("EMEA", False, [(1, "mql", datetime(2026, 3, 27, 10)), (1, "sal", datetime(2026, 3, 28, 10))]),
    # Accepted only in a later cycle: not accepted in its own. 7.5 h on Mon 23, then 8.5 h on
    # six more working days to the cut-off: 58.5 h.
    "j": ("EMEA", False, [(1, "mql", datetime(2026, 3, 23, 10)), (2, "sal", datetime(2026, 3, 24, 10))]),
}


@pytest.fixture
def results(any_warehouse_url, tmp_path):
    (tmp_path / "business_calendar.yaml").write_text(CALENDAR)
    calendars = load_calendars(tmp_path / "business_calendar.yaml")
    calendar = working_hours(calendars, date(2026, 2, 1), date(2026, 4, 3))
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        _write_staging(conn)
        append_frame(conn, working_hours_table, calendar)
        append_frame(conn, working_time_table, working_time(calendar))
    frame = pd.concat(
        compute_kpis(engine, [WEEK], "response-test", kpi_ids=[kpi_id], version=version)
        for kpi_id, versions in VERSIONS.items()
        for version in versions
    )
    return frame[frame["dimension"] == TOTAL].set_index(["kpi_id", "kpi_version"])


def _write_staging(conn) -> None:
    """Prospects and their stages as a build writes them, with the first entries it derives."""
    append_frame(conn, prospects, _prospects())
    append_frame(conn, prospect_stages, _stages())
    refresh_first_entries(conn, scoped=False)
    record_build(conn, CUTOFF)


def _prospects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prospect_id": list(PROSPECTS),
            "created_at": datetime(2026, 2, 1),
            "region": [region for region, _, _ in PROSPECTS.values()],
            "channel": "events",
            "sub_channel": "webinar",
            "record_count": 1,
            "is_excluded": [excluded for _, excluded, _ in PROSPECTS.values()],
        }
    )


def _stages() -> pd.DataFrame:
    rows = [
        (prospect, cycle, stage, at, "salesforce", prospect, "")
        for prospect, (_, _, stages) in PROSPECTS.items()
        for cycle, stage, at in stages
    ]
    return pd.DataFrame(
        rows, columns=["prospect_id", "cycle", "stage", "entered_at", "source", "record_id", "flags"]
    )


def test_response_time_counts_working_hours_only(results):
    # Accepted: a 4.5, b 17, c 0, d 0.5, k 0 -> the median of [0, 0, 0.5, 4.5, 17] is 0.5.
    assert len(VERSIONS["lead_response_time"]) >= 3  # v1 and its rewrites v2 and v3
    for version in VERSIONS["lead_response_time"]:
        row = results.loc[("lead_response_time", version)]
        assert (row["numerator"], row["volume"]) == (pytest.approx(0.5), 5), version


def test_sla_counts_breaches_and_leaves_out_leads_still_inside_it(results):
    # 24 h: a, b, c, d, k within; e (42.5 h), f (25 h) and j (58.5 h) breached: 5 of 8.
    # 48 h: e and f are still inside it at the cut-off (pending), j breached: 5 of 6.
    assert VERSIONS["lead_response_sla"] == VERSIONS["lead_response_sla.48h"]
    assert len(VERSIONS["lead_response_sla"]) >= 3
    for version in VERSIONS["lead_response_sla"]:
        sla_24h = results.loc[("lead_response_sla", version), ["numerator", "denominator"]]
        sla_48h = results.loc[("lead_response_sla.48h", version), ["numerator", "denominator"]]
        assert (sla_24h.tolist(), sla_48h.tolist()) == ([5, 8], [5, 6]), version


def test_without_a_business_calendar_the_response_kpis_have_no_data(any_warehouse_url):
    """No working hours to count is no data, not every lead answered in zero hours."""
    engine = get_engine(any_warehouse_url)
    with engine.begin() as conn:
        _write_staging(conn)
    kpi_ids = ["lead_response_sla", "lead_response_time"]
    frame = compute_kpis(engine, [WEEK], "no-calendar-test", kpi_ids=kpi_ids)
    assert sorted(frame["kpi_id"]) == kpi_ids and (frame["dimension"] == TOTAL).all()
    assert frame["flags"].str.startswith("no_data").all() and frame["value"].isna().all()
