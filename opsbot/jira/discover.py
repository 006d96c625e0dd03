"""``opsbot jira discover``: read from a live Jira what the ``jira:`` settings need.

Prints the server, the project and its issue types, the priorities, the
Service Management desks with their request types, and the transitions
(id and name) available from each status of the project's recent issues, with
the setting each one fills. Read-only: it creates, changes and deletes nothing.
Search and transitions go through ``JiraTickets`` (Cloud's enhanced search,
Data Center's ``/search``); the rest are plain REST v2 reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests
from jira import JIRA, JIRAError

from opsbot.config import Settings
from opsbot.jira.client import DEFAULT_PRIORITY_NAMES, JiraError, JiraTickets, JiraUnreachable
from opsbot.jira.config import REOPEN_TRANSITIONS, RESOLVE_TRANSITIONS

RECENT_ISSUES = 50  # how many of the project's latest issues are read to find its statuses


class DiscoverError(Exception):
    """Jira could not be asked, or refused: one precise sentence, no secret."""


@dataclass
class Discovery:
    """What a Jira instance offers opsbot."""

    server: str
    user: str
    project: str | None = None
    issue_types: list[tuple[str, str]] = field(default_factory=list)
    priorities: list[tuple[str, str]] = field(default_factory=list)
    desks: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)
    transitions: dict[str, dict[str, str]] = field(default_factory=dict)


def connect(settings: Settings) -> tuple[JIRA, JiraTickets]:
    """Return a client for the plain reads and the ticket adapter, from the settings."""
    if not (settings.jira_url and settings.jira_token):
        raise DiscoverError("set OPSBOT_JIRA_URL and OPSBOT_JIRA_TOKEN (and OPSBOT_JIRA_USER)")
    token = settings.jira_token.get_secret_value()
    auth: dict[str, Any] = (
        {"basic_auth": (settings.jira_user, token)} if settings.jira_user else {"token_auth": token}
    )
    client = _ask(
        "server info",
        lambda: JIRA(
            server=settings.jira_url,
            max_retries=0,
            timeout=settings.jira_timeout_seconds,
            **auth,
        ),
    )
    tickets = JiraTickets(
        settings.jira_url,
        token,
        user=settings.jira_user,
        cloud=settings.jira_cloud,
        timeout=settings.jira_timeout_seconds,
    )
    return client, tickets


def discover(client: JIRA, tickets: JiraTickets, project: str | None) -> Discovery:
    """Read the server, project, issue types, priorities, desks and transitions."""
    info = _ask("server info", client.server_info)
    me = _ask("myself", client.myself)
    found = Discovery(
        server=f"{info.get('deploymentType', '?')} {info.get('version', '?')}",
        user=str(me.get("emailAddress") or me.get("name") or me.get("accountId") or "?"),
    )
    found.priorities = [(str(p.id), str(p.name)) for p in _ask("priorities", client.priorities)]
    found.desks = _desks(client)
    if project:
        raw = _ask(f"project {project}", lambda: client.project(project)).raw
        found.project = str(raw["key"])
        found.issue_types = [(str(t["id"]), str(t["name"])) for t in raw.get("issueTypes", [])]
        found.transitions = _transitions(tickets, found.project)
    return found


def _desks(client: JIRA) -> list[tuple[str, str, list[tuple[str, str]]]]:
    try:
        desks = client.service_desks()
    except JIRAError as exc:
        if exc.status_code == 404:  # no Service Management on this instance
            return []
        raise _refused("service desks", exc) from None
    out = []
    for desk in desks:
        kinds = _ask(f"request types of desk {desk.id}", partial(client.request_types, desk))
        label = f"{desk.raw.get('projectKey', '?')} {desk.raw.get('projectName', '')}".strip()
        out.append((str(desk.id), label, [(str(k.id), str(k.name)) for k in kinds]))
    return out


def _transitions(tickets: JiraTickets, project: str) -> dict[str, dict[str, str]]:
    """Return, per status of the project's recent issues, the transitions (name to id) from it."""
    jql = f'project = "{project}" ORDER BY updated DESC'
    by_status: dict[str, dict[str, str]] = {}
    for ticket in _adapter("search", lambda: tickets.search(jql, limit=RECENT_ISSUES)):
        if ticket.status not in by_status:
            by_status[ticket.status] = _adapter(
                f"transitions of {ticket.key}", partial(tickets.transitions, ticket.key)
            )
    return by_status


def _ask(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except JIRAError as exc:
        raise _refused(what, exc) from None
    except requests.RequestException as exc:
        raise DiscoverError(f"no answer from Jira on {what}: {type(exc).__name__}") from None


def _adapter(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except JiraError as exc:
        raise DiscoverError(f"Jira refused {what}: HTTP {exc.status}: {exc.text[:200]}") from None
    except JiraUnreachable as exc:
        raise DiscoverError(str(exc)) from None


def _refused(what: str, exc: JIRAError) -> DiscoverError:
    text = (exc.text or "no detail")[:200]
    return DiscoverError(f"Jira refused {what}: HTTP {exc.status_code}: {text}")


def report(found: Discovery) -> Iterator[str]:
    """Yield the lines to print: each finding, then the setting it fills."""
    yield f"Jira {found.server}, signed in as {found.user}"
    if found.project:
        yield f"\nproject {found.project}: issue types"
        yield from (f"  {i:>8}  {name}" for i, name in found.issue_types)
        yield f"  -> OPSBOT_JIRA_PROJECT={found.project}  OPSBOT_JIRA_ISSUE_TYPE=<a name above>"
    yield "\npriorities"
    yield from (f"  {i:>8}  {name}" for i, name in found.priorities)
    yield "  -> " + _priority_hint({name for _, name in found.priorities})
    yield "\nservice desks (Jira Service Management)"
    if not found.desks:
        yield "  none: use OPSBOT_JIRA_PROJECT and OPSBOT_JIRA_ISSUE_TYPE"
    for desk_id, label, kinds in found.desks:
        yield f"  {desk_id:>8}  {label}"
        yield from (f"  {'':>8}    request type {i:>6}  {name}" for i, name in kinds)
    if found.desks:
        yield "  -> OPSBOT_JIRA_SERVICE_DESK_ID=<desk id>  OPSBOT_JIRA_REQUEST_TYPE_ID=<type id>"
    if found.project:
        yield from _transition_lines(found)


def _priority_hint(names: set[str]) -> str:
    missing = [name for name in DEFAULT_PRIORITY_NAMES.values() if name not in names]
    if not missing:
        return "jira.priorities: the defaults (P1 Highest .. P5 Lowest) all exist"
    return f"jira.priorities: map P1..P5 to names above ({', '.join(missing)} do not exist)"


def _transition_lines(found: Discovery) -> Iterator[str]:
    yield f"\ntransitions of {found.project}, from each status of its recent issues"
    if not found.transitions:
        yield "  no issues yet: create one, then run this again"
    names: set[str] = set()
    for status, transitions in found.transitions.items():
        listed = ", ".join(f"{tid} {name}" for name, tid in transitions.items()) or "none"
        yield f"  from {status}: {listed}"
        names |= set(transitions)
    for kind, defaults in (("resolve", RESOLVE_TRANSITIONS), ("reopen", REOPEN_TRANSITIONS)):
        known = [name for name in defaults if name in names]
        hint = f"the defaults find {known[0]!r}" if known else "set a name from above"
        yield f"  -> jira.transitions.{kind}: {hint}"
