"""The KPI registry: definitions and their versions under `include/sql/kpis/<kpi_id>/`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from revops.configuration import ConfigError, read_yaml
from revops.settings import SQL_DIR

KPI_DIR = SQL_DIR / "kpis"
STATUSES = ("proposed", "published", "retired")
KINDS = ("rate", "ratio")


@dataclass(frozen=True)
class KpiVersion:
    version: int
    status: str
    effective_from: date
    approved_by: str | None
    rationale: str
    sql_path: Path
    pinned_sha256: str | None

    @property
    def sql(self) -> str:
        return self.sql_path.read_text(encoding="utf-8")

    @property
    def sql_sha256(self) -> str:
        return sql_sha256(self.sql_path)


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

    def version_for(self, period_start: date, version: int | None = None) -> KpiVersion | None:
        """The named version, or the published one in effect on `period_start`."""
        if version is not None:
            return next((v for v in self.versions if v.version == version), None)
        in_effect = [v for v in self.versions if v.status == "published" and v.effective_from <= period_start]
        return max(in_effect, key=lambda v: v.effective_from, default=None)


def sql_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_registry(directory: Path = KPI_DIR) -> dict[str, Kpi]:
    """Every KPI definition, keyed by id, in directory order."""
    return {kpi.id: kpi for kpi in (load_kpi(path) for path in sorted(directory.glob("*/definition.yaml")))}


def load_kpi(definition_path: Path) -> Kpi:
    spec = read_yaml(definition_path)
    folder = definition_path.parent
    if spec.get("id") != folder.name:
        raise ConfigError(f"{definition_path}: id {spec.get('id')!r} differs from its folder")
    if spec.get("kind") not in KINDS:
        raise ConfigError(f"{definition_path}: kind must be one of {KINDS}")
    versions = tuple(_version(definition_path, folder, v) for v in spec["versions"])
    return Kpi(
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
        thresholds=dict(spec.get("thresholds", {})),
        versions=versions,
    )


def _version(definition_path: Path, folder: Path, spec: dict) -> KpiVersion:
    status = spec["status"]
    if status not in STATUSES:
        raise ConfigError(f"{definition_path}: version {spec['version']}: status {status!r}")
    sql_path = folder / f"v{spec['version']}.sql"
    if not sql_path.exists():
        raise ConfigError(f"{definition_path}: version {spec['version']} has no {sql_path.name}")
    return KpiVersion(
        version=int(spec["version"]),
        status=status,
        effective_from=spec["effective_from"],
        approved_by=spec.get("approved_by"),
        rationale=" ".join(str(spec["rationale"]).split()),
        sql_path=sql_path,
        pinned_sha256=spec.get("sql_sha256"),
    )
