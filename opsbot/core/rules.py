"""Routing rules: which priority, project, channel and runbook an alert gets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from opsbot.core.accounts import Account, AccountMap
from opsbot.core.alert import Alert, Severity

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")

DEFAULT_PRIORITIES: Mapping[str, Mapping[Severity, str]] = {
    "prod": {
        Severity.CRITICAL: "P1",
        Severity.HIGH: "P2",
        Severity.MEDIUM: "P3",
        Severity.LOW: "P4",
        Severity.INFO: "P5",
    },
    "nonprod": {
        Severity.CRITICAL: "P2",
        Severity.HIGH: "P3",
        Severity.MEDIUM: "P4",
        Severity.LOW: "P5",
        Severity.INFO: "P5",
    },
}

# Environments without a matrix of their own borrow another's.
PRIORITY_FALLBACK = {"dev": "nonprod", "sandbox": "nonprod"}

# Sandbox incidents are kept and notified, but raise no ticket unless a rule says so.
NO_TICKET_ENVIRONMENTS = frozenset({"sandbox"})


@dataclass(frozen=True)
class Match:
    """The conditions of a rule or silence; unset fields match anything.

    ``alarm_name``, ``resource`` and label values are glob patterns
    (case-sensitive); ``account`` is an account id or name; ``severity`` is
    any of the listed severities (empty: any); ``fingerprint`` is an alert's
    exact identity (what the card's silence button matches).
    """

    source: str | None = None
    detail_type: str | None = None
    environment: str | None = None
    account: str | None = None
    region: str | None = None
    severity: tuple[Severity, ...] = ()
    alarm_name: str | None = None
    resource: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    fingerprint: str | None = None


@dataclass(frozen=True)
class Rule:
    """One routing rule: a match and the settings it imposes.

    Unset fields (None) fall back to the defaults; ``extra`` keeps the rule's
    keys this version does not know, for later features.
    """

    match: Match
    priority: str | None = None
    jira_project: str | None = None
    slack_channel: str | None = None
    ticket: bool | None = None
    runbook: str | None = None
    auto: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Where and how urgently an alert goes; ``rule_index`` is the deciding rule, if any."""

    priority: str
    environment: str
    team: str
    account_name: str
    jira_project: str | None
    slack_channel: str | None
    ticket: bool
    runbook: str | None
    runbook_auto: bool
    rule_index: int | None


def _same(expected: str | None, actual: str) -> bool:
    return expected is None or expected == actual


def _glob(pattern: str | None, actual: str) -> bool:
    return pattern is None or fnmatchcase(actual, pattern)


def _account_matches(wanted: str | None, alert: Alert, account: Account | None) -> bool:
    if wanted is None or wanted == alert.account_id:
        return True
    return account is not None and wanted in (account.id, account.name)


def _labels_match(labels: tuple[tuple[str, str], ...], actual: Mapping[str, str]) -> bool:
    return all(key in actual and fnmatchcase(actual[key], glob) for key, glob in labels)


def matches(match: Match, alert: Alert, account: Account | None, environment: str) -> bool:
    """Return whether the alert meets every condition the match sets."""
    return (
        _same(match.source, alert.source)
        and _same(match.detail_type, alert.detail_type)
        and _same(match.environment, environment)
        and _account_matches(match.account, alert, account)
        and _same(match.region, alert.region)
        and (not match.severity or alert.severity in match.severity)
        and _glob(match.alarm_name, alert.alarm_name)
        and _glob(match.resource, alert.resource)
        and _labels_match(match.labels, alert.labels)
        and _same(match.fingerprint, alert.fingerprint)
    )


def first_matching_rule(
    rules: Sequence[Rule], alert: Alert, account: Account | None, environment: str
) -> int | None:
    """Return the index of the first rule that matches the alert, or None."""
    for index, rule in enumerate(rules):
        if matches(rule.match, alert, account, environment):
            return index
    return None


def default_priority(
    priorities: Mapping[str, Mapping[Severity, str]], environment: str, severity: Severity
) -> str:
    """Return the matrix priority for a severity in an environment.

    dev and sandbox use nonprod's matrix when they have none; an environment
    with no matrix at all is treated as prod; gaps are filled from
    DEFAULT_PRIORITIES.
    """
    name = environment
    if name not in priorities:
        name = PRIORITY_FALLBACK.get(name, "prod")
    matrix = priorities.get(name) or DEFAULT_PRIORITIES.get(name, DEFAULT_PRIORITIES["prod"])
    if severity in matrix:
        return matrix[severity]
    return DEFAULT_PRIORITIES.get(name, DEFAULT_PRIORITIES["prod"])[severity]


def default_ticket(environment: str) -> bool:
    """Return whether incidents in this environment get a ticket when no rule says (not sandbox)."""
    return environment not in NO_TICKET_ENVIRONMENTS


def route_alert(
    alert: Alert,
    accounts: AccountMap,
    rules: Sequence[Rule],
    priorities: Mapping[str, Mapping[Severity, str]],
) -> Route:
    """Return the route of an alert: the first matching rule decides, defaults fill the rest."""
    account = accounts.get(alert.account_id)
    environment = accounts.environment_of(alert.account_id)
    index = first_matching_rule(rules, alert, account, environment)
    rule = rules[index] if index is not None else Rule(match=Match())
    return Route(
        priority=rule.priority or default_priority(priorities, environment, alert.severity),
        environment=environment,
        team=account.team if account else "",
        account_name=account.name if account else alert.account_id,
        jira_project=rule.jira_project,
        slack_channel=rule.slack_channel,
        ticket=default_ticket(environment) if rule.ticket is None else rule.ticket,
        runbook=rule.runbook,
        runbook_auto=rule.auto and rule.runbook is not None,
        rule_index=index,
    )
