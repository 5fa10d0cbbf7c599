"""The ledger is hash-chained: editing or deleting an entry, or changing an archived file,
is found by `verify`, which names the first broken link."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from revops.audit.ledger import GENESIS_HASH, entry_hash, record_run
from revops.audit.verify import verify
from revops.warehouse import get_engine
from revops.warehouse.schema import run_ledger

INTERVAL = (datetime(2026, 10, 26), datetime(2026, 11, 2))


def _record(engine, n: int, outputs: list[dict] | None = None) -> str:
    return record_run(
        engine,
        run_id=f"run-{n}",
        dag_id="revops_test",
        logical_date=INTERVAL[1],
        data_interval=INTERVAL,
        details={"n": n, "outputs": outputs or []},
        outcome="success",
    )


@pytest.fixture
def ledger(any_warehouse_url, tmp_path):
    engine = get_engine(any_warehouse_url)
    pdf = tmp_path / "scorecard.pdf"
    pdf.write_bytes(b"%PDF-1.7 a scorecard")
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    for n in range(1, 5):
        _record(engine, n, [{"path": str(pdf), "sha256": digest}] if n == 3 else None)
    return engine, pdf


def _entries(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(run_ledger).order_by(run_ledger.c.sequence))]


def test_each_entry_is_chained_to_the_one_before(ledger):
    engine, _pdf = ledger
    entries = _entries(engine)
    assert [e["sequence"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["previous_hash"] == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after["previous_hash"] == before["entry_hash"]
    for entry in entries:  # the hash is recomputable from the stored content alone
        assert entry_hash(entry) == entry["entry_hash"] and entry["entry_id"] == entry["entry_hash"][:24]
    result = verify(engine)
    assert result.ok and result.entries == 4 and result.files == 1


def test_an_edited_entry_is_named(ledger):
    engine, _pdf = ledger
    with engine.begin() as conn:
        conn.execute(
            run_ledger.update().where(run_ledger.c.sequence == 2).values(details=json.dumps({"n": 99}))
        )
    (finding,) = verify(engine).findings
    assert finding.sequence == 2 and "was edited" in finding.problem


def test_a_deleted_entry_is_named_by_the_gap_it_leaves(ledger):
    engine, _pdf = ledger
    with engine.begin() as conn:
        conn.execute(run_ledger.delete().where(run_ledger.c.sequence == 2))
    findings = verify(engine).findings
    assert findings[0].sequence == 3
    assert "entries 2 are missing" in findings[0].problem
    assert any("link to the entry before does not match" in f.problem for f in findings)


def test_a_rewritten_chain_tail_still_breaks_at_the_first_edit(ledger):
    """Re-hashing an edited entry is not enough: the next entry's link gives it away."""
    engine, _pdf = ledger
    entries = _entries(engine)
    forged = {**entries[1], "outcome": "failed"}
    forged["entry_hash"] = entry_hash(forged)
    with engine.begin() as conn:
        conn.execute(
            run_ledger.update()
            .where(run_ledger.c.sequence == 2)
            .values(outcome="failed", entry_hash=forged["entry_hash"], entry_id=forged["entry_hash"][:24])
        )
    (finding,) = verify(engine).findings
    assert finding.sequence == 3 and "link to the entry before" in finding.problem


def test_a_changed_or_missing_archived_file_is_named(ledger):
    engine, pdf = ledger
    pdf.write_bytes(b"%PDF-1.7 a different scorecard")
    (finding,) = verify(engine).findings
    assert finding.sequence == 3 and f"archived file {pdf} has changed" in finding.problem
    pdf.unlink()
    (finding,) = verify(engine).findings
    assert "is missing" in finding.problem


def test_concurrent_writers_never_fork_the_chain(tmp_path):
    from revops.devtools.postgres import scratch_database

    with scratch_database() as url:
        engine = get_engine(url)
        threads = [
            threading.Thread(target=lambda w=w: [_record(engine, 100 * w + i) for i in range(15)])
            for w in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = verify(engine)
        assert result.ok, result.findings
        assert [e["sequence"] for e in _entries(engine)] == list(range(1, 61))
