with

prospects as (
    select * from staging.prospects
),

stages as (
    select * from staging.prospect_stages
),

-- The period's cohort, narrow: each prospect once, before any segment is read.
cohort as (
    select
        prospect_id,
        created_at
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
        cohort.prospect_id,
        coalesce(events_in_window.converted, 0) as converted,
        coalesce(events_in_window.disqualified, 0) as disqualified,
        coalesce(events_in_window.recycled, 0) as recycled
    from cohort
    left join events_in_window on cohort.prospect_id = events_in_window.prospect_id
),

-- The segment is read last, from the prospect: the joins above see each prospect once, not
-- once per dimension.
counted as (
    select
        {{ segment_expression }} as segment,
        outcomes.converted
    from outcomes
    inner join prospects on outcomes.prospect_id = prospects.prospect_id
    where
        -- the cohort's bounds again, so only the period's prospects are read back
        prospects.created_at >= :period_start_at
        and prospects.created_at < :period_end_at
        and (
            outcomes.converted = 1
            or not (
                (:exclude_disqualified and outcomes.disqualified = 1)
                or (:exclude_recycled and outcomes.recycled = 1)
            )
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
