"""The pure routing core: matches, rules, priority matrix, silences, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsbot.core.accounts import Account, AccountMap
from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.durations import parse_duration
from opsbot.core.policy import FlapPolicy, Policy
from opsbot.core.rules import DEFAULT_PRIORITIES, Match, Rule, matches, route_alert
from opsbot.core.silences import Silence, active, find_silence

PROD = Account("111122223333", "prod-cim", "prod", team="cim")
NONPROD = Account("333344445555", "nonprod-cim", "nonprod", team="cim")
DEV = Account("555566667777", "dev-data", "dev", team="data")
SANDBOX = Account("444455556666", "sandbox", "sandbox")
ACCOUNTS = AccountMap((PROD, NONPROD, DEV, SANDBOX))
UNMAPPED = "999999999999"
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def make_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "fingerprint": "f" * 32,
        "status": AlertStatus.FIRING,
        "severity": Severity.HIGH,
        "source": "aws.cloudwatch",
        "title": "Disk-Full on i-0abc",
        "account_id": PROD.id,
        "region": "eu-west-1",
        "resource": "arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc",
        "detail_type": "CloudWatch Alarm State Change",
        "alarm_name": "Disk-Full-i-0abc",
        "labels": {"tier": "web-frontend", "team": "cim"},
    }
    values.update(overrides)
    return Alert(**values)


def route(alert: Alert, *rules: Rule, priorities: Any = DEFAULT_PRIORITIES) -> Any:
    return route_alert(alert, ACCOUNTS, rules, priorities)


# --- account map -------------------------------------------------------------


def test_account_map_looks_up_by_id_and_by_name() -> None:
    assert ACCOUNTS.get(PROD.id) == PROD
    assert ACCOUNTS.get("prod-cim") is None
    assert ACCOUNTS.find("prod-cim") == PROD
    assert ACCOUNTS.find(SANDBOX.id) == SANDBOX
    assert ACCOUNTS.find("nope") is None
    assert len(ACCOUNTS) == 4


def test_unmapped_account_is_prod_unless_configured_otherwise() -> None:
    assert ACCOUNTS.environment_of(SANDBOX.id) == "sandbox"
    assert ACCOUNTS.environment_of(UNMAPPED) == "prod"
    assert AccountMap((PROD,), default_environment="nonprod").environment_of(UNMAPPED) == "nonprod"


# --- matching ----------------------------------------------------------------


def check(match: Match, alert: Alert | None = None) -> bool:
    alert = alert or make_alert()
    account = ACCOUNTS.get(alert.account_id)
    return matches(match, alert, account, ACCOUNTS.environment_of(alert.account_id))


def test_empty_match_matches_everything() -> None:
    assert check(Match())
    assert check(Match(), make_alert(account_id=UNMAPPED, labels={}, alarm_name=""))


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (Match(source="aws.cloudwatch"), True),
        (Match(source="aws.guardduty"), False),
        (Match(source="aws.*"), False),  # source is exact, not a glob
        (Match(detail_type="CloudWatch Alarm State Change"), True),
        (Match(detail_type="GuardDuty Finding"), False),
        (Match(environment="prod"), True),
        (Match(environment="nonprod"), False),
        (Match(region="eu-west-1"), True),
        (Match(region="us-east-1"), False),
        (Match(alarm_name="Disk-*"), True),
        (Match(alarm_name="disk-*"), False),  # globs are case-sensitive
        (Match(alarm_name="Disk-Full-i-0ab?"), True),
        (Match(alarm_name="CPU-*"), False),
        (Match(resource="arn:aws:ec2:*:instance/*"), True),
        (Match(resource="arn:aws:rds:*"), False),
    ],
)
def test_each_match_key(match: Match, expected: bool) -> None:
    assert check(match) is expected


def test_account_matches_by_id_or_name() -> None:
    assert check(Match(account=PROD.id))
    assert check(Match(account="prod-cim"))
    assert not check(Match(account="sandbox"))
    assert not check(Match(account=SANDBOX.id))


def test_account_id_matches_unmapped_account() -> None:
    assert check(Match(account=UNMAPPED), make_alert(account_id=UNMAPPED))
    assert not check(Match(account="prod-cim"), make_alert(account_id=UNMAPPED))


def test_severity_is_any_of_the_list() -> None:
    assert check(Match(severity=(Severity.CRITICAL, Severity.HIGH)))
    assert check(Match(severity=(Severity.HIGH,)))
    assert not check(Match(severity=(Severity.CRITICAL, Severity.LOW)))


def test_labels_must_all_be_present_and_match_their_globs() -> None:
    assert check(Match(labels=(("tier", "web-*"),)))
    assert check(Match(labels=(("tier", "web-*"), ("team", "cim"))))
    assert not check(Match(labels=(("tier", "web-*"), ("team", "data"))))
    assert not check(Match(labels=(("owner", "*"),)))  # a missing label never matches


def test_all_given_keys_must_match() -> None:
    assert check(Match(source="aws.cloudwatch", alarm_name="Disk-*", environment="prod"))
    assert not check(Match(source="aws.cloudwatch", alarm_name="Disk-*", environment="dev"))


# --- routing -----------------------------------------------------------------


def test_first_matching_rule_decides() -> None:
    rules = (
        Rule(Match(source="aws.guardduty"), priority="P1", jira_project="SEC"),
        Rule(Match(alarm_name="Disk-*"), priority="P3", slack_channel="#disk"),
        Rule(Match(), priority="P5", slack_channel="#catch-all"),
    )
    decided = route(make_alert(), *rules)
    assert decided.rule_index == 1
    assert (decided.priority, decided.slack_channel, decided.jira_project) == ("P3", "#disk", None)
    assert route(make_alert(source="aws.guardduty"), *rules).jira_project == "SEC"


def test_no_rule_uses_the_defaults() -> None:
    decided = route(make_alert(severity=Severity.CRITICAL))
    assert decided.rule_index is None
    assert decided.priority == "P1"
    assert (decided.environment, decided.team, decided.account_name) == ("prod", "cim", "prod-cim")
    assert decided.ticket is True
    assert (decided.jira_project, decided.slack_channel, decided.runbook) == (None, None, None)
    assert decided.runbook_auto is False


def test_unset_rule_fields_fall_back_to_defaults() -> None:
    decided = route(make_alert(severity=Severity.MEDIUM), Rule(Match(), slack_channel="#ops"))
    assert decided.rule_index == 0
    assert decided.slack_channel == "#ops"
    assert decided.priority == "P3"  # prod matrix
    assert decided.ticket is True


@pytest.mark.parametrize(
    ("account_id", "severity", "expected"),
    [
        (PROD.id, Severity.CRITICAL, "P1"),
        (PROD.id, Severity.LOW, "P4"),
        (NONPROD.id, Severity.CRITICAL, "P2"),
        (NONPROD.id, Severity.LOW, "P5"),
        (DEV.id, Severity.HIGH, "P3"),  # dev falls back to nonprod
        (SANDBOX.id, Severity.CRITICAL, "P2"),  # sandbox falls back to nonprod
        (UNMAPPED, Severity.CRITICAL, "P1"),  # unmapped is prod
    ],
)
def test_default_priority_matrix_per_environment(
    account_id: str, severity: Severity, expected: str
) -> None:
    assert route(make_alert(account_id=account_id, severity=severity)).priority == expected


def test_dev_and_sandbox_use_their_own_matrix_when_given() -> None:
    priorities = {
        **DEFAULT_PRIORITIES,
        "dev": {s: "P5" for s in Severity},
        "nonprod": {s: "P4" for s in Severity},
    }
    dev = route(make_alert(account_id=DEV.id), priorities=priorities)
    sandbox = route(make_alert(account_id=SANDBOX.id), priorities=priorities)
    assert (dev.priority, sandbox.priority) == ("P5", "P4")


def test_partial_matrix_is_completed_from_defaults() -> None:
    priorities = {"prod": {Severity.CRITICAL: "P2"}}
    assert route(make_alert(severity=Severity.CRITICAL), priorities=priorities).priority == "P2"
    assert route(make_alert(severity=Severity.LOW), priorities=priorities).priority == "P4"


def test_unmapped_account_routes_as_prod_with_its_id_as_name() -> None:
    decided = route(make_alert(account_id=UNMAPPED, severity=Severity.HIGH))
    assert (decided.environment, decided.priority) == ("prod", "P2")
    assert (decided.account_name, decided.team) == (UNMAPPED, "")


def test_sandbox_gets_no_ticket_unless_a_rule_says_so() -> None:
    alert = make_alert(account_id=SANDBOX.id)
    assert route(alert).ticket is False
    assert route(alert, Rule(Match(environment="sandbox"), ticket=True)).ticket is True
    assert route(make_alert(account_id=DEV.id)).ticket is True
    assert route(make_alert(), Rule(Match(), ticket=False)).ticket is False


def test_runbook_auto_needs_a_runbook() -> None:
    suggested = route(make_alert(), Rule(Match(alarm_name="Disk-*"), runbook="free-disk-space"))
    automatic = route(make_alert(), Rule(Match(), runbook="free-disk-space", auto=True))
    bare = route(make_alert(), Rule(Match(), auto=True))
    assert (suggested.runbook, suggested.runbook_auto) == ("free-disk-space", False)
    assert (automatic.runbook, automatic.runbook_auto) == ("free-disk-space", True)
    assert bare.runbook_auto is False


def test_policy_route_uses_its_own_accounts_rules_and_priorities() -> None:
    policy = Policy(accounts=ACCOUNTS, rules=(Rule(Match(account="sandbox"), priority="P1"),))
    assert policy.route(make_alert(account_id=SANDBOX.id)).priority == "P1"
    assert policy.route(make_alert(account_id=NONPROD.id, severity=Severity.HIGH)).priority == "P3"


def test_default_policy() -> None:
    policy = Policy.default()
    assert (len(policy.accounts), policy.rules, policy.silences) == (0, (), ())
    assert policy.priorities == DEFAULT_PRIORITIES
    assert policy.reopen_window == timedelta(hours=24)
    assert policy.flapping == FlapPolicy(changes=4, window=timedelta(minutes=30))


# --- silences ----------------------------------------------------------------


def silence(match: Match | None = None, **overrides: Any) -> Silence:
    values: dict[str, Any] = {
        "id": "s1",
        "match": match or Match(),
        "starts_at": NOW - timedelta(hours=1),
        "ends_at": NOW + timedelta(hours=1),
        "reason": "maintenance",
        "created_by": "U0OPS",
    }
    values.update(overrides)
    return Silence(**values)


def test_silence_is_active_from_start_until_just_before_end() -> None:
    quiet = silence()
    assert active(quiet, NOW)
    assert active(quiet, NOW - timedelta(hours=1))
    assert not active(quiet, NOW - timedelta(hours=1, seconds=1))
    assert not active(quiet, NOW + timedelta(hours=1))


def test_silence_without_start_is_active_until_it_ends() -> None:
    assert active(silence(starts_at=None), NOW - timedelta(days=365))
    assert not active(silence(starts_at=None, ends_at=NOW), NOW)


def test_find_silence_returns_first_active_matching_one() -> None:
    alert = make_alert()
    silences = [
        silence(Match(alarm_name="CPU-*"), id="other"),
        silence(Match(alarm_name="Disk-*"), id="expired", ends_at=NOW - timedelta(minutes=1)),
        silence(Match(alarm_name="Disk-*"), id="disk"),
        silence(Match(), id="all"),
    ]
    found = find_silence(alert, PROD, "prod", silences, NOW)
    assert found is not None and found.id == "disk"
    assert find_silence(alert, PROD, "prod", silences[:2], NOW) is None


def test_silence_can_match_on_environment_and_account_name() -> None:
    quiet = [silence(Match(environment="sandbox", account="sandbox"))]
    assert find_silence(make_alert(account_id=SANDBOX.id), SANDBOX, "sandbox", quiet, NOW)
    assert find_silence(make_alert(), PROD, "prod", quiet, NOW) is None


def test_policy_silence_for_uses_the_account_map() -> None:
    policy = Policy(accounts=ACCOUNTS, silences=(silence(Match(environment="dev")),))
    assert policy.silence_for(make_alert(account_id=DEV.id), NOW) is not None
    assert policy.silence_for(make_alert(account_id=DEV.id), NOW + timedelta(hours=2)) is None
    assert policy.silence_for(make_alert(), NOW) is None


# --- durations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 15M ", timedelta(minutes=15)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "-1h", "30m1h", "1h1h", "2 weeks", "1w"])
def test_parse_duration_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration.*like 7d, 24h, 90m") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


def test_parse_duration_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="expected a duration like 24h"):
        parse_duration(3600)  # type: ignore[arg-type]
