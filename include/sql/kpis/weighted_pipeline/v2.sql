with

opportunities as (
    select * from staging.opportunities
),

stage_entries as (
    select * from staging.opportunity_stages
),

stage_probabilities as (
    select * from staging.stage_probabilities
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

-- The stage each deal was in then: the entry in effect at the end (an entry
-- holds from entered_at until replaced_at, the deal's next first entry into a stage).
stage_then as (
    select
        opportunity_id,
        stage
    from stage_entries
    where
        entered_at < least(:period_end_at, :as_of)
        and (replaced_at is null or replaced_at >= least(:period_end_at, :as_of))
),

-- A deal without stage history before the end weighs by its current stage. Each deal is
-- weighed, then given its segment: the joins run once per deal, not per dimension.
weighted as (
    select
        {{ segment_expression }} as segment,
        coalesce(open_at_end.amount, 0) * coalesce(stage_probabilities.probability, 0) / 100.0
            as weighted_amount
    from open_at_end
    left join stage_then on open_at_end.opportunity_id = stage_then.opportunity_id
    left join stage_probabilities
        on coalesce(stage_then.stage, open_at_end.stage) = stage_probabilities.stage
),

final as (
    select
        segment,
        1 as denominator,
        sum(weighted_amount) as numerator,
        count(*) as volume
    from weighted
    group by segment
)

select * from final
