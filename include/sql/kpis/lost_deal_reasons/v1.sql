with

opportunities as (
    select * from staging.opportunities
),

-- Deals lost in the period, by close date (test deals left out).
lost as (
    select {{ segment_expression }} as segment
    from opportunities
    where
        is_closed
        and not is_won
        and not is_excluded
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        1 as denominator,
        count(*) as numerator,
        count(*) as volume
    from lost
    group by segment
)

select * from final
