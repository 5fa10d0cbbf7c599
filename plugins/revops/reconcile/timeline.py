"""One stage timeline per prospect, from both systems' histories.

Stages: created, mql, sal, sql, opportunity, won, lost, plus the exits disqualified and
recycled. Each row belongs to a cycle: the first hand-off to sales is cycle 1, a recycled
prospect who comes back as a new Salesforce lead starts cycle 2 (`re-entered`). Funnel
measures count a prospect once per stage (its first entry), so a re-entry never double counts.

Where both systems record one event, one is the system of record: HubSpot for the first MQL
(marketing qualifies), Salesforce for everything sales does (its LeadHistory) and for
opportunities. A stage entered before an earlier stage of its cycle is flagged
`out_of_order`; its recorded time is kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.reconcile.frames import is_in, sorted_rows

STATUS_STAGES = {"SAL": "sal", "SQL": "sql", "Disqualified": "disqualified", "Recycled": "recycled"}
TIMELINE_COLUMNS = ["prospect_id", "cycle", "stage", "entered_at", "source", "record_id", "flags"]


def initial_statuses(leads: pd.DataFrame, lead_history: pd.DataFrame) -> pd.Series:
    """Each lead's first status: the root of its chain of Status changes (an OldValue no
    change led to), which survives back-dated rows; else its current status."""
    changes = lead_history[lead_history["Field"] == "Status"]
    lead_ids = changes["LeadId"].to_list()  # lists: iterating an Arrow-backed Series is slow
    reached = set(zip(lead_ids, changes["NewValue"].to_list(), strict=True))
    is_root = pd.Series(
        [
            (lead, old) not in reached
            for lead, old in zip(lead_ids, changes["OldValue"].to_list(), strict=True)
        ],
        index=changes.index,
        dtype=bool,
    )
    roots = changes[is_root]
    first_old = roots.sort_values(["LeadId", "CreatedDate", "Id"]).groupby("LeadId")["OldValue"].first()
    return leads["Id"].map(first_old).fillna(leads["Status"])


def build_timeline(
    identities: pd.DataFrame,
    prospects: pd.DataFrame,
    lead_history: pd.DataFrame,
    opportunities: pd.DataFrame,
    opportunity_stages: pd.DataFrame,
    stage_order: list[str],
) -> pd.DataFrame:
    """The timeline from reconciled identities, prospects, lead history and the staging
    opportunities with their stage entries."""
    leads = identities[identities["source"] == "salesforce"].set_index("record_id")
    parts = [
        _created(prospects),
        _mql(identities),
        _lead_status_changes(leads, lead_history),
        *_opportunity_stages(leads, opportunities, opportunity_stages),
    ]
    non_empty = [p for p in parts if not p.empty]
    if not non_empty:  # a source with opportunities only (a public pipeline export)
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    timeline = pd.concat(non_empty, ignore_index=True)
    timeline["flags"] = _out_of_order(timeline, stage_order)
    reentry = (timeline["cycle"] > 1) & (timeline["stage"] == "mql")
    timeline.loc[reentry, "flags"] = _add_flag(timeline.loc[reentry, "flags"], "re_entered")
    timeline = sorted_rows(
        timeline[TIMELINE_COLUMNS], ["prospect_id", "cycle", "entered_at", "stage", "record_id"]
    )
    return timeline.reset_index(drop=True)


def _created(prospects: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prospect_id": prospects["prospect_id"],
            "cycle": 1,
            "stage": "created",
            "entered_at": prospects["created_at"],
            "source": "reconciled",
            "record_id": prospects["prospect_id"],
        }
    )


def _mql(identities: pd.DataFrame) -> pd.DataFrame:
    """HubSpot's MQL date for the first cycle; a Salesforce MQL hand-off lead otherwise."""
    hubspot = identities[(identities["source"] == "hubspot") & identities["mql_at"].notna()]
    hubspot_rows = pd.DataFrame(
        {
            "prospect_id": hubspot["prospect_id"],
            "cycle": 1,
            "stage": "mql",
            "entered_at": hubspot["mql_at"],
            "source": "hubspot",
            "record_id": hubspot["record_id"],
        }
    ).drop_duplicates("prospect_id")
    leads = identities[(identities["source"] == "salesforce") & identities["is_mql_handoff"]]
    covered = is_in(leads["prospect_id"], hubspot_rows["prospect_id"]) & (leads["cycle"] == 1)
    leads = leads[~covered]
    lead_rows = pd.DataFrame(
        {
            "prospect_id": leads["prospect_id"],
            "cycle": leads["cycle"],
            "stage": "mql",
            "entered_at": leads["created_at"],
            "source": "salesforce",
            "record_id": leads["record_id"],
        }
    )
    return pd.concat([hubspot_rows, lead_rows], ignore_index=True)


def _lead_status_changes(leads: pd.DataFrame, lead_history: pd.DataFrame) -> pd.DataFrame:
    changes = lead_history[
        (lead_history["Field"] == "Status")
        & lead_history["NewValue"].isin(list(STATUS_STAGES))
        & is_in(lead_history["LeadId"], leads.index)
    ]
    lead = leads.loc[changes["LeadId"]]
    return pd.DataFrame(
        {
            "prospect_id": lead["prospect_id"].to_numpy(),
            "cycle": lead["cycle"].to_numpy(),
            "stage": changes["NewValue"].map(STATUS_STAGES).to_numpy(),
            "entered_at": changes["CreatedDate"].to_numpy(),
            "source": "salesforce",
            "record_id": changes["LeadId"].to_numpy(),
        }
    )


def _opportunity_stages(leads, opportunities, opportunity_stages) -> list[pd.DataFrame]:
    """Opportunity creation and its outcome, from the staging opportunities (stages already
    canonical) and the time each first entered a closing stage."""
    converting = leads.dropna(subset=["converted_opportunity_id"])
    lead_of_opp = pd.Series(converting.index, index=converting["converted_opportunity_id"])
    lead_of_opp = lead_of_opp[~lead_of_opp.index.duplicated()]
    opps = opportunities[is_in(opportunities["opportunity_id"], lead_of_opp.index)]
    opps = opps.assign(lead=lead_of_opp.reindex(opps["opportunity_id"]).to_numpy())
    opps = opps.assign(
        prospect_id=opps["lead"].map(leads["prospect_id"]), cycle=opps["lead"].map(leads["cycle"])
    )
    opened = opps.dropna(subset=["created_at"])
    created = pd.DataFrame(
        {
            "prospect_id": opened["prospect_id"],
            "cycle": opened["cycle"],
            "stage": "opportunity",
            "entered_at": opened["created_at"],
            "source": "salesforce",
            "record_id": opened["opportunity_id"],
        }
    )
    closed = opps[opps["is_closed"]]
    entered_closing = (
        opportunity_stages[opportunity_stages["stage"].isin(closed["stage"].unique())]
        .groupby("opportunity_id")["entered_at"]
        .min()
    )
    entered = pd.Series(entered_closing.reindex(closed["opportunity_id"]).to_numpy(), index=closed.index)
    close_time = entered.fillna(pd.to_datetime(closed["close_date"]))
    outcome = pd.DataFrame(
        {
            "prospect_id": closed["prospect_id"],
            "cycle": closed["cycle"],
            "stage": closed["is_won"].map({True: "won", False: "lost"}),
            "entered_at": close_time,
            "source": "salesforce",
            "record_id": closed["opportunity_id"],
        }
    )
    return [created, outcome]


def _out_of_order(timeline: pd.DataFrame, stage_order: list[str]) -> pd.Series:
    """`out_of_order` where a stage was entered before an earlier stage of its cycle."""
    rank = timeline["stage"].map({stage: n for n, stage in enumerate(stage_order)})
    ranked = timeline[rank.notna()].assign(rank=rank)
    ranked = ranked[ranked["stage"] != "created"]  # creation can precede a re-entry cycle
    flags = pd.Series("", index=timeline.index, dtype=object)
    if ranked.empty:
        return flags
    per_stage = ranked.groupby(["prospect_id", "cycle", "rank"])["entered_at"].max().reset_index()
    per_stage = per_stage.sort_values(["prospect_id", "cycle", "rank"])
    # The latest time any earlier stage of the cycle was entered (cythonised cummax + shift).
    groups = [per_stage["prospect_id"], per_stage["cycle"]]
    running_latest = per_stage.groupby(groups)["entered_at"].cummax()
    per_stage["latest_before"] = running_latest.groupby(groups).shift()
    merged = ranked.reset_index().merge(
        per_stage[["prospect_id", "cycle", "rank", "latest_before"]],
        on=["prospect_id", "cycle", "rank"],
        how="left",
    )
    early = merged[merged["entered_at"] < merged["latest_before"]]["index"]
    flags.loc[early.to_numpy()] = "out_of_order"
    return flags


def _add_flag(flags: pd.Series, flag: str) -> pd.Series:
    return pd.Series(np.where(flags == "", flag, flags + "," + flag), index=flags.index)
