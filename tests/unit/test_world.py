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
