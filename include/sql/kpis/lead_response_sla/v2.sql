with

prospects as (
    select * from staging.prospects
),

stages as (
    select * from staging.prospect_stages
),

working_hours as (
    select * from staging.working_hours
),

calendar_regions as (
    select distinct region from working_hours
),

-- Each stage cycle's first MQL and first acceptance (SAL), in one pass over the stages.
cycles as (
    select
        prospect_id,
        cycle,
        min(case when stage = 'mql' then entered_at end) as mql_at,
        min(case when stage = 'sal' then entered_at end) as sal_at
    from stages
    where stage in ('mql', 'sal')
    group by prospect_id, cycle
),

-- The prospect's first MQL, and the first sales touch: acceptance in the same cycle. One
-- recorded before the MQL (a back-dated change) took no working time.
first_mql as (
    select
        prospect_id,
        mql_at,
        sal_at
    from (
        select
            prospect_id,
            mql_at,
            sal_at,
            row_number() over (partition by prospect_id order by mql_at, cycle) as cycle_rank
        from cycles
        where mql_at is not null
    ) as ranked
    where cycle_rank = 1
),

cohort as (
    select
        prospects.prospect_id,
        prospects.region as prospect_region,
        first_mql.mql_at,
        first_mql.sal_at,
        {{ segment_expression }} as segment
    from prospects
    inner join first_mql on prospects.prospect_id = first_mql.prospect_id
    where
        not prospects.is_excluded
        and first_mql.mql_at >= :period_start_at
        and first_mql.mql_at < :period_end_at
        {{ scope_filter }}
),

-- A region without a calendar of its own works the default calendar.
calendared as (
    select
        cohort.*,
        coalesce(calendar_regions.region, 'default') as calendar_region
    from cohort
    left join calendar_regions on cohort.prospect_region = calendar_regions.region
),

-- Working time from MQL to acceptance, or to the cut-off while not accepted: the sum of its
-- overlaps with the region's working days. No overlap at all (a weekend, a holiday, a
-- back-dated acceptance) is no working time. One join, so PostgreSQL runs it once whatever
-- it guesses of the cohort's size.
responses as (
    select
        calendared.prospect_id,
        calendared.segment,
        calendared.sal_at is not null as is_accepted,
        coalesce(sum(
            case when working_hours.region is not null then greatest(
                extract(epoch from (
                    least(coalesce(calendared.sal_at, :as_of), working_hours.end_at)
                    - greatest(calendared.mql_at, working_hours.start_at)
                )),
                0
            ) end
        ), 0) / 3600.0 as response_hours
    from calendared
    left join working_hours
        on
            calendared.calendar_region = working_hours.region
            and calendared.mql_at < working_hours.end_at
            and coalesce(calendared.sal_at, :as_of) > working_hours.start_at
    group by calendared.prospect_id, calendared.segment, calendared.sal_at
),

-- Decided: accepted, or past the SLA unaccepted. A lead still inside its SLA is pending.
decided as (
    select
        segment,
        case when is_accepted and response_hours <= :sla_hours then 1 else 0 end as within_sla
    from responses
    where is_accepted or response_hours > :sla_hours
),

final as (
    select
        segment,
        sum(within_sla) as numerator,
        count(*) as denominator,
        count(*) as volume
    from decided
    group by segment
)

select * from final
