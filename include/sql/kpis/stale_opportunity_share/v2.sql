with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

-- The pipeline as it stood at the period's end (or at the data cut-off, if sooner).
open_at_end as (
    select *
    from opportunities
    where
        not is_excluded
        and created_at < least(:period_end_at, :as_of)
        and not (is_closed and close_date < :period_end)
        {{ scope_filter }}
),

-- Each deal's last stage change before the end: the entry in effect then (an
-- entry holds from entered_at until replaced_at, the deal's next first entry into a stage).
last_change as (
    select
        opportunity_id,
        entered_at as last_stage_change_at
    from stage_entries
    where
        entered_at < least(:period_end_at, :as_of)
        and (replaced_at is null or replaced_at >= least(:period_end_at, :as_of))
),

-- Each deal judged, then given its segment: the join runs once per deal, not per dimension.
judged as (
    select
        {{ segment_expression }} as segment,
        case when :by_amount then coalesce(open_at_end.amount, 0) else 1 end as weight,
        case
            when
                coalesce(last_change.last_stage_change_at, open_at_end.created_at)
                < least(:period_end_at, :as_of) - :stale_days * interval '1 day'
                then 1
            else 0
        end as is_stale
    from open_at_end
    left join last_change on open_at_end.opportunity_id = last_change.opportunity_id
),

final as (
    select
        segment,
        sum(weight * is_stale) as numerator,
        sum(weight) as denominator,
        count(*) as volume
    from judged
    group by segment
)

select * from final
