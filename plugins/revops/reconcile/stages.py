"""Opportunity stages: their order, which close a deal and each one's win probability
(`include/config/opportunity_stages.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from revops.configuration import read_config
from revops.reconcile.frames import mapped


@dataclass(frozen=True)
class OpportunityStages:
    order: dict[str, int]  # stage -> position in the pipeline
    closed: frozenset[str]
    won: frozenset[str]
    aliases: dict[str, str]
    probability: dict[str, float]  # stage -> percent chance of closing won
    forecast_categories: dict[str, str]  # a CRM's value -> pipeline | best_case | commit | ...

    @classmethod
    def load(cls) -> OpportunityStages:
        config = read_config("opportunity_stages")
        stages = config["stages"]
        return cls(
            order={s["name"]: n for n, s in enumerate(stages)},
            closed=frozenset(s["name"] for s in stages if s.get("closed")),
            won=frozenset(s["name"] for s in stages if s.get("won")),
            aliases=dict(config.get("aliases") or {}),
            probability={s["name"]: float(s["probability"]) for s in stages if "probability" in s},
            forecast_categories={
                raw: category
                for category, spellings in (config.get("forecast_categories") or {}).items()
                for raw in spellings
            },
        )

    def probability_frame(self) -> pd.DataFrame:
        """stage, probability: the rows of staging.stage_probabilities."""
        return pd.DataFrame({"stage": list(self.probability), "probability": list(self.probability.values())})

    def canonical(self, stages: pd.Series) -> pd.Series:
        """Stage names with aliases resolved (Won -> Closed Won). A vectorised replace: a
        Python call per value took 0.24 s for the 892k stage changes of a million prospects."""
        return stages.replace(self.aliases)

    def is_closed(self, stages: pd.Series) -> pd.Series:
        return self.canonical(stages).isin(self.closed)

    def is_won(self, stages: pd.Series) -> pd.Series:
        return self.canonical(stages).isin(self.won)

    def forecast_category(self, values: pd.Series) -> pd.Series:
        """One name per forecast category (`Forecast` and `Commit` are both commit)."""
        return mapped(values, self.forecast_categories)
