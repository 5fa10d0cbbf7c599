"""The quarantine rate on a hand-built raw layer and quarantine (DuckDB and PostgreSQL): which
record counts in which period is worked out in the comments."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from revops.kpis.engine import TOTAL, compute_kpis
from revops.kpis.scope import Scope
from revops.periods import period_containing
from revops.warehouse import get_engine
from revops.warehouse.load import append_frame
from revops.warehouse.schema import extract_batches, quarantine, raw_records
from tests.helpers import record_build

MARCH = period_containing("month", date(2026, 3, 1))

# batch: (source, object, status, window end, extracted at, [(record, deleted)])
BATCHES = {
    "b1": (
        "salesforce",
        "Lead",
        "complete",
        datetime(2026, 3, 10),
        datetime(2026, 3, 10, 1),
        [("L1", False), ("L2", False), ("L3", False)],
    ),
    # L1 again (a newer version): one record. L5 was deleted upstream.
    "b2": (
        "salesforce",
        "Lead",
        "complete",
        datetime(2026, 3, 20),
        datetime(2026, 3, 20, 1),
        [("L1", False), ("L4", False), ("L5", True)],
    ),
    # No window (a batch without one): its landing time places it.
    "b3": ("hubspot", "contacts", "complete", None, datetime(2026, 3, 15), [("C1", False), ("C2", False)]),
    # Incomplete: reconcile never reads it.
    "b4": (
        "salesforce",
        "Lead",
        "incomplete",
        datetime(2026, 3, 12),
        datetime(2026, 3, 12, 1),
        [("L6", False)],
    ),
    # April's data.
    "b5": ("salesforce", "Lead", "complete", datetime(2026, 4, 2), datetime(2026, 4, 2, 1), [("L7", False)]),
}
# The current build's quarantine: (batch, record).
QUARANTINED = [("b1", "L2"), ("b2", "L4"), ("b3", "C2"), ("b5", "L7")]


@pytest.fixture
def engine(any_warehouse_url):
    engine = get_engine(any_warehouse_url)
    batches = pd.DataFrame(
        [
            {
                "batch_id": batch,
                "source": source,
                "object": name,
                "extract_mode": "full",
                "status": status,
                "window_end": window_end,
                "extracted_at": extracted_at,
                "record_count": len(records),
                "records_seen": len(records),
                "content_sha256": batch,
            }
            for batch, (source, name, status, window_end, extracted_at, records) in BATCHES.items()
        ]
    )
    records = pd.DataFrame(
        [
            (batch, source, name, record, batch, batch, deleted, "{}")
            for batch, (source, name, _, _, _, rows) in BATCHES.items()
            for record, deleted in rows
        ],
        columns=[
            "batch_id",
            "source",
            "object",
            "record_id",
            "record_version",
            "record_hash",
            "is_deleted",
            "payload",
        ],
    )
    held = records.set_index(["batch_id", "record_id"]).loc[QUARANTINED].reset_index()
    with engine.begin() as conn:
        append_frame(conn, extract_batches, batches)
        append_frame(conn, raw_records, records)
        append_frame(conn, quarantine, held.assign(build_id="b1", reason="CreatedDate: not a timestamp"))
        record_build(conn, datetime(2026, 4, 5))
    return engine


def test_the_share_of_the_periods_records_held_in_quarantine(engine):
    results = compute_kpis(engine, [MARCH], "quarantine-test", kpi_ids=["quarantine_rate"])
    rows = results.set_index(["dimension", "segment"])
    # March: Lead L1, L2, L3, L4 (L5 deleted, L6 in an incomplete batch, L7 April's) and
    # contacts C1, C2. Held: L2, L4 and C2.
    assert rows.loc[(TOTAL, "all"), ["numerator", "denominator"]].tolist() == [3, 6]
    assert rows.loc[("crm_object", "salesforce.Lead"), ["numerator", "denominator"]].tolist() == [2, 4]
    assert rows.loc[("crm_object", "hubspot.contacts"), ["numerator", "denominator"]].tolist() == [1, 2]


def test_records_have_no_region_so_a_regional_scope_has_no_data(engine):
    results = compute_kpis(engine, [MARCH], "quarantine-test", Scope("region", "EMEA"), ["quarantine_rate"])
    total = results[results["dimension"] == TOTAL].iloc[0]
    assert total["volume"] == 0 and "no_data" in total["flags"]
