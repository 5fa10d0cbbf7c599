with

opportunities as (
    select * from staging.opportunities
),

won_in_period as (
    select
        {{ segment_expression }} as segment,
        close_date - cast(created_at as date) as cycle_days
    from opportunities
    where
        not is_excluded
        and is_won
        and created_at is not null
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        1 as denominator,
        percentile_cont(:quantile) within group (order by cycle_days) as numerator,
        count(*) as volume
    from won_in_period
    group by segment
)

select * from final
