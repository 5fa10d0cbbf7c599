with

prospects as (
    select * from staging.prospects
),

working_hours as (
    select * from staging.working_hours
),

calendar_regions as (
    select distinct region from working_hours
),

-- The prospects whose first MQL (their first cycle to reach MQL) falls in the period and
-- whom sales accepted (SAL) in the same cycle by the cut-off. An acceptance recorded before
-- the MQL (a back-dated change) took no working time.
-- staging.stage_first_entries is named twice rather than as a CTE: DuckDB would build a
-- CTE named twice whole, where each scan of the table can skip what its filters rule out.
cohort as (
    select
        prospects.*,
        mql.entered_at as mql_at,
        sal.entered_at as sal_at
    from staging.stage_first_entries as mql
    inner join prospects on mql.prospect_id = prospects.prospect_id
    inner join staging.stage_first_entries as sal
        on
            mql.prospect_id = sal.prospect_id
            and mql.cycle = sal.cycle
            and sal.stage = 'sal'
    where
        mql.stage = 'mql'
        and mql.is_first_cycle
        and mql.entered_at >= :period_start_at
        and mql.entered_at < :period_end_at
        and sal.entered_at < :as_of
        and not prospects.is_excluded
        {{ scope_filter }}
),

-- A region without a calendar of its own works the default calendar.
calendared as (
    select
        cohort.prospect_id,
        cohort.mql_at,
        cohort.sal_at,
        coalesce(calendar_regions.region, 'default') as calendar_region
    from cohort
    left join calendar_regions on cohort.region = calendar_regions.region
),

-- Working time from MQL to acceptance: the sum of its overlaps with the region's working
-- days. No overlap at all (a weekend, a holiday, a back-dated acceptance) is no working
-- time. Once per prospect, before its segments.
responses as (
    select
        calendared.prospect_id,
        coalesce(sum(
            case when working_hours.region is not null then greatest(
                extract(epoch from (
                    least(calendared.sal_at, working_hours.end_at)
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
            and calendared.sal_at > working_hours.start_at
    group by calendared.prospect_id
),

segmented as (
    select
        {{ segment_expression }} as segment,
        responses.response_hours
    from responses
    inner join cohort on responses.prospect_id = cohort.prospect_id
),

final as (
    select
        segment,
        1 as denominator,
        percentile_cont(:quantile) within group (order by response_hours) as numerator,
        count(*) as volume
    from segmented
    group by segment
)

select * from final
