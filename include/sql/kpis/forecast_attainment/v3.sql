with

-- staging.opportunities is named where it is read, twice, rather than as a CTE: PostgreSQL
-- builds a CTE named twice whole, for every period.

changes as (
    select * from staging.opportunity_changes
),

-- Each deal as it stood when the period began: its stage-history row in effect then (a row
-- holds from changed_at until replaced_at, when the deal's next row was recorded).
as_at_start as (
    select
        opportunity_id,
        is_closed,
        amount,
        close_date,
        forecast_category
    from changes
    where
        changed_at < :period_start_at
        and (replaced_at is null or replaced_at >= :period_start_at)
),

-- The forecast frozen at the period's start: open deals in the commit category (and best
-- case, where the variant says so) expected to close inside the period.
forecast as (
    select
        opportunities.owner_id,
        opportunities.region,
        opportunities.segment,
        as_at_start.amount as forecast_amount,
        0 as won_amount,
        1 as forecast_deals
    from as_at_start
    inner join staging.opportunities as opportunities
        on as_at_start.opportunity_id = opportunities.opportunity_id
    where
        not as_at_start.is_closed
        and not opportunities.is_excluded
        and as_at_start.amount is not null
        and as_at_start.close_date >= :period_start
        and as_at_start.close_date < :period_end
        and (
            as_at_start.forecast_category = 'commit'
            or (:include_best_case and as_at_start.forecast_category = 'best_case')
        )
),

-- What was won in the period, whether it was forecast or not.
won as (
    select
        owner_id,
        region,
        segment,
        0 as forecast_amount,
        amount as won_amount,
        0 as forecast_deals
    from staging.opportunities
    where
        is_won
        and not is_excluded
        and amount is not null
        and close_date >= :period_start
        and close_date < :period_end
),

forecast_and_won as (
    select
        {{ segment_expression }} as segment,
        forecast_amount,
        won_amount,
        forecast_deals
    from (
        select * from forecast
        union all
        select * from won
    ) as both_sides
    where true {{ scope_filter }}
),

final as (
    select
        segment,
        sum(won_amount) as numerator,
        sum(forecast_amount) as denominator,
        sum(forecast_deals) as volume
    from forecast_and_won
    group by segment
)

select * from final
