"""Late scorecards: the deadline alert of the product.

A scorecard is late when its audience's newest scheduled time is more than
`deliver_within_hours` ago and nothing has been sent, failed or held for that audience since.
Failed and held sends already alert the data engineers; this catches the silent cases: a run
stuck in the queue, a paused DAG, a scheduler that was down, a run that was never created.

Airflow 3.3's DeadlineAlert covers only runs that exist, and `dag.test()` (which runs every
scorecard DAG in the tests) cannot run a DAG that carries one in 3.3.2, so the watch is a
small DAG of its own (`revops_scorecard_watch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter

from revops.periods import naive_utc
from revops.scorecards.audiences import Audience
from revops.warehouse.schema import deliveries, run_ledger

LATE_KIND = "late_scorecard"  # the ledger entry that says a late scorecard was reported


@dataclass(frozen=True)
class LateScorecard:
    audience: str
    scheduled_at: datetime  # UTC, naive
    due_by: datetime  # UTC, naive

    @property
    def key(self) -> str:
        """One key per audience and scheduled time, so each late scorecard is reported once."""
        return f"late__{self.audience}__{self.scheduled_at:%Y-%m-%dT%H:%M}"


def last_due(audience: Audience, now: datetime) -> LateScorecard:
    """The audience's newest scheduled time whose delivery deadline has passed at `now` (UTC)."""
    window = timedelta(hours=audience.deliver_within_hours)
    cutoff = (naive_utc(now).replace(tzinfo=UTC) - window).astimezone(ZoneInfo(audience.timezone))
    # get_prev is strictly before its start: one second later makes a time on the cutoff count.
    scheduled = croniter(audience.schedule, cutoff + timedelta(seconds=1)).get_prev(datetime)
    scheduled_utc = scheduled.astimezone(UTC).replace(tzinfo=None)
    return LateScorecard(audience.name, scheduled_utc, scheduled_utc + window)


def late_scorecards(engine: sa.Engine, audiences: Iterable[Audience], now: datetime) -> list[LateScorecard]:
    """The audiences whose newest due scorecard has not been attempted, and not yet reported.

    An audience that has never had a scorecard attempted is not expected to have one yet (a
    new audience, or a fresh installation), so it is never late.
    """
    with engine.connect() as conn:
        attempts = {
            row.audience: (row.first, row.latest)
            for row in conn.execute(
                sa.select(
                    deliveries.c.audience,
                    sa.func.min(deliveries.c.attempted_at).label("first"),
                    sa.func.max(deliveries.c.attempted_at).label("latest"),
                ).group_by(deliveries.c.audience)
            )
        }
        reported = set(
            conn.execute(sa.select(run_ledger.c.run_id).where(run_ledger.c.kind == LATE_KIND)).scalars()
        )
    late = []
    for audience in audiences:
        due = last_due(audience, now)
        first, latest = attempts.get(audience.name, (None, None))
        if first is None or latest >= due.scheduled_at or due.key in reported:
            continue
        late.append(due)

    return late
