import pandas as pd

from revops.synthetic.world import WorldConfig, generate_world


def test_same_seed_same_world_and_another_seed_another_world():
    config = WorldConfig(n_prospects=300, seed=3)
    first, second = generate_world(config), generate_world(config)
    pd.testing.assert_frame_equal(first.salesforce["Lead"], second.salesforce["Lead"])
    pd.testing.assert_frame_equal(first.truth_prospects, second.truth_prospects)
    other = generate_world(WorldConfig(n_prospects=300, seed=4))
    assert not other.salesforce["Lead"]["Email"].equals(first.salesforce["Lead"]["Email"])


def test_the_world_contains_the_mess_it_promises(small_world):
    leads = small_world.salesforce["Lead"]
    truth = small_world.truth_prospects
    assert (truth["salesforce_leads"] == 2).any(), "recycled prospects with a second lead"
    assert (truth["in_hubspot"] & (truth["salesforce_leads"] > 0)).any(), "people in both systems"
    assert (leads["Email"] != leads["Email"].str.strip().str.lower()).any(), "e-mail case and spaces"
    assert (leads["LeadSource"] == "").any() and (truth["channel"] == "unmapped").any()
    assert small_world.truth_opportunities["is_test"].any()
    assert small_world.truth_opportunities["amount"].isna().any()
    assert (truth["opportunities"] == 2).any(), "a recycled prospect converted twice"


def test_nothing_in_the_world_happens_after_the_cut_off(small_world):
    as_of = pd.Timestamp(small_world.config.as_of)
    assert (small_world.salesforce["Lead"]["CreatedDate"] < as_of).all()
    assert (small_world.salesforce["Opportunity"]["CreatedDate"] < as_of).all()
    closed = small_world.truth_opportunities.query("is_closed")
    assert (closed["close_date"] < as_of).all()


def test_one_rep_records_a_month_of_stage_changes_at_one_sitting(small_world):
    history = small_world.salesforce["OpportunityHistory"]
    at = history["CreatedDate"]
    sittings = history[(at.dt.day_of_week == 0) & (at.dt.day <= 7) & (at.dt.hour == 17) & (at.dt.minute < 10)]
    by_rep = sittings.groupby("CreatedById").size()
    assert by_rep.max() > 30 and (by_rep > 5).sum() == 1, "one rep, most of whose changes come late"
    rep = by_rep.idxmax()
    # A change every 20 seconds at a sitting, and a deal's changes still in the order they happened.
    gaps = sittings[sittings["CreatedById"] == rep].sort_values("CreatedDate")["CreatedDate"].diff()
    assert (gaps.dropna().dt.total_seconds() % 20 == 0).any()
    # History ids follow the order the changes happened in.
    for _, deal in history[history["CreatedById"] == rep].groupby("OpportunityId"):
        assert deal.sort_values("CreatedDate", kind="stable")["Id"].is_monotonic_increasing
