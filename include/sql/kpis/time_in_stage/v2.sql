with

-- The deals closed in the period, narrow: each deal once, before any segment is read.
closed_in_period as (
    select opportunity_id
    from staging.opportunities
    where
        not is_excluded
        and is_closed
        and close_date >= :period_start
        and close_date < :period_end
        {{ scope_filter }}
),

-- From the first entry into the stage to the first entry into any later stage (closing
-- included). A stage entered twice counts from its first entry.
-- staging.opportunity_stages is named twice rather than as a CTE: PostgreSQL builds a CTE
-- named twice whole, without the index each scan of the table can use.
stage_visits as (
    select
        entered.opportunity_id,
        entered.entered_at,
        min(later.entered_at) as left_at
    from closed_in_period
    inner join staging.opportunity_stages as entered
        on closed_in_period.opportunity_id = entered.opportunity_id
    inner join staging.opportunity_stages as later
        on
            entered.opportunity_id = later.opportunity_id
            and entered.stage_order < later.stage_order
            and entered.entered_at <= later.entered_at
    where entered.stage = :stage
    group by entered.opportunity_id, entered.entered_at
),

-- The segment is read last, from the deal: the joins above see each deal once, not once
-- per dimension.
segmented as (
    select
        {{ segment_expression }} as segment,
        stage_visits.entered_at,
        stage_visits.left_at
    from stage_visits
    inner join staging.opportunities as opportunities
        on stage_visits.opportunity_id = opportunities.opportunity_id
    where
        -- the period's bounds again, so only the period's deals are read back
        opportunities.close_date >= :period_start
        and opportunities.close_date < :period_end
),

final as (
    select
        segment,
        1 as denominator,
        percentile_cont(:quantile) within group (
            order by extract(epoch from (left_at - entered_at)) / 86400.0
        ) as numerator,
        count(*) as volume
    from segmented
    group by segment
)

select * from final
