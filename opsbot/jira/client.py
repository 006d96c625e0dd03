"""JiraTickets: a thin class over the ``jira`` library, and the pure builders of its requests.

The client is built lazily on first use (in the worker, never in a web
request) with the library's own retries off: the outbox owns retrying and
honours ``Retry-After``, so no worker thread sleeps inside the library.
Search uses the enhanced JQL search (``/rest/api/3/search/jql``) on Jira
Cloud, which removed ``/search``, and ``/rest/api/2/search`` on Server and
Data Center. Everything else uses REST API v2, so descriptions and comments
are wiki markup (v3 would want Atlassian Document Format); the search asks
only for fields that are the same in both versions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from jira import JIRA, JIRAError

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 255
DESCRIPTION_LIMIT = 32_767
SHORT_FINGERPRINT = 12
DEFAULT_PRIORITY_NAMES = {
    "P1": "Highest",
    "P2": "High",
    "P3": "Medium",
    "P4": "Low",
    "P5": "Lowest",
}
SEARCH_FIELDS = ["status", "resolution", "labels", "updated"]
TRUNCATED = "\n\n… (truncated by opsbot)"


class JiraError(Exception):
    """Jira answered with an error status; ``text`` is Jira's own error text."""

    def __init__(self, status: int, text: str, retry_after: float | None = None) -> None:
        super().__init__(f"Jira answered {status}: {text}")
        self.status, self.text, self.retry_after = status, text, retry_after


class JiraUnreachable(Exception):
    """No answer from Jira (connection refused or reset, timeout): the call may have applied."""


@dataclass(frozen=True)
class TicketState:
    """What opsbot needs to know about a ticket: its status, category and resolution."""

    key: str
    status: str
    done: bool
    resolution: str | None
    updated: str = ""


# -- pure request builders -----------------------------------------------------


def short_fingerprint(fingerprint: str) -> str:
    """Return the short fingerprint used in the ticket label."""
    return fingerprint[:SHORT_FINGERPRINT].lower()


def fingerprint_label(fingerprint: str) -> str:
    """Return the label that finds an incident's ticket: ``opsbot-<short fingerprint>``."""
    return f"opsbot-{short_fingerprint(fingerprint)}"


def label_safe(text: str) -> str:
    """Return text usable as a Jira label: no spaces, at most 255 characters."""
    return re.sub(r"\s+", "-", text.strip())[:255]


def ticket_labels(fingerprint: str, environment: str, source: str) -> list[str]:
    """Return the labels of an incident's ticket: opsbot, its fingerprint, environment, source."""
    labels = ["opsbot", fingerprint_label(fingerprint), label_safe(environment), label_safe(source)]
    return list(dict.fromkeys(label for label in labels if label))


def cut_summary(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Return a one-line summary within Jira's limit, cut on a word boundary when possible."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or "opsbot incident"
    head = line[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    if len(cut) < limit // 2:
        cut = head
    return cut.rstrip(" ,;:-") + "…"


def cut_description(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """Return a description within Jira's limit, marked where it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def priority_name(priority: str, names: Mapping[str, str] | None = None) -> str:
    """Return the instance's priority name for an opsbot priority (P1..P5)."""
    table = {**DEFAULT_PRIORITY_NAMES, **(names or {})}
    return table.get(priority, table["P3"])


def _escape(text: str) -> str:
    """Keep table, macro and link markup in alarm text from being read as markup."""
    return re.sub(r"([{}\[\]|])", r"\\\1", text)


def describe(incident: Mapping[str, Any], incident_url: str | None = None) -> str:
    """Return the ticket description (Jira wiki markup): what, where, when, why, links."""
    account = incident.get("account_name") or ""
    account_id = incident.get("account_id") or "-"
    where = f"{account} ({account_id})" if account else account_id
    rows = [
        ("Alarm", incident.get("title", "")),
        ("Account", where),
        ("Environment", incident.get("environment", "")),
        ("Region", incident.get("region") or "-"),
        ("Resource", incident.get("resource") or "-"),
        ("Source", incident.get("source", "")),
        ("Severity / priority", f"{incident.get('severity')} / {incident.get('priority')}"),
        ("First seen", _when(incident.get("first_seen"))),
        ("Last seen", _when(incident.get("last_seen"))),
        ("Count", str(incident.get("count", 1))),
    ]
    lines = ["h3. What fired", ""]
    lines += [f"||{name}|{_escape(str(value)) or '-'}|" for name, value in rows]
    lines += ["", "h3. Reason", "", "{noformat}", str(incident.get("summary") or "-"), "{noformat}"]
    links = []
    if incident.get("console_url"):
        links.append(f"* [AWS console|{incident['console_url']}]")
    if incident_url:
        links.append(f"* [opsbot incident {incident.get('id')}|{incident_url}]")
    if links:
        lines += ["", "h3. Links", "", *links]
    lines += ["", f"_opsbot fingerprint {incident.get('fingerprint')}_"]
    return cut_description("\n".join(lines))


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "-")


def issue_fields(
    incident: Mapping[str, Any],
    *,
    project: str,
    issue_type: str,
    priority: str,
    description: str,
    extra: Mapping[str, Any] | None = None,
    components: Sequence[str] = (),
    assignee: str | None = None,
) -> dict[str, Any]:
    """Return the ``fields`` of a plain Jira issue for an incident."""
    fields: dict[str, Any] = {
        "project": {"key": project},
        "issuetype": {"name": issue_type},
        "summary": cut_summary(str(incident.get("title", ""))),
        "description": description,
        "priority": {"name": priority},
        "labels": ticket_labels(
            str(incident["fingerprint"]),
            str(incident.get("environment", "")),
            str(incident.get("source", "")),
        ),
    }
    if components:
        fields["components"] = [{"name": name} for name in components]
    if assignee:
        fields["assignee"] = {"id": assignee} if _account_id(assignee) else {"name": assignee}
    return {**fields, **(extra or {})}


def _account_id(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{24}|\d+:[0-9a-f-]{36}", value))


def request_body(
    fields: Mapping[str, Any], *, service_desk_id: str, request_type_id: str
) -> dict[str, Any]:
    """Return a Service Management request body from issue fields (project and type dropped)."""
    values = {k: v for k, v in fields.items() if k not in ("project", "issuetype")}
    desk: str | int = int(service_desk_id) if service_desk_id.isdigit() else service_desk_id
    kind: str | int = int(request_type_id) if request_type_id.isdigit() else request_type_id
    return {"serviceDeskId": desk, "requestTypeId": kind, "requestFieldValues": values}


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay a Retry-After header asks for (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def ticket_state(raw: Mapping[str, Any]) -> TicketState:
    """Return the state of a ticket from an issue as the REST API gives it."""
    fields = raw.get("fields") or {}
    status = fields.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key", "")
    resolution = (fields.get("resolution") or {}).get("name")
    return TicketState(
        key=str(raw.get("key", "")),
        status=str(status.get("name", "")),
        done=category == "done",
        resolution=resolution,
        updated=str(fields.get("updated") or ""),
    )


# -- the adapter -----------------------------------------------------------------


class JiraTickets:
    """Creates, finds and updates tickets through the ``jira`` library."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        user: str | None = None,
        cloud: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url, self.user, self.cloud, self.timeout = url, user, cloud, timeout
        self._token = token
        self._client: JIRA | None = None
        self._search_client: JIRA | None = None

    def _build(self, api_version: str) -> JIRA:
        auth: dict[str, Any] = (
            {"basic_auth": (self.user, self._token)} if self.user else {"token_auth": self._token}
        )
        return JIRA(
            server=self.url,
            options={"rest_api_version": api_version},
            max_retries=0,  # the outbox retries, honouring Retry-After; never sleep in here
            timeout=self.timeout,
            **auth,
        )

    def _jira(self) -> JIRA:
        if self._client is None:
            self._client = self._build("2")
            if self.cloud is None:
                self.cloud = self._client.deploymentType == "Cloud"
        return self._client

    def _cloud_search(self) -> JIRA:
        """Return the client for Cloud's enhanced search, which lives at /rest/api/3/search/jql."""
        if self._search_client is None:
            client = self._build("3")
            client.deploymentType = "Cloud"
            self._search_client = client
        return self._search_client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JIRAError as exc:
            raise _error(exc) from None
        except requests.RequestException as exc:
            log.warning("no answer from Jira on %s: %s", what, type(exc).__name__)
            raise JiraUnreachable(f"no answer from Jira on {what}: {type(exc).__name__}") from None

    def connect(self) -> None:
        """Build the client now (it reads the server info once)."""
        self._call("server info", self._jira)

    def create_issue(self, fields: Mapping[str, Any]) -> str:
        """Create a plain issue and return its key."""
        client = self._call("server info", self._jira)
        issue = self._call("create issue", client.create_issue, fields=dict(fields), prefetch=False)
        return str(issue.key)

    def create_request(self, body: Mapping[str, Any]) -> str:
        """Create a Service Management customer request and return its issue key."""
        client = self._call("server info", self._jira)
        made = self._call(
            "create request", client.create_customer_request, fields=dict(body), prefetch=False
        )
        return str(made.raw["issueKey"])

    def search(self, jql: str, limit: int = 50) -> list[TicketState]:
        """Return the tickets a JQL query finds (enhanced search on Cloud)."""
        client = self._call("server info", self._jira)
        if self.cloud:
            searcher = self._call("server info", self._cloud_search)
            found = self._call(
                "search",
                searcher.enhanced_search_issues,
                jql,
                maxResults=limit,
                fields=list(SEARCH_FIELDS),
                json_result=True,
            )
        else:
            found = self._call(
                "search",
                client.search_issues,
                jql,
                maxResults=limit,
                fields=list(SEARCH_FIELDS),
                json_result=True,
            )
        return [ticket_state(raw) for raw in (found or {}).get("issues", [])]

    def state(self, key: str) -> TicketState:
        """Return the current state of a ticket."""
        client = self._call("server info", self._jira)
        issue = self._call("get issue", client.issue, key, fields="status,resolution,updated")
        return ticket_state(issue.raw)

    def comment(self, key: str, text: str) -> None:
        """Add a comment to a ticket."""
        client = self._call("server info", self._jira)
        self._call("comment", client.add_comment, key, cut_description(text))

    def update(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set fields of a ticket (priority, custom fields)."""
        client = self._call("server info", self._jira)
        issue = self._call("get issue", client.issue, key, fields="priority")
        self._call("update issue", issue.update, fields=dict(fields), notify=True)

    def transitions(self, key: str) -> dict[str, str]:
        """Return the transitions available on a ticket, by name (original case) to id."""
        client = self._call("server info", self._jira)
        listed = self._call("transitions", client.transitions, key)
        return {str(t["name"]): str(t["id"]) for t in listed}

    def transition(
        self, key: str, transition_id: str, *, fields: Mapping[str, Any] | None, comment: str
    ) -> None:
        """Move a ticket through a transition, with fields and a comment."""
        client = self._call("server info", self._jira)
        self._call(
            "transition",
            client.transition_issue,
            key,
            transition_id,
            fields=dict(fields) if fields else None,
            comment=cut_description(comment),
        )

    def link(self, link_type: str, inward: str, outward: str) -> None:
        """Link two tickets (``inward`` relates to ``outward``)."""
        client = self._call("server info", self._jira)
        self._call("link", client.create_issue_link, link_type, inward, outward)

    def close(self) -> None:
        """Close the clients' HTTP sessions."""
        for client in (self._client, self._search_client):
            if client is not None:
                client.close()
        self._client = self._search_client = None


def _error(exc: JIRAError) -> JiraError:
    response = exc.response
    headers = response.headers if response is not None else (exc.headers or {})
    status = exc.status_code or (response.status_code if response is not None else 0)
    text = exc.text or (response.text[:500] if response is not None else "") or "no detail"
    return JiraError(int(status), str(text), retry_after_seconds(headers.get("Retry-After")))
