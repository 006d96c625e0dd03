"""The jira: section of the YAML file and the Jira keys of rules: values and precise errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsbot.cli import main
from opsbot.config import ConfigError, parse_policy
from opsbot.jira.config import RESOLVE_TRANSITIONS, JiraRoute, jira_config

GOOD = """
jira:
  priorities: {P1: Blocker, P2: Critical}
  transitions:
    resolve: ["Close"]
    reopen: Reopen
  resolve_fields: {resolution: {name: Fixed}}
  wont_fix: ["Won't Do"]
  custom_fields: {customfield_10010: {value: AWS}}
  priority_fields:
    customfield_10004: {P1: {value: Extensive}, P2: {value: Significant}}
  search_lag: 1m
  reconcile_window: 2h
  incident_url: "https://ops.example.com/i/{id}"
rules:
  - match: {source: aws.guardduty}
    jira_project: SEC
    jira_issue_type: Bug
    components: [security, guardduty]
    jira_request_type: 12
  - match: {environment: sandbox}
    ticket: false
"""


def test_defaults_without_a_jira_section() -> None:
    config = jira_config(parse_policy(""))
    assert config.resolve_transitions == RESOLVE_TRANSITIONS
    assert config.resolve_transitions == ("Resolve Issue", "Resolve", "Done", "Close Issue")
    assert config.priorities["P1"] == "Highest" and config.priorities["P5"] == "Lowest"
    assert "Won't Fix" in config.wont_fix
    assert config.route(None) == JiraRoute()


def test_a_full_section_is_read() -> None:
    config = jira_config(parse_policy(GOOD))
    assert config.priorities["P1"] == "Blocker" and config.priorities["P3"] == "Medium"
    assert config.resolve_transitions == ("Close",)
    assert config.reopen_transitions == ("Reopen",)
    assert config.resolve_fields == {"resolution": {"name": "Fixed"}}
    assert config.wont_fix == ("Won't Do",)
    assert config.fields_for("P1") == {"customfield_10004": {"value": "Extensive"}}
    assert config.fields_for("P4") == {}
    assert config.search_lag == timedelta(minutes=1)
    assert config.reconcile_window == timedelta(hours=2)
    route = config.route(0)
    assert route == JiraRoute(
        issue_type="Bug", request_type="12", components=("security", "guardduty")
    )
    assert config.route(1) == JiraRoute()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jira: [1]", "jira: expected a mapping"),
        ("jira: {priorities: {P6: Huge}}", "jira.priorities.P6: unknown priority"),
        ("jira: {transitions: {resolve: []}}", "jira.transitions.resolve: expected a name"),
        ("jira: {transitions: {close: [Done]}}", "jira.transitions.close: unknown key"),
        ("jira: {custom_fields: {Team: x}}", "jira.custom_fields.Team: not a Jira field id"),
        ("jira: {search_lag: soon}", "jira.search_lag: 'soon' is not a duration"),
        ("jira: {colour: blue}", "jira.colour: unknown key"),
        (
            "rules:\n  - match: {source: x}\n    components: [1]\n",
            "rules[0].components: expected a name",
        ),
    ],
)
def test_mistakes_are_reported_precisely(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        jira_config(parse_policy(text))
    assert any(message in error for error in caught.value.errors), caught.value.errors


def test_opsbot_check_reports_jira_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yaml"
    path.write_text("jira: {priorities: {P0: Now}}\n")
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_CONFIG": str(path)})
    assert result.exit_code == 2
    assert f"{path}:1: jira.priorities.P0: unknown priority" in result.output
    path.write_text(GOOD)
    result = CliRunner().invoke(main, ["check"], env={"OPSBOT_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
