with

campaigns as (
    select * from staging.campaigns
),

opportunities as (
    select * from staging.opportunities
),

-- Each campaign's cost spread evenly over its days, start and end date included (a campaign
-- without an end date runs one day; one without a cost spent nothing). The period takes the
-- share of the days it covers.
campaign_days as (
    select
        channel,
        start_date as first_day,
        cast(coalesce(end_date, start_date) + interval '1 day' as date) as end_day,
        coalesce(actual_cost, 0) as actual_cost
    from campaigns
),

period_costs as (
    select
        channel,
        cast(null as varchar) as region,
        cast(null as varchar) as segment,
        actual_cost
        * (least(end_day, :period_end) - greatest(first_day, :period_start))
        / (end_day - first_day) as spend
    from campaign_days
    where first_day < :period_end and end_day > :period_start
),

-- A customer is a prospect (or, for a deal sales opened without a lead, the deal's account
-- of one) counted once, when their first won deal closes.
won_deals as (
    select
        channel,
        region,
        segment,
        close_date,
        row_number() over (
            partition by coalesce(prospect_id, opportunity_id)
            order by close_date, opportunity_id
        ) as deal_number
    from opportunities
    where is_won and not is_excluded and close_date is not null
),

new_customers as (
    select
        channel,
        region,
        segment
    from won_deals
    where
        deal_number = 1
        and close_date >= :period_start
        and close_date < :period_end
),

-- Spend has no region or segment: under such a scope there is no cost to divide, and the
-- KPI has no data rather than a cost of zero. Without any campaign it has none either.
spend_in_scope as (
    select 1 as found
    from (
        select
            cast(null as varchar) as region,
            cast(null as varchar) as segment
        from campaigns
    ) as campaign_scope
    where true {{ scope_filter }}
),

spend_and_customers as (
    select
        {{ segment_expression }} as segment,
        spend,
        0 as customers
    from period_costs
    where true {{ scope_filter }}
    union all
    select
        {{ segment_expression }} as segment,
        0 as spend,
        1 as customers
    from new_customers
    where true {{ scope_filter }}
),

final as (
    select
        segment,
        sum(spend) as numerator,
        sum(customers) as denominator,
        sum(customers) as volume
    from spend_and_customers
    where exists (select 1 from spend_in_scope)
    group by segment
)

select * from final
