with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

-- The pipeline as it stood at the period's end (or at the data cut-off, if sooner).
open_at_end as (
    select
        opportunity_id,
        created_at,
        coalesce(amount, 0) as amount,
        {{ segment_expression }} as segment
    from opportunities
    where
        not is_excluded
        and created_at < least(:period_end_at, :as_of)
        and not (is_closed and close_date < :period_end)
        {{ scope_filter }}
),

last_change as (
    select
        open_at_end.opportunity_id,
        max(stage_entries.entered_at) as last_stage_change_at
    from open_at_end
    inner join stage_entries on open_at_end.opportunity_id = stage_entries.opportunity_id
    where stage_entries.entered_at < least(:period_end_at, :as_of)
    group by open_at_end.opportunity_id
),

judged as (
    select
        open_at_end.segment,
        case when :by_amount then open_at_end.amount else 1 end as weight,
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
