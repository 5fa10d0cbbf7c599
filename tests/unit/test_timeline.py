from datetime import datetime

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revops.reconcile.timeline import TIMELINE_COLUMNS, flagged_in_order, initial_statuses

STAGE_ORDER = ["created", "mql", "sal", "sql", "opportunity", "won", "lost"]
KEYS = ["prospect_id", "cycle", "entered_at", "stage", "record_id"]

rows = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.integers(1, 2),
    st.sampled_from([*STAGE_ORDER, "disqualified", "recycled"]),  # the exits have no rank
    st.one_of(st.none(), st.sampled_from([datetime(2026, 1, d) for d in (1, 2, 3, 4)])),
    st.sampled_from(["r1", "r2"]),
)


def expected_flags(timeline: pd.DataFrame) -> list[str]:
    """The rule row by row: out of order when entered before the latest entry into an
    earlier-ranked stage of the same prospect's cycle (creation neither flagged nor compared);
    re-entered on a later cycle's MQL."""
    rank = {stage: position for position, stage in enumerate(STAGE_ORDER)}
    ranked = [r for r in timeline.itertuples() if r.stage in rank and r.stage != "created"]
    flags = []
    for row in timeline.itertuples():
        earlier = [
            other.entered_at
            for other in ranked
            if (other.prospect_id, other.cycle) == (row.prospect_id, row.cycle)
            and rank[other.stage] < rank.get(row.stage, -1)
            and not pd.isna(other.entered_at)
        ]
        late = row.stage in rank and row.stage != "created" and not pd.isna(row.entered_at)
        out_of_order = late and bool(earlier) and row.entered_at < max(earlier)
        re_entered = row.cycle > 1 and row.stage == "mql"
        named = [("out_of_order", out_of_order), ("re_entered", re_entered)]
        flags.append(",".join(flag for flag, on in named if on))
    return flags


@given(st.lists(rows, max_size=25))
def test_flags_follow_the_rule_and_rows_come_in_timeline_order(timeline_rows):
    columns = ["prospect_id", "cycle", "stage", "entered_at", "record_id"]
    timeline = pd.DataFrame(timeline_rows, columns=columns)
    timeline["entered_at"] = pd.to_datetime(timeline["entered_at"])
    timeline["source"] = "salesforce"
    timeline["flags"] = expected_flags(timeline)
    expected = timeline.sort_values(KEYS, kind="stable", na_position="last")

    flagged = flagged_in_order(timeline.drop(columns="flags"), STAGE_ORDER)

    assert list(flagged.columns) == TIMELINE_COLUMNS
    assert flagged.to_dict("records") == expected[TIMELINE_COLUMNS].to_dict("records")


def test_a_stage_entered_before_an_earlier_one_is_flagged_and_creation_never_is():
    """By hand: the SQL on day 2 precedes the SAL on day 3; the second MQL opens cycle 2."""
    day = lambda d: datetime(2026, 1, d)  # noqa: E731
    timeline = pd.DataFrame(
        [
            ("p1", 1, "created", day(5), "p1", "reconciled"),  # after everything: not compared
            ("p1", 1, "mql", day(1), "h1", "hubspot"),
            ("p1", 1, "sal", day(3), "l1", "salesforce"),
            ("p1", 1, "sql", day(2), "l1", "salesforce"),
            ("p1", 1, "disqualified", day(1), "l1", "salesforce"),  # an exit: no rank
            ("p1", 2, "mql", day(6), "l2", "salesforce"),
        ],
        columns=["prospect_id", "cycle", "stage", "entered_at", "record_id", "source"],
    )
    flagged = flagged_in_order(timeline, STAGE_ORDER)
    assert flagged[["stage", "flags"]].values.tolist() == [
        ["disqualified", ""],  # ties in time go by stage name
        ["mql", ""],
        ["sql", "out_of_order"],
        ["sal", ""],
        ["created", ""],
        ["mql", "re_entered"],
    ]


def _status_changes(rows: list[tuple[str, str, str, datetime]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Id": f"h{n}",
                "LeadId": lead,
                "Field": "Status",
                "OldValue": old,
                "NewValue": new,
                "CreatedDate": at,
            }
            for n, (lead, old, new, at) in enumerate(rows)
        ],
        columns=["Id", "LeadId", "Field", "OldValue", "NewValue", "CreatedDate"],
    )


def test_a_leads_first_status_is_the_root_of_its_status_chain_else_its_current_one():
    leads = pd.DataFrame(
        {"Id": ["L1", "L2", "L3", "L4"], "Status": ["Qualified", "Open", "Working", "Closed"]},
        dtype="str",
        index=[7, 3, 5, 9],  # as a filtered frame has it
    )
    history = _status_changes(
        [
            # L1 went New -> Working -> Qualified; a Working row is back-dated before the New one.
            ("L1", "Working", "Qualified", datetime(2026, 1, 3)),
            ("L1", "New", "Working", datetime(2026, 1, 2)),
            ("L1", "Working", "Working", datetime(2026, 1, 1)),  # reached: not a root
            # L2 has no status change. L3: a change from no status is none; of two roots the
            # earlier wins.
            ("L3", None, "Open", datetime(2026, 1, 1)),
            ("L3", "Open", "Working", datetime(2026, 1, 3)),  # reached from the first row
            ("L3", "Nurture", "Closed", datetime(2026, 1, 2)),
            ("L3", "Cold", "Closed", datetime(2026, 1, 4)),
            # L4: two roots at the same time; the smaller row id wins (h7 before h8).
            ("L4", "Cold", "Closed", datetime(2026, 1, 5)),
            ("L4", "Warm", "Closed", datetime(2026, 1, 5)),
        ]
    )
    first = initial_statuses(leads, history)
    assert first.to_list() == ["New", "Open", "Nurture", "Cold"] and first.index.equals(leads.index)


@pytest.mark.filterwarnings("error")
def test_leads_without_status_history_keep_their_current_status_and_its_type():
    """An incremental build's scope often holds no status change at all."""
    leads = pd.DataFrame({"Id": ["L1", "L2"], "Status": ["Qualified", "Open"]}, dtype="str")
    first = initial_statuses(leads, _status_changes([]))
    assert first.to_list() == ["Qualified", "Open"] and first.dtype == leads["Status"].dtype
