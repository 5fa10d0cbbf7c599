with

prospects as (
    select * from staging.prospects
),

opportunities as (
    select * from staging.opportunities
),

cohort as (
    select
        prospect_id,
        created_at,
        {{ segment_expression }} as segment
    from prospects
    where
        not is_excluded
        and created_at >= :period_start
        and created_at < :period_end
        {{ scope_filter }}
),

first_opportunity as (
    select
        prospect_id,
        min(created_at) as first_opportunity_at
    from opportunities
    where is_from_converted_lead and not is_excluded
    group by prospect_id
),

cohort_outcomes as (
    select
        cohort.segment,
        case
            when
                first_opportunity.first_opportunity_at < cohort.created_at + interval '30 days'
                and first_opportunity.first_opportunity_at < :as_of
                then 1
            else 0
        end as converted
    from cohort
    left join first_opportunity on cohort.prospect_id = first_opportunity.prospect_id
),

final as (
    select
        segment,
        sum(converted) as numerator,
        count(*) as denominator,
        count(*) as volume
    from cohort_outcomes
    group by segment
)

select * from final
