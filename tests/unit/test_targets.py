"""The targets file: read as written, and a malformed row stops the build naming its line."""

from __future__ import annotations

from datetime import date

import pytest

from revops.configuration import ConfigError, file_sha256
from revops.reconcile.targets import load_targets

HEADER = "# quotas\nowner_id,rep,month,target\n"


def _write(tmp_path, rows: str):
    path = tmp_path / "targets.csv"
    path.write_text(HEADER + rows)
    return path


def test_rows_are_read_with_the_month_as_its_first_day(tmp_path):
    path = _write(tmp_path, '005A,Ann,2026-03,10000\n\n005B,"Bo, Jr.",2026-12,2500.5\n')
    targets = load_targets(path)
    assert targets.values.tolist() == [
        ["005A", date(2026, 3, 1), 10000.0],
        ["005B", date(2026, 12, 1), 2500.5],
    ]


def test_no_file_means_no_targets(tmp_path):
    assert load_targets(tmp_path / "targets.csv").empty
    assert file_sha256(tmp_path / "targets.csv") is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("005A,Ann,2026-13,100\n", r":3: month '2026-13' is not YYYY-MM"),
        ("005A,Ann,2026-03,-5\n", r":3: target '-5' is negative"),
        ("005A,Ann,2026-03,lots\n", r":3: target 'lots' is not a number"),
        ("005A,Ann,2026-03,1\n005A,Ann,2026-03,2\n", r":4: a second target for 005A in 2026-03"),
        ("005A,Ann,2026-03\n", r":3: expected 4 values, got 3"),
        (",Ann,2026-03,1\n", r":3: owner_id is empty"),
    ],
)
def test_a_malformed_row_names_its_line(tmp_path, rows, message):
    with pytest.raises(ConfigError, match=f"targets.csv{message}"):
        load_targets(_write(tmp_path, rows))


def test_a_wrong_header_is_refused(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("owner,month,target\n")
    with pytest.raises(ConfigError, match=r"targets.csv:1: header must be owner_id,rep,month,target"):
        load_targets(path)
