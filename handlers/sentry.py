"""Sentry integration-platform webhooks: issues, issue alerts and metric alerts.

Reads the body Sentry POSTs to ``/sentry/webhook`` (``action``, ``data``,
``installation``, ``actor``), by the resource its ``Sentry-Hook-Resource``
header names —
https://docs.sentry.io/organization/integrations/integration-platform/webhooks/:

- ``issue`` (``data.issue``: ``id``, ``shortId``, ``title``, ``culprit``,
  ``level``, ``status``, ``project.slug``, ``permalink``/``web_url``), actions
  created, unresolved, resolved, archived and assigned — webhooks/issues;
- ``event_alert`` (``data.event``: ``issue_id``, ``event_id``, ``title``,
  ``level``, ``url``, ``web_url``; ``data.triggered_rule``), action triggered —
  webhooks/issue-alerts;
- ``metric_alert`` (``data.metric_alert`` with ``alert_rule.id``, ``name``,
  ``projects``; ``data.description_title``, ``description_text``,
  ``web_url``), actions critical, warning and resolved — webhooks/metric-alerts.

Other resources (installation, error, comment, …) and actions are not alerts:
``parse`` returns [] for them.

Identity: an issue and the issue alerts about it share ``("sentry", "issue",
issue id)``, so Sentry's "resolved" resolves the incident an alert opened; a
metric alert is its alert rule.

Account: the project's entry in the YAML key ``sentry.projects``
(``projects_from_config``) names the AWS account (its environment and team
apply) and may set the environment and team itself; an unmapped project has no
account and gets the default environment (prod).

Severity: the Sentry level (fatal critical, error high, warning medium, info
low, debug info; missing medium); metric alerts: critical critical, warning
medium.

Resolve: issue resolved or archived (and assigned while resolved or
archived), metric alert resolved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.awsevents import text
from handlers.base import account_id, bound
from handlers.cost import check_keys
from opsbot.core.accounts import ENVIRONMENTS, AccountMap
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

SOURCE = "sentry"
RESOURCES = ("issue", "event_alert", "metric_alert")
LEVEL_SEVERITY = {
    "fatal": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.LOW,
    "debug": Severity.INFO,
}
ISSUE_ACTIONS = {
    "created": AlertStatus.FIRING,
    "unresolved": AlertStatus.FIRING,
    "resolved": AlertStatus.RESOLVED,
    "archived": AlertStatus.RESOLVED,
}
CLOSED_STATUSES = frozenset({"resolved", "ignored", "archived"})
METRIC_ACTIONS = {
    "critical": (AlertStatus.FIRING, Severity.CRITICAL),
    "warning": (AlertStatus.FIRING, Severity.MEDIUM),
    "resolved": (AlertStatus.RESOLVED, Severity.MEDIUM),
}
PROJECT_KEYS = ("account", "environment", "team")
EVENT_PROJECT_RE = re.compile(r"/projects/[^/]+/([^/?#]+)/events/")
SLUG_LIMIT = 100
TITLE_LIMIT = 200


@dataclass(frozen=True)
class SentryProject:
    """Where a Sentry project's incidents belong: an account id and/or environment and team."""

    slug: str
    account: str = ""
    environment: str = ""
    team: str = ""


@dataclass(frozen=True)
class SentryProjects:
    """The ``sentry.projects`` map of the YAML file, by project slug."""

    projects: Mapping[str, SentryProject] = field(default_factory=dict)

    def get(self, slug: str) -> SentryProject | None:
        """Return the project's entry, or None when the YAML does not map it."""
        return self.projects.get(slug)


def projects_from_config(value: object, accounts: AccountMap) -> SentryProjects:
    """Return the project map of the YAML ``sentry:`` value; raise ValueError naming the key."""
    if value is None:
        return SentryProjects()
    if not isinstance(value, Mapping):
        raise ValueError("sentry: must be a mapping with projects")
    check_keys(value, ("projects",), "sentry")
    projects = value.get("projects")
    if projects is None:
        return SentryProjects()
    if not isinstance(projects, Mapping):
        raise ValueError("sentry.projects: must map a project slug to account/environment/team")
    return SentryProjects({str(s): _project(str(s), v, accounts) for s, v in projects.items()})


def _project(slug: str, value: object, accounts: AccountMap) -> SentryProject:
    where = f"sentry.projects.{slug}"
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{where}: must be a mapping with account, environment and/or team")
    check_keys(value, PROJECT_KEYS, where)
    given = {key: value.get(key) for key in PROJECT_KEYS}
    for key, item in given.items():
        if item is not None and not isinstance(item, str):
            raise ValueError(f"{where}.{key}: must be text")
    account = given["account"] or ""
    if account:
        known = accounts.find(account)
        if known is None and not account_id(account):
            raise ValueError(
                f"{where}.account: {account!r} is neither a 12-digit id nor an account"
            )
        account = known.id if known else account
    environment = given["environment"] or ""
    if environment and environment not in ENVIRONMENTS:
        raise ValueError(f"{where}.environment: must be one of {', '.join(ENVIRONMENTS)}")
    return SentryProject(slug, account, environment, given["team"] or "")


def parse(
    resource: str, body: Mapping[str, Any], projects: SentryProjects, received_at: datetime
) -> list[Alert]:
    """Return the alerts of one webhook body ([] when not an alert); ValueError if malformed."""
    if resource not in RESOURCES:
        return []
    action = text(body, "action", limit=40)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ValueError("data: must be an object")
    if resource == "issue":
        return _issue(action, data, projects, received_at)
    if resource == "event_alert":
        return _event_alert(action, data, projects, received_at)
    return _metric_alert(action, data, projects, received_at)


def project_slug(resource: str, data: Mapping[str, Any]) -> str:
    """Return the slug of the project a webhook is about, or ""."""
    if resource == "issue":
        return text(data, "issue", "project", "slug", limit=SLUG_LIMIT)
    if resource == "event_alert":
        found = EVENT_PROJECT_RE.search(text(data, "event", "url", limit=2000))
        return bound(found.group(1), SLUG_LIMIT) if found else ""
    for path in (("metric_alert", "alert_rule", "projects", 0), ("metric_alert", "projects", 0)):
        slug = text(data, *path, limit=SLUG_LIMIT)
        if slug:
            return slug
    return ""


def _issue(
    action: str, data: Mapping[str, Any], projects: SentryProjects, received_at: datetime
) -> list[Alert]:
    issue = data.get("issue")
    if not isinstance(issue, dict):
        raise ValueError("data.issue: must be an object")
    issue_id = text(issue, "id", limit=64)
    if not issue_id:
        raise ValueError("data.issue.id: missing")
    if action == "assigned":
        closed = text(issue, "status", limit=40) in CLOSED_STATUSES
        status = AlertStatus.RESOLVED if closed else AlertStatus.FIRING
    elif action in ISSUE_ACTIONS:
        status = ISSUE_ACTIONS[action]
    else:
        return []
    short_id = text(issue, "shortId", limit=64)
    title = text(issue, "title", limit=300) or text(issue, "culprit", limit=300) or issue_id
    assignee = text(issue, "assignedTo", "name", limit=100) or text(
        issue, "assignedTo", "email", limit=100
    )
    return [
        _alert(
            ("issue", issue_id),
            status,
            _level(text(issue, "level", limit=20)),
            f"Sentry {short_id or issue_id}: {title}",
            summary=_lines(
                ("Culprit", text(issue, "culprit", limit=500)),
                ("Error", text(issue, "metadata", "value", limit=1000)),
                ("Events", text(issue, "count", limit=20)),
                ("Users", text(issue, "userCount", limit=20)),
                ("First seen", text(issue, "firstSeen", limit=40)),
                ("Status", f"{text(issue, 'status', limit=40)} ({action})"),
            ),
            slug=project_slug("issue", data),
            projects=projects,
            link=text(issue, "permalink", limit=2000) or text(issue, "web_url", limit=2000),
            labels={"short_id": short_id, "action": action, "assigned_to": assignee},
            received_at=received_at,
            raw=data,
        )
    ]


def _event_alert(
    action: str, data: Mapping[str, Any], projects: SentryProjects, received_at: datetime
) -> list[Alert]:
    event = data.get("event")
    if not isinstance(event, dict):
        raise ValueError("data.event: must be an object")
    if action != "triggered":
        return []
    issue_id = text(event, "issue_id", limit=64)
    event_id = text(event, "event_id", limit=64)
    if not issue_id and not event_id:
        raise ValueError("data.event: has neither issue_id nor event_id")
    rule = text(data, "triggered_rule", limit=200)
    title = text(event, "title", limit=300) or text(event, "message", limit=300) or "Sentry event"
    return [
        _alert(
            ("issue", issue_id) if issue_id else ("event", event_id),
            AlertStatus.FIRING,
            _level(text(event, "level", limit=20)),
            f"Sentry alert {rule}: {title}" if rule else f"Sentry alert: {title}",
            summary=_lines(
                ("Rule", rule),
                ("Culprit", text(event, "culprit", limit=500)),
                ("Error", text(event, "metadata", "value", limit=1000)),
                ("Event", event_id),
                ("At", text(event, "datetime", limit=40)),
            ),
            slug=project_slug("event_alert", data),
            projects=projects,
            link=text(event, "web_url", limit=2000),
            labels={"rule": rule, "event_id": event_id, "action": action},
            received_at=received_at,
            raw=data,
        )
    ]


def _metric_alert(
    action: str, data: Mapping[str, Any], projects: SentryProjects, received_at: datetime
) -> list[Alert]:
    metric = data.get("metric_alert")
    if not isinstance(metric, dict):
        raise ValueError("data.metric_alert: must be an object")
    if action not in METRIC_ACTIONS:
        return []
    rule_id = text(metric, "alert_rule", "id", limit=64) or text(metric, "id", limit=64)
    if not rule_id:
        raise ValueError("data.metric_alert: has neither alert_rule.id nor id")
    name = text(metric, "alert_rule", "name", limit=200) or text(metric, "title", limit=200)
    status, severity = METRIC_ACTIONS[action]
    return [
        _alert(
            ("metric_alert", rule_id),
            status,
            severity,
            f"Sentry metric alert: {name or rule_id}",
            summary=_lines(
                ("Alert", text(data, "description_title", limit=300)),
                ("Detail", text(data, "description_text", limit=1000)),
                ("Query", text(metric, "alert_rule", "query", limit=500)),
            ),
            slug=project_slug("metric_alert", data),
            projects=projects,
            link=text(data, "web_url", limit=2000),
            labels={"alert_rule": rule_id, "action": action},
            received_at=received_at,
            raw=data,
        )
    ]


def _alert(
    identity: tuple[str, str],
    status: AlertStatus,
    severity: Severity,
    title: str,
    *,
    summary: str,
    slug: str,
    projects: SentryProjects,
    link: str,
    labels: Mapping[str, str],
    received_at: datetime,
    raw: Mapping[str, Any],
) -> Alert:
    project = projects.get(slug)
    return Alert(
        fingerprint=make_fingerprint(SOURCE, *identity),
        status=status,
        severity=severity,
        source=SOURCE,
        title=bound(title, TITLE_LIMIT),
        summary=summary,
        account_id=project.account if project else "",
        resource=slug,
        labels={k: v for k, v in {"sentry_project": slug, **labels}.items() if v},
        console_url=link if link.startswith("https://") else "",
        occurred_at=received_at,
        raw=dict(raw),
    )


def _level(level: str) -> Severity:
    return LEVEL_SEVERITY.get(level.lower(), Severity.MEDIUM)


def _lines(*pairs: tuple[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in pairs if value)
