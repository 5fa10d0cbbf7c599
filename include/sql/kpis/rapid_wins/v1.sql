with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

-- When each deal was marked won: its first entry into the won stage (the close date at
-- midnight for a deal without stage history).
won_at as (
    select
        opportunity_id,
        min(entered_at) as won_at
    from stage_entries
    where stage = :won_stage
    group by opportunity_id
),

-- Deals won in the period whose opening time is known (test deals left out).
won_deals as (
    select
        {{ segment_expression }} as segment,
        extract(epoch from (
            coalesce(won_at.won_at, cast(opportunities.close_date as timestamp))
            - opportunities.created_at
        )) / 86400.0 as days_to_win
    from opportunities
    left join won_at on opportunities.opportunity_id = won_at.opportunity_id
    where
        opportunities.is_won
        and not opportunities.is_excluded
        and opportunities.created_at is not null
        and opportunities.close_date >= :period_start
        and opportunities.close_date < :period_end
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when days_to_win < :max_days then 1 else 0 end) as numerator,
        count(*) as denominator,
        count(*) as volume
    from won_deals
    group by segment
)

select * from final
