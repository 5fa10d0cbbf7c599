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

first_mql as (
    select
        prospect_id,
        min(entered_at) as mql_at
    from stages
    where stage = 'mql'
    group by prospect_id
),

mql_cycles as (
    select
        first_mql.prospect_id,
        first_mql.mql_at,
        min(stages.cycle) as mql_cycle
    from first_mql
    inner join stages
        on
            first_mql.prospect_id = stages.prospect_id
            and first_mql.mql_at = stages.entered_at
            and stages.stage = 'mql'
    group by first_mql.prospect_id, first_mql.mql_at
),

-- The first sales touch: acceptance (SAL) in the same cycle. One recorded before the MQL
-- (a back-dated change) took no working time.
accepted as (
    select
        mql_cycles.prospect_id,
        min(stages.entered_at) as sal_at
    from mql_cycles
    inner join stages
        on
            mql_cycles.prospect_id = stages.prospect_id
            and mql_cycles.mql_cycle = stages.cycle
            and stages.stage = 'sal'
    group by mql_cycles.prospect_id
),

cohort as (
    select
        prospects.prospect_id,
        prospects.region as prospect_region,
        mql_cycles.mql_at,
        accepted.sal_at,
        {{ segment_expression }} as segment
    from prospects
    inner join mql_cycles on prospects.prospect_id = mql_cycles.prospect_id
    left join accepted on prospects.prospect_id = accepted.prospect_id
    where
        not prospects.is_excluded
        and mql_cycles.mql_at >= :period_start_at
        and mql_cycles.mql_at < :period_end_at
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

-- Working time from MQL to acceptance, or to the cut-off while not
-- accepted: its overlap with each of the region's working days.
working_overlaps as (
    select
        calendared.prospect_id,
        greatest(
            extract(epoch from (
                least(coalesce(calendared.sal_at, :as_of), working_hours.end_at)
                - greatest(calendared.mql_at, working_hours.start_at)
            )),
            0
        ) as seconds
    from calendared
    inner join working_hours
        on
            calendared.calendar_region = working_hours.region
            and calendared.mql_at < working_hours.end_at
            and coalesce(calendared.sal_at, :as_of) > working_hours.start_at
),

-- No overlap at all (a weekend, a holiday, a back-dated acceptance) is no working time.
responses as (
    select
        calendared.prospect_id,
        calendared.segment,
        calendared.sal_at is not null as is_accepted,
        coalesce(sum(working_overlaps.seconds), 0) / 3600.0 as response_hours
    from calendared
    left join working_overlaps on calendared.prospect_id = working_overlaps.prospect_id
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
