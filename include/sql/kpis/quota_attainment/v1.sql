with

targets as (
    select * from staging.targets
),

users as (
    select * from staging.users
),

opportunities as (
    select * from staging.opportunities
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
-- period covers (a week gets 7/30 of a 30-day month).
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

won_in_period as (
    select
        owner_id,
        sum(amount) as won_amount
    from opportunities
    where
        not is_excluded
        and is_won
        and amount is not null
        and close_date >= :period_start
        and close_date < :period_end
    group by owner_id
),

-- A quota belongs to a rep, not a customer segment: a segment scope finds no rep.
reps as (
    select
        {{ segment_expression }} as segment,
        period_target,
        won_amount
    from (
        select
            period_targets.owner_id,
            period_targets.region,
            cast(null as varchar) as segment,
            period_targets.period_target,
            coalesce(won_in_period.won_amount, 0) as won_amount
        from period_targets
        left join won_in_period on period_targets.owner_id = won_in_period.owner_id
    ) as rep_rows
    where period_target > 0 {{ scope_filter }}
),

final as (
    select
        segment,
        sum(won_amount) as numerator,
        sum(period_target) as denominator,
        count(*) as volume
    from reps
    group by segment
)

select * from final
