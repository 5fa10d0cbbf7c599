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

final as (
    select
        won_in_year.opportunity_id as record_id,
        won_in_year.amount as record_value,
        'amount above Q3 + 3 x IQR of the year''s won deals ('
        || cast(round(fence.upper_fence) as varchar)
        || ')' as exclusion_rule
    from won_in_year
    cross join fence
    where won_in_year.amount > fence.upper_fence
)

select * from final
