"""The Sentry webhook parser (pure): resources, actions, identities and the project map.

Payloads: tests/sentry/fixtures/ (Sentry's documented bodies, see the README there).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.sentry import SentryProject, SentryProjects, parse, project_slug, projects_from_config
from opsbot.core.accounts import Account, AccountMap
from opsbot.core.alert import AlertStatus, Severity, make_fingerprint

FIXTURES = Path(__file__).parents[1] / "sentry" / "fixtures"
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ACCOUNTS = AccountMap((Account("444455556666", "web-prod", "prod", team="web"),))


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return copy.deepcopy(value)


ISSUE = "issue-created-sentrydocs.json"
EVENT_ALERT = "event-alert-triggered-sentrydocs.json"
METRIC = "metric-alert-resolved-sentrydocs.json"


def one(resource: str, body: dict[str, Any], projects: SentryProjects | None = None) -> Any:
    alerts = parse(resource, body, projects or SentryProjects(), NOW)
    assert len(alerts) == 1
    return alerts[0]


def test_issue_created_fires_at_its_level_with_the_issue_identity() -> None:
    alert = one("issue", load(ISSUE))

    assert (alert.source, alert.status, alert.severity) == ("sentry", AlertStatus.FIRING, "high")
    assert alert.fingerprint == make_fingerprint("sentry", "issue", "1170820242")
    assert alert.title == "Sentry FRONT-END-9: ReferenceError: blooopy is not defined"
    assert "Error: blooopy is not defined" in alert.summary
    assert (alert.resource, alert.labels["sentry_project"]) == ("front-end", "front-end")
    assert alert.occurred_at == NOW


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("resolved", "resolved", AlertStatus.RESOLVED),
        ("archived", "ignored", AlertStatus.RESOLVED),
        ("unresolved", "unresolved", AlertStatus.FIRING),
        ("assigned", "unresolved", AlertStatus.FIRING),
        ("assigned", "resolved", AlertStatus.RESOLVED),
    ],
)
def test_issue_actions_follow_sentry(action: str, status: str, expected: AlertStatus) -> None:
    body = load(ISSUE)
    body["action"] = action
    body["data"]["issue"]["status"] = status

    assert one("issue", body).status is expected


def test_an_issue_alert_shares_the_identity_of_its_issue() -> None:
    alert = one("event_alert", load(EVENT_ALERT))

    assert alert.fingerprint == make_fingerprint("sentry", "issue", "1117540176")
    assert (
        alert.title
        == "Sentry alert Very Important Alert Rule!: ReferenceError: heck is not defined"
    )
    assert alert.labels["sentry_project"] == "front-end"  # from the event's API url
    assert alert.console_url.startswith("https://sentry.io/organizations/test-org/issues/")


@pytest.mark.parametrize(
    ("action", "status", "severity"),
    [
        ("critical", AlertStatus.FIRING, Severity.CRITICAL),
        ("warning", AlertStatus.FIRING, Severity.MEDIUM),
        ("resolved", AlertStatus.RESOLVED, Severity.MEDIUM),
    ],
)
def test_metric_alert_actions(action: str, status: AlertStatus, severity: Severity) -> None:
    body = load(METRIC)
    body["action"] = action

    alert = one("metric_alert", body)

    assert (alert.status, alert.severity) == (status, severity)
    assert alert.fingerprint == make_fingerprint("sentry", "metric_alert", "7")
    assert alert.title == "Sentry metric alert: Too many errors"
    assert alert.labels["sentry_project"] == "bar"


@pytest.mark.parametrize(
    ("resource", "action"),
    [
        ("installation", "created"),
        ("comment", "created"),
        ("error", "created"),
        ("issue", "ignored-by-someone"),
        ("event_alert", "other"),
        ("metric_alert", "open"),
    ],
)
def test_what_is_not_an_alert_gives_nothing(resource: str, action: str) -> None:
    body = {"action": action, "data": {"issue": {"id": "1"}, "event": {}, "metric_alert": {}}}

    assert parse(resource, body, SentryProjects(), NOW) == []


@pytest.mark.parametrize(
    ("resource", "body", "message"),
    [
        ("issue", {"action": "created"}, "data: must be an object"),
        ("issue", {"action": "created", "data": []}, "data: must be an object"),
        ("issue", {"action": "created", "data": {}}, "data.issue: must be an object"),
        ("issue", {"action": "created", "data": {"issue": {"title": "x"}}}, "data.issue.id"),
        ("event_alert", {"action": "triggered", "data": {"event": {}}}, "neither issue_id"),
        ("metric_alert", {"action": "critical", "data": {"metric_alert": 3}}, "must be an object"),
        (
            "metric_alert",
            {"action": "critical", "data": {"metric_alert": {}}},
            "neither alert_rule",
        ),
    ],
)
def test_malformed_bodies_raise_naming_the_field(
    resource: str, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        parse(resource, body, SentryProjects(), NOW)

    assert message in str(raised.value)


def test_project_slug_of_each_resource() -> None:
    assert project_slug("issue", load(ISSUE)["data"]) == "front-end"
    assert project_slug("event_alert", load(EVENT_ALERT)["data"]) == "front-end"
    assert project_slug("metric_alert", load(METRIC)["data"]) == "bar"
    assert project_slug("event_alert", {"event": {"url": "https://x/none"}}) == ""


def test_a_mapped_project_puts_the_alert_in_its_account() -> None:
    projects = projects_from_config({"projects": {"front-end": {"account": "web-prod"}}}, ACCOUNTS)

    assert one("issue", load(ISSUE), projects).account_id == "444455556666"
    assert one("metric_alert", load(METRIC), projects).account_id == ""  # "bar" is unmapped


def test_project_map_reads_account_environment_and_team() -> None:
    value = {
        "projects": {
            "front-end": {"account": "web-prod"},
            "api": {"account": "999988887777", "team": "payments"},
            "bar": {"environment": "nonprod", "team": "data"},
        }
    }

    projects = projects_from_config(value, ACCOUNTS)

    assert projects.get("front-end") == SentryProject("front-end", "444455556666")
    assert projects.get("api") == SentryProject("api", "999988887777", "", "payments")
    assert projects.get("bar") == SentryProject("bar", "", "nonprod", "data")
    assert projects_from_config(None, ACCOUNTS) == SentryProjects()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "sentry: must be a mapping"),
        ({"project": {}}, "sentry.project: unknown key; did you mean 'projects'?"),
        ({"projects": [1]}, "sentry.projects: must map a project slug"),
        ({"projects": {"web": {}}}, "sentry.projects.web: must be a mapping"),
        ({"projects": {"web": {"acount": "x"}}}, "sentry.projects.web.acount: unknown key"),
        ({"projects": {"web": {"account": "nobody"}}}, "sentry.projects.web.account: 'nobody'"),
        ({"projects": {"web": {"environment": "live"}}}, "web.environment: must be one of prod"),
        ({"projects": {"web": {"team": 3}}}, "sentry.projects.web.team: must be text"),
    ],
)
def test_project_map_errors_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        projects_from_config(value, ACCOUNTS)

    assert message in str(raised.value)
