with

opportunities as (
    select * from staging.opportunities
),

won as (
    select
        {{ segment_expression }} as segment,
        is_from_converted_lead,
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
        sum(case when is_from_converted_lead then amount else 0 end) as numerator,
        sum(amount) as denominator,
        count(*) as volume
    from won
    group by segment
)

select * from final
