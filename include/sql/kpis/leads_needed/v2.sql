with

-- staging.opportunities is named where it is read, twice, rather than as a CTE: PostgreSQL
-- builds a CTE named twice whole, for every period.

targets as (
    select * from staging.targets
),

users as (
    select * from staging.users
),

prospects as (
    select * from staging.prospects
),

target_months as (
    select
        owner_id,
        target as monthly_target,
        month as month_start,
        cast(month + interval '1 month' as date) as month_end
    from targets
),

-- Targets belong to reps, who have a region but no customer segment.
rep_months as (
    select
        target_months.*,
        users.region,
        cast(null as varchar) as segment
    from target_months
    left join users on target_months.owner_id = users.user_id
),

-- The period's target: each month's target times the share of its days the period covers.
period_target as (
    select
        sum(
            monthly_target
            * (least(month_end, :period_end) - greatest(month_start, :period_start))
            / (month_end - month_start)
        ) as target_amount
    from rep_months
    where
        month_start < :period_end
        and month_end > :period_start
        {{ scope_filter }}
),

-- The funnel of the year before the period began: deals closed, won and their amount...
closed_history as (
    select
        count(*) as closed_deals,
        sum(case when is_won then 1 else 0 end) as won_deals,
        sum(case when is_won then amount else 0 end) as won_amount
    from staging.opportunities
    where
        is_closed
        and not is_excluded
        and amount is not null
        and close_date >= cast(:period_start as date) - :history_days * interval '1 day'
        and close_date < :period_start
        {{ scope_filter }}
),

-- ... and the prospects who arrived then, and the opportunities their leads became.
arrivals as (
    select count(*) as new_prospects
    from prospects
    where
        not is_excluded
        and created_at >= cast(:period_start_at as timestamp) - :history_days * interval '1 day'
        and created_at < :period_start_at
        {{ scope_filter }}
),

lead_opportunities as (
    select count(*) as new_opportunities
    from staging.opportunities
    where
        is_from_converted_lead
        and not is_excluded
        and created_at >= cast(:period_start_at as timestamp) - :history_days * interval '1 day'
        and created_at < :period_start_at
        {{ scope_filter }}
),

-- The reverse funnel: the target over the average won deal is the deals needed; over the
-- win rate, the opportunities; over the lead-to-opportunity rate, the leads. Without a
-- target, a win or an opportunity in the history there is nothing to divide by.
final as (
    select
        'all' as segment,
        1 as denominator,
        closed_history.closed_deals as volume,
        period_target.target_amount
        * closed_history.closed_deals
        * arrivals.new_prospects
        / (closed_history.won_amount * lead_opportunities.new_opportunities) as numerator
    from period_target
    cross join closed_history
    cross join arrivals
    cross join lead_opportunities
    where
        period_target.target_amount > 0
        and closed_history.won_amount > 0
        and lead_opportunities.new_opportunities > 0
)

select * from final
