"""The vocabulary of the synthetic world: regions, segments, channels and how each system spells them.

Spellings here are what the generator *emits*. Reconciliation maps them back with its own
configuration (`include/config/lead_sources.yaml`), written independently, so a test that
compares the two catches a mapping that drifted from what the sources send.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS: dict[str, tuple[float, int]] = {  # share of prospects, sales reps
    "NA": (0.45, 8),
    "EMEA": (0.30, 6),
    "APAC": (0.15, 4),
    "LATAM": (0.10, 3),
}

SEGMENTS: dict[str, tuple[float, float, float, float]] = {
    # share, MQL-rate multiplier, median deal size, days per opportunity stage
    "SMB": (0.55, 1.00, 12_000, 8.0),
    "Mid-Market": (0.30, 0.90, 45_000, 15.0),
    "Enterprise": (0.15, 0.80, 150_000, 28.0),
}

WIN_RATE_BY_SEGMENT = {"SMB": 0.34, "Mid-Market": 0.28, "Enterprise": 0.22}


@dataclass(frozen=True)
class Channel:
    """A canonical acquisition channel and how the source systems record it."""

    share: float
    mql_rate: float
    win_multiplier: float
    salesforce_lead_sources: tuple[str, ...]
    hubspot_source: str | None
    utm: tuple[str, str] | None  # (utm_source, utm_medium)
    campaigns: int
    campaign_cost: tuple[int, int] = (0, 0)


CHANNELS: dict[str, Channel] = {
    "paid_search": Channel(
        share=0.18,
        mql_rate=0.45,
        win_multiplier=1.0,
        salesforce_lead_sources=("Paid Search", "PPC", "Google Ads", "paid search ", "AdWords"),
        hubspot_source="PAID_SEARCH",
        utm=("google", "cpc"),
        campaigns=3,
        campaign_cost=(20_000, 90_000),
    ),
    "organic_search": Channel(
        share=0.16,
        mql_rate=0.38,
        win_multiplier=1.0,
        salesforce_lead_sources=("Organic Search", "SEO", "organic search", "Web - Organic"),
        hubspot_source="ORGANIC_SEARCH",
        utm=None,
        campaigns=0,
    ),
    "paid_social": Channel(
        share=0.10,
        mql_rate=0.30,
        win_multiplier=0.9,
        salesforce_lead_sources=("Paid Social", "LinkedIn Ads", "Facebook Ads", "social - paid"),
        hubspot_source="PAID_SOCIAL",
        utm=("linkedin", "paid_social"),
        campaigns=2,
        campaign_cost=(15_000, 60_000),
    ),
    "email": Channel(
        share=0.10,
        mql_rate=0.35,
        win_multiplier=1.0,
        salesforce_lead_sources=("Email", "E-mail", "Newsletter", "email campaign"),
        hubspot_source="EMAIL_MARKETING",
        utm=("newsletter", "email"),
        campaigns=2,
        campaign_cost=(2_000, 8_000),
    ),
    "referral": Channel(
        share=0.08,
        mql_rate=0.60,
        win_multiplier=1.3,
        salesforce_lead_sources=("Referral", "Customer Referral", "Word of mouth", "REFERRAL"),
        hubspot_source="REFERRALS",
        utm=None,
        campaigns=0,
    ),
    "events": Channel(
        share=0.10,
        mql_rate=0.50,
        win_multiplier=1.1,
        salesforce_lead_sources=("Trade Show", "Event", "Webinar", "Conference"),
        hubspot_source="OFFLINE",
        utm=None,
        campaigns=3,
        campaign_cost=(10_000, 70_000),
    ),
    "partner": Channel(
        share=0.07,
        mql_rate=0.55,
        win_multiplier=1.2,
        salesforce_lead_sources=("Partner", "Partner Referral", "Reseller"),
        hubspot_source=None,
        utm=("partner-portal", "referral"),
        campaigns=1,
        campaign_cost=(5_000, 20_000),
    ),
    "direct": Channel(
        share=0.11,
        mql_rate=0.40,
        win_multiplier=1.0,
        salesforce_lead_sources=("Web", "Website", "Direct", "web "),
        hubspot_source="DIRECT_TRAFFIC",
        utm=None,
        campaigns=0,
    ),
    "outbound": Channel(
        share=0.10,
        mql_rate=1.00,
        win_multiplier=0.8,
        salesforce_lead_sources=("Outbound", "Cold Call", "SDR Prospecting", "outbound"),
        hubspot_source=None,
        utm=None,
        campaigns=0,
    ),
}

# LeadSource values on opportunities sales creates directly (no lead behind them).
DIRECT_OPPORTUNITY_SOURCES = ("Existing Customer", "Sales Generated", "Upsell")
DIRECT_OPPORTUNITY_CHANNEL = "sales_generated"

# Values no mapping can place: they must land in the visible "unmapped" bucket.
JUNK_LEAD_SOURCES = ("Other", "asdf", "n/a", "-", "Imported List 2019")

OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Demo", "Proposal", "Negotiation")
STAGE_PROBABILITY = {
    "Prospecting": 10,
    "Qualification": 20,
    "Demo": 40,
    "Proposal": 60,
    "Negotiation": 80,
    "Closed Won": 100,
    "Closed Lost": 0,
}
STAGE_FORECAST_CATEGORY = {
    "Prospecting": "Pipeline",
    "Qualification": "Pipeline",
    "Demo": "Best Case",
    "Proposal": "Commit",
    "Negotiation": "Commit",
    "Closed Won": "Closed",
    "Closed Lost": "Omitted",
}
FORECAST_CATEGORY_API_NAMES = {
    "Pipeline": "Pipeline",
    "Best Case": "BestCase",
    "Commit": "Forecast",
    "Closed": "Closed",
    "Omitted": "Omitted",
}

FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Ruiz",
    "Okafor",
    "Schmidt",
    "Tanaka",
    "Rossi",
    "Nguyen",
    "Dubois",
    "Kowalski",
    "Silva",
    "Haddad",
    "Jensen",
    "Moreau",
    "Patel",
    "Garcia",
    "Novak",
    "Testa",
    "Lindqvist",
    "Murphy",
    "Costa",
    "Yamamoto",
    "Fischer",
    "Alvarez",
    "Brennan",
    "Chen",
)
COMPANY_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Massive",
    "Oscorp",
    "Nakatomi",
)
COMPANY_SUFFIXES = ("Labs", "Systems", "Group", "Logistics", "Health", "Retail", "Foods", "Bank")

# Test and sandbox records that the exclusion rules must catch.
TEST_EMAIL_DOMAINS = ("example.com", "test.com", "mailinator.com")
