"""A seeded synthetic CRM world that knows its own ground truth.

The generator first decides what *really* happened (people, their funnel journeys,
opportunities and outcomes), then records it the way Salesforce and HubSpot would, with the
mess real data has: the same person in both systems with different e-mail case, a second
Salesforce lead for a recycled prospect, lead sources spelled many ways or missing or only
present as UTM parameters, test records, opportunities with no amount.

`World.truth_*` frames are the answers; `World.salesforce` and `World.hubspot` are what the
source systems hold (typed values; the wire or CSV formatting is the emitter's job).
Everything is vectorised with NumPy so a million prospects generate in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from revops.synthetic import catalog as cat

MS_PER_DAY = 86_400_000
NAT = np.datetime64("NaT", "ms")


@dataclass(frozen=True)
class WorldConfig:
    """Size, seed, time span and mess rates of a generated world."""

    n_prospects: int = 3_000
    seed: int = 7
    start: datetime = datetime(2025, 10, 6)  # naive UTC
    as_of: datetime = datetime(2026, 11, 2)  # data cut-off, exclusive
    test_record_rate: float = 0.01
    direct_opportunity_rate: float = 0.15  # opportunities sales creates with no lead, per lead opp
    lead_source_blank_rate: float = 0.12
    lead_source_junk_rate: float = 0.05
    hubspot_source_missing_rate: float = 0.06
    email_recased_rate: float = 0.30
    email_padded_rate: float = 0.05
    amount_missing_rate: float = 0.03
    email_missing_rate: float = 0.03  # of first leads of inbound prospects
    clock_skew_rate: float = 0.02  # of first leads of inbound prospects
    clock_skew_hours: float = -5.0  # an integration writing New York time as if it were UTC
    back_dated_stage_rate: float = 0.015  # of leads with both SAL and SQL
    # Lost deals nobody closes out for months: they sit open and stale in the pipeline.
    neglected_loss_rate: float = 0.25
    # The day marketing changed its scoring rules: every existing prospect's score moves at
    # once (include/config/scores.yaml knows this date).
    score_model_change: datetime | None = datetime(2026, 6, 1, 10)
    score_model_change_points: int = 10
    # Salesforce field history on Lead_Score__c: off by default, as a formula or integration
    # field usually cannot be tracked; snapshot tests switch it on to exercise the backfill.
    salesforce_score_history: bool = False


@dataclass
class World:
    """Ground truth plus what each source system holds."""

    config: WorldConfig
    truth_prospects: pd.DataFrame
    truth_opportunities: pd.DataFrame
    truth_scores: pd.DataFrame  # person, changed_at, score: every score change that happened
    # person, cycle, stage, entered_at: every funnel stage each real person entered, with the
    # times the sources record (a back-dated change keeps its recorded time).
    truth_stages: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Which records carry which injected mess: name -> set of Salesforce lead ids.
    truth_mess: dict[str, set[str]] = field(default_factory=dict)
    salesforce: dict[str, pd.DataFrame] = field(default_factory=dict)
    hubspot: dict[str, pd.DataFrame] = field(default_factory=dict)


def generate_world(config: WorldConfig | None = None) -> World:
    """Generate a world; the same config always gives the same world."""
    config = config or WorldConfig()
    rng = np.random.default_rng(config.seed)
    as_of = np.datetime64(config.as_of, "ms")
    users = _make_users()
    campaigns = _make_campaigns(rng, config)
    people = _make_people(rng, config, users, campaigns)
    first = _run_journeys(rng, _first_entries(rng, people), people)
    first_opps = _make_lead_opportunities(rng, config, first, people, first_id=0)
    second = _run_journeys(rng, _re_entries(rng, first, first_opps, as_of), people)
    second_opps = _make_lead_opportunities(rng, config, second, people, first_id=len(first_opps))
    journeys = pd.concat([first, second], ignore_index=True)
    lead_opps = pd.concat([first_opps, second_opps], ignore_index=True)
    direct_opps = _make_direct_opportunities(rng, config, users, len(lead_opps))
    test = _make_test_records(rng, config, users, len(lead_opps) + len(direct_opps))
    opportunities = _censor_opportunities(
        _neglect_some_losses(
            config, pd.concat([lead_opps, direct_opps, test.opportunities], ignore_index=True)
        ),
        as_of,
    )
    opportunities["loss_reason"] = _loss_reasons(config, opportunities)
    scores = _score_history(rng, config, people, journeys, as_of)
    current_score = scores.groupby("person")["score"].last()
    last_score_change = scores.groupby("person")["changed_at"].max()
    leads = pd.concat(
        [
            _make_leads(
                rng, config, journeys, people, opportunities, as_of, current_score, last_score_change
            ),
            test.leads,
        ],
        ignore_index=True,
    )
    contacts = pd.concat(
        [
            _make_contacts(
                rng, config, people, journeys, opportunities, as_of, current_score, last_score_change
            ),
            test.contacts,
        ],
        ignore_index=True,
    )
    leads = _return_through_other_channels(config, leads, campaigns)
    leads, mess = _inject_lead_mess(rng, config, leads, people)
    lead_history, mess["out_of_order_leads"] = _back_date_some_stages(
        rng, config, _lead_history(leads, journeys, as_of, _tracked(config, scores))
    )
    opportunities["lead_source"] = _opportunity_lead_sources(opportunities, leads)
    truth_prospects = _truth_prospects(people, leads, contacts, opportunities)
    truth_stages = _truth_stages(people, journeys, opportunities, leads, lead_history, as_of)
    return World(
        config=config,
        truth_prospects=truth_prospects,
        truth_opportunities=_truth_opportunities(opportunities, truth_prospects),
        truth_scores=scores,
        truth_stages=truth_stages,
        truth_mess=mess,
        salesforce={
            "User": users,
            "Campaign": campaigns,
            "Lead": _salesforce_leads(leads),
            "Opportunity": _salesforce_opportunities(opportunities),
            "OpportunityHistory": _record_late(config, _opportunity_history(opportunities, as_of), as_of),
            "LeadHistory": lead_history,
        },
        hubspot=_hubspot_objects(contacts, opportunities, scores),
    )


# --- identifiers and time -------------------------------------------------------------------


def salesforce_ids(prefix: str, numbers: np.ndarray | range) -> np.ndarray:
    """18-character Salesforce-shaped ids; an all-digit body has checksum suffix 'AAA'."""
    return np.array([f"{prefix}{n:012d}AAA" for n in numbers], dtype=object)


def _days(values: np.ndarray) -> np.ndarray:
    return (np.asarray(values) * MS_PER_DAY).astype("int64").astype("timedelta64[ms]")


def _uniform_times(rng, n: int, start: datetime, end: datetime) -> np.ndarray:
    """Times spread over [start, end), fewer at weekends, mostly in working hours."""
    span_days = (end - start).days
    day_weights = np.array(
        [
            0.35 if (np.datetime64(start, "D") + d).astype(datetime).weekday() >= 5 else 1.0
            for d in range(span_days)
        ]
    )
    days = rng.choice(span_days, size=n, p=day_weights / day_weights.sum())
    hours = np.clip(rng.normal(13.5, 3.0, n), 0, 23.99)
    return np.datetime64(start, "ms") + _days(days + hours / 24)


def _gamma_days(rng, shape: float, scale: float, n: int) -> np.ndarray:
    return _days(rng.gamma(shape, scale, n))


# --- people, users, campaigns ----------------------------------------------------------------


def _make_users() -> pd.DataFrame:
    rows = []
    number = 1
    for region, (_, reps) in cat.REGIONS.items():
        for k in range(reps):
            first = cat.FIRST_NAMES[(number * 7) % len(cat.FIRST_NAMES)]
            last = cat.LAST_NAMES[(number * 5) % len(cat.LAST_NAMES)]
            rows.append((number, f"{first} {last}", f"{first}.{last}{k}@revops-demo.com", region))
            number += 1
    frame = pd.DataFrame(rows, columns=["n", "Name", "Email", "Region__c"])
    frame["Id"] = salesforce_ids("005", frame.pop("n"))
    frame["Email"] = frame["Email"].str.lower()
    frame["IsActive"] = True
    frame["SystemModstamp"] = pd.Timestamp("2025-01-02 09:00")
    frame["IsDeleted"] = False
    return frame[["Id", "Name", "Email", "IsActive", "Region__c", "SystemModstamp", "IsDeleted"]]


def _make_campaigns(rng, config: WorldConfig) -> pd.DataFrame:
    """A channel's campaigns run one after another over the world's span, so every month
    has spend to set against the customers it brought (customer acquisition cost)."""
    span_days = (config.as_of - config.start).days
    rows = []
    for channel, spec in cat.CHANNELS.items():
        for k in range(spec.campaigns):
            low, high = spec.campaign_cost
            start = config.start.date() + pd.Timedelta(days=span_days * k // spec.campaigns)
            end = config.start.date() + pd.Timedelta(days=span_days * (k + 1) // spec.campaigns - 1)
            rows.append(
                {
                    "Name": f"{channel.replace('_', ' ').title()} {k + 1}",
                    "Type": channel,
                    "Status": "Completed" if k + 1 < spec.campaigns else "In Progress",
                    "ActualCost": float(rng.integers(low, high) // 100 * 100),
                    "StartDate": start,
                    "EndDate": end,  # the last day the campaign runs
                    "Channel__c": channel,
                }
            )
    frame = pd.DataFrame(rows)
    frame.insert(0, "Id", salesforce_ids("701", range(1, len(frame) + 1)))
    frame["SystemModstamp"] = pd.to_datetime(frame["StartDate"]) + pd.Timedelta(hours=9)
    frame["IsDeleted"] = False
    return frame


def _make_people(rng, config: WorldConfig, users: pd.DataFrame, campaigns) -> pd.DataFrame:
    n = config.n_prospects
    people = pd.DataFrame({"person": np.arange(n)})
    people["region"] = _pick(rng, cat.REGIONS, n, share=lambda v: v[0])
    people["segment"] = _pick(rng, cat.SEGMENTS, n, share=lambda v: v[0])
    people["channel"] = _pick(rng, cat.CHANNELS, n, share=lambda v: v.share)
    people["created_at"] = _uniform_times(rng, n, config.start, config.as_of)
    people["owner_id"] = _owners_in_region(rng, users, people["region"].to_numpy())
    people["campaign_id"] = _campaign_for_channel(rng, campaigns, people["channel"].to_numpy())
    first = rng.choice(cat.FIRST_NAMES, n)
    last = rng.choice(cat.LAST_NAMES, n)
    company = [
        f"{a} {b}"
        for a, b in zip(rng.choice(cat.COMPANY_WORDS, n), rng.choice(cat.COMPANY_SUFFIXES, n), strict=True)
    ]
    people["first_name"] = first
    people["last_name"] = last
    people["company"] = company
    domains = [c.lower().replace(" ", "") + ".io" for c in company]
    people["email"] = [
        f"{f}.{lname}{i}@{d}".lower() for i, f, lname, d in zip(range(n), first, last, domains, strict=True)
    ]
    return people


def _pick(rng, options: dict, n: int, share) -> np.ndarray:
    names = list(options)
    weights = np.array([share(options[k]) for k in names])
    return np.array(names, dtype=object)[rng.choice(len(names), n, p=weights / weights.sum())]


def _pick_or_none(rng, shares: dict[str, float], n: int) -> np.ndarray:
    """n draws of a key with its share of the draws, or None for the share left over."""
    options = np.array([*shares, None], dtype=object)
    return options[np.searchsorted(np.cumsum(list(shares.values())), rng.random(n))]


def _owners_in_region(rng, users: pd.DataFrame, regions: np.ndarray) -> np.ndarray:
    owners = np.empty(len(regions), dtype=object)
    for region, group in users.groupby("Region__c"):
        mask = regions == region
        owners[mask] = rng.choice(group["Id"].to_numpy(), mask.sum())
    return owners


def _campaign_for_channel(rng, campaigns: pd.DataFrame, channels: np.ndarray) -> np.ndarray:
    chosen = np.full(len(channels), None, dtype=object)
    for channel, group in campaigns.groupby("Channel__c"):
        mask = (channels == channel) & (rng.random(len(channels)) < 0.7)
        chosen[mask] = rng.choice(group["Id"].to_numpy(), mask.sum())
    return chosen


# --- funnel journeys -------------------------------------------------------------------------

P_ACCEPT = 0.75  # MQL -> SAL
P_QUALIFY = 0.60  # SAL -> SQL
P_OPPORTUNITY = 0.85  # SQL -> opportunity


def _first_entries(rng, people: pd.DataFrame) -> pd.DataFrame:
    """When each person was handed to sales the first time (MQL, or created by an SDR)."""
    n = len(people)
    channel = people["channel"].to_numpy()
    segment_multiplier = people["segment"].map(lambda s: cat.SEGMENTS[s][1]).to_numpy()
    mql_rate = np.array([cat.CHANNELS[c].mql_rate for c in channel]) * segment_multiplier
    outbound = channel == "outbound"
    created = people["created_at"].to_numpy()
    mql_at = np.where(rng.random(n) < mql_rate, created + _gamma_days(rng, 1.5, 6.0, n), NAT)
    return pd.DataFrame(
        {
            "person": people["person"].to_numpy(),
            "journey": 1,
            "mql_at": np.where(outbound, NAT, mql_at),
            "handoff_at": np.where(outbound, created, mql_at),
        }
    )


def _re_entries(rng, first: pd.DataFrame, first_opps: pd.DataFrame, as_of) -> pd.DataFrame:
    """Recycled prospects who come back, and lost deals whose buyer returns later."""
    recycled = first[(first["rejection"] == "recycled") & (rng.random(len(first)) < 0.45)]
    back_from_nurture = recycled["rejected_at"].to_numpy() + _days(rng.uniform(30, 150, len(recycled)))
    lost = first_opps[~first_opps["will_win"]]
    lost = lost[rng.random(len(lost)) < 0.2]
    back_after_loss = lost["close_at"].to_numpy() + _days(rng.uniform(45, 180, len(lost)))
    entries = pd.DataFrame(
        {
            "person": np.concatenate([recycled["person"], lost["person"]]),
            "journey": 2,
            "mql_at": np.concatenate([back_from_nurture, back_after_loss]),
        }
    )
    entries = entries[entries["mql_at"] < as_of].drop_duplicates("person")
    entries["handoff_at"] = entries["mql_at"]
    return entries.reset_index(drop=True)


def _run_journeys(rng, entries: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Walk each hand-off through SAL, SQL and opportunity, with rejections on the way."""
    n = len(entries)
    handoff = entries["handoff_at"].to_numpy()
    reached = ~np.isnat(handoff)
    accepted = reached & (rng.random(n) < P_ACCEPT)
    qualified = accepted & (rng.random(n) < P_QUALIFY)
    to_opportunity = qualified & (rng.random(n) < P_OPPORTUNITY)
    sal_at = np.where(accepted, handoff + _gamma_days(rng, 1.2, 1.0, n), NAT)
    sql_at = np.where(qualified, sal_at + _gamma_days(rng, 2.0, 3.0, n), NAT)
    opp_at = np.where(to_opportunity, sql_at + _gamma_days(rng, 1.5, 2.0, n), NAT)
    rejected_after = np.where(qualified, sql_at, np.where(accepted, sal_at, handoff))
    rejected = reached & ~to_opportunity
    rejected_at = np.where(rejected, rejected_after + _gamma_days(rng, 1.5, 3.0, n), NAT)
    recycle_rate = np.where(qualified, 0.0, np.where(accepted, 0.5, 0.6))
    converted_without_opp = qualified & ~to_opportunity & (rng.random(n) < 0.3)
    rejection = np.where(
        ~rejected,
        None,
        np.where(
            converted_without_opp,
            "converted_no_opportunity",
            np.where(rng.random(n) < recycle_rate, "recycled", "disqualified"),
        ),
    )
    people_columns = people.set_index("person").loc[entries["person"]]
    return entries.assign(
        sal_at=sal_at,
        sql_at=sql_at,
        opp_at=opp_at,
        rejected_at=rejected_at,
        rejection=rejection,
        channel=people_columns["channel"].to_numpy(),
    )


# --- opportunities ---------------------------------------------------------------------------


def _opportunity_frame(n: int, **columns) -> pd.DataFrame:
    defaults = {
        "person": pd.array([pd.NA] * n, dtype="Int64"),
        "journey": 0,
        "campaign_id": None,
        "direct_lead_source": None,
        "is_test": False,
        "name_prefix": "",
    }
    return pd.DataFrame({**defaults, **columns}, index=range(n))


def _make_lead_opportunities(rng, config, journeys, people, first_id: int) -> pd.DataFrame:
    converted = journeys[~np.isnat(journeys["opp_at"].to_numpy())]
    person = people.set_index("person").loc[converted["person"]]
    frame = _opportunity_frame(
        len(converted),
        person=pd.array(converted["person"].to_numpy(), dtype="Int64"),
        journey=converted["journey"].to_numpy(),
        created_at=converted["opp_at"].to_numpy(),
        region=person["region"].to_numpy(),
        segment=person["segment"].to_numpy(),
        owner_id=person["owner_id"].to_numpy(),
        campaign_id=person["campaign_id"].to_numpy(),
        channel=person["channel"].to_numpy(),
    )
    return _play_out_opportunities(rng, config, frame, first_id)


def _make_direct_opportunities(rng, config, users, n_lead_opps: int) -> pd.DataFrame:
    """Opportunities sales opens without a lead (renewals, upsells, their own network)."""
    n = round(config.direct_opportunity_rate * n_lead_opps)
    regions = _pick(rng, cat.REGIONS, n, share=lambda v: v[0])
    sources = rng.choice(
        np.array((*cat.DIRECT_OPPORTUNITY_SOURCES, ""), dtype=object), n, p=[0.3, 0.25, 0.15, 0.3]
    )
    frame = _opportunity_frame(
        n,
        created_at=_uniform_times(rng, n, config.start, config.as_of),
        region=regions,
        segment=_pick(rng, cat.SEGMENTS, n, share=lambda v: v[0]),
        owner_id=_owners_in_region(rng, users, regions),
        channel=np.where(sources == "", "unmapped", cat.DIRECT_OPPORTUNITY_CHANNEL),
        direct_lead_source=sources,
    )
    return _play_out_opportunities(rng, config, frame, first_id=n_lead_opps)


def _play_out_opportunities(rng, config, frame: pd.DataFrame, first_id: int) -> pd.DataFrame:
    """Decide outcome, stage timings, amount and close date of each opportunity."""
    n = len(frame)
    n_stages = len(cat.OPPORTUNITY_STAGES)
    segment = frame["segment"].to_numpy()
    channel_multiplier = [
        cat.CHANNELS[c].win_multiplier if c in cat.CHANNELS else 1.0 for c in frame["channel"]
    ]
    win_rate = np.array([cat.WIN_RATE_BY_SEGMENT[s] for s in segment]) * channel_multiplier
    will_win = rng.random(n) < win_rate
    lost_at_stage = rng.choice(n_stages, n, p=[0.30, 0.25, 0.20, 0.15, 0.10])
    last_stage = np.where(will_win, n_stages - 1, lost_at_stage)
    stage_days = np.array([cat.SEGMENTS[s][3] for s in segment])
    durations = rng.gamma(2.0, 0.5, (n, n_stages)) * stage_days[:, None]
    offsets = np.cumsum(np.hstack([np.zeros((n, 1)), durations[:, :-1]]), axis=1)
    created = frame["created_at"].to_numpy().astype("datetime64[ms]")
    entered = created[:, None] + _days(offsets)
    rows = np.arange(n)
    close_at = entered[rows, last_stage] + _days(durations[rows, last_stage])
    median_amount = np.array([cat.SEGMENTS[s][2] for s in segment])
    amount = np.round(median_amount * rng.lognormal(0.0, 0.5, n), -2)
    amount = np.where(rng.random(n) < config.amount_missing_rate, np.nan, amount)
    return frame.assign(
        opportunity_id=salesforce_ids("006", range(first_id + 1, first_id + n + 1)),
        will_win=will_win,
        last_stage=last_stage,
        close_at=close_at,
        expected_close=created + _days(stage_days * n_stages),
        amount=amount,
        **{f"stage_{k}_at": entered[:, k] for k in range(n_stages)},
    )


# Why deals are lost, as the rep picks it from Salesforce's Loss_Reason__c picklist on closing
# a deal lost; the rest close it without picking one.
LOSS_REASONS = {"Price": 0.3, "Competitor": 0.25, "No decision": 0.2, "Timing": 0.1, "Missing feature": 0.05}


def _loss_reasons(config, opps: pd.DataFrame) -> np.ndarray:
    """The reason recorded on each closed-lost deal, or None. A generator of its own picks it,
    so everything else in the world stays as the seed made it."""
    picked = _pick_or_none(np.random.default_rng([config.seed, 5]), LOSS_REASONS, len(opps))
    lost = (opps["is_closed"] & ~opps["is_won"]).to_numpy()
    return np.where(lost, picked, None)


def _neglect_some_losses(config, opps: pd.DataFrame) -> pd.DataFrame:
    """Some lost deals are closed out in the CRM 75 to 240 days after the buyer went quiet,
    so they sit open and stale meanwhile (stale_opportunity_share, the active funnel). A
    generator of its own picks them, so everything else in the world stays as the seed made it."""
    rng = np.random.default_rng([config.seed, 4])
    neglected = ~opps["will_win"].to_numpy() & (rng.random(len(opps)) < config.neglected_loss_rate)
    delay = _days(rng.uniform(75, 240, len(opps)))
    return opps.assign(
        close_at=np.where(neglected, opps["close_at"].to_numpy() + delay, opps["close_at"].to_numpy())
    )


def _censor_opportunities(opps: pd.DataFrame, as_of) -> pd.DataFrame:
    """What is known at the cut-off: closed or still open, and at which stage."""
    opps = opps[opps["created_at"].to_numpy() < as_of].copy()
    n_stages = len(cat.OPPORTUNITY_STAGES)
    stage_times = np.stack([opps[f"stage_{k}_at"].to_numpy() for k in range(n_stages)], axis=1)
    reached = (stage_times < as_of) & (np.arange(n_stages)[None, :] <= opps["last_stage"].to_numpy()[:, None])
    current_stage = np.array(cat.OPPORTUNITY_STAGES, dtype=object)[reached.sum(axis=1) - 1]
    is_closed = opps["close_at"].to_numpy() < as_of
    will_win = opps["will_win"].to_numpy()
    opps["is_closed"] = is_closed
    opps["is_won"] = is_closed & will_win
    opps["stage"] = np.where(is_closed, np.where(will_win, "Closed Won", "Closed Lost"), current_stage)
    close = np.where(is_closed, opps["close_at"].to_numpy(), opps["expected_close"].to_numpy())
    opps["close_date"] = pd.to_datetime(close).normalize()
    return opps.reset_index(drop=True)


# --- test and sandbox records ----------------------------------------------------------------


@dataclass
class _TestRecords:
    leads: pd.DataFrame
    contacts: pd.DataFrame
    opportunities: pd.DataFrame


def _make_test_records(rng, config, users, first_opp_id: int) -> _TestRecords:
    """Test leads, contacts and deals that the exclusion rules must catch."""
    n = max(4, round(config.test_record_rate * config.n_prospects))
    latest = config.as_of - pd.Timedelta(days=30)
    created = _uniform_times(rng, n, config.start, latest)
    region = _pick(rng, cat.REGIONS, n, share=lambda v: v[0])
    owner = _owners_in_region(rng, users, region)
    # Four kinds, each caught by a different rule: a test e-mail domain, a test name, an
    # employee's internal address, and a record only Salesforce's Is_Test__c flag gives away.
    kind = np.arange(n) % 4
    email = np.array(
        [
            [
                f"qa.user{i}@{cat.TEST_EMAIL_DOMAINS[i % len(cat.TEST_EMAIL_DOMAINS)]}",
                f"sandbox.user{i}@globexlabs.io",
                f"employee{i}@revops-demo.com",
                f"demo.account{i}@initechbank.io",
            ][k]
            for i, k in enumerate(kind)
        ],
        dtype=object,
    )
    first_names = np.array(["Quinn", "Test", "Priya", "Dana"], dtype=object)[kind]
    last_names = np.array(["Assurance", "Test", "Okafor", "Whitfield"], dtype=object)[kind]
    converted = np.arange(n) % 4 < 2
    opps = _play_out_opportunities(
        rng,
        config,
        _opportunity_frame(
            int(converted.sum()),
            created_at=created[converted] + _days(np.ones(converted.sum())),
            region=region[converted],
            segment="SMB",
            owner_id=owner[converted],
            channel="direct",
            direct_lead_source="Web",
            is_test=True,
            # Every other test deal has an ordinary name: only its test lead gives it away.
            name_prefix=np.where(np.arange(converted.sum()) % 2 == 0, "TEST - ", ""),
        ),
        first_opp_id,
    )
    opp_id = np.full(n, None, dtype=object)
    opp_id[converted] = opps["opportunity_id"].to_numpy()
    leads = pd.DataFrame(
        {
            "lead_n": 900_000 + np.arange(n),
            "person": pd.array([pd.NA] * n, dtype="Int64"),
            "journey": 0,
            "FirstName": first_names,
            "LastName": last_names,
            "Email": email,
            "is_test_flag": kind == 3,
            "Company": "Sandbox Co",
            "created_at": created,
            "Status": np.where(converted, "Converted", "SQL"),
            "LeadSource": "Web",
            "region": region,
            "segment": "SMB",
            "owner_id": owner,
            "campaign_id": None,
            "utm": None,
            "score": 99,
            "is_test": True,
            "opportunity_id": opp_id,
            "opp_created_at": np.where(converted, created + _days(np.ones(n)), NAT),
            "rejected_at": NAT,
            "rejection": None,
            "modified_at": np.where(converted, created + _days(np.ones(n)), created),
        }
    )
    in_hubspot = np.arange(n) % 3 != 0
    contacts = _contact_frame(
        person=pd.array([pd.NA] * in_hubspot.sum(), dtype="Int64"),
        hs_object_id=(900_000_000 + np.flatnonzero(in_hubspot)).astype(str),
        email=email[in_hubspot],
        firstname=leads["FirstName"].to_numpy()[in_hubspot],
        lastname=leads["LastName"].to_numpy()[in_hubspot],
        company="Sandbox Co",
        createdate=created[in_hubspot],
        lifecyclestage="lead",
        hs_analytics_source="DIRECT_TRAFFIC",
        hs_analytics_first_url=_first_url(None),
        hubspotscore=5,
        region=region[in_hubspot],
        segment="SMB",
    )
    return _TestRecords(leads=leads, contacts=contacts, opportunities=opps)


# --- how the source systems record it --------------------------------------------------------


def _make_leads(
    rng, config, journeys, people, opportunities, as_of, current_score, last_score_change
) -> pd.DataFrame:
    """One Salesforce lead per hand-off; a returning prospect gets a second lead."""
    handed = journeys[journeys["handoff_at"].to_numpy() < as_of].reset_index(drop=True)
    person = people.set_index("person").loc[handed["person"]].reset_index()
    n = len(handed)
    sync_lag = np.where(handed["channel"] == "outbound", 0.0, rng.uniform(60, 900, n) / 86_400)
    lead_opps = opportunities[opportunities["person"].notna()]
    opp_key = lead_opps["person"].astype("int64") * 10 + lead_opps["journey"]
    opp_by_key = pd.Series(lead_opps["opportunity_id"].to_numpy(), index=opp_key.to_numpy())
    opp_id = opp_by_key.reindex(handed["person"] * 10 + handed["journey"]).to_numpy()
    opp_created = opportunities.set_index("opportunity_id")["created_at"].reindex(opp_id)
    return pd.DataFrame(
        {
            "lead_n": np.arange(n),
            "person": pd.array(handed["person"].to_numpy(), dtype="Int64"),
            "journey": handed["journey"],
            "FirstName": person["first_name"],
            "LastName": person["last_name"],
            "Email": _messy_emails(rng, config, person["email"].to_numpy()),
            "Company": person["company"],
            "created_at": handed["handoff_at"].to_numpy() + _days(sync_lag),
            "Status": _lead_status(handed, as_of),
            "LeadSource": _messy_lead_sources(rng, config, handed["channel"].to_numpy()),
            "region": person["region"],
            "segment": person["segment"],
            "owner_id": person["owner_id"],
            "campaign_id": person["campaign_id"],
            "channel": handed["channel"],
            "utm": [cat.CHANNELS[c].utm for c in handed["channel"]],
            "score": current_score.reindex(handed["person"]).fillna(0).astype(int).to_numpy(),
            "is_test": False,
            "opportunity_id": opp_id,
            "opp_created_at": opp_created.to_numpy(),
            "rejected_at": handed["rejected_at"],
            "rejection": handed["rejection"],
            "modified_at": _last_change(
                handed,
                ["handoff_at", "sal_at", "sql_at", "opp_at", "rejected_at"],
                as_of,
                last_score_change.reindex(handed["person"]).to_numpy(),
            ),
        }
    )


# How a buyer who comes back (recycled, or after a lost deal) returns: often through another
# channel than the first time, so journeys cross channels and attribution models differ.
RETURN_CHANNELS = {"email": 0.5, "events": 0.2, "organic_search": 0.1}  # the rest: as before


def _return_through_other_channels(config, leads: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Give some second leads the channel the buyer came back through: its lead source and
    UTM tags, and the campaign of that channel running then. A generator of its own draws
    it, so everything else in the world stays as the seed made it."""
    rng = np.random.default_rng([config.seed, 2])
    leads = leads.copy()
    returning = (leads["journey"] == 2).to_numpy() & leads["person"].notna().to_numpy()
    picked = _pick_or_none(rng, RETURN_CHANNELS, len(leads))
    moved = returning & pd.notna(picked) & (picked != leads["channel"].to_numpy())
    channels = picked[moved]
    had_source = ~leads.loc[moved, "LeadSource"].isin([*cat.JUNK_LEAD_SOURCES, ""]).to_numpy()
    spelled = np.array([rng.choice(cat.CHANNELS[c].salesforce_lead_sources) for c in channels], dtype=object)
    leads.loc[moved, "LeadSource"] = np.where(had_source, spelled, leads.loc[moved, "LeadSource"])
    leads.loc[moved, "channel"] = channels
    leads.loc[moved, "utm"] = pd.Series([cat.CHANNELS[c].utm for c in channels], dtype=object).to_numpy()
    leads.loc[moved, "campaign_id"] = [
        _campaign_running(campaigns, c, at)
        for c, at in zip(channels, leads.loc[moved, "created_at"], strict=True)
    ]
    return leads


def _campaign_running(campaigns: pd.DataFrame, channel: str, at) -> str | None:
    day = pd.Timestamp(at).date()
    running = campaigns[
        (campaigns["Channel__c"] == channel) & (campaigns["StartDate"] <= day) & (campaigns["EndDate"] >= day)
    ]
    return running["Id"].iloc[0] if len(running) else None


def _messy_emails(rng, config, emails: np.ndarray) -> np.ndarray:
    n = len(emails)
    recased = rng.random(n) < config.email_recased_rate
    padded = rng.random(n) < config.email_padded_rate
    out = np.where(recased, [e.title() for e in emails], emails).astype(object)
    return np.where(padded, [f" {e} " for e in out], out).astype(object)


def _messy_lead_sources(rng, config, channels: np.ndarray) -> np.ndarray:
    n = len(channels)
    spelled = np.array([rng.choice(cat.CHANNELS[c].salesforce_lead_sources) for c in channels], dtype=object)
    junk = rng.choice(np.array(cat.JUNK_LEAD_SOURCES, dtype=object), n)
    roll = rng.random(n)
    blank_limit = config.lead_source_blank_rate
    junk_limit = blank_limit + config.lead_source_junk_rate
    return np.where(roll < blank_limit, "", np.where(roll < junk_limit, junk, spelled))


def _lead_status(handed: pd.DataFrame, as_of) -> np.ndarray:
    # An SDR's own lead starts as New; every hand-off from marketing (and any return) as MQL.
    sdr_created = (handed["channel"] == "outbound") & (handed["journey"] == 1)
    status = np.where(sdr_created, "New", "MQL").astype(object)
    for column, name in (("sal_at", "SAL"), ("sql_at", "SQL"), ("opp_at", "Converted")):
        status = np.where(handed[column].to_numpy() < as_of, name, status)
    rejected = handed["rejected_at"].to_numpy() < as_of
    rejection = (
        handed["rejection"]
        .map(
            {
                "recycled": "Recycled",
                "disqualified": "Disqualified",
                "converted_no_opportunity": "Converted",
            }
        )
        .to_numpy()
    )
    return np.where(rejected, rejection, status)


def _salesforce_leads(leads: pd.DataFrame) -> pd.DataFrame:
    converted = (leads["Status"] == "Converted").to_numpy()
    opp_known = converted & leads["opportunity_id"].notna().to_numpy()
    converted_at = np.where(
        opp_known,
        leads["opp_created_at"].to_numpy(),
        np.where(converted, leads["rejected_at"].to_numpy(), NAT),
    )
    utm = leads["utm"].to_numpy()
    return pd.DataFrame(
        {
            "Id": salesforce_ids("00Q", leads["lead_n"].to_numpy() + 1),
            "FirstName": leads["FirstName"],
            "LastName": leads["LastName"],
            "Email": leads["Email"],
            "Company": leads["Company"],
            "Status": leads["Status"],
            "LeadSource": leads["LeadSource"],
            "IsConverted": converted,
            "ConvertedDate": pd.to_datetime(converted_at).normalize(),
            "ConvertedOpportunityId": np.where(opp_known, leads["opportunity_id"], None),
            "OwnerId": leads["owner_id"],
            "CreatedDate": leads["created_at"],
            "SystemModstamp": leads["modified_at"].fillna(leads["created_at"]),
            "IsDeleted": False,
            "MasterRecordId": None,
            "Region__c": leads["region"],
            "Segment__c": leads["segment"],
            "CampaignId__c": leads["campaign_id"],
            "Lead_Score__c": leads["score"],
            "Is_Test__c": leads["is_test_flag"].fillna(False).astype(bool),
            "Lead_Grade__c": leads["segment"].map(LEAD_GRADE_BY_SEGMENT),
            "UTM_Source__c": [u[0] if isinstance(u, tuple) else None for u in utm],
            "UTM_Medium__c": [u[1] if isinstance(u, tuple) else None for u in utm],
        }
    ).sort_values("Id", ignore_index=True)


def _opportunity_lead_sources(opps: pd.DataFrame, leads: pd.DataFrame) -> np.ndarray:
    """A converted opportunity copies its lead's LeadSource; others carry their own."""
    from_lead = leads.dropna(subset=["opportunity_id"]).set_index("opportunity_id")["LeadSource"]
    copied = from_lead.reindex(opps["opportunity_id"]).to_numpy()
    return np.where(pd.isna(copied), opps["direct_lead_source"].fillna(""), copied)


def _salesforce_opportunities(opps: pd.DataFrame) -> pd.DataFrame:
    names = [
        f"{prefix}{company_size} deal {i}"
        for i, (prefix, company_size) in enumerate(zip(opps["name_prefix"], opps["segment"], strict=True))
    ]
    return pd.DataFrame(
        {
            "Id": opps["opportunity_id"],
            "Name": names,
            "StageName": opps["stage"],
            "Amount": opps["amount"],
            "CloseDate": opps["close_date"],
            "IsClosed": opps["is_closed"],
            "IsWon": opps["is_won"],
            "Probability": opps["stage"].map(cat.STAGE_PROBABILITY),
            "ForecastCategoryName": opps["stage"].map(cat.STAGE_FORECAST_CATEGORY),
            "LeadSource": opps["lead_source"],
            "CampaignId": opps["campaign_id"],
            "OwnerId": opps["owner_id"],
            "CreatedDate": opps["created_at"],
            "SystemModstamp": np.where(opps["is_closed"], opps["close_at"], opps["created_at"]),
            "IsDeleted": False,
            "Region__c": opps["region"],
            "Segment__c": opps["segment"],
            "Loss_Reason__c": opps["loss_reason"],
        }
    ).sort_values("Id", ignore_index=True)


def _opportunity_history(opps: pd.DataFrame, as_of) -> pd.DataFrame:
    """One OpportunityHistory row per stage entered before the cut-off, plus the close."""
    parts = []
    for k, stage in enumerate(cat.OPPORTUNITY_STAGES):
        at = opps[f"stage_{k}_at"].to_numpy()
        entered = (at < as_of) & (opps["last_stage"].to_numpy() >= k)
        parts.append(
            pd.DataFrame(
                {
                    "OpportunityId": opps["opportunity_id"].to_numpy()[entered],
                    "StageName": stage,
                    "CreatedDate": at[entered],
                    "Amount": opps["amount"].to_numpy()[entered],
                    # While open, a deal carries the close date its owner expected at creation.
                    "CloseDate": pd.to_datetime(opps["expected_close"].to_numpy()[entered]).normalize(),
                }
            )
        )
    closed = opps[opps["is_closed"]]
    parts.append(
        pd.DataFrame(
            {
                "OpportunityId": closed["opportunity_id"].to_numpy(),
                "StageName": closed["stage"].to_numpy(),
                "CreatedDate": closed["close_at"].to_numpy(),
                "Amount": closed["amount"].to_numpy(),
                "CloseDate": pd.to_datetime(closed["close_at"].to_numpy()).normalize(),
            }
        )
    )
    history = pd.concat(parts, ignore_index=True).sort_values(["OpportunityId", "CreatedDate"])
    history["Probability"] = history["StageName"].map(cat.STAGE_PROBABILITY)
    # The history object holds the picklist's API names ("Forecast" is Commit's).
    history["ForecastCategory"] = (
        history["StageName"].map(cat.STAGE_FORECAST_CATEGORY).map(cat.FORECAST_CATEGORY_API_NAMES)
    )
    history["IsDeleted"] = False
    history.insert(0, "Id", salesforce_ids("008", range(1, len(history) + 1)))
    history["CreatedById"] = history["OpportunityId"].map(opps.set_index("opportunity_id")["owner_id"])
    return history.reset_index(drop=True)


# One rep keeps the CRM up to date only once a month: at a sitting on the first Monday of the
# month, 17:00 UTC, they record every stage change since the last one, a change every 20
# seconds. Their closes are back-dated and their changes come in bulk (the integrity KPIs
# backdated_closes and bulk_stage_changes).
CATCH_UP_HOUR = 17
CATCH_UP_SPACING = pd.Timedelta(seconds=20)


def _record_late(config, history: pd.DataFrame, as_of) -> pd.DataFrame:
    """Name the user who recorded each change (the deal's owner), and move the catch-up
    rep's changes to their next sitting, unless it falls after the cut-off. A generator of
    its own picks the rep, so everything else in the world stays as the seed made it."""
    rng = np.random.default_rng([config.seed, 3])
    history = history.copy()
    catch_up_rep = rng.choice(np.sort(history["CreatedById"].unique()))
    sitting = _next_sitting(history["CreatedDate"])
    late = (history["CreatedById"] == catch_up_rep) & (sitting < pd.Timestamp(as_of))
    order = history[late].sort_values(["CreatedDate", "Id"]).groupby(sitting[late]).cumcount()
    history.loc[order.index, "CreatedDate"] = sitting[order.index] + order * CATCH_UP_SPACING
    return history


def _next_sitting(times: pd.Series) -> pd.Series:
    """The first sitting (first Monday of a month, 17:00) at or after each time."""
    month = times.dt.to_period("M").dt.start_time
    this_month, next_month = _sitting(month), _sitting(month + pd.DateOffset(months=1))
    return this_month.where(times <= this_month, next_month)


def _sitting(month_start: pd.Series) -> pd.Series:
    days = (7 - month_start.dt.day_of_week) % 7
    return month_start + pd.to_timedelta(days, unit="D") + pd.Timedelta(hours=CATCH_UP_HOUR)


def _contact_frame(**columns) -> pd.DataFrame:
    columns.setdefault("lastmodifieddate", columns["createdate"])
    defaults = {
        "hs_lead_status": None,
        "hs_lifecyclestage_marketingqualifiedlead_date": NAT,
        "hs_lifecyclestage_salesqualifiedlead_date": NAT,
        "hs_lifecyclestage_opportunity_date": NAT,
        "hs_lifecyclestage_customer_date": NAT,
    }
    return pd.DataFrame({**defaults, **columns}, index=range(len(columns["hs_object_id"])))


def _make_contacts(
    rng, config, people, journeys, opportunities, as_of, current_score, last_score_change
) -> pd.DataFrame:
    """HubSpot holds every inbound prospect from their first form fill."""
    inbound = people[people["channel"] != "outbound"].reset_index(drop=True)
    n = len(inbound)
    first = journeys[journeys["journey"] == 1].set_index("person").loc[inbound["person"]]
    won = opportunities[opportunities["is_won"] & opportunities["person"].notna()]
    customer_at = won.groupby("person")["close_at"].min().reindex(inbound["person"]).to_numpy()
    source = np.array([cat.CHANNELS[c].hubspot_source for c in inbound["channel"]], dtype=object)
    source = np.where(rng.random(n) < config.hubspot_source_missing_rate, None, source)
    return _contact_frame(
        person=pd.array(inbound["person"].to_numpy(), dtype="Int64"),
        hs_object_id=(1_000 + inbound["person"]).astype(str).to_numpy(),
        email=inbound["email"].to_numpy(),
        firstname=inbound["first_name"].to_numpy(),
        lastname=inbound["last_name"].to_numpy(),
        company=inbound["company"].to_numpy(),
        createdate=inbound["created_at"].to_numpy(),
        lifecyclestage=_lifecycle_stage(first, customer_at, as_of),
        hs_analytics_source=source,
        hs_analytics_first_url=[_first_url(cat.CHANNELS[c].utm) for c in inbound["channel"]],
        hubspotscore=current_score.reindex(inbound["person"]).fillna(0).astype(int).to_numpy(),
        region=inbound["region"].to_numpy(),
        segment=inbound["segment"].to_numpy(),
        hs_lifecyclestage_marketingqualifiedlead_date=_known(first["mql_at"].to_numpy(), as_of),
        hs_lifecyclestage_salesqualifiedlead_date=_known(first["sql_at"].to_numpy(), as_of),
        hs_lifecyclestage_opportunity_date=_known(first["opp_at"].to_numpy(), as_of),
        hs_lifecyclestage_customer_date=_known(customer_at.astype("datetime64[ms]"), as_of),
        lastmodifieddate=_last_change(
            first,
            ["handoff_at", "sql_at", "opp_at"],
            as_of,
            np.fmax(
                last_score_change.reindex(inbound["person"]).to_numpy(),
                customer_at.astype("datetime64[ms]"),
            ),
            created=inbound["created_at"].to_numpy(),
        ),
    )


def _known(values: np.ndarray, as_of) -> np.ndarray:
    return np.where(values < as_of, values, NAT)


def _first_url(utm: tuple[str, str] | None) -> str:
    if utm is None:
        return "https://www.revops-demo.com/pricing"
    return f"https://www.revops-demo.com/pricing?utm_source={utm[0]}&utm_medium={utm[1]}"


def _lifecycle_stage(first: pd.DataFrame, customer_at: np.ndarray, as_of) -> np.ndarray:
    stage = np.full(len(first), "lead", dtype=object)
    for column, name in (
        ("mql_at", "marketingqualifiedlead"),
        ("sql_at", "salesqualifiedlead"),
        ("opp_at", "opportunity"),
    ):
        stage = np.where(first[column].to_numpy() < as_of, name, stage)
    return np.where(customer_at.astype("datetime64[ms]") < as_of, "customer", stage)


# --- ground truth ----------------------------------------------------------------------------


def _truth_prospects(people, leads, contacts, opportunities) -> pd.DataFrame:
    """One row per real person, with what a correct reconciliation must conclude."""
    real_leads = leads[~leads["is_test"]]
    lead_opps = opportunities[opportunities["person"].notna() & ~opportunities["is_test"]]
    by_person = lead_opps.groupby(lead_opps["person"].astype("int64"))
    frame = people[["person", "email", "created_at", "region", "segment"]].copy()
    persons = frame["person"]
    frame["salesforce_leads"] = (
        real_leads.groupby(real_leads["person"].astype("int64"))
        .size()
        .reindex(persons)
        .fillna(0)
        .astype(int)
        .to_numpy()
    )
    frame["in_hubspot"] = persons.isin(contacts["person"].dropna().astype("int64"))
    # Owners live in Salesforce: a prospect only in HubSpot has none yet.
    frame["owner_id"] = np.where(frame["salesforce_leads"] > 0, people["owner_id"], None)
    frame["channel"] = _recoverable_channel(people, real_leads, contacts)
    frame["first_opportunity_created_at"] = by_person["created_at"].min().reindex(persons).to_numpy()
    frame["opportunities"] = by_person.size().reindex(persons).fillna(0).astype(int).to_numpy()
    return frame


def _recoverable_channel(people, leads, contacts) -> np.ndarray:
    """The channel of the oldest Salesforce lead with a usable source, else the one HubSpot
    knows, else 'unmapped' where no record of the person carries a usable source."""
    junk = {*cat.JUNK_LEAD_SOURCES, ""}
    usable_lead = leads[(~leads["LeadSource"].isin(junk) | leads["utm"].notna()) & leads["person"].notna()]
    first_usable = usable_lead.sort_values("created_at").drop_duplicates("person")
    lead_channel = first_usable.set_index(first_usable["person"].astype("int64"))["channel"]
    usable_contact = contacts[
        contacts["hs_analytics_source"].notna()
        | contacts["hs_analytics_first_url"].str.contains("utm_", regex=False)
    ]
    in_hubspot = people["person"].isin(set(usable_contact["person"].dropna().astype("int64")))
    hubspot_channel = people["channel"].where(in_hubspot.to_numpy(), "unmapped")
    return (
        lead_channel.reindex(people["person"]).fillna(hubspot_channel.set_axis(people["person"])).to_numpy()
    )


def _truth_opportunities(opps: pd.DataFrame, truth_prospects: pd.DataFrame) -> pd.DataFrame:
    """Opportunities as a correct reconciliation sees them; lead deals take the lead's channel."""
    channel_of_person = truth_prospects.set_index("person")["channel"]
    person_channel = channel_of_person.reindex(opps["person"].astype("float")).to_numpy()
    truth = opps[
        [
            "opportunity_id",
            "person",
            "created_at",
            "close_date",
            "stage",
            "is_closed",
            "is_won",
            "amount",
            "region",
            "segment",
            "owner_id",
            "is_test",
            "loss_reason",
        ]
    ].copy()
    truth["channel"] = np.where(opps["person"].notna(), person_channel, opps["channel"])
    truth["is_from_converted_lead"] = opps["person"].notna().to_numpy()
    truth["closed_at"] = opps["close_at"].where(opps["is_closed"]).to_numpy()
    return truth.reset_index(drop=True)


def _last_change(frame, columns, as_of, extra, created=None) -> np.ndarray:
    """The latest of the given event times that happened before the cut-off."""
    times = [frame[c].to_numpy().astype("datetime64[ms]") for c in columns]
    times.append(np.asarray(extra).astype("datetime64[ms]"))
    if created is not None:
        times.append(np.asarray(created).astype("datetime64[ms]"))
    stacked = np.stack([np.where(t < as_of, t, NAT) for t in times], axis=1)
    return pd.DataFrame(stacked).max(axis=1).to_numpy().astype("datetime64[ms]")


# Fit, as a sales team grades it: how well the company matches the ideal customer.
LEAD_GRADE_BY_SEGMENT = {"Enterprise": "A", "Mid-Market": "B", "SMB": "C"}


# --- lead scores ------------------------------------------------------------------------------

SCORE_STEPS = np.array([5, 10, 15, -5])
SCORE_STEP_WEIGHTS = np.array([0.5, 0.3, 0.1, 0.1])
ENGAGEMENTS_PER_WEEK = 0.4


def _score_history(rng, config, people: pd.DataFrame, journeys: pd.DataFrame, as_of) -> pd.DataFrame:
    """Every change of each person's lead score: (person, changed_at, score).

    A form fill on creation, then engagement at random (mostly small gains, some decay), and
    a surge of big gains in the week before each hand-off to sales: the velocity signal.
    """
    created = people["created_at"].to_numpy().astype("datetime64[ms]")
    alive_days = (as_of - created).astype("timedelta64[ms]").astype("int64") / MS_PER_DAY
    counts = rng.poisson(ENGAGEMENTS_PER_WEEK * alive_days / 7)
    person = np.repeat(people["person"].to_numpy(), counts)
    start = np.repeat(created, counts)
    span = np.repeat(alive_days, counts)
    engagement = pd.DataFrame(
        {
            "person": person,
            "changed_at": start + _days(rng.random(len(person)) * span),
            "delta": rng.choice(SCORE_STEPS, len(person), p=SCORE_STEP_WEIGHTS),
        }
    )
    handoffs = journeys.dropna(subset=["mql_at"])
    surge_size = rng.integers(2, 5, len(handoffs))
    surge_at = np.repeat(handoffs["mql_at"].to_numpy().astype("datetime64[ms]"), surge_size)
    surge = pd.DataFrame(
        {
            "person": np.repeat(handoffs["person"].to_numpy(), surge_size),
            "changed_at": surge_at - _days(rng.uniform(0.05, 7, len(surge_at))),
            "delta": rng.choice([20, 25, 30, 45], len(surge_at)),
        }
    )
    form_fill = pd.DataFrame({"person": people["person"], "changed_at": created, "delta": 10})
    parts = [form_fill, engagement, surge]
    if config.score_model_change is not None:
        rescored = people[people["created_at"] < np.datetime64(config.score_model_change, "ms")]
        parts.append(
            pd.DataFrame(
                {
                    "person": rescored["person"],
                    "changed_at": np.datetime64(config.score_model_change, "ms"),
                    "delta": config.score_model_change_points,
                }
            )
        )
    events = pd.concat(parts, ignore_index=True)
    events = events[(events["changed_at"] < as_of) & (events["changed_at"] >= _created_of(events, people))]
    events = events.sort_values(["person", "changed_at"], kind="stable", ignore_index=True)
    events["score"] = events.groupby("person")["delta"].cumsum().clip(lower=0)
    return events[["person", "changed_at", "score"]]


def _created_of(events: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    return people.set_index("person")["created_at"].reindex(events["person"]).to_numpy()


# --- HubSpot objects --------------------------------------------------------------------------

HUBSPOT_DEAL_STAGES = {
    "Prospecting": "appointmentscheduled",
    "Qualification": "qualifiedtobuy",
    "Demo": "presentationscheduled",
    "Proposal": "decisionmakerboughtin",
    "Negotiation": "contractsent",
    "Closed Won": "closedwon",
    "Closed Lost": "closedlost",
}


def _hubspot_objects(contacts, opportunities, scores) -> dict[str, pd.DataFrame]:
    """Contacts, the deals synced from Salesforce for them, associations and score history."""
    contact_of_person = contacts.dropna(subset=["person"]).set_index("person")["hs_object_id"]
    synced = opportunities[opportunities["person"].isin(contact_of_person.index)]
    deals = pd.DataFrame(
        {
            "hs_object_id": (5_000_000 + np.arange(len(synced))).astype(str),
            "dealname": synced["opportunity_id"].map(lambda i: f"Deal {i[-9:-3]}").to_numpy(),
            "dealstage": synced["stage"].map(HUBSPOT_DEAL_STAGES).to_numpy(),
            "pipeline": "default",
            "amount": synced["amount"].to_numpy(),
            "closedate": synced["close_date"].to_numpy(),
            "createdate": synced["created_at"].to_numpy(),
            "hs_lastmodifieddate": np.where(
                synced["is_closed"], synced["close_at"], synced["created_at"]
            ).astype("datetime64[ms]"),
            "hs_is_closed_won": synced["is_won"].to_numpy(),
            "salesforce_opportunity_id": synced["opportunity_id"].to_numpy(),
        }
    )
    associations = pd.DataFrame(
        {
            "contact_id": contact_of_person.reindex(synced["person"]).to_numpy(),
            "deal_id": deals["hs_object_id"].to_numpy(),
        }
    )
    score_history = scores.assign(contact_id=contact_of_person.reindex(scores["person"]).to_numpy()).dropna(
        subset=["contact_id"]
    )[["contact_id", "changed_at", "score"]]
    return {
        "contacts": contacts.drop(columns=["person"]),
        "deals": deals,
        "contact_deal_associations": associations,
        "contact_score_history": score_history.reset_index(drop=True),
    }


def _lead_history(
    leads: pd.DataFrame, journeys: pd.DataFrame, as_of, scores: pd.DataFrame | None = None
) -> pd.DataFrame:
    """LeadHistory as Salesforce writes it: a `created` row, then one row per Status change
    (and per Lead_Score__c change, when `scores` is given)."""
    real = leads[leads["person"].notna()].copy()
    key = real["person"].astype("int64") * 10 + real["journey"].astype("int64")
    steps = journeys.set_index(journeys["person"] * 10 + journeys["journey"]).reindex(key)
    lead_ids = salesforce_ids("00Q", real["lead_n"].to_numpy() + 1)
    sdr_created = (steps["channel"] == "outbound").to_numpy() & (real["journey"] == 1).to_numpy()
    first_status = np.where(sdr_created, "New", "MQL")
    parts = [
        pd.DataFrame(
            {
                "LeadId": lead_ids,
                "Field": "created",
                "OldValue": None,
                "NewValue": None,
                "CreatedDate": real["created_at"].to_numpy(),
            }
        )
    ]
    previous = first_status.astype(object)
    for column, status in (("sal_at", "SAL"), ("sql_at", "SQL"), ("opp_at", "Converted")):
        at = steps[column].to_numpy().astype("datetime64[ms]")
        happened = at < as_of
        parts.append(
            pd.DataFrame(
                {
                    "LeadId": lead_ids[happened],
                    "Field": "Status",
                    "OldValue": previous[happened],
                    "NewValue": status,
                    "CreatedDate": at[happened],
                }
            )
        )
        previous = np.where(happened, status, previous)
    rejected_at = steps["rejected_at"].to_numpy().astype("datetime64[ms]")
    rejected = rejected_at < as_of
    outcome = (
        steps["rejection"]
        .map(
            {
                "recycled": "Recycled",
                "disqualified": "Disqualified",
                "converted_no_opportunity": "Converted",
            }
        )
        .to_numpy()
    )
    parts.append(
        pd.DataFrame(
            {
                "LeadId": lead_ids[rejected],
                "Field": "Status",
                "OldValue": previous[rejected],
                "NewValue": outcome[rejected],
                "CreatedDate": rejected_at[rejected],
            }
        )
    )
    if scores is not None:
        parts.append(_lead_score_history(lead_ids, real, scores, as_of))
    history = pd.concat(parts, ignore_index=True)
    history = history.sort_values(["LeadId", "CreatedDate", "Field"], kind="stable", ignore_index=True)
    history.insert(0, "Id", salesforce_ids("017", range(1, len(history) + 1)))
    history["IsDeleted"] = False
    return history


def _tracked(config: WorldConfig, scores: pd.DataFrame) -> pd.DataFrame | None:
    return scores if config.salesforce_score_history else None


def _lead_score_history(lead_ids: np.ndarray, leads: pd.DataFrame, scores: pd.DataFrame, as_of):
    """Each change of a lead's person's score after the lead was created."""
    changes = scores.assign(old=scores.groupby("person")["score"].shift(fill_value=0))
    person = leads["person"].astype("int64").to_numpy()
    by_lead = pd.DataFrame({"LeadId": lead_ids, "person": person, "created": leads["created_at"].to_numpy()})
    rows = by_lead.merge(changes, on="person")
    rows = rows[(rows["changed_at"] > rows["created"]) & (rows["changed_at"] < as_of)]
    return pd.DataFrame(
        {
            "LeadId": rows["LeadId"],
            "Field": "Lead_Score__c",
            "OldValue": rows["old"].astype(object),
            "NewValue": rows["score"].astype(object),
            "CreatedDate": rows["changed_at"].to_numpy(),
        }
    )


# --- mess that only reconciliation rules can undo ----------------------------------------------


def _inject_lead_mess(rng, config, leads, people) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Leads without an e-mail (the name-and-company fallback must match them) and leads
    whose creation time a misconfigured integration wrote in local time (clock skew)."""
    leads = leads.copy()
    channel_of = people.set_index("person")["channel"]
    name_key = (people["first_name"] + "|" + people["last_name"] + "|" + people["company"]).str.lower()
    unique_name = people["person"][~name_key.duplicated(keep=False)]
    first_inbound = (
        leads["person"].notna()
        & (leads["journey"] == 1)
        & (leads["person"].map(channel_of, na_action="ignore") != "outbound")
    ).to_numpy(dtype=bool)
    roll = rng.random(len(leads))
    emailless = (
        first_inbound
        & leads["person"].isin(unique_name).to_numpy(dtype=bool)
        & (roll < config.email_missing_rate)
    )
    skewed = first_inbound & ~emailless & (roll > 1 - config.clock_skew_rate)
    leads.loc[emailless, "Email"] = None
    leads.loc[skewed, "created_at"] = leads.loc[skewed, "created_at"] + pd.Timedelta(
        hours=config.clock_skew_hours
    )
    ids = salesforce_ids("00Q", leads["lead_n"].to_numpy() + 1)
    return leads, {"emailless_leads": set(ids[emailless]), "clock_skew_leads": set(ids[skewed])}


def _back_date_some_stages(rng, config, history: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """A rep back-dates a lead's SQL change to before its SAL change: out of order."""
    history = history.copy()
    status = history[history["Field"] == "Status"]
    sal = status[status["NewValue"] == "SAL"].set_index("LeadId")["CreatedDate"]
    sql = status[status["NewValue"] == "SQL"]
    candidates = sql[sql["LeadId"].isin(sal.index)]
    chosen = candidates[rng.random(len(candidates)) < config.back_dated_stage_rate]
    earlier = sal.reindex(chosen["LeadId"]).to_numpy() - _days(rng.uniform(1, 3, len(chosen)))
    history.loc[chosen.index, "CreatedDate"] = earlier
    return history, set(chosen["LeadId"])


def _truth_stages(people, journeys, opportunities, leads, lead_history, as_of) -> pd.DataFrame:
    """Every stage each real person entered, per cycle (= journey), before the cut-off."""
    parts = [
        pd.DataFrame(
            {"person": people["person"], "cycle": 1, "stage": "created", "entered_at": people["created_at"]}
        )
    ]
    for column, stage in (("mql_at", "mql"), ("sal_at", "sal"), ("sql_at", "sql")):
        happened = journeys[journeys[column].to_numpy() < as_of]
        parts.append(
            pd.DataFrame(
                {
                    "person": happened["person"],
                    "cycle": happened["journey"],
                    "stage": stage,
                    "entered_at": happened[column],
                }
            )
        )
    exits = journeys[
        (journeys["rejected_at"].to_numpy() < as_of)
        & journeys["rejection"].isin(["recycled", "disqualified"])
    ]
    parts.append(
        pd.DataFrame(
            {
                "person": exits["person"],
                "cycle": exits["journey"],
                "stage": exits["rejection"],
                "entered_at": exits["rejected_at"],
            }
        )
    )
    real_opps = opportunities[opportunities["person"].notna() & ~opportunities["is_test"]]
    parts.append(
        pd.DataFrame(
            {
                "person": real_opps["person"].astype("int64"),
                "cycle": real_opps["journey"],
                "stage": "opportunity",
                "entered_at": real_opps["created_at"],
            }
        )
    )
    closed = real_opps[real_opps["is_closed"]]
    parts.append(
        pd.DataFrame(
            {
                "person": closed["person"].astype("int64"),
                "cycle": closed["journey"],
                "stage": np.where(closed["is_won"], "won", "lost"),
                "entered_at": closed["close_at"],
            }
        )
    )
    stages = pd.concat(parts, ignore_index=True)
    stages["entered_at"] = pd.to_datetime(stages["entered_at"]).astype("datetime64[ms]")
    # A back-dated SQL change is recorded earlier than it happened; reporting sees that time.
    real_leads = leads[leads["person"].notna()]
    lead_keys = pd.DataFrame(
        {
            "LeadId": salesforce_ids("00Q", real_leads["lead_n"].to_numpy() + 1),
            "person": real_leads["person"].astype("int64").to_numpy(),
            "cycle": real_leads["journey"].to_numpy(),
        }
    )
    recorded = lead_history[(lead_history["Field"] == "Status") & (lead_history["NewValue"] == "SQL")]
    recorded = recorded.merge(lead_keys, on="LeadId")[["person", "cycle", "CreatedDate"]].assign(stage="sql")
    stages = stages.merge(recorded, on=["person", "cycle", "stage"], how="left")
    stages["entered_at"] = stages["CreatedDate"].fillna(stages["entered_at"]).astype("datetime64[ms]")
    stages = stages.drop(columns="CreatedDate")
    return stages.sort_values(["person", "cycle", "entered_at"], ignore_index=True)
