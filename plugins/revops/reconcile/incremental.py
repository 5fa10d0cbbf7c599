"""Incremental builds: re-reconcile only what the batches landed since the last build touch.

A build updates the previous one in place when all it adds is new batches: the same rule
files and reconcile code, and every batch the previous build read still in use (a new full
snapshot, a changed rule or a new release of this package rebuilds everything).

The scope starts at the records the new batches hold and grows until it is closed under the
rules that reach across records (`close_scope`):
- a prospect's rows depend on all its records, so a changed record brings its prospect, old
  and new, and that prospect all its records;
- a record without an e-mail joins the one e-mailed prospect whose records share its name
  and company: a changed record's name key (old and new) brings the records without an
  e-mail that carry it, and each such record brings the prospect it joins now; the e-mailed
  records outside the scope with its key are handed to the rule as candidates;
- an opportunity takes its prospect from the leads converted into it, and a prospect's
  timeline holds its opportunities, so each brings the other;
- a lead brings its status history and an opportunity its stage history, found through
  `staging.history_parents` (no payload is read for it).
The same `reconcile` run over the scope then gives exactly the rows a full build would give
those prospects and opportunities; they replace the old ones. The tests compare an updated
staging layer with a full build of the same raw layer, table by table.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from revops.reconcile.frames import among
from revops.reconcile.records import SPECS, TypedObjects
from revops.warehouse import read_frame
from revops.warehouse.load import append_frame, empty_work_table, read_arrow
from revops.warehouse.schema import builds, reconcile_scope

log = logging.getLogger(__name__)

IDENTITY_OBJECTS = {("salesforce", "Lead"), ("hubspot", "contacts")}  # what prospects are made of
# History objects and the field naming the record each row belongs to.
HISTORY_PARENTS = {
    ("salesforce", "LeadHistory"): ("LeadId", ("salesforce", "Lead")),
    ("salesforce", "OpportunityHistory"): ("OpportunityId", ("salesforce", "Opportunity")),
}
# Rows of the scope table that list staging keys rather than source records.
PROSPECT_KEYS = ("staging", "prospects")
OPPORTUNITY_KEYS = ("staging", "opportunities")
# Above this share of the records, a scope is rebuilt in full instead: an update's time grows
# with its scope, a full build's with the data. Measured with `benchmarks.incremental_scale`
# (docs/performance-history.md), the two cross at about 41% of the records at 100k prospects and 48%
# at 1M, where a scope of 46% took 45.8 s against 47.4 s in full.
FULL_BUILD_SHARE = 0.4


@dataclass(frozen=True)
class PreviousBuild:
    build_id: str
    batch_ids: frozenset[str]
    summary: dict


@dataclass
class Scope:
    """What an incremental build re-reconciles: source records by (source, object) and the
    prospects and opportunities whose staging rows it replaces."""

    records: dict[tuple[str, str], set[str]]
    prospect_ids: set[str]
    opportunity_ids: set[str]
    # E-mailed records outside the scope whose name key a record in it carries: the other
    # candidates of the name-and-company rule.
    known_names: pd.DataFrame | None = None

    @classmethod
    def of_changes(cls, changed: pd.DataFrame) -> Scope:
        """The records the new batches hold, and the opportunities among them."""
        records: dict[tuple[str, str], set[str]] = {key: set() for key in SPECS}
        for (source, name), ids in changed.groupby(["source", "object"])["record_id"]:
            records[(source, name)] = set(ids)
        return cls(records, set(), set(records[("salesforce", "Opportunity")]))

    def size(self) -> int:
        return sum(len(ids) for ids in self.records.values())


def reconcile_code_digest() -> str:
    """The sha256 of this package's source: staging written by other rules is rebuilt whole."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def previous_build(conn: sa.Connection, batch_ids: set[str], fingerprint: dict) -> PreviousBuild | None:
    """The build staging holds now, if this build may update it: None means build in full."""
    row = conn.execute(
        sa.select(builds.c.build_id, builds.c.batch_ids, builds.c.summary)
        .order_by(builds.c.built_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    summary = json.loads(row.summary)
    previous_batches = frozenset(json.loads(row.batch_ids))
    changed_rules = [key for key, value in fingerprint.items() if summary.get(key) != value]
    if changed_rules:
        log.info("full build: %s differ from build %s's", " and ".join(changed_rules), row.build_id)
        return None
    if not previous_batches <= batch_ids:
        log.info("full build: batches build %s read are no longer in use (a new snapshot)", row.build_id)
        return None
    return PreviousBuild(row.build_id, previous_batches, summary)


def worth_a_full_build(scope_records: int, counts: dict[str, dict[str, int]]) -> bool:
    """Whether a scope holds so many of the build's records (per-object counts, as
    `record_counts` gives them) that building in full is cheaper than updating in place."""
    records = sum(count["records"] for count in counts.values())
    if scope_records <= FULL_BUILD_SHARE * records:
        return False
    log.info("full build: the scope holds at least %d of %d records", scope_records, records)
    return True


def least_scope_size(conn: sa.Connection) -> int:
    """How many records the scope will hold at least, from the changed records in the scope
    table: all records of their prospects, those prospects' opportunities and the history of
    both. Counted in SQL before the scope is closed, since closing a large scope is itself
    costly (3.3 s of 10.4 s at 100k prospects with every lead changed)."""
    return conn.execute(sa.text(LEAST_SCOPE_SQL)).scalar_one()


LEAST_SCOPE_SQL = """
with touched as (
    select distinct identities.prospect_id
    from staging.reconcile_scope as scope
    inner join staging.prospect_identities as identities
        on
            identities.source = scope.source
            and identities.object = scope.object
            and identities.record_id = scope.record_id
),

parents as (
    select identities.record_id
    from staging.prospect_identities as identities
    inner join touched on identities.prospect_id = touched.prospect_id
    union all
    select opportunities.opportunity_id as record_id
    from staging.opportunities as opportunities
    inner join touched on opportunities.prospect_id = touched.prospect_id
)

select
    (select count(*) from parents)
    + (
        select count(*)
        from staging.history_parents as history
        inner join parents on history.parent_id = parents.record_id
    )
"""


def changed_records(conn: sa.Connection, new_batch_ids: list[str]) -> pd.DataFrame:
    """(source, object, record_id) of every record the new batches hold, of the objects
    reconcile reads."""
    if not new_batch_ids:
        return pd.DataFrame(columns=["source", "object", "record_id"])
    statement = sa.text(
        """
        select distinct source, object, record_id from raw.records where batch_id in :batch_ids
        """
    ).bindparams(sa.bindparam("batch_ids", expanding=True))
    changed = read_frame(conn, statement, {"batch_ids": new_batch_ids})
    return changed[pd.MultiIndex.from_frame(changed[["source", "object"]]).isin(list(SPECS))]


def fill_scope(conn: sa.Connection, scope: Scope) -> None:
    """List the scope in `staging.reconcile_scope`, which scoped reads join."""
    rows = [
        pd.DataFrame({"source": source, "object": name, "record_id": sorted(ids)})
        for (source, name), ids in [
            *scope.records.items(),
            (PROSPECT_KEYS, scope.prospect_ids),
            (OPPORTUNITY_KEYS, scope.opportunity_ids),
        ]
    ]
    empty_work_table(conn, reconcile_scope)
    append_frame(conn, reconcile_scope, pd.concat(rows, ignore_index=True))


def list_new_prospects(conn: sa.Connection, prospect_ids: list[str]) -> None:
    """Add the prospects a build made outside its scope to the scope table, which then lists
    every prospect whose rows the build writes (their first entries are derived from it)."""
    source, name = PROSPECT_KEYS
    append_frame(
        conn, reconcile_scope, pd.DataFrame({"source": source, "object": name, "record_id": prospect_ids})
    )


def history_lineage(typed: TypedObjects) -> pd.DataFrame:
    """The lead or opportunity each typed history row belongs to (`staging.history_parents`)."""
    frames = []
    for (source, name), (field, _) in HISTORY_PARENTS.items():
        rows = typed[(source, name)]
        frames.append(
            pd.DataFrame(
                {"source": source, "object": name, "record_id": rows["Id"], "parent_id": rows[field]}
            )
        )
    return pd.concat(frames, ignore_index=True).dropna(subset=["parent_id"])


def history_owners(conn: sa.Connection, touched: TypedObjects) -> dict[tuple[str, str], set[str]]:
    """The leads and opportunities whose history the new batches change: those the changed
    rows (listed in the scope table) belonged to, by staging's lineage, and belong to now."""
    before = read_frame(
        conn,
        """
        select parents.object, parents.parent_id
        from staging.history_parents as parents
        inner join staging.reconcile_scope as scope
            on scope.source = parents.source and scope.object = parents.object
            and scope.record_id = parents.record_id
        """,
    )
    owners = {}
    for (source, name), (field, parent) in HISTORY_PARENTS.items():
        ids = set(before.loc[before["object"] == name, "parent_id"])
        owners[parent] = ids | set(touched[(source, name)][field].dropna())
    return owners


def close_scope(
    conn: sa.Connection, scope: Scope, changed: pd.DataFrame, new_identities: pd.DataFrame
) -> Scope:
    """Grow the scope until it is closed under the cross-record rules (module docstring).

    `changed`: the records the new batches hold; `new_identities`: the changed leads and
    contacts as those batches have them, with prospect ids and name keys by the rules.
    The identity facts (1.4M rows at 1M prospects) stay in Arrow: filtering them as frames,
    each round, was 2.1 to 2.3 s of a 6.1 to 6.7 s daily build."""
    old = _with_keys(read_arrow(conn, IDENTITY_FACTS_SQL))
    fact_schema = old.schema.remove(old.schema.get_field_index("key"))
    new_facts = new_identities.assign(is_emailed=new_identities["email_normalized"].notna())
    new = _with_keys(pa.Table.from_pandas(new_facts[fact_schema.names], fact_schema, preserve_index=False))
    changed_keys = {
        KEY_SEPARATOR.join(record)
        for record in changed[["source", "object", "record_id"]].itertuples(index=False)
    }
    # Both versions of a changed record reach out; the current ones decide the matches.
    facts = pa.concat_tables([old, new])
    unchanged = pc.invert(among(old["key"], changed_keys))

    def current(columns: list[str], condition: Callable[[pa.Table], pa.ChunkedArray]) -> pa.Table:
        """These columns of the current facts where `condition` holds: filtering only the
        rows and columns a rule reads, not a copy of all 1.4M facts first."""
        narrow_old, narrow_new = old.select([*columns, "is_emailed"]), new.select([*columns, "is_emailed"])
        kept = [
            narrow_old.filter(pc.and_(unchanged, condition(narrow_old))),
            narrow_new.filter(condition(narrow_new)),
        ]
        return pa.concat_tables(kept).select(columns)

    emailed = current(
        ["key", "name_key", "prospect_id"], lambda t: pc.and_(t["is_emailed"], pc.is_valid(t["name_key"]))
    )
    not_emailed = current(["key", "name_key"], lambda t: pc.invert(t["is_emailed"]))
    changed_names = _values(facts.filter(among(facts["key"], changed_keys)), "name_key")
    # Records without an e-mail that carry a changed name key: in the scope from the start.
    named = facts.filter(pc.and_(pc.invert(facts["is_emailed"]), among(facts["name_key"], changed_names)))
    links = read_arrow(conn, "select opportunity_id, prospect_id from staging.opportunities")
    keys = {
        KEY_SEPARATOR.join((source, name, record_id))
        for (source, name), ids in scope.records.items()
        if (source, name) in IDENTITY_OBJECTS
        for record_id in ids
    }
    prospects, opportunities = set(scope.prospect_ids), set(scope.opportunity_ids)
    opportunities |= _values(new, "converted_opportunity_id")
    while True:
        reached = facts.filter(
            _any_among(facts, key=keys, prospect_id=prospects, converted_opportunity_id=opportunities)
        )
        touched = pa.concat_tables([reached, named])
        linked = links.filter(_any_among(links, opportunity_id=opportunities, prospect_id=prospects))
        unmatched = not_emailed.filter(among(not_emailed["key"], keys))
        unmatched_names = _values(unmatched, "name_key")
        grown = (
            keys | _values(touched, "key"),
            prospects
            | _values(touched, "prospect_id")
            | _values(linked, "prospect_id")
            | _unique_matches(emailed, unmatched_names),
            opportunities | _values(touched, "converted_opportunity_id") | _values(linked, "opportunity_id"),
        )
        if grown == (keys, prospects, opportunities):
            break
        keys, prospects, opportunities = grown
    # `unmatched_names` are the last round's, whose keys are the closed scope's.
    outside = emailed.filter(
        pc.and_(among(emailed["name_key"], unmatched_names), pc.invert(among(emailed["key"], keys)))
    )
    records = {object_key: set(ids) for object_key, ids in scope.records.items()}
    for key in keys:
        source, name, record_id = key.split(KEY_SEPARATOR)
        records[(source, name)].add(record_id)
    records[("salesforce", "Opportunity")] |= opportunities
    known_names = outside.select(["name_key", "prospect_id"]).to_pandas().drop_duplicates()
    closed = Scope(records, prospects, opportunities, known_names)
    _add_history(conn, closed)
    fill_scope(conn, closed)  # what scoped reads and the replacing of rows go by
    return closed


# Joins a record's source, object and id into one key: a character no CRM id or name holds.
KEY_SEPARATOR = "\0"

IDENTITY_FACTS_SQL = """
select source, object, record_id, prospect_id, converted_opportunity_id, name_key,
    match_rule = 'email' as is_emailed
from staging.prospect_identities
"""


def _with_keys(facts: pa.Table) -> pa.Table:
    """The facts with each record's key (source, object and record id, joined by
    `KEY_SEPARATOR`), as `close_scope` lists the scope's records."""
    key = pc.binary_join_element_wise(facts["source"], facts["object"], facts["record_id"], KEY_SEPARATOR)
    return facts.append_column("key", key)


def _any_among(table: pa.Table, **known: set[str]) -> pa.ChunkedArray:
    """Rows whose value in any of the named columns is in that column's set."""
    masks = [among(table[column], values) for column, values in known.items()]
    return functools.reduce(pc.or_, masks)


def _values(table: pa.Table, column: str) -> set[str]:
    """A column's distinct values, without the missing one."""
    return set(pc.unique(pc.drop_null(table[column])).to_pylist())


def _unique_matches(emailed: pa.Table, names: set[str]) -> set[str]:
    """The prospects these name keys match by the name-and-company rule: the one e-mailed
    prospect carrying each key, where there is exactly one."""
    candidates = emailed.filter(among(emailed["name_key"], names)).select(["name_key", "prospect_id"])
    per_key = candidates.to_pandas().drop_duplicates().groupby("name_key")["prospect_id"]
    return set(per_key.first()[per_key.size() == 1])


def _add_history(conn: sa.Connection, scope: Scope) -> None:
    """Add the history rows of the scope's leads and opportunities (staging's lineage)."""
    fill_scope(conn, scope)  # the parents, for the join
    for (source, name), (_, (parent_source, parent_name)) in HISTORY_PARENTS.items():
        rows = read_frame(
            conn,
            """
            select parents.record_id
            from staging.history_parents as parents
            inner join staging.reconcile_scope as scope
                on scope.source = :parent_source and scope.object = :parent_name
                and scope.record_id = parents.parent_id
            where parents.source = :source and parents.object = :object
            """,
            {"source": source, "object": name, "parent_source": parent_source, "parent_name": parent_name},
        )
        scope.records[(source, name)] |= set(rows["record_id"])


def existing_prospects(conn: sa.Connection, prospect_ids: list[str]) -> list[str]:
    """Which of these prospects staging holds now."""
    if not prospect_ids:
        return []
    statement = sa.text(
        "select prospect_id from staging.prospects where prospect_id in :ids order by prospect_id"
    ).bindparams(sa.bindparam("ids", expanding=True))
    return list(conn.execute(statement, {"ids": prospect_ids}).scalars())


def replace_scope_rows(conn: sa.Connection, table: sa.Table, key: str, frame: pd.DataFrame) -> None:
    """Delete the table's rows of the scope, then append the scope's new rows."""
    where, params = scope_condition(table.name, key)
    conn.execute(sa.text(f"delete from {table.fullname} where {where}"), params)
    append_frame(conn, table, frame)


def scope_condition(table_name: str, key: str) -> tuple[str, dict]:
    """A condition true for a staging table's rows of the scope, and its bound values. `key`:
    the column naming the scope's prospects or opportunities (prospect_id, opportunity_id),
    or "record" for a table keyed by source record (source, object, record_id)."""
    if key == "record":
        condition = f"""exists (
            select 1 from staging.reconcile_scope as scope
            where scope.source = {table_name}.source and scope.object = {table_name}.object
                and scope.record_id = {table_name}.record_id)"""
        return condition, {}
    source, name = PROSPECT_KEYS if key == "prospect_id" else OPPORTUNITY_KEYS
    condition = f"""{key} in (
            select record_id from staging.reconcile_scope where source = :source and object = :object)"""
    return condition, {"source": source, "object": name}


def record_counts(
    conn: sa.Connection,
    previous: dict[str, dict[str, int]],
    batch_ids: list[str],
    new_batch_ids: list[str],
) -> dict[str, dict[str, int]]:
    """Each object's count of current records and of those deleted upstream: the previous
    build's, moved by the changed records (listed in the scope table), whose current version
    is read before and after the new batches, ranked as the build ranks versions."""
    counts = {name: {key: c[key] for key in ("records", "deleted_upstream")} for name, c in previous.items()}
    statement = sa.text(
        """
        select batches.source, batches.object, records.record_id, records.batch_id, records.is_deleted
        from raw.records as records
        inner join raw.extract_batches as batches on batches.batch_id = records.batch_id
        inner join staging.reconcile_scope as scope
            on scope.source = batches.source and scope.object = batches.object
            and scope.record_id = records.record_id
        where records.batch_id in :batch_ids
        order by batches.extracted_at desc, records.record_version desc, records.batch_id desc
        """
    ).bindparams(sa.bindparam("batch_ids", expanding=True))
    versions = read_frame(conn, statement, {"batch_ids": batch_ids})
    record = ["source", "object", "record_id"]
    now = versions.drop_duplicates(record)
    before = versions[~versions["batch_id"].isin(new_batch_ids)].drop_duplicates(record)
    for current, sign in ((now, 1), (before, -1)):
        for (source, name), rows in current.groupby(["source", "object"]):
            entry = counts.setdefault(f"{source}.{name}", {"records": 0, "deleted_upstream": 0})
            entry["records"] += sign * len(rows)
            entry["deleted_upstream"] += sign * int(rows["is_deleted"].astype(bool).sum())
    return counts
