"""Audiences: who gets which scorecard (`include/config/audiences.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from revops.configuration import ConfigError, read_config
from revops.kpis.scope import SCOPE_COLUMNS, Scope
from revops.periods import GRAINS


@dataclass(frozen=True)
class Audience:
    name: str
    title: str
    grain: str
    schedule: str
    timezone: str
    kpis: tuple[str, ...]
    scope: Scope
    recipients: tuple[str, ...]
    hot_prospects: int = 0  # rows of the hot-prospect list on the scorecard (sales audiences)


def load_audiences(known_kpis: set[str] | None = None) -> dict[str, Audience]:
    """Every configured audience, validated (unknown KPI ids and grains are errors)."""
    config = read_config("audiences")["audiences"]
    return {name: _audience(name, spec, known_kpis) for name, spec in config.items()}


def _audience(name: str, spec: dict, known_kpis: set[str] | None) -> Audience:
    where = f"audiences.yaml: {name}"
    if spec["grain"] not in GRAINS:
        raise ConfigError(f"{where}: grain {spec['grain']!r} is not one of {GRAINS}")
    unknown = [k for k in spec["kpis"] if known_kpis is not None and k not in known_kpis]
    if unknown:
        raise ConfigError(f"{where}: unknown KPI {', '.join(unknown)}")
    scope_items = list((spec.get("scope") or {}).items())
    if len(scope_items) > 1 or any(column not in SCOPE_COLUMNS for column, _ in scope_items):
        raise ConfigError(f"{where}: scope must be one of {sorted(SCOPE_COLUMNS)}")
    scope = Scope(*scope_items[0]) if scope_items else Scope()
    timezone = spec.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(f"{where}: unknown time zone {timezone!r}") from error
    return Audience(
        name=name,
        title=spec["title"],
        grain=spec["grain"],
        schedule=spec["schedule"],
        timezone=timezone,
        kpis=tuple(spec["kpis"]),
        scope=scope,
        recipients=tuple(spec["recipients"]),
        hot_prospects=int(spec.get("hot_prospects", 0)),
    )
