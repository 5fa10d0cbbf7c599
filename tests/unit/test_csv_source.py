import pytest

from revops.configuration import ConfigError
from revops.extract.csv_source import UNEXPECTED_CELLS, read_export


def test_byte_order_mark_and_label_headers_are_handled(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes("\ufeffRecord ID,Email\n1,a@x.io\n2,\n".encode())
    rows = read_export(path, {"Record ID": "hs_object_id", "Email": "email"})
    assert rows == [{"hs_object_id": "1", "email": "a@x.io"}, {"hs_object_id": "2", "email": None}]


def test_cells_beyond_the_header_are_kept_for_quarantine_not_dropped(tmp_path):
    path = tmp_path / "Lead.csv"
    path.write_text("Id,Email\n00Q1,a@x.io,surprise,more\n00Q2\n")
    rows = read_export(path, {})
    assert rows[0][UNEXPECTED_CELLS] == ["surprise", "more"]
    assert rows[1] == {"Id": "00Q2", "Email": None}


def test_an_export_with_unmapped_headers_is_a_clear_error(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("Record ID,Favourite Colour\n1,blue\n")
    with pytest.raises(ConfigError, match="Favourite Colour"):
        read_export(path, {"Record ID": "hs_object_id"})


def test_a_trailing_comma_column_is_dropped_while_empty_and_flagged_when_not(tmp_path):
    path = tmp_path / "Leads.csv"
    path.write_text("Prospect ID,Lead Source,\r\nabc,Google,\r\ndef,google,surprise\r\n")
    rows = read_export(path, {"Prospect ID": "Id", "Lead Source": "LeadSource"})
    assert rows[0] == {"Id": "abc", "LeadSource": "Google"}
    assert rows[1][UNEXPECTED_CELLS] == ["surprise"]


def test_other_columns_can_be_kept_under_their_own_names(tmp_path):
    path = tmp_path / "Leads.csv"
    path.write_text("Prospect ID,Country\nabc,India\n")
    assert read_export(path, {"Prospect ID": "Id"}, keep_other_columns=True) == [
        {"Id": "abc", "Country": "India"}
    ]
