"""Audiences: who gets which scorecard (`include/config/audiences.yaml`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from revops.configuration import ConfigError, check_keys, location, read_config
from revops.kpis.registry import Kpi, load_registry
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
    breakdowns: tuple[str, ...] = ()  # dimensions the KPIs are broken down by
    funnel: bool = False  # show the MQL -> SAL -> SQL -> opportunity funnel
    attribution: str | None = None  # revenue | pipeline: compare the attribution models on it
    on_incomplete: str = "banner"  # hold | banner: what to do when the data is not complete
    max_data_age_hours: float = 48.0  # older data than this at send time is not fresh
    deliver_within_hours: float = 3.0  # later than this after the scheduled time: data engineers hear

    def as_config(self) -> dict:
        """The audience as audiences.yaml would say it (recorded in the ledger, so a replay
        uses the audience as it was configured then)."""
        config = dataclasses.asdict(self)
        config["scope"] = {self.scope.column: self.scope.value} if self.scope.column else {}
        config["completeness"] = {
            "on_incomplete": config.pop("on_incomplete"),
            "max_age_hours": config.pop("max_data_age_hours"),
        }
        return {key: list(v) if isinstance(v, tuple) else v for key, v in config.items() if key != "name"}


ON_INCOMPLETE = ("hold", "banner")
# The attribution section compares these models, on won revenue or on new pipeline.
ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")
ATTRIBUTION_MEASURES = ("revenue", "pipeline")


def attribution_kpis(measure: str | None) -> tuple[str, ...]:
    """The attribution section's KPIs, one per model, in `ATTRIBUTION_MODELS` order."""
    return tuple(f"attribution.{measure}_{model}" for model in ATTRIBUTION_MODELS) if measure else ()


# The funnel section's steps, in order: each a KPI whose cohort enters the step's stage.
FUNNEL_KPIS = (
    "funnel_stage_conversion.mql_to_sal",
    "funnel_stage_conversion.sal_to_sql",
    "funnel_stage_conversion.sql_to_opportunity",
)


def load_audiences() -> dict[str, Audience]:
    """Every configured audience, validated against the KPI registry: unknown KPI ids, grains
    and breakdowns no KPI of the audience allows are errors."""
    registry = load_registry()
    config = read_config("audiences")["audiences"]
    return {name: _audience(name, spec, registry) for name, spec in config.items()}


def audience_from_config(name: str, spec: dict) -> Audience:
    """An audience from its configuration (as in audiences.yaml or a ledger entry)."""
    return _audience(name, spec, load_registry())


AUDIENCE_KEYS = (
    "scope",
    "breakdowns",
    "funnel",
    "attribution",
    "hot_prospects",
    "completeness",
    "deliver_within_hours",
    "timezone",
)
REQUIRED_AUDIENCE_KEYS = ("title", "grain", "schedule", "kpis", "recipients")


def _audience(name: str, spec: dict, registry: dict[str, Kpi]) -> Audience:
    check_keys(spec, AUDIENCE_KEYS, required=REQUIRED_AUDIENCE_KEYS, what=name)

    def refuse(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{location(spec, key, default='audiences.yaml')}: {name}: {problem}")

    if spec["grain"] not in GRAINS:
        raise refuse("grain", f"grain {spec['grain']!r} is not one of {GRAINS}")
    unknown = [k for k in spec["kpis"] if k not in registry]
    if unknown:
        raise refuse("kpis", f"unknown KPI {', '.join(unknown)}")
    allowed = {d for k in spec["kpis"] for d in registry[k].dimensions}
    stray = [d for d in spec.get("breakdowns", []) if d not in allowed]
    if stray:
        raise refuse("breakdowns", f"no KPI of this audience can be broken down by {', '.join(stray)}")
    if spec.get("attribution") not in (None, *ATTRIBUTION_MEASURES):
        raise refuse("attribution", f"attribution must be one of {ATTRIBUTION_MEASURES}")
    gate = spec.get("completeness") or {}
    check_keys(gate, ("max_age_hours", "on_incomplete"), what=f"{name}: completeness")
    if gate.get("on_incomplete", "banner") not in ON_INCOMPLETE:
        raise refuse("completeness", f"completeness.on_incomplete must be one of {ON_INCOMPLETE}")
    scope_items = list((spec.get("scope") or {}).items())
    if len(scope_items) > 1 or any(column not in SCOPE_COLUMNS for column, _ in scope_items):
        raise refuse("scope", f"scope must be one of {sorted(SCOPE_COLUMNS)}")
    if not croniter.is_valid(str(spec["schedule"])):
        raise refuse("schedule", f"schedule {spec['schedule']!r} is not a cron expression")
    scope = Scope(*scope_items[0]) if scope_items else Scope()
    timezone = spec.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise refuse("timezone", f"unknown time zone {timezone!r}") from error
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
        breakdowns=tuple(spec.get("breakdowns", [])),
        funnel=bool(spec.get("funnel", False)),
        attribution=spec.get("attribution"),
        on_incomplete=gate.get("on_incomplete", "banner"),
        max_data_age_hours=float(gate.get("max_age_hours", 48)),
        deliver_within_hours=float(spec.get("deliver_within_hours", 3)),
    )
