with

opportunities as (
    select * from staging.opportunities
),

closed_with_amount as (
    select
        {{ segment_expression }} as segment,
        is_won,
        amount
    from opportunities
    where
        not is_excluded
        and is_closed
        and amount is not null
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when is_won then amount else 0 end) as numerator,
        sum(amount) as denominator,
        count(*) as volume
    from closed_with_amount
    group by segment
)

select * from final
