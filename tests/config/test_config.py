"""Settings from OPSBOT_* variables and the YAML policy file with its precise errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from opsbot.config import (
    ConfigError,
    Settings,
    load_policy,
    match_from_mapping,
    match_to_mapping,
    parse_policy,
    silence_from_row,
)
from opsbot.core.accounts import Account
from opsbot.core.alert import Severity
from opsbot.core.policy import FlapPolicy, Policy
from opsbot.core.rules import DEFAULT_PRIORITIES, Match

EXAMPLE = Path(__file__).parents[2] / "opsbot.example.yaml"
SEVERITIES = "critical, high, medium, low, info"


def write(tmp_path: Path, text: str, name: str = "opsbot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    """Return the file name and the errors loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return str(path), caught.value.errors


# --- the example file --------------------------------------------------------


def test_example_file_loads_into_the_expected_policy() -> None:
    policy = load_policy(EXAMPLE, required=True)
    assert policy.accounts.get("111122223333") == Account(
        "111122223333", "prod-cim", "prod", "cim", "arn:aws:iam::111122223333:role/opsbot"
    )
    assert [(a.name, a.environment) for a in policy.accounts] == [
        ("prod-cim", "prod"),
        ("prod-data", "prod"),
        ("nonprod-cim", "nonprod"),
        ("dev-data", "dev"),
        ("sandbox", "sandbox"),
    ]
    assert policy.accounts.default_environment == "prod"
    first, sandbox, disk, data, health = policy.rules
    assert first.match == Match(source="aws.guardduty", severity=(Severity.CRITICAL, Severity.HIGH))
    assert (first.priority, first.jira_project, first.slack_channel) == ("P1", "SEC", "#sec-alerts")
    assert (sandbox.match, sandbox.ticket) == (Match(environment="sandbox"), False)
    assert (disk.match.alarm_name, disk.runbook, disk.auto) == ("Disk-*", "free-disk-space", False)
    assert data.match.labels == (("tier", "db*"),)
    assert (data.match.account, data.match.resource) == ("prod-data", "arn:aws:rds:*")
    assert health.match.detail_type == "AWS Health Event"
    assert policy.priorities["prod"] == DEFAULT_PRIORITIES["prod"]
    assert policy.priorities["dev"][Severity.CRITICAL] == "P3"
    assert policy.priorities["dev"][Severity.LOW] == "P5"  # completed from nonprod
    lab, freeze = policy.silences
    assert (lab.id, lab.created_by, lab.reason) == ("config-0", "config", "lab")
    assert lab.ends_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert lab.starts_at is None
    assert (freeze.id, freeze.match.account) == ("config-1", "nonprod-cim")
    assert freeze.starts_at == datetime(2029, 12, 24, tzinfo=timezone(timedelta(hours=1)))
    assert policy.reopen_window == timedelta(hours=24)
    assert policy.flapping == FlapPolicy(changes=4, window=timedelta(minutes=30))
    assert policy.slack_roles == {
        "admin": ("U0ADMIN",),
        "approver": ("S0APPROVERS",),
        "operator": ("U0OPS", "U0ONCALL"),
    }
    assert policy.extra == {}


def test_missing_file_is_the_default_policy_unless_required(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    assert load_policy(missing) == Policy.default()
    with pytest.raises(ConfigError) as caught:
        load_policy(missing, required=True)
    assert caught.value.errors == [f"{missing}: configuration file not found"]


def test_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "# nothing yet\n")) == Policy.default()


# --- accepted forms ----------------------------------------------------------


def test_unquoted_account_ids_keep_their_digits() -> None:
    policy = parse_policy(
        """
        accounts:
          111122223333: {name: a, environment: prod}
          011122223333: {name: b, environment: dev}
        """
    )
    assert [a.id for a in policy.accounts] == ["111122223333", "011122223333"]
    assert parse_policy("rules: [{match: {account: 011122223333}}]").rules[0].match.account == (
        "011122223333"
    )


def test_priorities_accept_flow_block_and_priority_first_forms() -> None:
    policy = parse_policy(
        """
        priorities:
          prod: {critical: P2}
          nonprod:
            critical: P3
            high: P4
          sandbox: {P5: [critical, high], P4: medium}
        """
    )
    assert policy.priorities["prod"][Severity.CRITICAL] == "P2"
    assert policy.priorities["prod"][Severity.HIGH] == "P2"  # default kept
    assert policy.priorities["nonprod"][Severity.HIGH] == "P4"
    sandbox = policy.priorities["sandbox"]
    assert (sandbox[Severity.CRITICAL], sandbox[Severity.HIGH], sandbox[Severity.MEDIUM]) == (
        "P5",
        "P5",
        "P4",
    )
    assert sandbox[Severity.LOW] == "P5"  # from the configured nonprod
    assert "dev" not in policy.priorities


def test_single_severity_rule_jira_keys_and_known_sections_are_kept() -> None:
    policy = parse_policy(
        """
        rules:
          - match: {severity: critical, labels: {tier: "web-*"}}
            jira_issue_type: Bug
        escalation: {after: 15m}
        patch_windows: []
        """
    )
    rule = policy.rules[0]
    assert rule.match.severity == (Severity.CRITICAL,)
    assert rule.match.labels == (("tier", "web-*"),)
    assert rule.extra == {"jira_issue_type": "Bug"}
    assert policy.extra == {"escalation": {"after": "15m"}, "patch_windows": []}


def test_silence_times_without_zone_are_utc_and_unquoted_times_work() -> None:
    policy = parse_policy(
        """
        silences:
          - {match: {}, until: 2030-01-01T00:00:00Z}
          - {match: {}, starts: "2029-06-01 12:00", until: 2030-01-01}
        """
    )
    assert policy.silences[0].ends_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert policy.silences[1].starts_at == datetime(2029, 6, 1, 12, tzinfo=UTC)
    assert policy.silences[1].ends_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_anchors_and_merge_keys_work() -> None:
    policy = parse_policy(
        """
        accounts:
          "111122223333": &prod {name: a, environment: prod, team: cim}
          "222233334444": {<<: *prod, name: b}
        """
    )
    assert [(a.name, a.team) for a in policy.accounts] == [("a", "cim"), ("b", "cim")]


def test_duration_settings_and_default_environment() -> None:
    policy = parse_policy(
        "reopen_window: 1h30m\nflapping: {changes: 6}\ndefault_environment: nonprod\n"
    )
    assert policy.reopen_window == timedelta(hours=1, minutes=30)
    assert policy.flapping == FlapPolicy(changes=6, window=timedelta(minutes=30))
    assert policy.accounts.environment_of("999999999999") == "nonprod"


# --- precise errors ----------------------------------------------------------


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    name, errors = errors_of(tmp_path, "accounts:\n  a: [1\nrules: x\n")
    assert errors == [
        f"{name}:3:6: expected ',' or ']', but got ':' (while parsing a flow sequence at line 2)"
    ]


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    name, errors = errors_of(tmp_path, "rules:\n\t- match: {}\n")
    assert len(errors) == 1
    assert errors[0].startswith(f"{name}:2:1: found character '\\t'")


def test_bad_severity_names_line_and_key_path(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        rules:
          - match: {source: aws.guardduty}
          - match: {alarm_name: "Disk-*"}
          - match:
              severity: urgent
          - match: {severity: [critical, severe]}
        """,
    )
    assert errors == [
        f"{name}:5: rules[2].match.severity: 'urgent' is not one of {SEVERITIES}",
        f"{name}:6: rules[3].match.severity[1]: 'severe' is not one of {SEVERITIES}",
    ]


def test_unknown_match_key(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        rules:
          - match:
              source: aws.health
              alarm: "Disk-*"
        """,
    )
    assert errors == [
        f"{name}:4: rules[0].match.alarm: unknown key; did you mean 'alarm_name'? expected one of "
        "source, detail_type, environment, account, region, severity, alarm_name, resource, "
        "labels, fingerprint"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "accounts: [a, b]\n",
            "1: accounts: expected a mapping of account id to account, got a list",
        ),
        ("rules: {match: {}}\n", "1: rules: expected a list of rules, got a mapping"),
        ("silences: soon\n", "1: silences: expected a list of silences, got 'soon'"),
        ("priorities: [P1]\n", "1: priorities: expected a mapping of environment to priorities"),
        ("slack: {roles: [U1]}\n", "1: slack.roles: expected a mapping of role to ids, got a list"),
        ("flapping: 4\n", "1: flapping: expected a mapping, got the number 4"),
        ("- rules\n", "1: expected a mapping of settings, got a list"),
        ("reopen_window: 3600\n", "1: reopen_window: expected a duration like 24h"),
        ("rules:\n  - match: {}\n    ticket: nope\n", "3: rules[0].ticket: expected true or false"),
        ("rules:\n  - match: [x]\n", "2: rules[0].match: expected a mapping, got a list"),
        (
            "rules:\n  - match: {region: [a]}\n",
            "2: rules[0].match.region: expected text, got a list",
        ),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, expected: str) -> None:
    name, errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].startswith(f"{name}:{expected}")


def test_bad_glob_type(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        rules:
          - match: {alarm_name: ["Disk-*"]}
          - match:
              labels:
                tier: 3
                owner: {team: cim}
          - match: {resource: null}
        """,
    )
    assert errors == [
        f"{name}:2: rules[0].match.alarm_name: expected a glob pattern (text), got a list",
        f"{name}:6: rules[1].match.labels.owner: expected a glob pattern (text), got a mapping",
        f"{name}:7: rules[2].match.resource: expected a glob pattern (text), got nothing (null)",
    ]


def test_bad_environment_priority_and_rule_settings(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        accounts:
          "111122223333": {name: a, environment: staging}
        rules:
          - match: {environment: production, account: nobody}
            priority: p1
            jira_project: sec
            auto: true
        priorities:
          qa: {critical: P1}
          prod: {critical: P0, urgent: P1}
        """,
    )
    envs = "prod, nonprod, dev, sandbox"
    assert errors == [
        f"{name}:2: accounts.111122223333.environment: 'staging' is not one of {envs}",
        f"{name}:4: rules[0].match.environment: 'production' is not one of {envs}",
        f"{name}:4: rules[0].match.account: 'nobody' is not a configured account name or id",
        f"{name}:5: rules[0].priority: 'p1' is not one of P1, P2, P3, P4, P5",
        f"{name}:6: rules[0].jira_project: 'sec' is not a Jira project key, like SEC",
        f"{name}:7: rules[0].auto: true needs a runbook to run",
        f"{name}:9: priorities.qa: 'qa' is not one of {envs}",
        f"{name}:10: priorities.prod.critical: 'P0' is not one of P1, P2, P3, P4, P5",
        f"{name}:10: priorities.prod.urgent: 'urgent' is not one of {SEVERITIES}",
    ]


def test_bad_durations(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        reopen_window: 1 day
        flapping:
          changes: 0
          window: 0s
        """,
    )
    assert errors[0].startswith(f"{name}:1: reopen_window: '1 day' is not a duration")
    assert errors[1:] == [
        f"{name}:3: flapping.changes: expected a whole number >= 1, got the number 0",
        f"{name}:4: flapping.window: must be longer than 0s",
    ]


def test_bad_accounts(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        accounts:
          "1111-2222-3333": {name: a, environment: prod}
          "111122223333": {name: prod-cim, environment: prod}
          "222233334444":
            name: prod-cim
            environment: prod
          "333344445555": {name: c, enviroment: prod, role_arn: "arn:aws:iam::x:user/bob"}
        """,
    )
    assert errors[:2] == [
        f"{name}:2: accounts.1111-2222-3333: '1111-2222-3333' is not an AWS account id (12 digits)",
        f"{name}:5: accounts.222233334444.name: 'prod-cim' is already the name of account "
        "111122223333",
    ]
    assert sorted(errors[2:]) == [
        f"{name}:7: accounts.333344445555.enviroment: unknown key; did you mean 'environment'? "
        "expected one of name, environment, team, role_arn",
        f"{name}:7: accounts.333344445555.role_arn: 'arn:aws:iam::x:user/bob' is not an IAM "
        "role ARN",
        f"{name}:7: accounts.333344445555: missing required key 'environment'",
    ]


def test_bad_silences(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        silences:
          - match: {alarm_name: "Test-*"}
            reason: lab
          - {match: {}, until: "next tuesday"}
          - {match: {}, starts: "2030-02-01T00:00:00Z", until: "2030-01-01T00:00:00Z"}
          - {until: "2030-01-01T00:00:00Z", for: ever}
        """,
    )
    assert errors[:3] == [
        f"{name}:2: silences[0]: missing required key 'until'",
        f"{name}:4: silences[1].until: 'next tuesday' is not an ISO 8601 date-time like "
        "2030-01-01T00:00:00Z",
        f"{name}:5: silences[2].until: must be later than starts",
    ]
    assert sorted(errors[3:]) == sorted(
        [
            f"{name}:6: silences[3]: missing required key 'match'",
            f"{name}:6: silences[3].for: unknown key; expected one of match, starts, until, reason",
        ]
    )


def test_bad_slack_roles(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        slack:
          roles:
            admin: [U0ADMIN, [U1]]
            boss: [U0BOSS]
          channel: "#ops"
        """,
    )
    assert errors == [
        f"{name}:3: slack.roles.admin[1]: expected a Slack user or group id, got a list",
        f"{name}:4: slack.roles.boss: 'boss' is not one of viewer, operator, approver, admin",
        f"{name}:5: slack.channel: unknown key; expected one of roles",
    ]


def test_duplicate_keys_and_recursive_aliases(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        reopen_window: 24h
        reopen_window: 12h
        patch_windows: &loop [*loop]
        """,
    )
    assert errors == [
        f"{name}:2: reopen_window: duplicate key",
        f"{name}:3: patch_windows[0]: an alias refers to the value that contains it",
    ]


def test_all_errors_are_collected_in_line_order(tmp_path: Path) -> None:
    name, errors = errors_of(
        tmp_path,
        """\
        accounts:
          "42": {name: x, environment: prod}
        rules:
          - match: {severity: urgent}
          - match: {colour: red}
            priority: P7
        silences:
          - {match: {}}
        reopen_window: never
        """,
    )
    assert [e.split(": ")[0] for e in errors] == [
        f"{name}:2",
        f"{name}:4",
        f"{name}:5",
        f"{name}:6",
        f"{name}:8",
        f"{name}:9",
    ]


# --- stored matches and silences ---------------------------------------------


@dataclass
class Row:
    id: int
    matcher: dict[str, Any]
    ends_at: datetime
    starts_at: datetime | None = None
    reason: str = "deploy"
    created_by: str = "U0OPS"
    extra: dict[str, Any] = field(default_factory=dict)


def test_match_round_trips_through_a_mapping() -> None:
    match = Match(
        source="aws.guardduty",
        account="111122223333",
        severity=(Severity.CRITICAL, Severity.HIGH),
        alarm_name="Disk-*",
        labels=(("tier", "web-*"),),
    )
    assert match_from_mapping(match_to_mapping(match)) == match
    assert match_to_mapping(Match()) == {}


def test_silence_from_row() -> None:
    ends = datetime(2030, 1, 1, tzinfo=UTC)
    quiet = silence_from_row(Row(7, {"alarm_name": "Disk-*", "severity": "high"}, ends))
    assert (quiet.id, quiet.ends_at, quiet.reason, quiet.created_by) == (
        "7",
        ends,
        "deploy",
        "U0OPS",
    )
    assert quiet.match == Match(alarm_name="Disk-*", severity=(Severity.HIGH,))
    with pytest.raises(ConfigError) as caught:
        silence_from_row(Row(8, {"severity": "urgent"}, ends))
    assert caught.value.errors == [f"silence 8: severity: 'urgent' is not one of {SEVERITIES}"]


# --- settings ----------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///opsbot.db"
    assert settings.config == Path("opsbot.yaml")
    assert settings.sns_topic_arns == []
    assert settings.effective_cert_dir == Path(".opsbot") / "sns-certs"
    assert settings.jira_issue_type == "Task"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert (settings.jira_enabled, settings.slack_enabled) == (False, False)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "OPSBOT_DATABASE_URL": "postgresql+psycopg://opsbot@db/opsbot",
        "OPSBOT_CONFIG": str(tmp_path / "ops.yaml"),
        "OPSBOT_SNS_TOPIC_ARNS": " arn:aws:sns:eu-west-1:111122223333:alarms, "
        "arn:aws:sns:us-east-1:444455556666:events.fifo ,",
        "OPSBOT_SNS_CERT_DIR": str(tmp_path / "certs"),
        "OPSBOT_SNS_MAX_AGE_SECONDS": "600",
        "OPSBOT_SLACK_API_URL": "http://127.0.0.1:9999/api",
        "OPSBOT_LOG_LEVEL": "debug",
        "OPSBOT_OUTBOX_POLL_SECONDS": "0.25",
        "OPSBOT_JIRA_URL": "",  # empty means unset
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://opsbot@db/opsbot"
    assert settings.config == tmp_path / "ops.yaml"
    assert settings.sns_topic_arns == [
        "arn:aws:sns:eu-west-1:111122223333:alarms",
        "arn:aws:sns:us-east-1:444455556666:events.fifo",
    ]
    assert settings.effective_cert_dir == tmp_path / "certs"
    assert settings.sns_max_age_seconds == 600
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert (settings.log_level, settings.outbox_poll_seconds) == ("DEBUG", 0.25)
    assert settings.jira_url is None


def test_secrets_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "OPSBOT_API_TOKEN": "api-s3cret",
        "OPSBOT_JIRA_TOKEN": "jira-s3cret",
        "OPSBOT_JIRA_WEBHOOK_SECRET": "hook-s3cret",
        "OPSBOT_SLACK_BOT_TOKEN": "xoxb-s3cret",
        "OPSBOT_SLACK_SIGNING_SECRET": "sign-s3cret",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert not [value for value in secrets.values() if value in shown]
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "api-s3cret"


def test_integrations_are_enabled_only_when_complete() -> None:
    url, token = "https://example.atlassian.net", SecretStr("t")
    assert not Settings(jira_url=url, jira_token=token).jira_enabled
    assert not Settings(jira_url=url, jira_project="OPS").jira_enabled
    assert Settings(jira_url=url, jira_token=token, jira_project="OPS").jira_enabled
    assert not Settings(jira_url=url, jira_token=token, jira_service_desk_id="1").jira_enabled
    desk = Settings(
        jira_url=url, jira_token=token, jira_service_desk_id="1", jira_request_type_id="2"
    )
    assert desk.jira_enabled
    assert not Settings(slack_bot_token=SecretStr("xoxb-1")).slack_enabled
    both = Settings(slack_bot_token=SecretStr("xoxb-1"), slack_signing_secret=SecretStr("s"))
    assert both.slack_enabled


@pytest.mark.parametrize(
    ("name", "value", "field", "problem"),
    [
        ("OPSBOT_SNS_TOPIC_ARNS", "alarms", "sns_topic_arns", "'alarms' is not an SNS topic ARN"),
        ("OPSBOT_LOG_LEVEL", "loud", "log_level", "'loud' is not one of DEBUG, INFO"),
        ("OPSBOT_OUTBOX_MAX_ATTEMPTS", "0", "outbox_max_attempts", "greater than or equal to 1"),
        ("OPSBOT_SNS_MAX_AGE_SECONDS", "soon", "sns_max_age_seconds", "valid integer"),
        ("OPSBOT_JIRA_URL", "jira.example.com", "jira_url", "is not an http(s) URL"),
    ],
)
def test_bad_settings_name_the_field_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPSBOT_JIRA_TOKEN", "jira-s3cret")
    with pytest.raises(ValidationError) as caught:
        Settings()
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert problem in error["msg"]
    assert "jira-s3cret" not in str(caught.value)
