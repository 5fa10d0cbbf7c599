with

prospects as (
    select * from staging.prospects
),

stages as (
    select * from staging.prospect_stages
),

-- Each stage cycle's first entry into the from-stage and into the to-stage (one recorded
-- by the cut-off), in one pass over the stages.
cycles as (
    select
        prospect_id,
        cycle,
        min(case when stage = :from_stage then entered_at end) as from_at,
        min(case when stage = :to_stage and entered_at < :as_of then entered_at end) as to_at
    from stages
    where stage in (:from_stage, :to_stage)
    group by prospect_id, cycle
),

-- The prospect's first entry into the from-stage, and the cycle it happened in.
first_entries as (
    select
        prospect_id,
        from_at,
        to_at
    from (
        select
            prospect_id,
            from_at,
            to_at,
            row_number() over (partition by prospect_id order by from_at, cycle) as cycle_rank
        from cycles
        where from_at is not null
    ) as ranked
    where cycle_rank = 1
),

-- Reached: the to-stage in the same cycle, within the window. No lower bound on purpose: a
-- to-stage recorded before the from-stage (a back-dated change, flagged out_of_order in the
-- timeline) was still reached.
outcomes as (
    select
        {{ segment_expression }} as segment,
        case
            when first_entries.to_at < first_entries.from_at + :window_days * interval '1 day' then 1
            else 0
        end as converted
    from prospects
    inner join first_entries on prospects.prospect_id = first_entries.prospect_id
    where
        not prospects.is_excluded
        and first_entries.from_at >= :period_start_at
        and first_entries.from_at < :period_end_at
        {{ scope_filter }}
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
