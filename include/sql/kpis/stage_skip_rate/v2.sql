with

-- The deals won in the period, narrow: each deal once, before any segment is read.
won_in_period as (
    select opportunity_id
    from staging.opportunities
    where
        not is_excluded
        and is_won
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

-- staging.opportunity_stages is named twice below rather than as a CTE: PostgreSQL builds a
-- CTE named twice whole, without the index each scan of the table can use.
won_entries as (
    select
        won_stage.opportunity_id,
        min(won_stage.stage_order) as won_order
    from staging.opportunity_stages as won_stage
    inner join won_in_period on won_stage.opportunity_id = won_in_period.opportunity_id
    where won_stage.stage = :won_stage
    group by won_stage.opportunity_id
),

-- The pipeline stages a won deal entered before winning: from its first one, every later
-- stage should be there. A stage with no known order (an unmapped name) says nothing.
path as (
    select
        won_entries.opportunity_id,
        won_entries.won_order,
        min(stage_entries.stage_order) as first_order,
        count(distinct stage_entries.stage_order) as stages_entered
    from won_entries
    inner join staging.opportunity_stages as stage_entries
        on won_entries.opportunity_id = stage_entries.opportunity_id
    where stage_entries.stage_order < won_entries.won_order
    group by won_entries.opportunity_id, won_entries.won_order
),

-- Each won deal judged once; its segment is read last, from the deal, so the joins above
-- see each deal once, not once per dimension.
judged as (
    select
        {{ segment_expression }} as segment,
        case
            when path.stages_entered < path.won_order - path.first_order then 1
            else 0
        end as skipped
    from won_in_period
    inner join staging.opportunities as opportunities
        on won_in_period.opportunity_id = opportunities.opportunity_id
    left join path on won_in_period.opportunity_id = path.opportunity_id
    where
        -- the period's bounds again, so only the period's deals are read back
        opportunities.close_date >= :period_start
        and opportunities.close_date < :period_end
),

final as (
    select
        segment,
        sum(skipped) as numerator,
        count(*) as denominator,
        count(*) as volume
    from judged
    group by segment
)

select * from final
