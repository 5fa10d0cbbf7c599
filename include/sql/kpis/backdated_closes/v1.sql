with

opportunities as (
    select * from staging.opportunities
),

changes as (
    select * from staging.opportunity_changes
),

-- Each stage-history row, with whether the deal was closed just before it.
sequenced as (
    select
        changes.*,
        lag(changes.is_closed) over (
            partition by changes.opportunity_id order by changes.changed_at, changes.stage
        ) as was_closed
    from changes
),

-- Closes recorded in the period: a change into a closed stage from an open one (or a deal's
-- first row, when it was entered closed). Test deals left out.
closes as (
    select
        {{ segment_expression }} as segment,
        sequenced.close_date is not null
        and cast(sequenced.changed_at as date) - sequenced.close_date > :grace_days as is_back_dated
    from sequenced
    inner join opportunities on sequenced.opportunity_id = opportunities.opportunity_id
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
