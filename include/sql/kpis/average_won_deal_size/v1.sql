with

opportunities as (
    select * from staging.opportunities
),

won_with_amount as (
    select
        {{ segment_expression }} as segment,
        amount
    from opportunities
    where
        not is_excluded
        and is_won
        and amount is not null
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(amount) as numerator,
        count(*) as denominator,
        count(*) as volume
    from won_with_amount
    group by segment
)

select * from final
