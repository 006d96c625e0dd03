"""A stand-in Jira (Cloud or Data Center) that the real ``jira`` client talks to over HTTP.

Shapes follow Atlassian's REST documentation: platform API v2
(developer.atlassian.com/cloud/jira/platform/rest/v2 and the Data Center
REST reference) for serverInfo, myself, field, priority, project, issue,
comment, transitions, issueLink and search; the enhanced search
``/rest/api/{2,3}/search/jql`` answers ``{"issues", "nextPageToken"?, "isLast"}``
(Cloud only: Cloud answers 410 on the old ``/search``, and Data Center has no
``/search/jql``); Service Management ``POST /rest/servicedeskapi/request``
answers ``{"issueId", "issueKey", "requestTypeId", "serviceDeskId", ...}``.
Errors are ``{"errorMessages": [...], "errors": {field: message}}``.

Faults: ``fail(status, times, retry_after)`` answers the next calls with an
error; ``outage_until`` answers 503 until a moment of ``clock``; ``latency``
delays every answer; ``lose_creates`` applies a create and then drops the
connection (or answers ``lost_status``, as a proxy's 502 would);
``search_lag`` hides issues younger than that from search.

Rate limits and credentials, as Jira Cloud documents them
(developer.atlassian.com/cloud/jira/platform/rate-limiting): with
``rate_limit`` set (requests per second, bursts up to that many), a call over
it answers 429 with ``Retry-After`` (whole seconds) and
``X-RateLimit-Limit``/``X-RateLimit-Remaining``; ``refuse_auth_until`` answers
401 "You are not authenticated." until a moment of ``clock`` (a revoked API
token, then a fixed one). ``rate_limited`` counts the 429s it gave.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

STATUSES = {
    "To Do": {"id": "10000", "statusCategory": {"id": 2, "key": "new", "name": "To Do"}},
    "In Progress": {
        "id": "3",
        "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"},
    },
    "Done": {"id": "10001", "statusCategory": {"id": 3, "key": "done", "name": "Done"}},
}
# (id, name, from statuses, to status)
WORKFLOW = [
    ("11", "Start Progress", ("To Do",), "In Progress"),
    ("21", "Resolve Issue", ("To Do", "In Progress"), "Done"),
    ("31", "Reopen Issue", ("Done",), "To Do"),
]
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
RESOLUTIONS = ["Done", "Won't Fix", "Duplicate", "Cannot Reproduce"]


def jira_time(moment: float) -> str:
    """Return a timestamp as Jira writes it (2026-11-29T08:00:00.000+0000)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    created: float
    updated: float
    comments: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    def status(self) -> str:
        return str(self.fields["status"]["name"])


class FakeJira:
    """The state and the WSGI app of the stand-in."""

    def __init__(
        self,
        *,
        cloud: bool = True,
        user: str = "opsbot@example.com",
        token: str = "jira-token",  # noqa: S107 - the fake's own test credential
        projects: tuple[str, ...] = ("OPS", "SEC", "SD"),
        issue_types: tuple[str, ...] = ("Task", "Bug", "Incident"),
    ) -> None:
        self.cloud, self.user, self.token = cloud, user, token
        self.projects, self.issue_types = projects, issue_types
        self.issues: dict[str, Issue] = {}
        self.calls: list[tuple[str, str]] = []
        self.workflow = list(WORKFLOW)
        # Service Management: desk id -> (project key, project name, [(request type id, name)]).
        self.desks: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
            "1": ("SD", "Service Desk", [("11", "Report an incident"), ("12", "Get IT help")])
        }
        self.lock = threading.Lock()
        self.clock: Callable[[], float] = time.time
        self.outage_until: float | None = None
        self.failures: list[tuple[int, str | None]] = []
        self.latency = 0.0
        self.lose_creates = 0
        self.lost_status: int | None = None
        self.search_lag = 0.0
        self.rate_limit: float | None = None
        self.rate_limited = 0
        self.refuse_auth_until: float | None = None
        self._bucket: tuple[float, float] | None = None  # (tokens, at)
        self.url = ""
        self._seq = 10000

    # -- faults -----------------------------------------------------------------

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` calls with ``status`` (and a Retry-After header)."""
        self.failures += [(status, retry_after)] * times

    def created(self) -> list[Issue]:
        """Return the issues in creation order."""
        return sorted(self.issues.values(), key=lambda i: int(i.id))

    def issue(self, key: str) -> Issue:
        return self.issues[key]

    def resolve_by_person(self, key: str, resolution: str = "Done") -> None:
        """Move an issue to Done as a person would in the Jira UI."""
        issue = self.issues[key]
        issue.fields["status"] = {"name": "Done", **STATUSES["Done"]}
        issue.fields["resolution"] = {"id": "1", "name": resolution}
        issue.updated = self.clock()

    # -- WSGI -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls.append((request.method, request.path))
        response = self._answer(request, environ)
        return response(environ, start_response)

    def _answer(self, request: Request, environ: dict[str, Any]) -> Response:
        if self.latency:
            time.sleep(self.latency)
        refused = self.refuse_auth_until is not None and self.clock() < self.refuse_auth_until
        if refused or not self._authorised(request.headers.get("Authorization", "")):
            return _json({"errorMessages": ["You are not authenticated."]}, 401)
        with self.lock:
            fault = self._limited() or self._fault()
        if fault is not None:
            return fault
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return _json({"errorMessages": ["Unexpected character in the JSON body."]}, 400)
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                with self.lock:
                    answer = handler(request, body, *match.groups())
                if answer is LOST:
                    _drop(environ)
                    return Response(b"", 500)
                return answer
        return _json({"errorMessages": [f"No route {request.method} {request.path}."]}, 404)

    def _authorised(self, header: str) -> bool:
        if header.startswith("Bearer "):
            return not self.cloud and header[7:] == self.token
        if header.startswith("Basic "):
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return (user, secret) == (self.user, self.token)
        return False

    def _limited(self) -> Response | None:
        if self.rate_limit is None:
            return None
        now, rate = self.clock(), self.rate_limit
        tokens, at = self._bucket or (rate, now)
        # 1 ms of slack for the microsecond rounding of timestamps
        tokens = min(rate, tokens + max(0.0, now - at) * rate) + rate / 1000
        if tokens >= 1:
            self._bucket = (tokens - 1 - rate / 1000, now)
            return None
        self._bucket = (tokens - rate / 1000, now)
        self.rate_limited += 1
        wait = str(max(1, int((1 - tokens) / rate + 0.999)))
        headers = {
            "Retry-After": wait,
            "X-RateLimit-Limit": str(rate),
            "X-RateLimit-Remaining": "0",
        }
        return _json({"errorMessages": ["Rate limit exceeded."]}, 429, headers)

    def _fault(self) -> Response | None:
        if self.outage_until is not None and self.clock() < self.outage_until:
            return _json({"errorMessages": ["Service unavailable."]}, 503)
        if not self.failures:
            return None
        status, retry_after = self.failures.pop(0)
        headers = {"Retry-After": retry_after} if retry_after else {}
        return _json({"errorMessages": [f"Fault {status}."]}, status, headers)

    def _routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        api = r"/rest/api/(?:2|3|latest)"
        return [
            ("GET", rf"{api}/serverInfo", self._server_info),
            ("GET", rf"{api}/myself", self._myself),
            ("GET", rf"{api}/field", self._fields),
            ("GET", rf"{api}/priority", self._priorities),
            ("GET", rf"{api}/project/([A-Z0-9_]+)", self._project),
            ("POST", rf"{api}/issue", self._create),
            ("GET", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)", self._get),
            ("PUT", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)", self._update),
            ("POST", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)/comment", self._comment),
            ("GET", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)/comment", self._comments),
            ("GET", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)/transitions", self._transitions),
            ("POST", rf"{api}/issue/([A-Z0-9_]+-\d+|\d+)/transitions", self._transition),
            ("GET", rf"{api}/issueLinkType", self._link_types),
            ("POST", rf"{api}/issueLink", self._link),
            ("GET", rf"{api}/search", self._search_v2),
            ("POST", rf"{api}/search", self._search_v2),
            ("GET", rf"{api}/search/jql", self._search_jql),
            ("POST", rf"{api}/search/jql", self._search_jql),
            ("GET", r"/rest/servicedeskapi/servicedesk", self._service_desks),
            ("GET", r"/rest/servicedeskapi/servicedesk/(\d+)", self._service_desk),
            ("GET", r"/rest/servicedeskapi/servicedesk/(\d+)/requesttype", self._request_types),
            ("POST", r"/rest/servicedeskapi/request", self._request),
        ]

    # -- endpoints --------------------------------------------------------------

    def _server_info(self, request: Request, body: Any) -> Response:
        if self.cloud:
            version, numbers, kind = "1001.0.0-SNAPSHOT", [1001, 0, 0], "Cloud"
        else:
            version, numbers, kind = "9.12.4", [9, 12, 4], "Server"
        return _json(
            {
                "baseUrl": self.url,
                "version": version,
                "versionNumbers": numbers,
                "deploymentType": kind,
                "buildNumber": 100000,
                "serverTitle": "Fake Jira",
            }
        )

    def _myself(self, request: Request, body: Any) -> Response:
        return _json(
            {"accountId": "5b10ac8d82e05b22cc7d4ef5", "emailAddress": self.user, "active": True}
        )

    def _fields(self, request: Request, body: Any) -> Response:
        names = ["summary", "description", "labels", "priority", "status", "resolution"]
        names += ["assignee", "components", "updated", "created", "issuetype", "project"]
        fields = [
            {"id": n, "key": n, "name": n.title(), "custom": False, "clauseNames": [n]}
            for n in names
        ]
        fields.append(
            {
                "id": "customfield_10004",
                "key": "customfield_10004",
                "name": "Impact",
                "custom": True,
                "clauseNames": ["cf[10004]", "Impact"],
            }
        )
        return _json(fields)

    def _priorities(self, request: Request, body: Any) -> Response:
        return _json([{"id": str(i + 1), "name": n} for i, n in enumerate(PRIORITIES)])

    def _project(self, request: Request, body: Any, key: str) -> Response:
        if key not in self.projects:
            return _json({"errorMessages": [f"No project could be found with key '{key}'."]}, 404)
        kinds = [
            {"id": str(10001 + i), "name": name, "subtask": False}
            for i, name in enumerate(self.issue_types)
        ]
        return _json({"id": "10000", "key": key, "name": key.title(), "issueTypes": kinds})

    def _create(self, request: Request, body: Any) -> Any:
        fields = (body or {}).get("fields") or {}
        errors = self._validate(fields)
        if errors:
            return _json({"errorMessages": [], "errors": errors}, 400)
        issue = self._new_issue(fields["project"]["key"], fields)
        if self.lose_creates:
            self.lose_creates -= 1
            if self.lost_status is not None:  # a proxy answered for a create that applied
                return _json({"errorMessages": ["Bad gateway."]}, self.lost_status)
            return LOST
        return _json({"id": issue.id, "key": issue.key, "self": self._self(issue)}, 201)

    def _validate(self, fields: dict[str, Any]) -> dict[str, str]:
        errors = {}
        if (fields.get("project") or {}).get("key") not in self.projects:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "valid issue type is required"
        errors |= _field_errors(fields)
        return errors

    def _new_issue(self, project: str, fields: dict[str, Any]) -> Issue:
        self._seq += 1
        number = sum(1 for i in self.issues.values() if i.key.startswith(project + "-")) + 1
        now = self.clock()
        stored = {
            "summary": fields.get("summary", ""),
            "description": fields.get("description"),
            "labels": list(fields.get("labels") or []),
            "priority": {"name": (fields.get("priority") or {}).get("name", "Medium")},
            "status": {"name": "To Do", **STATUSES["To Do"]},
            "resolution": None,
            "issuetype": fields.get("issuetype") or {"name": "Task"},
            "project": {"key": project},
            "assignee": fields.get("assignee"),
            "components": fields.get("components") or [],
        }
        stored |= {k: v for k, v in fields.items() if k.startswith("customfield_")}
        issue = Issue(str(self._seq), f"{project}-{number}", stored, now, now)
        self.issues[issue.key] = issue
        return issue

    def _self(self, issue: Issue) -> str:
        return f"{self.url}/rest/api/2/issue/{issue.id}"

    def _render(self, issue: Issue) -> dict[str, Any]:
        fields = dict(issue.fields)
        fields["created"], fields["updated"] = jira_time(issue.created), jira_time(issue.updated)
        fields["comment"] = {"comments": issue.comments, "total": len(issue.comments)}
        fields["issuelinks"] = issue.links
        return {"id": issue.id, "key": issue.key, "self": self._self(issue), "fields": fields}

    def _find(self, key: str) -> Issue | None:
        """Return an issue by key or by id (Jira accepts both)."""
        return self.issues.get(key) or next((i for i in self.issues.values() if i.id == key), None)

    def _get(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json(
                {
                    "errorMessages": [
                        "Issue does not exist or you do not have permission to see it."
                    ]
                },
                404,
            )
        return _json(self._render(issue))

    def _update(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        fields = (body or {}).get("fields") or {}
        errors = _field_errors(fields)
        if errors:
            return _json({"errorMessages": [], "errors": errors}, 400)
        issue.fields.update(fields)
        issue.updated = self.clock()
        return Response(status=204)

    def _comment(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        text = (body or {}).get("body")
        if not isinstance(text, str) or not text.strip():
            return _json(
                {"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}, 400
            )
        if len(text) > 32767:
            return _json(
                {"errorMessages": [], "errors": {"comment": "The entered text is too long."}}, 400
            )
        comment = {
            "id": str(len(issue.comments) + 1),
            "body": text,
            "created": jira_time(self.clock()),
        }
        issue.comments.append(comment)
        issue.updated = self.clock()
        return _json({**comment, "self": f"{self._self(issue)}/comment/{comment['id']}"}, 201)

    def _comments(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        comments = issue.comments
        return _json(
            {
                "startAt": 0,
                "maxResults": len(comments),
                "total": len(comments),
                "comments": comments,
            }
        )

    def _available(self, issue: Issue) -> list[tuple[str, str, tuple[str, ...], str]]:
        return [t for t in self.workflow if issue.status() in t[2]]

    def _transitions(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        listed = [
            {"id": tid, "name": name, "to": {"name": to, **STATUSES[to]}, "isAvailable": True}
            for tid, name, _, to in self._available(issue)
        ]
        return _json({"expand": "transitions", "transitions": listed})

    def _transition(self, request: Request, body: Any, key: str) -> Response:
        issue = self._find(key)
        if issue is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        wanted = str(((body or {}).get("transition") or {}).get("id"))
        chosen = next((t for t in self._available(issue) if t[0] == wanted), None)
        if chosen is None:
            return _json(
                {"errorMessages": [f"Transition id '{wanted}' is not valid for this issue."]}, 400
            )
        to = chosen[3]
        issue.fields["status"] = {"name": to, **STATUSES[to]}
        resolution = ((body.get("fields") or {}).get("resolution") or {}).get("name")
        if to == "Done":
            if resolution is not None and resolution not in RESOLUTIONS:
                return _json(
                    {"errorMessages": [], "errors": {"resolution": "Resolution is invalid."}}, 400
                )
            issue.fields["resolution"] = {"id": "1", "name": resolution or "Done"}
        else:
            issue.fields["resolution"] = None
        for entry in ((body.get("update") or {}).get("comment")) or []:
            text = (entry.get("add") or {}).get("body", "")
            issue.comments.append({"id": str(len(issue.comments) + 1), "body": text})
        issue.updated = self.clock()
        return Response(status=204)

    def _link_types(self, request: Request, body: Any) -> Response:
        kinds = [
            {"id": "10003", "name": "Relates", "inward": "relates to", "outward": "relates to"}
        ]
        return _json({"issueLinkTypes": kinds})

    def _link(self, request: Request, body: Any) -> Response:
        inward = self._find(((body or {}).get("inwardIssue") or {}).get("key", ""))
        outward = self._find(((body or {}).get("outwardIssue") or {}).get("key", ""))
        if inward is None or outward is None:
            return _json({"errorMessages": ["Issue does not exist."]}, 404)
        kind = (body.get("type") or {}).get("name")
        inward.links.append({"type": {"name": kind}, "outwardIssue": {"key": outward.key}})
        outward.links.append({"type": {"name": kind}, "inwardIssue": {"key": inward.key}})
        return Response(status=201)

    def _search_v2(self, request: Request, body: Any) -> Response:
        if self.cloud:
            return _json(
                {
                    "errorMessages": [
                        "The requested API has been removed. "
                        "Please migrate to the /rest/api/3/search/jql API."
                    ]
                },
                410,
            )
        jql = _jql_param(request, body)
        found, error = self._search(jql)
        if error:
            return _json({"errorMessages": [error]}, 400)
        return _json(
            {"expand": "", "startAt": 0, "maxResults": 50, "total": len(found), "issues": found}
        )

    def _search_jql(self, request: Request, body: Any) -> Response:
        if not self.cloud:
            return _json({"errorMessages": ["No route."]}, 404)
        jql = _jql_param(request, body)
        found, error = self._search(jql)
        if error:
            return _json({"errorMessages": [error]}, 400)
        return _json({"issues": found, "isLast": True})

    def _search(self, jql: str) -> tuple[list[dict[str, Any]], str | None]:
        try:
            clauses = parse_jql(jql)
        except ValueError as exc:
            return [], str(exc)
        now = self.clock()
        visible = [i for i in self.created() if now - i.created >= self.search_lag]
        return [self._render(i) for i in visible if all(c(i, now) for c in clauses)], None

    def _service_desk(self, request: Request, body: Any, desk_id: str) -> Response:
        return _json(
            {"id": desk_id, "projectId": "10001", "projectName": "Service Desk", "projectKey": "SD"}
        )

    def _service_desks(self, request: Request, body: Any) -> Response:
        """List the desks as Service Management pages them (no desks: JSM is not installed)."""
        if not self.desks:
            return _json({"errorMessages": ["No route."]}, 404)
        values = [
            {"id": i, "projectId": str(10001 + n), "projectName": name, "projectKey": key}
            for n, (i, (key, name, _)) in enumerate(sorted(self.desks.items()))
        ]
        return _json(_page(values))

    def _request_types(self, request: Request, body: Any, desk_id: str) -> Response:
        if desk_id not in self.desks:
            return _json({"errorMessage": f"Service desk {desk_id} does not exist."}, 404)
        values = [
            {"id": i, "name": name, "description": "", "serviceDeskId": desk_id, "groupIds": []}
            for i, name in self.desks[desk_id][2]
        ]
        return _json(_page(values))

    def _request(self, request: Request, body: Any) -> Any:
        values = (body or {}).get("requestFieldValues") or {}
        if not body or not body.get("serviceDeskId") or not body.get("requestTypeId"):
            return _json(
                {
                    "errorMessage": "serviceDeskId and requestTypeId are required",
                    "i18nErrorMessage": {},
                },
                400,
            )
        errors = _field_errors(values)
        if errors:
            return _json({"errorMessage": "; ".join(errors.values()), "i18nErrorMessage": {}}, 400)
        issue = self._new_issue("SD", {**values, "issuetype": {"name": "Incident"}})
        if self.lose_creates:
            self.lose_creates -= 1
            return LOST
        return _json(
            {
                "_expands": [],
                "issueId": issue.id,
                "issueKey": issue.key,
                "requestTypeId": str(body["requestTypeId"]),
                "serviceDeskId": str(body["serviceDeskId"]),
                "requestFieldValues": [{"fieldId": k, "value": v} for k, v in values.items()],
                "currentStatus": {"status": "To Do", "statusCategory": "NEW"},
            },
            201,
        )


LOST = object()


def _page(values: list[Any]) -> dict[str, Any]:
    """Return one page of a Service Management list (``/rest/servicedeskapi/...``)."""
    return {"size": len(values), "start": 0, "limit": 50, "isLastPage": True, "values": values}


def _drop(environ: dict[str, Any]) -> None:
    """Close the connection without answering (the create was applied)."""
    sock = environ["werkzeug.socket"]
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status, headers=headers, mimetype="application/json")


def _field_errors(fields: dict[str, Any]) -> dict[str, str]:
    errors = {}
    summary = fields.get("summary")
    if summary is not None and (not summary or len(summary) > 255 or "\n" in summary):
        errors["summary"] = "Summary must be less than 255 characters."
    description = fields.get("description")
    if isinstance(description, str) and len(description) > 32767:
        errors["description"] = (
            "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
        )
    for label in fields.get("labels") or []:
        if " " in label or len(label) > 255:
            errors["labels"] = f"The label '{label}' contains spaces which is invalid."
    priority = fields.get("priority")
    if priority is not None and (priority or {}).get("name") not in PRIORITIES:
        errors["priority"] = (
            f"Specify a valid priority; '{(priority or {}).get('name')}' does not exist."
        )
    return errors


def _jql_param(request: Request, body: Any) -> str:
    if request.method == "POST":
        return str((body or {}).get("jql", ""))
    return request.args.get("jql", "")


CLAUSE = re.compile(r'\s*(\w+)\s*(=|!=|>=|<=|in)\s*(\([^)]*\)|"[^"]*"|[^\s]+)\s*', re.IGNORECASE)


def _value(raw: str) -> str:
    return raw.strip().strip('"')


def _relative(raw: str) -> float:
    match = re.fullmatch(r"-(\d+)([mhd])", raw)
    if not match:
        raise ValueError(f"Date value '{raw}' for field 'updated' is invalid.")
    return int(match[1]) * {"m": 60, "h": 3600, "d": 86400}[match[2]]


def parse_jql(jql: str) -> list[Callable[[Issue, float], bool]]:
    """Return predicates for the JQL forms opsbot sends (clauses joined by AND)."""
    jql = re.split(r"\s+ORDER\s+BY\s+", jql, flags=re.IGNORECASE)[0]
    clauses = []
    for part in re.split(r"\s+AND\s+", jql, flags=re.IGNORECASE):
        match = CLAUSE.fullmatch(part)
        if not match:
            raise ValueError(f"Error in the JQL Query: '{part}' is not understood.")
        clauses.append(_clause(match[1].lower(), match[2].lower(), match[3]))
    return clauses


def _clause(name: str, op: str, raw: str) -> Callable[[Issue, float], bool]:
    values = [_value(v) for v in raw.strip("()").split(",")] if op == "in" else [_value(raw)]
    if name == "updated" and op == ">=":
        age = _relative(values[0])
        return lambda issue, now: issue.updated >= now - age
    getters: dict[str, Callable[[Issue], list[str]]] = {
        "labels": lambda i: list(i.fields["labels"]),
        "project": lambda i: [i.fields["project"]["key"]],
        "key": lambda i: [i.key],
        "status": lambda i: [i.status()],
        "statuscategory": lambda i: [i.fields["status"]["statusCategory"]["name"]],
    }
    if name not in getters:
        raise ValueError(f"Field '{name}' does not exist or you do not have permission to view it.")
    getter = getters[name]
    lowered = {v.lower() for v in values}
    if op == "!=":
        return lambda issue, now: not lowered & {v.lower() for v in getter(issue)}
    return lambda issue, now: bool(lowered & {v.lower() for v in getter(issue)})


@contextmanager
def serve(fake: FakeJira) -> Iterator[FakeJira]:
    """Serve the fake on 127.0.0.1 on a free port until the block ends."""
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def advance(fake: FakeJira, seconds: float) -> None:
    """Move the fake's clock forward (it starts at real time)."""
    base = fake.clock()
    start = time.time()
    fake.clock = lambda: base + seconds + (time.time() - start)
