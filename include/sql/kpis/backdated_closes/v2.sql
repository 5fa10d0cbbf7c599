with

-- The deals with a close recorded in the period: only their histories are sequenced below.
-- v1 sequenced every deal's whole history for every period. staging.opportunity_changes is
-- named twice rather than as a CTE: PostgreSQL and DuckDB would build a CTE named twice whole.
closed_in_period as (
    select distinct opportunity_id
    from staging.opportunity_changes
    where
        is_closed
        and changed_at >= :period_start_at
        and changed_at < :period_end_at
),

-- Each stage-history row of those deals, with whether the deal was closed just before it.
sequenced as (
    select
        changes.*,
        lag(changes.is_closed) over (
            partition by changes.opportunity_id order by changes.changed_at, changes.stage
        ) as was_closed
    from staging.opportunity_changes as changes
    inner join closed_in_period on changes.opportunity_id = closed_in_period.opportunity_id
),

-- Closes recorded in the period: a change into a closed stage from an open one (or a deal's
-- first row, when it was entered closed). Test deals left out.
closes as (
    select
        {{ segment_expression }} as segment,
        sequenced.close_date is not null
        and cast(sequenced.changed_at as date) - sequenced.close_date > :grace_days as is_back_dated
    from sequenced
    inner join staging.opportunities as opportunities
        on sequenced.opportunity_id = opportunities.opportunity_id
    where
        sequenced.is_closed
        and not coalesce(sequenced.was_closed, false)
        and not opportunities.is_excluded
        and sequenced.changed_at >= :period_start_at
        and sequenced.changed_at < :period_end_at
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when is_back_dated then 1 else 0 end) as numerator,
        count(*) as denominator,
        count(*) as volume
    from closes
    group by segment
)

select * from final
