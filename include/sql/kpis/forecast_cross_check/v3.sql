with

-- staging.opportunities is named where it is read, twice, rather than as a CTE: PostgreSQL
-- builds a CTE named twice whole, for every period.

changes as (
    select * from staging.opportunity_changes
),

stage_entries as (
    select * from staging.opportunity_stages
),

-- History: the deals closed in the year before the period began (test deals and deals
-- without an amount left out), in the audience's scope.
closed_before as (
    select
        opportunity_id,
        is_won,
        amount
    from staging.opportunities
    where
        is_closed
        and not is_excluded
        and amount is not null
        and close_date >= cast(:period_start as date) - :history_days * interval '1 day'
        and close_date < :period_start
        {{ scope_filter }}
),

-- Stage-to-close conversion: of the amount that passed through a stage and closed, the
-- share that was won.
conversion as (
    select
        stage_entries.stage,
        sum(case when closed_before.is_won then closed_before.amount else 0 end)
        / sum(closed_before.amount) as won_share
    from closed_before
    inner join stage_entries on closed_before.opportunity_id = stage_entries.opportunity_id
    group by stage_entries.stage
    having sum(closed_before.amount) > 0
),

-- Each deal as it stood when the period began: its stage-history row in effect then (a row
-- holds from changed_at until replaced_at, when the deal's next row was recorded).
as_at_start as (
    select
        opportunity_id,
        stage,
        is_closed,
        amount,
        close_date,
        forecast_category
    from changes
    where
        changed_at < :period_start_at
        and (replaced_at is null or replaced_at >= :period_start_at)
),

-- The pipeline the period began with: open deals expected to close inside it.
expected as (
    select
        opportunities.owner_id,
        opportunities.region,
        opportunities.segment,
        as_at_start.stage,
        as_at_start.amount,
        as_at_start.forecast_category
    from as_at_start
    inner join staging.opportunities as opportunities
        on as_at_start.opportunity_id = opportunities.opportunity_id
    where
        not as_at_start.is_closed
        and not opportunities.is_excluded
        and as_at_start.amount is not null
        and as_at_start.close_date >= :period_start
        and as_at_start.close_date < :period_end
),

-- Each deal's amount times its stage's historical conversion (a stage no closed deal went
-- through converts nothing), against the commit forecast of the same moment.
weighed as (
    select
        {{ segment_expression }} as segment,
        expected.amount * coalesce(conversion.won_share, 0) as cross_check_amount,
        case when expected.forecast_category = 'commit' then expected.amount else 0 end
            as commit_amount,
        case when expected.forecast_category = 'commit' then 1 else 0 end as commit_deals
    from expected
    left join conversion on expected.stage = conversion.stage
    where true {{ scope_filter }}
),

final as (
    select
        segment,
        sum(cross_check_amount) as numerator,
        sum(commit_amount) as denominator,
        sum(commit_deals) as volume
    from weighed
    group by segment
)

select * from final
