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
    select
        opportunity_id,
        stage as current_stage,
        coalesce(amount, 0) as amount,
        {{ segment_expression }} as segment
    from opportunities
    where
        not is_excluded
        and created_at < least(:period_end_at, :as_of)
        and not (is_closed and close_date < :period_end)
        {{ scope_filter }}
),

-- The stage each deal was in then: its newest stage entry before the end.
stage_then as (
    select
        opportunity_id,
        stage
    from (
        select
            stage_entries.opportunity_id,
            stage_entries.stage,
            row_number() over (
                partition by stage_entries.opportunity_id
                order by stage_entries.entered_at desc, stage_entries.stage_order desc
            ) as newest_first
        from stage_entries
        inner join open_at_end on stage_entries.opportunity_id = open_at_end.opportunity_id
        where stage_entries.entered_at < least(:period_end_at, :as_of)
    ) as ranked
    where newest_first = 1
),

-- A deal without stage history before the end weighs by its current stage.
weighted as (
    select
        open_at_end.segment,
        open_at_end.amount * coalesce(stage_probabilities.probability, 0) / 100.0 as weighted_amount
    from open_at_end
    left join stage_then on open_at_end.opportunity_id = stage_then.opportunity_id
    left join stage_probabilities
        on coalesce(stage_then.stage, open_at_end.current_stage) = stage_probabilities.stage
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
