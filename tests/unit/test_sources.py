import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from revops.reconcile.campaigns import campaign_rows
from revops.reconcile.sources import SourceMapping, utm_from_url


def _channels(lead_source, hubspot=None, utm_source=None, utm_medium=None):
    mapping = SourceMapping.load()
    n = len(lead_source)
    fill = lambda values: pd.Series(values if values is not None else [None] * n, dtype=object)  # noqa: E731
    return mapping.channel_of(fill(lead_source), fill(hubspot), fill(utm_source), fill(utm_medium)).tolist()


def test_spellings_map_regardless_of_case_and_spacing():
    assert _channels(["Paid Search", "  paid   SEARCH ", "PPC", "AdWords"]) == ["paid_search"] * 4


def test_precedence_salesforce_then_hubspot_then_utm():
    result = _channels(
        lead_source=["Webinar", None, None, "asdf"],
        hubspot=["PAID_SEARCH", "PAID_SEARCH", None, None],
        utm_source=[None, None, "partner-portal", None],
        utm_medium=["cpc", "email", "referral", "email"],
    )
    assert result == ["events", "paid_search", "partner", "email"]


def test_unknown_values_go_to_the_visible_unmapped_bucket_not_other():
    assert _channels(["Other", "asdf", None]) == ["unmapped"] * 3


def test_utm_tags_come_from_the_landing_page_query_string():
    urls = pd.Series(
        [
            "https://x.io/pricing?utm_source=google&utm_medium=cpc",
            "https://x.io/pricing",
            None,
        ]
    )
    source, medium = utm_from_url(urls)
    assert [v if isinstance(v, str) else None for v in source] == ["google", None, None]
    assert [v if isinstance(v, str) else None for v in medium] == ["cpc", None, None]


def test_visitors_who_landed_on_the_same_page_each_get_its_tags():
    shared = "https://x.io/?utm_source=news%20letter&utm_medium=&utm_campaign=q1#top"
    urls = pd.Series([shared, "https://x.io/?utm_medium=email", shared, pd.NA, shared])
    source, medium = utm_from_url(urls)
    as_list = [[v if isinstance(v, str) else None for v in tags] for tags in (source, medium)]
    assert as_list[0] == ["news letter", None, "news letter", None, "news letter"]
    assert as_list[1] == [None, "email", None, None, None]  # a blank tag is no tag


labels = st.one_of(
    st.none(),
    st.sampled_from(["Webinar", " paid  search", "PAID_SEARCH", "google", "cpc", "asdf", ""]),
    st.text(max_size=3),
)


@given(rows=st.lists(st.tuples(labels, labels, labels, labels), max_size=30))
def test_text_held_in_arrow_is_classified_as_python_objects_are(rows):
    """The combinations are found by their codes, whatever holds the text."""
    mapping = SourceMapping.load()
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 4
    as_objects = mapping.classify(*(pd.Series(c, dtype=object) for c in columns))
    in_arrow = mapping.classify(*(pd.Series(c, dtype="str") for c in columns))
    pd.testing.assert_frame_equal(in_arrow, as_objects)


@given(
    urls=st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(
                ["https://x.io/?utm_source=a&utm_medium=b", "https://x.io/?utm_medium=c", "https://x.io/"]
            ),
        )
    )
)
def test_utm_tags_of_urls_held_in_arrow_are_those_of_python_objects(urls):
    for tags_in_arrow, tags_as_objects in zip(
        utm_from_url(pd.Series(urls, dtype="str")), utm_from_url(pd.Series(urls, dtype=object)), strict=True
    ):
        assert tags_in_arrow.tolist() == tags_as_objects.tolist()


def test_a_campaign_takes_its_channel_field_then_its_type_then_the_unmapped_bucket():
    campaigns = pd.DataFrame(
        {
            "Id": ["c1", "c2", "c3"],
            "Name": ["Search", "Expo", "Mystery"],
            "Type": ["Advertisement", "Webinar", "Something"],
            "Channel__c": ["paid_search", None, "not_a_channel"],
            "ActualCost": [1.0, 2.0, 3.0],
            "StartDate": pd.to_datetime(["2026-03-01"] * 3),
            "EndDate": pd.to_datetime(["2026-03-31", None, "2026-03-02"]),
        }
    )
    rows = campaign_rows(campaigns, SourceMapping.load())
    assert rows["channel"].tolist() == ["paid_search", "events", "unmapped"]
    assert rows["end_date"].isna().tolist() == [False, True, False]
