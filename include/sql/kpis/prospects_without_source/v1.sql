with

prospects as (
    select * from staging.prospects
),

cohort as (
    select
        {{ segment_expression }} as segment,
        channel
    from prospects
    where
        not is_excluded
        and created_at >= :period_start
        and created_at < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when channel = 'unmapped' then 1 else 0 end) as numerator,
        count(*) as denominator,
        count(*) as volume
    from cohort
    group by segment
)

select * from final
