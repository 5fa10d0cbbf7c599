"""The KPI registry: definitions and their versions under `include/sql/kpis/<kpi_id>/`.

A definition (`definition.yaml`) says what a KPI means: owner, balanced-scorecard
perspective, unit, direction, allowed dimensions, minimum volume, thresholds, and its
versions (effective date, status, rationale, approver, the pinned sha256 of its SQL).

Parameters (a window length, a stage) reach the SQL as bound values, never as text. A KPI
with `variants` is a family: each variant is a KPI of its own, `<id>.<variant>`, with its
own parameter values, name and thresholds. A variant can only use the versions whose SQL
takes the parameters it sets away from the family's defaults.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path

from revops.configuration import ConfigError, check_keys, location, read_yaml
from revops.settings import SQL_DIR

KPI_DIR = SQL_DIR / "kpis"
STATUSES = ("proposed", "published", "retired")
# rate and ratio: numerator / denominator, which add up across segments. total: a sum (the
# weighted pipeline) as the numerator, denominator 1; numerators add up. quantile: the
# quantile itself as the numerator (denominator 1). auc: pairs ranked right over all
# converter / non-converter pairs. Neither of the last two adds up across segments.
KINDS = ("rate", "ratio", "total", "quantile", "auc")
ADDITIVE_KINDS = ("rate", "ratio", "total")
UNITS = ("percent", "currency", "days", "hours", "ratio", "count")
DIRECTIONS = ("higher_is_better", "lower_is_better")
PERSPECTIVES = ("financial", "customer", "internal_process", "learning_and_growth")
# What a definition.yaml may say; anything else is a typo and refused with its line.
REQUIRED_DEFINITION_KEYS = (
    "id", "name", "description", "owner", "perspective", "unit", "direction", "kind",
    "minimum_volume", "versions",
)  # fmt: skip

DEFINITION_KEYS = (
    "grain_basis", "maturity_days", "dimensions", "thresholds", "parameters", "variants", "variants_only",
    "requires",
)  # fmt: skip
REQUIRED_VERSION_KEYS = ("version", "status", "effective_from", "rationale")
VERSION_KEYS = (
    "approved_by", "published_on", "sql_sha256", "parameters", "rendered_per_dimension",
    "periods_together", "rewrite_of",
)  # fmt: skip
VARIANT_KEYS = ("name", "parameters", "thresholds", "maturity_days")

PARAMETER_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class KpiVersion:
    version: int
    status: str
    effective_from: date
    published_on: date | None
    approved_by: str | None
    rationale: str
    sql_path: Path
    pinned_sha256: str | None
    parameters: frozenset[str] = frozenset()  # the bound parameters its SQL takes
    # Its SQL joins or windows rows after the segment expression on something other than the
    # segment, so it is rendered once per dimension (see `engine.every_dimension_sql`).
    rendered_per_dimension: bool = False
    # On DuckDB its SQL runs for several periods in one statement (`engine.every_period_sql`),
    # which measured faster for it; every other version runs once per period.
    periods_together: bool = False
    # It only rewrote that version's query (to run faster, say): the same numbers, so it
    # restates nothing, and a test holds it to that version's numbers.
    rewrite_of: int | None = None

    @property
    def sql(self) -> str:
        return self.sql_path.read_text(encoding="utf-8")

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.sql_path)

    @property
    def restates_from(self) -> date | None:
        """A version published after its effective date restates the periods in between."""
        if self.published_on and self.published_on > self.effective_from:
            return self.effective_from
        return None


@dataclass(frozen=True)
class Kpi:
    id: str
    name: str
    description: str
    owner: str
    perspective: str
    unit: str
    direction: str
    kind: str
    maturity_days: int
    dimensions: tuple[str, ...]
    minimum_volume: int
    thresholds: dict[str, float]
    versions: tuple[KpiVersion, ...]
    parameters: dict[str, object] = field(default_factory=dict)  # bound into the SQL
    family: str | None = None  # the definition a variant belongs to
    # The parameters a variant sets away from the family's defaults: only versions whose SQL
    # takes them can compute it. A version that does not take a parameter computes its default.
    varied: frozenset[str] = frozenset()
    # Tables that must hold rows for the SQL to mean anything (a calendar, say): when one is
    # empty the KPI has no data, rather than a number computed from nothing.
    requires: tuple[str, ...] = ()

    @property
    def family_id(self) -> str:
        """The definition this KPI comes from: its family's id for a variant, else its own."""
        return self.family or self.id

    @property
    def additive(self) -> bool:
        """Segments' numerators sum to the total's, and so do their denominators unless the
        KPI is a total (denominator 1). Not so for a median or an AUC."""
        return self.kind in ADDITIVE_KINDS

    def usable_versions(self) -> tuple[KpiVersion, ...]:
        """Versions whose SQL takes every parameter this KPI sets beyond the family default."""
        return tuple(v for v in self.versions if self.varied <= v.parameters)

    def version_for(self, period_start: date, version: int | None = None) -> KpiVersion | None:
        """The named version, or the published one in effect on `period_start`."""
        usable = self.usable_versions()
        if version is not None:
            return next((v for v in usable if v.version == version), None)
        in_effect = [v for v in usable if v.status == "published" and v.effective_from <= period_start]
        return max(in_effect, key=lambda v: (v.effective_from, v.version), default=None)

    def restatement(self, period_start: date) -> tuple[KpiVersion, KpiVersion] | None:
        """(new, previous) when the version in effect for this period was published after
        the period began: the numbers reported with `previous` at the time were restated. A
        version that only rewrote another's query restates nothing: that one stands for it."""
        current = self.version_for(period_start)
        if current is None:
            return None
        current = self.numbers_of(current)
        if current.restates_from is None:
            return None
        if not current.restates_from <= period_start < current.published_on:
            return None
        previous = self.previous_version(current)
        return (current, previous) if previous else None

    def numbers_of(self, version: KpiVersion) -> KpiVersion:
        """The version whose numbers this one gives: itself, or the one it only rewrote."""
        by_number = {v.version: v for v in self.usable_versions()}
        while version.rewrite_of in by_number:
            version = by_number[version.rewrite_of]
        return version

    def previous_version(self, version: KpiVersion) -> KpiVersion | None:
        """The published version this one replaced: what was reported before a restatement."""
        older = [
            v
            for v in self.usable_versions()
            if v.status in ("published", "retired") and v.version < version.version
        ]
        return max(older, key=lambda v: v.version, default=None)


def sql_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Set while replaying a past run: the registry then shows the definitions as they stood that
# day (revops.audit.reproduce), without every caller having to pass a date around.
_known_on: ContextVar[date | None] = ContextVar("kpi_definitions_known_on", default=None)


@contextmanager
def definitions_as_of(day: date) -> Iterator[None]:
    """Within this block, load_registry() returns the KPI versions as published on `day`."""
    token = _known_on.set(day)
    try:
        yield
    finally:
        _known_on.reset(token)


def load_registry(directory: Path | None = None) -> dict[str, Kpi]:
    """Every KPI (variants expanded), keyed by id, in directory order. The definitions live in
    include/sql/kpis unless REVOPS_KPI_DIR points elsewhere (a deployment's own catalogue)."""
    directory = directory or Path(os.environ.get("REVOPS_KPI_DIR", KPI_DIR))
    kpis = _catalogue(directory, _fingerprint(directory))
    day = _known_on.get()
    return dict(kpis) if day is None else {k: _as_published_on(kpi, day) for k, kpi in kpis.items()}


def _fingerprint(directory: Path) -> tuple:
    """Changes whenever a definition or SQL file does, so an edited catalogue is read again."""
    files = sorted(path for path in directory.glob("*/*") if path.is_file())
    return tuple((str(path), stat.st_mtime_ns, stat.st_size) for path in files for stat in [path.stat()])


@lru_cache(maxsize=8)
def _catalogue(directory: Path, fingerprint: tuple) -> dict[str, Kpi]:
    """Every KPI of a catalogue directory; parsed once per version of its files (a scorecard
    run asks for the registry many times)."""
    kpis: dict[str, Kpi] = {}
    for path in sorted(directory.glob("*/definition.yaml")):
        for kpi in load_kpis(path):
            kpis[kpi.id] = kpi
    return kpis


def _as_published_on(kpi: Kpi, day: date) -> Kpi:
    """Versions published after `day` did not exist yet; a version retired since was still
    published then (the YAML keeps no retirement date, so a retirement is assumed later)."""
    versions = tuple(
        replace(v, status="published") if v.status == "retired" else v
        for v in kpi.versions
        if v.published_on is None or v.published_on <= day
    )
    return replace(kpi, versions=versions)


def load_kpis(definition_path: Path) -> list[Kpi]:
    """The KPI a definition describes, or one KPI per variant of a family."""
    spec = read_yaml(definition_path)
    check_keys(spec, DEFINITION_KEYS, required=REQUIRED_DEFINITION_KEYS)
    folder = definition_path.parent
    if spec["id"] != folder.name:
        raise ConfigError(f"{location(spec, 'id')}: id {spec['id']!r} differs from its folder")
    choices = {"kind": KINDS, "unit": UNITS, "direction": DIRECTIONS, "perspective": PERSPECTIVES}
    for key, allowed in choices.items():
        if spec[key] not in allowed:
            raise ConfigError(f"{location(spec, key)}: {key} must be one of {allowed}")
    defaults = _parameters(location(spec, "parameters"), spec.get("parameters") or {})
    # Names only: the warehouse schema imports pandas, which a DAG file parsing must not.
    not_tables = [t for t in spec.get("requires", []) if not re.fullmatch(r"staging\.[a-z_]+", str(t))]
    if not_tables:
        raise ConfigError(
            f"{location(spec, 'requires')}: not a staging table: {', '.join(map(str, not_tables))}"
        )
    numbers = {v.get("version") for v in spec["versions"]}
    base = Kpi(
        id=spec["id"],
        name=spec["name"],
        description=" ".join(str(spec["description"]).split()),
        owner=spec["owner"],
        perspective=spec["perspective"],
        unit=spec["unit"],
        direction=spec["direction"],
        kind=spec["kind"],
        maturity_days=int(spec.get("maturity_days", 0)),
        dimensions=tuple(spec.get("dimensions", [])),
        minimum_volume=int(spec["minimum_volume"]),
        thresholds=dict(spec.get("thresholds") or {}),
        versions=tuple(_version(folder, v, numbers) for v in spec["versions"]),
        parameters=defaults,
        requires=tuple(spec.get("requires", [])),
    )
    variants = [_variant(base, name, v) for name, v in (spec.get("variants") or {}).items()]
    # A family whose defaults mean nothing on their own lists only its variants.
    return variants if spec.get("variants_only") else [base, *variants]


def _variant(base: Kpi, name: str, spec: dict) -> Kpi:
    check_keys(spec, VARIANT_KEYS, what=f"variant {name}")
    where = location(spec)
    parameters = _parameters(f"{where}: variant {name}", spec.get("parameters") or {})
    unknown = set(parameters) - set(base.parameters)
    if unknown:
        raise ConfigError(f"{where}: variant {name} sets unknown parameters {sorted(unknown)}")
    maturity = spec.get("maturity_days", base.maturity_days)
    if "window_days" in parameters and "maturity_days" not in spec:
        maturity = int(parameters["window_days"])
    return replace(
        base,
        id=f"{base.id}.{name}",
        name=spec.get("name", f"{base.name} ({name})"),
        thresholds={**base.thresholds, **(spec.get("thresholds") or {})},
        parameters={**base.parameters, **parameters},
        maturity_days=int(maturity),
        family=base.id,
        varied=frozenset(k for k, v in parameters.items() if v != base.parameters[k]),
    )


def _parameters(where: str, values: dict) -> dict[str, object]:
    for name, value in values.items():
        if not isinstance(value, PARAMETER_TYPES):
            raise ConfigError(f"{where}: parameter {name} must be a number, boolean or word")
    return dict(values)


def _version(folder: Path, spec: dict, numbers: set) -> KpiVersion:
    check_keys(spec, VERSION_KEYS, required=REQUIRED_VERSION_KEYS, what="version")
    where = location(spec)
    status = spec["status"]
    if status not in STATUSES:
        raise ConfigError(f"{where}: version {spec['version']}: status {status!r} is not one of {STATUSES}")
    sql_path = folder / f"v{spec['version']}.sql"
    if not sql_path.exists():
        raise ConfigError(f"{where}: version {spec['version']} has no {sql_path.name}")
    if status == "published" and not spec.get("approved_by"):
        raise ConfigError(f"{where}: published version {spec['version']} needs approved_by")
    return KpiVersion(
        version=int(spec["version"]),
        status=status,
        effective_from=spec["effective_from"],
        published_on=spec.get("published_on"),
        approved_by=spec.get("approved_by"),
        rationale=" ".join(str(spec["rationale"]).split()),
        sql_path=sql_path,
        pinned_sha256=spec.get("sql_sha256"),
        parameters=frozenset(spec.get("parameters") or []),
        rendered_per_dimension=bool(spec.get("rendered_per_dimension", False)),
        periods_together=bool(spec.get("periods_together", False)),
        rewrite_of=_rewrite_of(where, spec, numbers),
    )


def _rewrite_of(where: str, spec: dict, numbers: set) -> int | None:
    """The earlier version a version only rewrote, if it says so."""
    if "rewrite_of" not in spec:
        return None
    rewritten = spec["rewrite_of"]
    if not isinstance(rewritten, int) or rewritten not in numbers or rewritten >= int(spec["version"]):
        raise ConfigError(f"{where}: version {spec['version']}: rewrite_of must name an earlier version")
    return rewritten
