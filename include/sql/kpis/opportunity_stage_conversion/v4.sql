with

-- staging.opportunity_stages is named in each join, not as a CTE: PostgreSQL builds a CTE
-- named three times whole, and under a region scope it took the cohort for one row and
-- scanned that CTE once per cohort deal (v3: 2 s for a month at 100k prospects).

-- One row per deal, with the columns its segments are read from: the segment is given last,
-- so the joins below run once per deal rather than once per dimension.
cohort as (
    select
        opportunities.opportunity_id,
        opportunities.is_closed,
        opportunities.owner_id,
        opportunities.is_from_converted_lead,
        opportunities.region,
        opportunities.segment,
        opportunities.channel,
        stage_entries.entered_at
    from staging.opportunities as opportunities
    inner join staging.opportunity_stages as stage_entries
        on opportunities.opportunity_id = stage_entries.opportunity_id
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
    inner join staging.opportunity_stages as stage_entries
        on cohort.opportunity_id = stage_entries.opportunity_id
    where
        stage_entries.stage = :to_stage
        and stage_entries.entered_at >= cohort.entered_at
        and stage_entries.entered_at < cohort.entered_at + :window_days * interval '1 day'
        and stage_entries.entered_at < :as_of
),

-- Each cohort deal's newest stage entry before the data cut-off.
last_moves as (
    select
        cohort.opportunity_id,
        max(stage_entries.entered_at) as last_moved_at
    from cohort
    inner join staging.opportunity_stages as stage_entries
        on cohort.opportunity_id = stage_entries.opportunity_id
    where stage_entries.entered_at < :as_of
    group by cohort.opportunity_id
),

-- Stale at the data cut-off, as stale_opportunity_share has it: not converted, still open,
-- and no stage entered in the stale_days before. With exclude_stale the active funnel
-- leaves it out: a deal nobody works is not the stage's failure.
outcomes as (
    select
        {{ segment_expression }} as segment,
        case when reached.opportunity_id is null then 0 else 1 end as converted,
        coalesce(
            reached.opportunity_id is null
            and not cohort.is_closed
            and last_moves.last_moved_at < :as_of - :stale_days * interval '1 day',
            false
        ) as is_stale
    from cohort
    left join reached on cohort.opportunity_id = reached.opportunity_id
    left join last_moves on cohort.opportunity_id = last_moves.opportunity_id
),

final as (
    select
        segment,
        sum(converted) as numerator,
        count(*) as denominator,
        count(*) as volume
    from outcomes
    where not (:exclude_stale and is_stale)
    group by segment
)

select * from final
