"""The hot-prospect list: prospects whose score rose fastest this week, for sales.

Ranked by 7-day change (interest only: a scoring-model change is no surge), then by score.
Prospects whose 7-day change is unknown or not positive are not hot.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from revops.kpis.scope import SCOPE_COLUMNS, Scope
from revops.warehouse.load import read_frame

HOT_LIST_COLUMNS = [
    "rank", "prospect_id", "name", "company", "owner", "region", "source", "lead_grade",
    "score", "change_7d", "change_14d", "decayed_score", "last_activity_at", "model_change_points_14d",
]  # fmt: skip

_HOT_PROSPECTS = """
select v.prospect_id, p.first_name, p.last_name, p.company, u.name as owner, p.region,
       p.channel, p.sub_channel, p.lead_grade, v.score, v.change_7d, v.change_14d,
       v.decayed_score, v.last_increase_at, v.model_change_points_14d
from marts.score_velocity v
join staging.prospects p on p.prospect_id = v.prospect_id
left join staging.users u on u.user_id = p.lead_owner_id
where v.as_of = :as_of and v.change_7d > 0 {scope_filter}
order by v.change_7d desc, v.score desc, v.prospect_id
limit :size
"""


def hot_prospects(
    conn: sa.Connection, as_of: datetime, size: int, scope: Scope | None = None
) -> pd.DataFrame:
    """The top `size` prospects as of `as_of`, in a scope (e.g. one region)."""
    scope = scope or Scope()
    scope_filter = "" if scope.column is None else f"and p.{SCOPE_COLUMNS[scope.column]} = :scope_value"
    rows = read_frame(
        conn,
        _HOT_PROSPECTS.format(scope_filter=scope_filter),
        {"as_of": as_of, "size": size, "scope_value": scope.value},
    )
    names = rows["first_name"].fillna("").str.cat(rows["last_name"].fillna(""), sep=" ").str.strip()
    detail = rows["sub_channel"].fillna("none")
    source = rows["channel"].where(detail == "none", rows["channel"] + " / " + detail)
    return pd.DataFrame(
        {
            "rank": range(1, len(rows) + 1),
            "prospect_id": rows["prospect_id"],
            "name": names.replace("", "(no name)"),
            "company": rows["company"],
            "owner": rows["owner"].fillna("unassigned"),
            "region": rows["region"],
            "source": source,
            "lead_grade": rows["lead_grade"],
            "score": rows["score"],
            "change_7d": rows["change_7d"],
            "change_14d": rows["change_14d"],
            "decayed_score": rows["decayed_score"],
            "last_activity_at": rows["last_increase_at"],
            "model_change_points_14d": rows["model_change_points_14d"],
        },
        columns=HOT_LIST_COLUMNS,
    )


def latest_velocity_as_of(conn: sa.Connection, until: datetime) -> datetime | None:
    """The newest velocity computed at or before `until` (a scorecard's period end)."""
    return conn.execute(
        sa.text("select max(as_of) from marts.score_velocity where as_of <= :until"), {"until": until}
    ).scalar_one()


def write_hot_prospects_csv(frame: pd.DataFrame, path: Path) -> Path:
    """UTF-8 CSV with a header; every field quoted, so a company name cannot break a row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC, date_format="%Y-%m-%d %H:%M")
    return path
