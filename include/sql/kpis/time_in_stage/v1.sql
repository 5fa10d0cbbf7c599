with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

closed_in_period as (
    select
        opportunity_id,
        {{ segment_expression }} as segment
    from opportunities
    where
        not is_excluded
        and is_closed
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

-- From the first entry into the stage to the first entry into any later stage (closing
-- included). A stage entered twice counts from its first entry.
stage_visits as (
    select
        closed_in_period.segment,
        entered.opportunity_id,
        entered.entered_at,
        min(later.entered_at) as left_at
    from closed_in_period
    inner join stage_entries as entered on closed_in_period.opportunity_id = entered.opportunity_id
    inner join stage_entries as later
        on
            entered.opportunity_id = later.opportunity_id
            and entered.stage_order < later.stage_order
            and entered.entered_at <= later.entered_at
    where entered.stage = :stage
    group by closed_in_period.segment, entered.opportunity_id, entered.entered_at
),

final as (
    select
        segment,
        1 as denominator,
        percentile_cont(:quantile) within group (
            order by extract(epoch from (left_at - entered_at)) / 86400.0
        ) as numerator,
        count(*) as volume
    from stage_visits
    group by segment
)

select * from final
