"""Check the ledger's hash chain and every archived file it names.

A broken chain means an entry was edited (its content no longer gives its hash), deleted
(a sequence number is missing, or the next entry's link points at something else), or
inserted out of turn. A changed or missing archived file means the artifact an auditor would
open is not the one that was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from revops.audit.ledger import GENESIS_HASH, entry_hash
from revops.warehouse.schema import run_ledger


@dataclass(frozen=True)
class Finding:
    sequence: int
    entry_id: str
    problem: str

    def __str__(self) -> str:
        return f"entry {self.sequence} ({self.entry_id}): {self.problem}"


@dataclass(frozen=True)
class Verification:
    entries: int
    files: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(engine: sa.Engine) -> Verification:
    """Every problem in the ledger and the archive, in ledger order (the first is the first
    broken link)."""
    with engine.connect() as conn:
        entries = [
            dict(r._mapping) for r in conn.execute(sa.select(run_ledger).order_by(run_ledger.c.sequence))
        ]
    findings, files = [], 0
    expected_sequence, previous = 1, GENESIS_HASH
    for entry in entries:
        findings += _chain_findings(entry, expected_sequence, previous)
        for path, sha256 in artifacts(entry):
            files += 1
            problem = _file_problem(Path(path), sha256)
            if problem:
                findings.append(Finding(entry["sequence"], entry["entry_id"], problem))
        expected_sequence, previous = entry["sequence"] + 1, entry["entry_hash"]
    return Verification(len(entries), files, tuple(findings))


def _chain_findings(entry: dict, expected_sequence: int, previous_hash: str) -> list[Finding]:
    def finding(problem: str) -> Finding:
        return Finding(entry["sequence"], entry["entry_id"], problem)

    found = []
    if entry["sequence"] != expected_sequence:
        missing = (
            f"{expected_sequence}"
            if entry["sequence"] == expected_sequence + 1
            else (f"{expected_sequence} to {entry['sequence'] - 1}")
        )
        found.append(finding(f"entries {missing} are missing (deleted)"))
    if entry["previous_hash"] != previous_hash:
        found.append(
            finding("its link to the entry before does not match (an entry was removed or replaced)")
        )
    if entry_hash(entry) != entry["entry_hash"] or entry["entry_id"] != entry["entry_hash"][:24]:
        found.append(finding("its content does not match its hash (the entry was edited)"))
    return found


def artifacts(entry: dict) -> list[tuple[str, str]]:
    """(path, sha256) of every file an entry says it produced."""
    try:
        details = json.loads(entry["details"])
    except json.JSONDecodeError:
        return []
    return [(o["path"], o["sha256"]) for o in details.get("outputs", []) if "sha256" in o]


def _file_problem(path: Path, sha256: str) -> str | None:
    if not path.exists():
        return f"archived file {path} is missing"
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != sha256:
        return f"archived file {path} has changed: sha256 {actual[:16]}..., recorded {sha256[:16]}..."
    return None
