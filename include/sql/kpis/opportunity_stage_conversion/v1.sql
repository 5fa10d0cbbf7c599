with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

cohort as (
    select
        opportunities.opportunity_id,
        stage_entries.entered_at,
        {{ segment_expression }} as segment
    from opportunities
    inner join stage_entries on opportunities.opportunity_id = stage_entries.opportunity_id
    where
        not opportunities.is_excluded
        and stage_entries.stage = :from_stage
        and stage_entries.entered_at >= :period_start_at
        and stage_entries.entered_at < :period_end_at
        {{ scope_filter }}
),

reached as (
    select distinct cohort.opportunity_id
    from cohort
    inner join stage_entries on cohort.opportunity_id = stage_entries.opportunity_id
    where
        stage_entries.stage = :to_stage
        and stage_entries.entered_at >= cohort.entered_at
        and stage_entries.entered_at < cohort.entered_at + :window_days * interval '1 day'
        and stage_entries.entered_at < :as_of
),

outcomes as (
    select
        cohort.segment,
        case when reached.opportunity_id is null then 0 else 1 end as converted
    from cohort
    left join reached on cohort.opportunity_id = reached.opportunity_id
),

final as (
    select
        segment,
        sum(converted) as numerator,
        count(*) as denominator,
        count(*) as volume
    from outcomes
    group by segment
)

select * from final
