"""`read_payload_fields` (DuckDB reading the landed JSON) against Python's own JSON decoder."""

import json
import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from revops.extract.landing import record_payload
from revops.reconcile.records import fields_frame, read_payload_fields

FIELDS = ["Id", "Lead Score", "naïve", 'say "hi"', "Amount"]

values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["NaN", "nan", "Infinity", "", " 12 "]),  # words that look like numbers
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.text(max_size=5), max_size=3),
)
records = st.lists(st.dictionaries(st.sampled_from(FIELDS), values), max_size=8)


def _agrees(python_value, text) -> bool:
    """Whether DuckDB's text for a field says what Python decoded from the same JSON."""
    if python_value is None:
        return text is None  # absent or null: missing
    if isinstance(python_value, float) and math.isnan(python_value):
        return text == "NaN"  # pandas' NaN, written bare: typing decodes such rows again
    if isinstance(python_value, bool):
        return text == str(python_value).lower()
    if isinstance(python_value, int):
        return text == str(python_value)
    if isinstance(python_value, float):
        return float(text) == python_value  # the same number, if not always the same digits
    if isinstance(python_value, list):
        return json.loads(text) == python_value
    return text == python_value


def _fields(payloads: pa.ChunkedArray):
    return fields_frame(read_payload_fields(pa.table({"payload": payloads}), FIELDS)["fields"])


@settings(deadline=None)  # the first example starts DuckDB, which can take longer than 200 ms
@given(records)
def test_each_field_reads_as_what_python_decodes_from_the_same_payload(batch):
    payloads = [record_payload(record) for record in batch]
    frame = _fields(pa.chunked_array([payloads], type=pa.large_string()))

    assert list(frame.columns) == FIELDS
    assert len(frame) == len(batch)
    for row, payload in enumerate(payloads):
        decoded = json.loads(payload)
        for name in FIELDS:
            text = frame[name].iloc[row]
            text = None if text is None or text != text else text  # pandas shows null as NaN
            assert _agrees(decoded.get(name), text), (payload, name, text)


def test_no_payloads_still_give_every_field_as_a_column():
    """PostgreSQL's empty result arrives untyped (Arrow's null type): the columns must not."""
    frame = _fields(pa.chunked_array([], type=pa.null()))
    assert list(frame.columns) == FIELDS
    assert frame.empty
