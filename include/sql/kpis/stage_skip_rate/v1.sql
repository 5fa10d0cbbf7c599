with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

won_in_period as (
    select
        opportunity_id,
        {{ segment_expression }} as segment
    from opportunities
    where
        not is_excluded
        and is_won
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

won_entries as (
    select
        stage_entries.opportunity_id,
        min(stage_entries.stage_order) as won_order
    from stage_entries
    inner join won_in_period on stage_entries.opportunity_id = won_in_period.opportunity_id
    where stage_entries.stage = :won_stage
    group by stage_entries.opportunity_id
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
    inner join stage_entries on won_entries.opportunity_id = stage_entries.opportunity_id
    where stage_entries.stage_order < won_entries.won_order
    group by won_entries.opportunity_id, won_entries.won_order
),

judged as (
    select
        won_in_period.segment,
        case
            when path.stages_entered < path.won_order - path.first_order then 1
            else 0
        end as skipped
    from won_in_period
    left join path on won_in_period.opportunity_id = path.opportunity_id
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
