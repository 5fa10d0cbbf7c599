with

prospects as (
    select * from staging.prospects
),

-- Each calendar region's first and last UTC day in staging.working_time (the business
-- calendar counted up by UTC day: the working seconds before each day, and its parts).
calendar_days as (
    select
        region,
        min(day) as first_day,
        max(day) as last_day
    from staging.working_time
    group by region
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
        coalesce(calendar_days.region, 'default') as calendar_region
    from cohort
    left join calendar_days on cohort.region = calendar_days.region
),

-- The two instants whose working time apart is the response: the MQL and the acceptance.
instants as (
    select
        prospect_id,
        calendar_region,
        -1 as direction,
        mql_at as instant_at
    from calendared
    union all
    select
        prospect_id,
        calendar_region,
        1 as direction,
        sal_at as instant_at
    from calendared
),

-- Each instant's UTC day, kept within its calendar: before the first day nothing was
-- worked yet, after the last day all of it was.
located as (
    select
        instants.*,
        least(
            greatest(cast(instants.instant_at as date), calendar_days.first_day),
            calendar_days.last_day
        ) as utc_day
    from instants
    left join calendar_days on instants.calendar_region = calendar_days.region
),

-- The working time up to each instant: the seconds worked before its day, and the day's
-- parts up to it (none without a calendar).
worked as (
    select
        located.prospect_id,
        located.direction,
        coalesce(max(working_time.worked_before), 0) + coalesce(sum(
            case when working_time.start_at is not null then greatest(least(
                extract(epoch from (located.instant_at - working_time.start_at)),
                extract(epoch from (working_time.end_at - working_time.start_at))
            ), 0) end
        ), 0) as seconds
    from located
    left join staging.working_time as working_time
        on located.calendar_region = working_time.region and located.utc_day = working_time.day
    group by located.prospect_id, located.direction
),

-- The response: the working time at the end less that at the MQL, no less than zero (an
-- acceptance recorded before the MQL took none). v3 summed the overlaps of the two with
-- every working day of the region, a range join; this reads two rows a prospect.
responses as (
    select
        prospect_id,
        greatest(sum(direction * seconds), 0) / 3600.0 as response_hours
    from worked
    group by prospect_id
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
