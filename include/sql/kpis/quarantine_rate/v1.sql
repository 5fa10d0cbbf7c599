with

-- Complete extract batches whose data is as of a moment in the period: the window's end, or
-- the landing time for a batch without one.
batches as (
    select batch_id
    from raw.extract_batches
    where
        status = 'complete'
        and coalesce(window_end, extracted_at) >= :period_start_at
        and coalesce(window_end, extracted_at) < :period_end_at
),

-- Each CRM record with a version in those batches, once per object.
landed as (
    select distinct
        records.source,
        records.object,
        records.record_id
    from raw.records as records
    inner join batches on records.batch_id = batches.batch_id
    where not records.is_deleted
),

-- Those the current build holds in quarantine, from a version that landed in the period.
quarantined as (
    select distinct
        quarantine.source,
        quarantine.object,
        quarantine.record_id
    from staging.quarantine as quarantine
    inner join batches on quarantine.batch_id = batches.batch_id
),

-- Records have no region or segment: under such a scope there is nothing to judge.
judged as (
    select
        cast(null as varchar) as region,
        cast(null as varchar) as segment,
        landed.source || '.' || landed.object as crm_object,
        case when quarantined.record_id is null then 0 else 1 end as is_quarantined
    from landed
    left join quarantined
        on
            landed.source = quarantined.source
            and landed.object = quarantined.object
            and landed.record_id = quarantined.record_id
),

in_scope as (
    select
        is_quarantined,
        {{ segment_expression }} as segment
    from judged
    where true {{ scope_filter }}
),

final as (
    select
        segment,
        sum(is_quarantined) as numerator,
        count(*) as denominator,
        count(*) as volume
    from in_scope
    group by segment
)

select * from final
