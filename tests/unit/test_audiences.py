"""An audience with a mistake in audiences.yaml is refused when it loads (so the scorecard DAG
file fails to parse, visibly), naming the file, the line and the audience."""

from __future__ import annotations

import pytest

from revops.configuration import ConfigError, read_yaml
from revops.scorecards.audiences import audience_from_config

AUDIENCE = """\
audiences:
  executive_weekly:
    title: Executive revenue scorecard
    grain: week
    schedule: "0 7 * * 1"
    timezone: UTC
    kpis: [lead_to_opportunity_rate, win_rate_count]
    scope: {}
    breakdowns: [region]
    completeness: {max_age_hours: 36, on_incomplete: banner}
    deliver_within_hours: 2
    recipients: [ceo@revops-demo.com]
"""


def _load(tmp_path, text: str):
    path = tmp_path / "audiences.yaml"
    path.write_text(text)
    return audience_from_config("executive_weekly", read_yaml(path)["audiences"]["executive_weekly"])


@pytest.mark.parametrize(
    ("mistake", "line", "message"),
    [
        (('"0 7 * * 1"', '"0 7 * * Monday"'), 5, "schedule '0 7 \\* \\* Monday' is not a cron expression"),
        (('"0 7 * * 1"', '"61 7 * * 1"'), 5, "schedule '61 7 \\* \\* 1' is not a cron expression"),
        (("win_rate_count]", "win_rate_cuont]"), 7, "unknown KPI win_rate_cuont"),
        (("timezone: UTC", "timezone: Europe/Londn"), 6, "unknown time zone 'Europe/Londn'"),
        (("grain: week", "grain: fortnight"), 4, "grain 'fortnight' is not one of"),
        (("scope: {}", "scope: {planet: Mars}"), 8, "scope must be one of"),
        (
            ("breakdowns: [region]", "breakdowns: [colour]"),
            9,
            "no KPI of this audience can be broken down by colour",
        ),
        (("recipients:", "recipient:"), 12, "unknown key 'recipient'; did you mean 'recipients'"),
        (("on_incomplete:", "on_incomplet:"), 10, "completeness: unknown key 'on_incomplet'"),
        (("scope: {}", "scope: {}\n    attribution: revenues"), 9, "attribution must be one of"),
    ],
)
def test_a_configuration_mistake_is_refused_naming_file_line_and_audience(tmp_path, mistake, line, message):
    with pytest.raises(ConfigError, match=f"audiences.yaml:{line}: executive_weekly: {message}"):
        _load(tmp_path, AUDIENCE.replace(*mistake))


def test_the_audience_of_that_test_loads_and_survives_a_round_trip(tmp_path):
    audience = _load(tmp_path, AUDIENCE)
    assert audience.deliver_within_hours == 2 and audience.schedule == "0 7 * * 1"
    assert audience_from_config("executive_weekly", audience.as_config()) == audience
