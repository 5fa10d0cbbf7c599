with

opportunities as (
    select * from staging.opportunities
),

closed_in_period as (
    select
        {{ segment_expression }} as segment,
        is_won
    from opportunities
    where
        not is_excluded
        and is_closed
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when is_won then 1 else 0 end) as numerator,
        count(*) as denominator,
        count(*) as volume
    from closed_in_period
    group by segment
)

select * from final
