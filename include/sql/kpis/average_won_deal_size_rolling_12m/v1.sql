with

opportunities as (
    select * from staging.opportunities
),

won_in_year as (
    select *
    from opportunities
    where
        not is_excluded
        and is_won
        and amount is not null
        and close_date >= cast(:period_end as date) - interval '12 months'
        and close_date < :period_end
        {{ scope_filter }}
),

fence as (
    select
        percentile_cont(0.75) within group (order by amount)
        + 3 * (
            percentile_cont(0.75) within group (order by amount)
            - percentile_cont(0.25) within group (order by amount)
        ) as upper_fence
    from won_in_year
),

kept as (
    select
        {{ segment_expression }} as segment,
        won_in_year.amount
    from won_in_year
    cross join fence
    where won_in_year.amount <= fence.upper_fence
),

final as (
    select
        segment,
        sum(amount) as numerator,
        count(*) as denominator,
        count(*) as volume
    from kept
    group by segment
)

select * from final
