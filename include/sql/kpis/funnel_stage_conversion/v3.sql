with

prospects as (
    select * from staging.prospects
),

-- The prospect's first entry into the from-stage (its first cycle to enter it), if it falls
-- in the period, and that cycle's first entry into the to-stage recorded by the cut-off.
-- staging.stage_first_entries is named twice rather than as a CTE: DuckDB would build a
-- CTE named twice whole, where each scan of the table can skip what its filters rule out.
cohort_entries as (
    select
        from_entries.prospect_id,
        from_entries.entered_at as from_at,
        to_entries.entered_at as to_at
    from staging.stage_first_entries as from_entries
    left join staging.stage_first_entries as to_entries
        on
            from_entries.prospect_id = to_entries.prospect_id
            and from_entries.cycle = to_entries.cycle
            and to_entries.stage = :to_stage
            and to_entries.entered_at < :as_of
    where
        from_entries.stage = :from_stage
        and from_entries.is_first_cycle
        and from_entries.entered_at >= :period_start_at
        and from_entries.entered_at < :period_end_at
),

-- Reached: the to-stage in the same cycle, within the window. No lower bound on purpose: a
-- to-stage recorded before the from-stage (a back-dated change, flagged out_of_order in the
-- timeline) was still reached.
outcomes as (
    select
        {{ segment_expression }} as segment,
        case
            when cohort_entries.to_at < cohort_entries.from_at + :window_days * interval '1 day' then 1
            else 0
        end as converted
    from prospects
    inner join cohort_entries on prospects.prospect_id = cohort_entries.prospect_id
    where
        not prospects.is_excluded
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
