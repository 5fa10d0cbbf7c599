"""One object's extract from a CRM API into the raw layer, watermark to watermark.

The first extract of an object is a full load; later ones read from the watermark minus a
look-back window (late writes are not lost) up to the run's window end, and land only
versions the raw layer does not hold yet. An extract that stops early is landed as an
incomplete batch with its reason, leaves the watermark alone, and raises `ExtractIncomplete`
so the Airflow task fails visibly and downstream stages never mistake it for full data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa

from revops.configuration import read_config
from revops.extract import hubspot, salesforce
from revops.extract.landing import BatchSpec, BatchWriter, LandedBatch, read_watermark
from revops.extract.resilience import ExtractStopped

log = logging.getLogger(__name__)


class ExtractIncomplete(RuntimeError):  # noqa: N818 - names the outcome an engineer sees
    def __init__(self, batch: LandedBatch):
        super().__init__(f"{batch.source}.{batch.object}: extract incomplete: {batch.status_reason}")
        self.batch = batch


def _window(engine, source: str, object_name: str, until: datetime, lookback: timedelta):
    high_water = read_watermark(engine, source, object_name)
    if high_water is None:
        return "full", None
    return "incremental", min(high_water, until) - lookback


def _land(
    writer: BatchWriter,
    pages: Iterable[list[dict]],
    high_water: datetime,
    on_page: Callable[[list[dict]], None] | None = None,
) -> LandedBatch:
    started = time.monotonic()
    try:
        for page in pages:
            writer.write_page(page)
            if on_page:
                on_page(page)
    except ExtractStopped as stop:
        raise ExtractIncomplete(writer.fail(str(stop))) from stop
    except Exception as error:
        batch = writer.fail(f"{type(error).__name__}: {error}")
        raise ExtractIncomplete(batch) from error
    batch = writer.complete(high_water)
    seconds = time.monotonic() - started
    log.info(
        "%s.%s: %d records seen, %d landed in %.1fs (%.0f records/s)",
        batch.source,
        batch.object,
        batch.records_seen,
        batch.record_count,
        seconds,
        batch.records_seen / seconds if seconds else 0,
    )
    return batch


def extract_salesforce_object(
    engine: sa.Engine,
    settings: salesforce.SalesforceSettings,
    object_name: str,
    until: datetime,
    run_id: str,
    **overrides,
) -> LandedBatch:
    """`overrides` replace settings of `crm_objects.yaml` (page_size, bulk_threshold, ...)."""
    config = {**read_config("crm_objects")["salesforce"], **overrides}
    spec = salesforce.object_specs()[object_name]
    mode, since = _window(
        engine, "salesforce", object_name, until, timedelta(minutes=config["lookback_minutes"])
    )
    extract = salesforce.SalesforceExtract(
        salesforce.SalesforceClient(settings),
        config["page_size"],
        config["bulk_threshold"],
        config["bulk_page_size"],
    )
    writer = BatchWriter(
        engine,
        BatchSpec(
            source="salesforce",
            object=object_name,
            extract_mode=mode,
            window_start=since,
            window_end=until,
            origin="salesforce:api",
            id_field="Id",
            version_field=spec.watermark,
            deleted_field="IsDeleted",
        ),
        run_id,
    )
    batch = _land(writer, extract.pages(spec, since, until), until)
    log.info("%s extracted with %s", object_name, extract.method)
    return batch


def extract_hubspot_object(
    engine: sa.Engine,
    settings: hubspot.HubSpotSettings,
    object_name: str,
    until: datetime,
    run_id: str,
    **overrides,
) -> list[LandedBatch]:
    """The object's batch, then (for contacts) a batch of their associations."""
    config = {**read_config("crm_objects")["hubspot"], **overrides}
    spec = hubspot.object_specs()[object_name]
    mode, since = _window(
        engine, "hubspot", object_name, until, timedelta(minutes=config["lookback_minutes"])
    )
    extract = hubspot.HubSpotExtract(
        hubspot.hubspot_client(settings),
        settings,
        config["page_size"],
        config["search_page_size"],
        config["search_cap"],
    )
    batch_spec = BatchSpec(
        source="hubspot",
        object=object_name,
        extract_mode=mode,
        window_start=since,
        window_end=until,
        origin="hubspot:api",
        id_field="id",
        version_field="updatedAt",
        deleted_field="archived",
    )
    changed_ids: list[str] = []
    batch = _land(
        BatchWriter(engine, batch_spec, run_id),
        _hubspot_pages(extract, spec, mode, since, until),
        until,
        on_page=lambda page: changed_ids.extend(r["id"] for r in page if not r.get("archived")),
    )
    batches = [batch]
    if spec.associations:
        associations_spec = BatchSpec(
            source="hubspot",
            object=f"{object_name}_{spec.associations}_associations",
            extract_mode=mode,
            window_start=since,
            window_end=until,
            origin="hubspot:api",
            id_field="contact_id",
        )
        pages = (
            extract.associations(changed_ids[i : i + 1000], spec.associations)
            for i in range(0, len(changed_ids), 1000)
        )
        batches.append(_land(BatchWriter(engine, associations_spec, run_id), pages, until))
    return batches


def _hubspot_pages(extract: hubspot.HubSpotExtract, spec, mode: str, since, until):
    if mode == "full":
        yield from extract.list_pages(spec)
        yield from extract.list_pages(spec, archived=True)
        return
    yield from extract.search_pages(spec, since, until)
    for page in extract.list_pages(spec, archived=True, with_history=False):
        yield [r for r in page if (r.get("archivedAt") or "") >= hubspot_iso(since)]


def hubspot_iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
