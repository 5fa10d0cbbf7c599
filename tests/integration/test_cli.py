"""The command line people use to inspect and compare KPI versions."""

from __future__ import annotations

from revops.cli import main
from tests.helpers import stage


def test_list_names_every_kpi_with_its_versions(capsys):
    main(["kpis", "list"])
    out = capsys.readouterr().out
    assert "lead_to_opportunity_rate.90d" in out
    assert "v2 published, in effect from 2026-01-01, approved by VP Marketing" in out
    assert "v3 proposed, in effect from 2027-01-01" in out
    assert "v2 published, in effect from 2025-01-01, approved by CRO, rewrite of v1" in out  # response SLA


def test_diff_shows_both_rationales_and_the_changed_sql(capsys):
    main(["kpis", "diff", "lead_to_opportunity_rate", "2", "3"])
    out = capsys.readouterr().out
    assert "v2 rationale: Computed from the reconciled stage timeline" in out
    assert "v3 rationale: Proposed by marketing" in out
    assert "+first_mql as (" in out and "--- v2.sql" in out


def test_compare_reports_where_two_versions_differ(small_exports, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    stage(url, small_exports)
    main(["kpis", "compare", "lead_to_opportunity_rate", "1", "2", "--warehouse", url, "--periods", "4"])
    assert "v1 and v2 agree on every segment of 4 months" in capsys.readouterr().out
    main(["kpis", "compare", "lead_to_opportunity_rate", "2", "3", "--warehouse", url, "--periods", "4"])
    out = capsys.readouterr().out
    assert "value_v2" in out and "value_v3" in out and "difference" in out
