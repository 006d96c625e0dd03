"""The ``jira:`` section of the YAML file and the Jira keys of routing rules, with precise errors.

```yaml
jira:
  priorities: {P1: Highest, P2: High, P3: Medium, P4: Low, P5: Lowest}
  transitions:
    resolve: ["Resolve Issue", "Resolve", "Done", "Close Issue"]
    reopen: ["Reopen Issue", "Reopen", "To Do"]
  resolve_fields: {resolution: {name: Done}}   # fields the resolve transition requires
  wont_fix: ["Won't Fix", "Won't Do"]          # resolutions that are never reopened
  custom_fields: {customfield_10010: {value: AWS}}
  priority_fields:                             # e.g. Impact and Urgency, per priority
    customfield_10004: {P1: {value: Extensive}, P2: {value: Significant}}
  link_type: Relates
  search_lag: 30s                              # how long a create may stay unsearchable
  reconcile_window: 30m                        # how far back reconciliation looks
  incident_url: "https://opsbot.example.com/api/incidents/{id}"
rules:
  - match: {source: aws.guardduty}
    jira_project: SEC
    jira_issue_type: Bug          # or jira_request_type: "12" in Service Management mode
    components: [security]
    jira_assignee: "5b10ac8d82e05b22cc7d4ef5"
    jira_fields: {customfield_10020: {value: Security}}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opsbot.config.yamldoc import Document, KeyPath, document_for, keys
from opsbot.core.durations import parse_duration
from opsbot.core.policy import Policy
from opsbot.jira.client import DEFAULT_PRIORITY_NAMES

KEYS = (
    "priorities",
    "transitions",
    "resolve_fields",
    "wont_fix",
    "custom_fields",
    "priority_fields",
    "link_type",
    "search_lag",
    "reconcile_window",
    "incident_url",
)
TRANSITION_KEYS = ("resolve", "reopen")
RULE_KEYS = ("jira_issue_type", "jira_request_type", "components", "jira_assignee", "jira_fields")
PRIORITY_KEYS = tuple(DEFAULT_PRIORITY_NAMES)
FIELD_ID = re.compile(r"[a-z]+|customfield_\d+")
RESOLVE_TRANSITIONS = ("Resolve Issue", "Resolve", "Done", "Close Issue")
REOPEN_TRANSITIONS = ("Reopen Issue", "Reopen", "Reopened", "Back to To Do", "To Do")
WONT_FIX = ("Won't Fix", "Won't Do", "Declined")
SEARCH_LAG = timedelta(seconds=30)
RECONCILE_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class JiraRoute:
    """Per-route ticket settings from a rule's Jira keys."""

    issue_type: str | None = None
    request_type: str | None = None
    components: tuple[str, ...] = ()
    assignee: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JiraConfig:
    """How opsbot talks to this Jira instance (names differ between instances)."""

    priorities: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITY_NAMES))
    resolve_transitions: tuple[str, ...] = RESOLVE_TRANSITIONS
    reopen_transitions: tuple[str, ...] = REOPEN_TRANSITIONS
    resolve_fields: Mapping[str, Any] = field(default_factory=dict)
    wont_fix: tuple[str, ...] = WONT_FIX
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    priority_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    link_type: str = "Relates"
    search_lag: timedelta = SEARCH_LAG
    reconcile_window: timedelta = RECONCILE_WINDOW
    incident_url: str | None = None
    routes: Mapping[int, JiraRoute] = field(default_factory=dict)

    def route(self, rule_index: int | None) -> JiraRoute:
        """Return the Jira settings of the rule that routed an incident."""
        return self.routes.get(rule_index, JiraRoute()) if rule_index is not None else JiraRoute()

    def fields_for(self, priority: str) -> dict[str, Any]:
        """Return the per-priority custom fields (Impact, Urgency, ...) for a priority."""
        return {
            field_id: values[priority]
            for field_id, values in self.priority_fields.items()
            if priority in values
        }


def _names(doc: Document, value: Any, path: KeyPath) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        doc.error(path, "expected a name or a non-empty list of names")
        return None
    return tuple(value)


def _fields(doc: Document, value: Any, path: KeyPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        doc.error(path, "expected a mapping of Jira field ids to values")
        return {}
    for key in value:
        if not isinstance(key, str) or not FIELD_ID.fullmatch(key):
            doc.error((*path, key), "not a Jira field id (e.g. customfield_10010 or labels)")
    return dict(value)


def _unknown(doc: Document, data: Mapping[str, Any], known: tuple[str, ...], path: KeyPath) -> None:
    keys(doc, data, path, known, ())  # each unknown key with the closest known one


def _text(doc: Document, data: Mapping[str, Any], key: str, path: KeyPath) -> str | None:
    if isinstance(data[key], str) and data[key].strip():
        return str(data[key])
    doc.error((*path, key), "expected text")
    return None


def _priorities(doc: Document, value: Any) -> dict[str, str]:
    names = dict(DEFAULT_PRIORITY_NAMES)
    path: KeyPath = ("jira", "priorities")
    if not isinstance(value, dict):
        doc.error(path, "expected a mapping of P1..P5 to priority names")
        return names
    for key, name in value.items():
        if key not in PRIORITY_KEYS:
            doc.error((*path, key), f"unknown priority; expected one of {', '.join(PRIORITY_KEYS)}")
        elif not isinstance(name, str) or not name.strip():
            doc.error((*path, key), "expected the name of a Jira priority")
        else:
            names[key] = name
    return names


def _priority_fields(doc: Document, value: Any) -> dict[str, dict[str, Any]]:
    path: KeyPath = ("jira", "priority_fields")
    out: dict[str, dict[str, Any]] = {}
    for field_id, per in _fields(doc, value, path).items():
        if not isinstance(per, dict):
            doc.error((*path, field_id), "expected a mapping of P1..P5 to values")
            continue
        for key in per:
            if key not in PRIORITY_KEYS:
                doc.error((*path, field_id, key), "unknown priority")
        out[field_id] = dict(per)
    return out


def _duration(doc: Document, value: Any, path: KeyPath, default: timedelta) -> timedelta:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        doc.error(path, str(exc))
        return default


def _transitions(doc: Document, data: Mapping[str, Any]) -> dict[str, Any]:
    path: KeyPath = ("jira", "transitions")
    transitions = data.get("transitions", {})
    if not isinstance(transitions, dict):
        doc.error(path, "expected a mapping with resolve and reopen")
        return {}
    _unknown(doc, transitions, TRANSITION_KEYS, path)
    out: dict[str, Any] = {}
    for kind in TRANSITION_KEYS:
        if kind in transitions and (names := _names(doc, transitions[kind], (*path, kind))):
            out[f"{kind}_transitions"] = names
    return out


def _section(doc: Document, data: Any) -> dict[str, Any]:
    path: KeyPath = ("jira",)
    if data is None:
        return {}
    if not isinstance(data, dict):
        doc.error(path, "expected a mapping")
        return {}
    _unknown(doc, data, KEYS, path)
    out: dict[str, Any] = {}
    if "priorities" in data:
        out["priorities"] = _priorities(doc, data["priorities"])
    out |= _transitions(doc, data)
    if "wont_fix" in data and (names := _names(doc, data["wont_fix"], (*path, "wont_fix"))):
        out["wont_fix"] = names
    for key in ("resolve_fields", "custom_fields"):
        if key in data:
            out[key] = _fields(doc, data[key], (*path, key))
    if "priority_fields" in data:
        out["priority_fields"] = _priority_fields(doc, data["priority_fields"])
    for key in ("link_type", "incident_url"):
        if key in data and (value := _text(doc, data, key, path)) is not None:
            out[key] = value
    for key, default in (("search_lag", SEARCH_LAG), ("reconcile_window", RECONCILE_WINDOW)):
        if key in data:
            out[key] = _duration(doc, data[key], (*path, key), default)
    return out


def _route(doc: Document, extra: Mapping[str, Any], path: KeyPath) -> JiraRoute | None:
    if not any(key in extra for key in RULE_KEYS):
        return None
    values: dict[str, Any] = {}
    for key, name in (("jira_issue_type", "issue_type"), ("jira_assignee", "assignee")):
        if key in extra and (value := _text(doc, extra, key, path)) is not None:
            values[name] = value
    if "jira_request_type" in extra:
        kind = extra["jira_request_type"]
        if isinstance(kind, int | str) and str(kind).strip():
            values["request_type"] = str(kind)
        else:
            doc.error((*path, "jira_request_type"), "expected a request type id")
    if "components" in extra:
        values["components"] = _names(doc, extra["components"], (*path, "components")) or ()
    if "jira_fields" in extra:
        values["fields"] = _fields(doc, extra["jira_fields"], (*path, "jira_fields"))
    return JiraRoute(**values)


def jira_config(policy: Policy) -> JiraConfig:
    """Return the Jira configuration of a policy; raise ConfigError listing every problem."""
    doc = document_for(policy.extra)
    values = _section(doc, policy.extra.get("jira"))
    routes = {}
    for index, rule in enumerate(policy.rules):
        route = _route(doc, rule.extra, ("rules", index))
        if route is not None:
            routes[index] = route
    doc.check()
    return JiraConfig(**values, routes=routes)
