"""An audience with a mistake in audiences.yaml is refused when it loads, naming the audience."""

from __future__ import annotations

import pytest

from revops.configuration import ConfigError, read_config
from revops.scorecards.audiences import audience_from_config

EXECUTIVE = read_config("audiences")["audiences"]["executive_weekly"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "0 7 * * Monday"}, "schedule '0 7 \\* \\* Monday' is not a cron"),
        ({"schedule": "61 7 * * 1"}, "schedule '61 7 \\* \\* 1' is not a cron"),
        ({"kpis": ["win_rate_cuont"]}, "unknown KPI win_rate_cuont"),
        ({"timezone": "Europe/Londn"}, "unknown time zone 'Europe/Londn'"),
        ({"grain": "fortnight"}, "grain 'fortnight' is not one of"),
        ({"scope": {"planet": "Mars"}}, "scope must be one of"),
    ],
)
def test_a_configuration_mistake_is_refused_with_the_audience_named(change, message):
    with pytest.raises(ConfigError, match=f"^audiences.yaml: executive_weekly: {message}"):
        audience_from_config("executive_weekly", {**EXECUTIVE, **change})


def test_the_configured_audience_loads_with_its_delivery_deadline():
    audience = audience_from_config("executive_weekly", EXECUTIVE)
    assert audience.deliver_within_hours == 2
    assert audience_from_config("executive_weekly", audience.as_config()) == audience
