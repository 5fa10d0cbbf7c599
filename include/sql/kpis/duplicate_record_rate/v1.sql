with

prospects as (
    select * from staging.prospects
),

cohort as (
    select
        {{ segment_expression }} as segment,
        record_count
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
        sum(record_count - 1) as numerator,
        sum(record_count) as denominator,
        count(*) as volume
    from cohort
    group by segment
)

select * from final
