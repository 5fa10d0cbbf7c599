with

prospects as (
    select * from staging.prospects
),

identities as (
    select * from staging.prospect_identities
),

opportunities as (
    select * from staging.opportunities
),

-- What is credited: the amount of each deal won in the period (won_revenue) or opened in it
-- (pipeline), in the audience's scope (a deal's region and segment are its credits'). Test
-- deals and deals without an amount are left out.
conversions as (
    select
        opportunity_id,
        prospect_id,
        created_at as converted_at,
        amount,
        channel,
        campaign_id,
        region,
        segment
    from opportunities
    where
        not is_excluded
        and amount is not null
        {{ scope_filter }}
        and (
            (
                :measure = 'won_revenue'
                and is_won
                and close_date >= :period_start
                and close_date < :period_end
            )
            or (
                :measure = 'pipeline'
                and created_at >= :period_start_at
                and created_at < :period_end_at
            )
        )
),

-- Only the prospects of the period's deals have journeys to credit: the touches are read for
-- them alone, not for every prospect in the warehouse.
converting_prospects as (
    select distinct prospects.prospect_id
    from prospects
    inner join conversions on prospects.prospect_id = conversions.prospect_id
    where not prospects.is_excluded
),

-- The touchpoints: each CRM record of a real prospect (a Salesforce lead, a HubSpot
-- contact) at its creation, on the channel and campaign its own source fields give. A record
-- no mapping can place is untracked and takes no credit.
touches as (
    select
        identities.prospect_id,
        identities.record_id,
        identities.channel,
        identities.campaign_id,
        identities.created_at as touched_at
    from identities
    inner join converting_prospects on identities.prospect_id = converting_prospects.prospect_id
    where identities.channel != 'unmapped'
),

-- A deal's journey: its prospect's touches up to the moment the deal was opened.
journeys as (
    select
        conversions.opportunity_id,
        conversions.amount,
        conversions.region,
        conversions.segment,
        touches.channel,
        touches.campaign_id,
        row_number() over (
            partition by conversions.opportunity_id
            order by touches.touched_at, touches.record_id
        ) as touch_number,
        count(*) over (partition by conversions.opportunity_id) as touch_count,
        -- The seconds as a double (date_part), not a numeric (PostgreSQL's extract): power() of
        -- a numeric took a third of this statement's time there.
        power(
            0.5,
            date_part('epoch', conversions.converted_at - touches.touched_at)
            / 86400.0
            / :half_life_days
        ) as decay
    from conversions
    inner join touches
        on
            conversions.prospect_id = touches.prospect_id
            and (conversions.converted_at is null or conversions.converted_at >= touches.touched_at)
),

-- Each touch's share of its deal; the shares of a deal add up to 1 in every model.
-- Position-based gives the first and the last touch their weights and the middle ones the
-- rest; with two touches the two weights are scaled to add up to 1.
weighted as (
    select
        opportunity_id,
        amount,
        region,
        segment,
        channel,
        campaign_id,
        case :model
            when 'first_touch' then case when touch_number = 1 then 1.0 else 0.0 end
            when 'last_touch' then case when touch_number = touch_count then 1.0 else 0.0 end
            when 'linear' then 1.0 / touch_count
            when 'position_based'
                then
                    case
                        when touch_count = 1 then 1.0
                        when touch_count = 2 and touch_number = 1
                            then :first_weight / (:first_weight + :last_weight)
                        when touch_count = 2 then :last_weight / (:first_weight + :last_weight)
                        when touch_number = 1 then :first_weight
                        when touch_number = touch_count then :last_weight
                        else (1.0 - :first_weight - :last_weight) / (touch_count - 2)
                    end
            when 'time_decay' then decay / sum(decay) over (partition by opportunity_id)
        end as weight
    from journeys
),

-- A deal with no tracked touch before it opened (a deal sales opened without a lead, or a
-- prospect whose records no mapping places) goes whole to its own lead source, or to the
-- stated fallback channel where that is unmapped too. Found with a left join, not `not
-- exists`: DuckDB 1.5.6 cannot bind that subquery in the lateral join that computes every
-- period in one statement (`periods_together`).
journeyed as (
    select distinct opportunity_id from journeys
),

untracked as (
    select
        conversions.opportunity_id,
        conversions.amount,
        conversions.region,
        conversions.segment,
        conversions.campaign_id,
        1.0 as weight,
        case when conversions.channel = 'unmapped' then :fallback_channel else conversions.channel end
            as channel
    from conversions
    left join journeyed on conversions.opportunity_id = journeyed.opportunity_id
    where journeyed.opportunity_id is null
),

credits as (
    select
        opportunity_id,
        region,
        segment,
        channel,
        campaign_id,
        amount * weight as credit
    from weighted
    where weight > 0
    union all
    select
        opportunity_id,
        region,
        segment,
        channel,
        campaign_id,
        amount * weight as credit
    from untracked
),

scoped_credits as (
    select
        opportunity_id,
        credit,
        {{ segment_expression }} as segment
    from credits
),

final as (
    select
        segment,
        1 as denominator,
        sum(credit) as numerator,
        count(distinct opportunity_id) as volume
    from scoped_credits
    group by segment
)

select * from final
