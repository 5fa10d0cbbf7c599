with

prospects as (
    select * from staging.prospects
),

stages as (
    select * from staging.prospect_stages
),

first_entries as (
    select
        prospect_id,
        min(entered_at) as entered_at
    from stages
    where stage = :from_stage
    group by prospect_id
),

entry_cycles as (
    select
        first_entries.prospect_id,
        first_entries.entered_at,
        min(stages.cycle) as entry_cycle
    from first_entries
    inner join stages
        on
            first_entries.prospect_id = stages.prospect_id
            and first_entries.entered_at = stages.entered_at
            and stages.stage = :from_stage
    group by first_entries.prospect_id, first_entries.entered_at
),

cohort as (
    select
        prospects.prospect_id,
        entry_cycles.entered_at,
        entry_cycles.entry_cycle,
        {{ segment_expression }} as segment
    from prospects
    inner join entry_cycles on prospects.prospect_id = entry_cycles.prospect_id
    where
        not prospects.is_excluded
        and entry_cycles.entered_at >= :period_start_at
        and entry_cycles.entered_at < :period_end_at
        {{ scope_filter }}
),

-- Reached: the to-stage in the same cycle, within the window. No lower bound on purpose: a
-- to-stage recorded before the from-stage (a back-dated change, flagged out_of_order in the
-- timeline) was still reached.
reached as (
    select distinct cohort.prospect_id
    from cohort
    inner join stages
        on
            cohort.prospect_id = stages.prospect_id
            and cohort.entry_cycle = stages.cycle
    where
        stages.stage = :to_stage
        and stages.entered_at < cohort.entered_at + :window_days * interval '1 day'
        and stages.entered_at < :as_of
),

outcomes as (
    select
        cohort.segment,
        case when reached.prospect_id is null then 0 else 1 end as converted
    from cohort
    left join reached on cohort.prospect_id = reached.prospect_id
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
