from datetime import date

import pytest

from revops.kpis.engine import every_dimension_sql, every_period_sql, render_sql
from revops.kpis.registry import load_registry
from revops.kpis.scope import Scope

REGISTRY = load_registry()


@pytest.mark.parametrize(
    "kpi_version",
    [(k.id, v) for k in REGISTRY.values() for v in k.versions if v.status == "published"],
    ids=lambda kv: f"{kv[0]}-v{kv[1].version}",
)
def test_published_sql_never_changes(kpi_version):
    """A published version is immutable: change its meaning with a new version instead."""
    _kpi_id, version = kpi_version
    assert version.pinned_sha256 == version.sql_sha256, (
        f"{version.sql_path} changed after publication; add v{version.version + 1} instead"
    )


def test_the_version_in_effect_is_the_latest_published_before_the_period():
    kpi = REGISTRY["win_rate_count"]
    assert kpi.version_for(date(2026, 3, 2)).version == 1
    assert kpi.version_for(date(2024, 12, 30)) is None  # before any version took effect
    assert kpi.version_for(date(2026, 3, 2), version=1).version == 1


def test_only_whitelisted_names_reach_the_sql_text():
    version = REGISTRY["win_rate_count"].versions[0]
    hostile = "EMEA'; drop table staging.opportunities; --"
    sql = render_sql(version.sql, "region", Scope("region", hostile))
    assert hostile not in sql
    assert "and region = :scope_value" in sql
    with pytest.raises(ValueError, match="unknown dimension"):
        render_sql(version.sql, "region; drop table x", Scope())
    with pytest.raises(ValueError, match="unknown dimension"):
        every_dimension_sql(version.sql, ("total", "region; drop table x"), Scope())
    with pytest.raises(ValueError, match="unknown scope column"):
        Scope("email", "x")


def test_one_statement_for_every_period_reads_each_bound_from_its_period_row():
    statement = (
        "select segment, count(*) as numerator from t where day >= :period_start and day < :period_end"
        " and at >= :period_start_at and at < :period_end_at and day::date < :as_of group by segment"
    )
    sql = every_period_sql(statement, 2)
    assert ":period_start_0, :period_end_0, :period_start_at_0, :period_end_at_0" in sql
    assert ":period_start_1, :period_end_1, :period_start_at_1, :period_end_at_1" in sql
    assert (
        "day >= kpi_period.period_start and day < kpi_period.period_end"
        " and at >= kpi_period.period_start_at and at < kpi_period.period_end_at"
    ) in sql
    assert "day::date < :as_of" in sql  # a cast and the other parameters are left alone


def test_variants_are_kpis_of_their_own_and_only_use_versions_that_take_their_parameters():
    base, ninety = REGISTRY["lead_to_opportunity_rate"], REGISTRY["lead_to_opportunity_rate.90d"]
    assert ninety.parameters["window_days"] == 90 and ninety.maturity_days == 90
    assert [v.version for v in base.usable_versions()] == [1, 2, 3, 4, 5]
    assert [v.version for v in ninety.usable_versions()] == [2, 3, 4, 5]  # v1 is 30 days by its SQL
    assert ninety.version_for(date(2025, 6, 2)) is None  # before v2 took effect
    assert "funnel_stage_conversion" not in REGISTRY  # a family of variants only
    assert REGISTRY["funnel_stage_conversion.mql_to_sal"].parameters == {
        "from_stage": "mql",
        "to_stage": "sal",
        "window_days": 14,
    }
    # benchmarks group the catalogue by the definition each KPI comes from
    assert base.family_id == ninety.family_id == "lead_to_opportunity_rate"
    assert REGISTRY["funnel_stage_conversion.mql_to_sal"].family_id == "funnel_stage_conversion"


def test_a_version_published_after_its_effective_date_restates_the_periods_between():
    kpi = REGISTRY["lead_to_opportunity_rate"]
    new, old = kpi.restatement(date(2026, 9, 21))
    assert (new.version, old.version) == (2, 1)
    assert kpi.restatement(date(2026, 11, 2)) is None  # reported with v2 from the start
    assert kpi.restatement(date(2025, 9, 1)) is None  # v1's time


def test_a_version_that_only_rewrote_a_query_restates_nothing():
    # v2 rewrote v1 and v3 rewrote v2, each published in December 2026 back to 2025.
    funnel = REGISTRY["funnel_stage_conversion.mql_to_sal"]
    assert funnel.version_for(date(2026, 10, 26)).version == 3
    assert funnel.numbers_of(funnel.version_for(date(2026, 10, 26))).version == 1
    assert funnel.restatement(date(2026, 10, 26)) is None
    lead = REGISTRY["lead_to_opportunity_rate"]
    assert lead.numbers_of(lead.versions[1]).version == 2  # a change of meaning gives its own


def test_a_rewrite_of_a_version_that_restated_still_says_so(tmp_path):
    """v2 changed the meaning and was published late; v3 only rewrote v2's query."""
    versions = (
        "  - {version: 2, status: published, effective_from: 2026-01-01, published_on: 2026-10-30,\n"
        "     rationale: x, approved_by: CRO}\n"
        "  - {version: 3, status: published, effective_from: 2026-01-01, published_on: 2026-12-03,\n"
        "     rationale: x, approved_by: CRO, rewrite_of: 2}\n"
    )
    kpi = _load(tmp_path, GOOD_DEFINITION + versions, sql_files=3)
    new, old = kpi.restatement(date(2026, 9, 21))
    assert (new.version, old.version) == (2, 1)  # by v2, as before v3 was written
    assert kpi.restatement(date(2026, 11, 2)) is None  # v2 was in effect when it was reported


def test_every_table_a_kpi_requires_is_a_warehouse_table():
    from revops.warehouse.schema import metadata

    required = {table for kpi in REGISTRY.values() for table in kpi.requires}
    assert "staging.working_hours" in required
    assert required <= set(metadata.tables)


GOOD_DEFINITION = (
    "id: broken_kpi\nname: x\ndescription: x\nowner: x\nperspective: financial\nunit: percent\n"
    "direction: higher_is_better\nkind: rate\nminimum_volume: 1\n"
    "versions:\n  - {version: 1, status: published, effective_from: 2025-01-01, rationale: x,\n"
    "     approved_by: CRO}\n"
)


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (
            ("approved_by: CRO", "approved_by_: CRO"),
            r":12: version: unknown key 'approved_by_'; did you mean 'approved_by'",
        ),
        (
            ("rationale: x,\n     approved_by: CRO}", "rationale: x}"),
            r":11: published version 1 needs approved_by",
        ),
        (("perspective:", "perspectve:"), r":5: unknown key 'perspectve'; did you mean 'perspective'\?"),
        (("owner: x\n", ""), r":1: missing 'owner'"),
        (("kind: rate", "kind: rat"), r":8: kind must be one of"),
        (
            ("unit: percent", "unit: pct"),
            r":6: unit must be one of \('percent', 'currency', 'days', 'hours', 'ratio', 'count'\)",
        ),
        (("direction: higher_is_better", "direction: up"), r":7: direction must be one of"),
        (
            ("minimum_volume: 1", "minimum_volume: 1\nrequires: [working_hours]"),
            r":10: not a staging table: working_hours",
        ),
        (
            ("approved_by: CRO}", "approved_by: CRO, rewrite_of: 1}"),
            r":11: version 1: rewrite_of must name an earlier version",
        ),
        (
            ("unit: percent", "unit: [percent"),
            r":7: not valid YAML: .*expected .,. or .\].*\(while parsing a flow sequence\)",
        ),
    ],
)
def test_a_definition_with_a_mistake_is_rejected_naming_the_file_and_line(tmp_path, mistake, message):
    from revops.configuration import ConfigError
    from revops.kpis.registry import load_kpis

    folder = tmp_path / "broken_kpi"
    folder.mkdir()
    (folder / "v1.sql").write_text("select 1")
    (folder / "definition.yaml").write_text(GOOD_DEFINITION.replace(*mistake))
    with pytest.raises(ConfigError, match=f"broken_kpi/definition.yaml{message}"):
        load_kpis(folder / "definition.yaml")


def _load(tmp_path, definition: str, sql_files: int = 1):
    from revops.kpis.registry import load_kpis

    folder = tmp_path / "broken_kpi"
    folder.mkdir()
    for number in range(1, sql_files + 1):
        (folder / f"v{number}.sql").write_text("select 1")
    (folder / "definition.yaml").write_text(definition)
    (kpi,) = load_kpis(folder / "definition.yaml")
    return kpi


def test_the_good_definition_of_that_test_loads(tmp_path):
    from revops.kpis.registry import load_kpis

    folder = tmp_path / "broken_kpi"
    folder.mkdir()
    (folder / "v1.sql").write_text("select 1")
    (folder / "definition.yaml").write_text(GOOD_DEFINITION)
    assert [kpi.id for kpi in load_kpis(folder / "definition.yaml")] == ["broken_kpi"]
