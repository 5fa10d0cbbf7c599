from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from revops.reconcile.frames import as_dates, casefolded, is_in, mapped, query_arrow, sorted_rows
from revops.warehouse import load


@given(
    keys=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "é", ""]), st.text(max_size=3))),
    known=st.lists(st.one_of(st.none(), st.sampled_from(["a", "é", ""]), st.text(max_size=3))),
    arrow_backed=st.booleans(),
)
def test_is_in_is_set_membership_and_a_missing_key_is_in_nothing(keys, known, arrow_backed):
    series = pd.Series(keys, dtype="str" if arrow_backed else object)
    found = is_in(series, pd.Index(known, dtype=object))
    present = {k for k in known if k is not None}
    expected = [isinstance(k, str) and k in present for k in keys]
    assert found.tolist() == expected
    assert found.index.equals(series.index)


@given(
    values=st.lists(
        st.one_of(
            st.none(), st.sampled_from(["Ada", "ÉCOLE", "Straße", "ǅ", "İ", "ﬁ", " x "]), st.text(max_size=4)
        )
    )
)
def test_casefolded_is_pandas_casefold_for_ascii_and_other_text_alike(values):
    text = pd.Series(values, dtype="string")
    assert casefolded(text).tolist() == text.str.casefold().tolist()


@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["Prospecting", "Closed Won", "Won", ""]))),
    arrow_backed=st.booleans(),
)
def test_mapped_is_pandas_map(values, arrow_backed):
    series = pd.Series(values, dtype="str" if arrow_backed else object)
    series.index = series.index * 3  # not a range: the rows keep their own labels
    for mapping in ({"Prospecting": 0, "Closed Won": 5}, {"Won": "closed", "": "blank"}):
        expected = series.map(mapping)
        found = mapped(series, mapping)
        assert found.index.equals(series.index)
        assert found.isna().tolist() == expected.isna().tolist()
        assert found.dropna().tolist() == expected.dropna().tolist()


@given(st.lists(st.one_of(st.none(), st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)))))
def test_as_dates_is_each_timestamps_calendar_date(moments):
    timestamps = pd.Series(pd.to_datetime(pd.Series(moments, dtype=object)), dtype="datetime64[ms]")
    dates = as_dates(timestamps)
    assert [None if pd.isna(d) else d for d in dates] == [
        None if pd.isna(t) else t.date() for t in timestamps
    ]


texts = st.one_of(st.none(), st.sampled_from(["a", "b", "B", "é", "", "a b"]))
instants = st.one_of(st.none(), st.sampled_from([datetime(2026, 1, d) for d in (1, 2, 3)]))


@given(
    rows=st.lists(st.tuples(texts, st.integers(0, 2), instants), max_size=30),
    ascending=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_sorted_rows_is_pandas_stable_sort_with_missing_values_last(rows, ascending):
    """Few distinct values, so ties are common: a stable sort keeps their order."""
    frame = pd.DataFrame(rows, columns=["key", "rank", "at"]).astype({"key": "str"})
    frame["at"] = pd.to_datetime(frame["at"])
    frame.index = frame.index * 10  # not a range: the rows keep their own labels
    by = ["key", "rank", "at"]
    expected = frame.sort_values(by, ascending=ascending, kind="stable")
    assert sorted_rows(frame, by, ascending).index.tolist() == expected.index.tolist()


def test_query_arrow_hands_duckdb_batches_and_keeps_the_rows_order(monkeypatch):
    """Rows in several scan batches, read on both threads, still come back in their order:
    `identity.prospect_ids` relies on a projection keeping it."""
    monkeypatch.setattr(load, "SCAN_BATCH_ROWS", 1_000)
    values = pa.table({"v": np.random.default_rng(7).permutation(50_000)})
    batches = load.in_scan_batches(values).to_batches()
    assert [len(batch) for batch in batches] == [1_000] * 50
    doubled = query_arrow("select v * 2 as w from values_table", {"values_table": values})
    assert doubled["w"].to_pylist() == [v * 2 for v in values["v"].to_pylist()]


def test_an_empty_table_is_handed_over_with_its_columns():
    empty = pa.table({"v": pa.array([], pa.int64())})
    assert load.in_scan_batches(empty).schema == empty.schema
    assert query_arrow("select count(*) as n from empty", {"empty": empty})["n"].to_pylist() == [0]
