with

prospects as (
    select * from staging.prospects
),

stages as (
    select * from staging.prospect_stages
),

cohort as (
    select
        prospect_id,
        created_at,
        {{ segment_expression }} as segment
    from prospects
    where
        not is_excluded
        and created_at >= :period_start_at
        and created_at < :period_end_at
        {{ scope_filter }}
),

events_in_window as (
    select
        cohort.prospect_id,
        max(case when stages.stage = 'opportunity' then 1 else 0 end) as converted,
        max(case when stages.stage = 'disqualified' then 1 else 0 end) as disqualified,
        max(case when stages.stage = 'recycled' then 1 else 0 end) as recycled
    from cohort
    inner join stages on cohort.prospect_id = stages.prospect_id
    where
        stages.entered_at >= cohort.created_at
        and stages.entered_at < cohort.created_at + :window_days * interval '1 day'
        and stages.entered_at < :as_of
    group by cohort.prospect_id
),

outcomes as (
    select
        cohort.segment,
        coalesce(events_in_window.converted, 0) as converted,
        coalesce(events_in_window.disqualified, 0) as disqualified,
        coalesce(events_in_window.recycled, 0) as recycled
    from cohort
    left join events_in_window on cohort.prospect_id = events_in_window.prospect_id
),

counted as (
    select *
    from outcomes
    where
        converted = 1
        or not (
            (:exclude_disqualified and disqualified = 1)
            or (:exclude_recycled and recycled = 1)
        )
),

final as (
    select
        segment,
        sum(converted) as numerator,
        count(*) as denominator,
        count(*) as volume
    from counted
    group by segment
)

select * from final
