with

-- The period's prospects, once each: a prospect's score at its scoring moment is the same in
-- every dimension, so it is summed before the segment expression makes a row per dimension.
cohort_prospects as (
    select
        prospect_id,
        created_at + :score_after_days * interval '1 day' as scored_at
    from staging.prospects
    where
        not is_excluded
        and created_at >= :period_start_at
        and created_at < :period_end_at
        {{ scope_filter }}
),

cohort as (
    select
        prospect_id,
        created_at,
        created_at + :score_after_days * interval '1 day' as scored_at,
        {{ segment_expression }} as segment
    from staging.prospects
    where
        not is_excluded
        and created_at >= :period_start_at
        and created_at < :period_end_at
        {{ scope_filter }}
),

-- The score at the scoring moment: every change up to it. A prospect whose history starts
-- with a baseline taken after that moment has no known score then and is left out.
score_then as (
    select
        cohort_prospects.prospect_id,
        sum(
            case when changes.changed_at <= cohort_prospects.scored_at then changes.delta else 0 end
        ) as score,
        min(case when changes.kind = 'baseline' then changes.changed_at end) as baseline_at
    from cohort_prospects
    inner join marts.score_changes as changes on cohort_prospects.prospect_id = changes.prospect_id
    group by cohort_prospects.prospect_id
),

first_opportunity as (
    select
        prospect_id,
        min(created_at) as first_opportunity_at
    from staging.opportunities
    where is_from_converted_lead and not is_excluded
    group by prospect_id
),

-- Converted: a first opportunity after the scoring moment and within the window. One that
-- came before the moment is left out: the score may already reflect it.
scored as (
    select
        cohort.segment,
        score_then.score,
        case
            when
                first_opportunity.first_opportunity_at < cohort.created_at + :window_days * interval '1 day'
                and first_opportunity.first_opportunity_at < :as_of
                then 1
            else 0
        end as converted
    from cohort
    inner join score_then on cohort.prospect_id = score_then.prospect_id
    left join first_opportunity on cohort.prospect_id = first_opportunity.prospect_id
    where
        cohort.scored_at <= :as_of
        and (score_then.baseline_at is null or score_then.baseline_at <= cohort.scored_at)
        and (
            first_opportunity.first_opportunity_at is null
            or first_opportunity.first_opportunity_at > cohort.scored_at
        )
),

-- Mann-Whitney from counts: each segment's prospects grouped by score, where a converter's
-- average rank is the count of lower scores plus the middle of its tie. It counts the
-- non-converters it outscores, ties as half. (v2 ranked every row: two windows over millions
-- of rows at a million prospects, where these group by a few hundred scores.)
by_score as (
    select
        segment,
        score,
        count(*) as prospects,
        sum(converted) as converters
    from scored
    group by segment, score
),

ranked as (
    select
        segment,
        prospects,
        converters,
        sum(prospects) over (partition by segment order by score) - prospects
        + (prospects + 1) / 2.0 as average_rank
    from by_score
),

final as (
    select
        segment,
        sum(converters * average_rank)
        - sum(converters) * (sum(converters) + 1) / 2.0 as numerator,
        sum(converters) * (sum(prospects) - sum(converters)) as denominator,
        sum(prospects) as volume
    from ranked
    group by segment
)

select * from final
