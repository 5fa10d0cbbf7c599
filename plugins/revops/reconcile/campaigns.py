"""Campaigns: the spend customer acquisition cost divides, each on one canonical channel."""

from __future__ import annotations

import pandas as pd

from revops.reconcile.sources import SourceMapping, normalised


def campaign_rows(campaigns: pd.DataFrame, mapping: SourceMapping) -> pd.DataFrame:
    """One row per typed Salesforce campaign.

    The channel is `Channel__c` where it names a channel of the lead-source mapping, else
    the campaign `Type` read as a lead source ("Webinar" is events), else the visible
    unmapped channel, so spend nobody can place still counts in the total.
    """
    known = {channel for lookup in mapping.lookups.values() for channel in lookup.values()}
    named = campaigns["Channel__c"].where(campaigns["Channel__c"].isin(known))
    by_type = normalised(campaigns["Type"]).map(mapping.lookups["salesforce_lead_source"])
    return pd.DataFrame(
        {
            "campaign_id": campaigns["Id"],
            "name": campaigns["Name"],
            "channel": named.fillna(by_type).fillna(mapping.unmapped_channel),
            "actual_cost": campaigns["ActualCost"],
            "start_date": campaigns["StartDate"].dt.date,
            "end_date": campaigns["EndDate"].dt.date,
        }
    ).sort_values("campaign_id", ignore_index=True)
