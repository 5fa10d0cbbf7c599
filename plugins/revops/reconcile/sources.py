"""Lead sources: raw LeadSource values, HubSpot analytics sources and UTM tags -> channels.

The mapping and the precedence between fields are configuration
(`include/config/lead_sources.yaml`); unknown values land in the visible `unmapped` channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from revops.configuration import ConfigError, read_config

FIELDS = ("salesforce_lead_source", "hubspot_analytics_source", "utm_source", "utm_medium")


@dataclass(frozen=True)
class SourceMapping:
    precedence: tuple[str, ...]
    unmapped_channel: str
    lookups: dict[str, dict[str, str]]  # field -> normalised raw value -> channel

    @classmethod
    def load(cls) -> SourceMapping:
        config = read_config("lead_sources")
        lookups: dict[str, dict[str, str]] = {name: {} for name in FIELDS}
        for channel, values_by_field in config["channels"].items():
            for field_name, values in values_by_field.items():
                if field_name not in lookups:
                    raise ConfigError(f"lead_sources.yaml: {channel}: unknown field {field_name}")
                for value in values:
                    lookups[field_name][normalise(value)] = channel
        return cls(
            precedence=tuple(config["precedence"]),
            unmapped_channel=config["unmapped_channel"],
            lookups=lookups,
        )

    def classify(
        self,
        lead_source: pd.Series,
        hubspot_source: pd.Series,
        utm_source: pd.Series,
        utm_medium: pd.Series,
    ) -> pd.DataFrame:
        """Channel and sub-channel of each record.

        The channel comes from the first field, in precedence order, whose value maps. The
        sub-channel is the raw value that decided it (normalised), with the UTM source
        preferred where there is one, so `paid_search` splits into google, bing, ...; an
        unmapped record keeps the raw value nobody could map, for the data-quality report.

        Each distinct combination of the four values is classified once: a million records
        carry a few hundred combinations. They are found by their codes (pandas factorises
        Arrow-backed text in Arrow); only the combinations' first rows become Python objects.
        """
        fields = {
            "lead_source": lead_source,
            "hubspot_source": hubspot_source,
            "utm_source": utm_source,
            "utm_medium": utm_medium,
        }
        codes = pd.DataFrame({name: pd.factorize(values)[0] for name, values in fields.items()})
        combination = codes.groupby(list(codes.columns), sort=False).ngroup().to_numpy()
        _, first_row = np.unique(combination, return_index=True)
        distinct = pd.DataFrame(
            {name: values.iloc[first_row].to_numpy(dtype=object) for name, values in fields.items()}
        )
        return self._classify_each(distinct).take(combination).set_axis(lead_source.index)

    def _classify_each(self, values: pd.DataFrame) -> pd.DataFrame:
        """`classify` of each row of the four values, as `classify`'s docstring says."""
        lead, hubspot = normalised(values["lead_source"]), normalised(values["hubspot_source"])
        utm_source, utm_medium = normalised(values["utm_source"]), normalised(values["utm_medium"])
        utm = utm_source.fillna(utm_medium)
        raw = {"salesforce_lead_source": lead, "hubspot_analytics_source": hubspot, "utm": utm}
        mapped = {
            "salesforce_lead_source": self._map("salesforce_lead_source", lead),
            "hubspot_analytics_source": self._map("hubspot_analytics_source", hubspot),
            # A UTM source is more specific than a medium (partner-portal vs referral).
            "utm": self._map("utm_source", utm_source).fillna(self._map("utm_medium", utm_medium)),
        }
        channel = pd.Series(pd.NA, index=values.index, dtype=object)
        sub_channel = pd.Series(pd.NA, index=values.index, dtype=object)
        for field_name in self.precedence:
            decides = channel.isna() & mapped[field_name].notna()
            channel = channel.where(~decides, mapped[field_name])
            sub_channel = sub_channel.where(~decides, utm.fillna(raw[field_name]))
        unmapped = channel.isna()
        first_raw = raw["salesforce_lead_source"].fillna(raw["hubspot_analytics_source"]).fillna(utm)
        sub_channel = sub_channel.where(~unmapped, first_raw.fillna("none"))
        return pd.DataFrame(
            {
                "channel": channel.fillna(self.unmapped_channel),
                "sub_channel": sub_channel.fillna("none"),
                "sub_channel_from_utm": (utm.notna() & ~unmapped).to_numpy(),
            }
        )

    def channel_of(self, lead_source, hubspot_source, utm_source, utm_medium) -> pd.Series:
        return self.classify(lead_source, hubspot_source, utm_source, utm_medium)["channel"]

    def _map(self, field_name: str, normalised_values: pd.Series) -> pd.Series:
        """The channel each (already normalised) value of a field maps to."""
        return normalised_values.map(self.lookups[field_name], na_action="ignore").astype(object)


def normalised(values: pd.Series) -> pd.Series:
    """`normalise` of every value, computed once per distinct value (sources repeat a few
    dozen labels across a million records)."""
    distinct = {value: normalise(value) for value in values.dropna().unique()}
    return values.map(distinct, na_action="ignore").astype(object)


def normalise(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def utm_from_url(urls: pd.Series) -> tuple[pd.Series, pd.Series]:
    """utm_source and utm_medium from the query strings of landing-page URLs (each distinct
    URL parsed once: a site has few landing pages and campaigns, and many visitors), taken to
    each record by its URL's code rather than looked up by its text."""
    codes, distinct = pd.factorize(urls)
    queries = [
        parse_qs(urlsplit(url).query) if isinstance(url, str) and "utm_" in url else {} for url in distinct
    ]

    def tag(name: str) -> pd.Series:
        per_url = [query[name][0] if name in query else None for query in queries]
        values = np.array([*per_url, None], dtype=object)  # code -1, a missing URL: no tag
        return pd.Series(values[codes], index=urls.index)

    return tag("utm_source"), tag("utm_medium")
