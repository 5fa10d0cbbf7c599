from datetime import date

import pytest

from revops.kpis.engine import render_sql
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
    sql = render_sql(version, "region", Scope("region", hostile))
    assert hostile not in sql
    assert "and region = :scope_value" in sql
    with pytest.raises(ValueError, match="unknown dimension"):
        render_sql(version, "region; drop table x", Scope())
    with pytest.raises(ValueError, match="unknown scope column"):
        Scope("email", "x")
