with

changes as (
    select * from staging.opportunity_changes
),

opportunities as (
    select * from staging.opportunities
),

targets as (
    select * from staging.targets
),

users as (
    select * from staging.users
),

-- Each deal as it stood when the period began: its stage-history row in effect then (a row
-- holds from changed_at until replaced_at, when the deal's next row was recorded).
as_at_start as (
    select
        opportunity_id,
        is_closed,
        amount,
        close_date
    from changes
    where
        changed_at < :period_start_at
        and (replaced_at is null or replaced_at >= :period_start_at)
),

-- The pipeline the period began with: deals open then whose expected close date fell inside
-- it (test deals and deals without an amount left out), for their owner.
pipeline_by_rep as (
    select
        opportunities.owner_id,
        sum(as_at_start.amount) as pipeline_amount
    from as_at_start
    inner join opportunities on as_at_start.opportunity_id = opportunities.opportunity_id
    where
        not as_at_start.is_closed
        and not opportunities.is_excluded
        and as_at_start.amount is not null
        and as_at_start.close_date >= :period_start
        and as_at_start.close_date < :period_end
    group by opportunities.owner_id
),

target_months as (
    select
        owner_id,
        target as monthly_target,
        month as month_start,
        cast(month + interval '1 month' as date) as month_end
    from targets
),

-- Each rep's target for the period: each month's target times the share of its days the
-- period covers. Nothing is won yet when the period begins, so all of it remains.
period_targets as (
    select
        target_months.owner_id,
        users.region,
        sum(
            target_months.monthly_target
            * (
                least(target_months.month_end, :period_end)
                - greatest(target_months.month_start, :period_start)
            )
            / (target_months.month_end - target_months.month_start)
        ) as period_target
    from target_months
    left join users on target_months.owner_id = users.user_id
    where
        target_months.month_start < :period_end
        and target_months.month_end > :period_start
    group by target_months.owner_id, users.region
),

-- Coverage belongs to a rep with a target, as quota does: a segment scope finds no rep.
reps as (
    select
        {{ segment_expression }} as segment,
        period_target,
        pipeline_amount
    from (
        select
            period_targets.owner_id,
            period_targets.region,
            cast(null as varchar) as segment,
            period_targets.period_target,
            coalesce(pipeline_by_rep.pipeline_amount, 0) as pipeline_amount
        from period_targets
        left join pipeline_by_rep on period_targets.owner_id = pipeline_by_rep.owner_id
    ) as rep_rows
    where period_target > 0 {{ scope_filter }}
),

final as (
    select
        segment,
        sum(pipeline_amount) as numerator,
        sum(period_target) as denominator,
        count(*) as volume
    from reps
    group by segment
)

select * from final
