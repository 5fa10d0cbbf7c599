with

opportunities as (
    select * from staging.opportunities
),

changes as (
    select * from staging.opportunity_changes
),

-- How many changes the same user recorded within 10 minutes either side of each change
-- (itself included). Only changes within 10 minutes of the period can be a period change's
-- neighbours, so only those are counted over (v1 counted over the whole history); a burst
-- across a period boundary still counts. A change with no recorded user cannot be judged
-- and is left out.
neighbours as (
    select
        opportunity_id,
        changed_at,
        changed_by,
        count(*) over (
            partition by changed_by
            order by changed_at
            range between interval '10 minutes' preceding and interval '10 minutes' following
        ) as nearby_changes
    from changes
    where
        changed_by is not null
        and changed_at >= :period_start_at - interval '10 minutes'
        and changed_at < :period_end_at + interval '10 minutes'
),

-- Changes recorded in the period on real deals (test deals left out).
recorded as (
    select
        neighbours.nearby_changes,
        {{ segment_expression }} as segment
    from neighbours
    inner join opportunities on neighbours.opportunity_id = opportunities.opportunity_id
    where
        not opportunities.is_excluded
        and neighbours.changed_at >= :period_start_at
        and neighbours.changed_at < :period_end_at
        {{ scope_filter }}
),

final as (
    select
        segment,
        sum(case when nearby_changes >= :burst_size then 1 else 0 end) as numerator,
        count(*) as denominator,
        count(*) as volume
    from recorded
    group by segment
)

select * from final
