"""The write API: what operators do from Slack, for scripts and other tools.

Acknowledge, resolve, assign and comment on an incident; create, list and
expire silences; request a runbook run; list and retry dead outbox rows. Each
view checks the token's scope, validates its input against the body schema
the OpenAPI document publishes, and calls the one implementation Slack calls
too (``opsbot.incidents.actions``, ``opsbot.runbooks.service``,
``opsbot.db.store.replay_outbox``), which audits it with the actor
``api:<token name>``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from jsonschema import Draft202012Validator

from handlers.base import json_depth_within, storable
from opsbot.audit import audit
from opsbot.core.durations import parse_duration
from opsbot.db import store
from opsbot.db.models import OutboxRow, SilenceRow
from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runbooks.service import run_json
from opsbot.web.api import incident_json, iso_time, path_id
from opsbot.web.errors import ApiError
from opsbot.web.openapi import body_schema
from opsbot.web.request import Principal, authenticate, runtime

log = logging.getLogger(__name__)

bp = Blueprint("api_write", __name__, url_prefix="/api")

# RFC 3339 section 5.6 date-time (with "t"/"z" in either case; an offset is required).
RFC3339_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


@bp.post("/incidents/<raw_id>/acknowledge")
def acknowledge(raw_id: str) -> Response:
    """Acknowledge an incident."""
    who = authenticate(request, "write")
    incident_id = path_id(raw_id, "incident")
    read_body("AcknowledgeRequest", required=False)
    return _incident_action(who, actions.acknowledge, incident_id)


@bp.post("/incidents/<raw_id>/resolve")
def resolve(raw_id: str) -> Response:
    """Resolve an incident, with an optional note."""
    who = authenticate(request, "write")
    incident_id = path_id(raw_id, "incident")
    note = read_body("ResolveRequest", required=False).get("note", "").strip()
    return _incident_action(who, actions.resolve, incident_id, note=note)


@bp.post("/incidents/<raw_id>/assign")
def assign(raw_id: str) -> Response:
    """Make someone the owner of an incident."""
    who = authenticate(request, "write")
    incident_id = path_id(raw_id, "incident")
    owner = _text(read_body("AssignRequest"), "owner")
    return _incident_action(who, actions.assign, incident_id, owner=owner)


@bp.post("/incidents/<raw_id>/comment")
def comment(raw_id: str) -> Response:
    """Add a comment to an incident's Slack thread and Jira ticket."""
    who = authenticate(request, "write")
    incident_id = path_id(raw_id, "incident")
    text = _text(read_body("CommentRequest"), "text")
    return _incident_action(who, actions.comment, incident_id, text=text)


def _incident_action(
    who: Principal, action: Callable[..., actions.Outcome], incident_id: int, **given: str
) -> Response:
    """Run one ``opsbot.incidents.actions`` function as the token, in one transaction."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            outcome = action(session, incident_id, actor=who.actor, now=rt.clock(), **given)
            assert outcome.incident is not None
            body = {
                "changed": outcome.changed,
                "message": outcome.message,
                "incident": incident_json(outcome.incident),
            }
    except actions.ActionError as exc:  # the only refusal: there is no such incident
        raise ApiError("not_found", str(exc), 404) from None
    log.info("API token %s: %s", who.name, outcome.message)
    return jsonify(body)


@bp.get("/silences")
def list_silences() -> Response:
    """Return the stored silences in force."""
    authenticate(request, "read")
    rt = runtime()
    with transaction(rt.sessions) as session:
        rows = store.active_silence_rows(session, rt.clock())
        return jsonify(silences=[silence_json(row) for row in rows])


@bp.post("/silences")
def create_silence() -> tuple[Response, int]:
    """Create a silence with its author and comment; it applies at once."""
    who = authenticate(request, "write")
    body = read_body("SilenceRequest")
    rt = runtime()
    now = rt.clock()
    starts_at, ends_at = _silence_window(body, now)
    try:
        with transaction(rt.sessions) as session:
            silence_id = actions.create_silence(
                session, body["matcher"], ends_at=ends_at, reason=_text(body, "comment"),
                actor=who.actor, now=now, starts_at=starts_at, author=_text(body, "author"),
                accounts=rt.policy.accounts,
            )  # fmt: skip
            row = session.get(SilenceRow, silence_id)
            assert row is not None
            answer = silence_json(row)
    except actions.ActionError as exc:
        raise ApiError("invalid_body", str(exc)[:300]) from None
    rt.silences.invalidate()
    log.info("API token %s created silence %s", who.name, silence_id)
    return jsonify(answer), 201


@bp.post("/silences/<raw_id>/expire")
def expire_silence(raw_id: str) -> Response:
    """End a silence now (it is kept, with its history)."""
    who = authenticate(request, "write")
    silence_id = path_id(raw_id, "silence")
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            outcome = actions.end_silence(session, silence_id, actor=who.actor, now=rt.clock())
    except actions.ActionError as exc:
        raise ApiError("not_found", str(exc), 404) from None
    rt.silences.invalidate()
    log.info("API token %s: %s", who.name, outcome.message)
    return jsonify(changed=outcome.changed, message=outcome.message)


@bp.post("/runs")
def request_run() -> tuple[Response, int]:
    """Request a runbook run through the runbook policy and approvals (or preview it)."""
    who = authenticate(request, "write")
    body = read_body("RunRequest")
    rt = runtime()
    req = service.RunRequest(
        body["runbook"], who.actor, dict(body.get("params", {})), body.get("incident_id")
    )
    try:
        with transaction(rt.sessions) as session:
            if body.get("dry_run", False):
                seen = service.preview(session, catalogue_of(rt), rt.policy, req)
                return jsonify(dry_run=True, preview=seen.describe()), 200
            run = service.request_run(session, catalogue_of(rt), rt.policy, req, now=rt.clock())
            answer = run_json(run)
    except service.RunError as exc:
        raise ApiError("run_refused", str(exc)[:300]) from None
    log.info("API token %s requested run %s (%s): %s", who.name, answer["id"], answer["runbook"],
             answer["state"])  # fmt: skip
    return jsonify(answer), 201


@bp.post("/outbox/<raw_id>/retry")
def retry_outbox(raw_id: str) -> Response:
    """Deliver a dead outbox row again, as if new (``opsbot outbox retry ID``)."""
    who = authenticate(request, "write")
    row_id = path_id(raw_id, "outbox row")
    rt = runtime()
    now = rt.clock()
    with transaction(rt.sessions) as session:
        row = session.get(OutboxRow, row_id)
        if row is None:
            raise ApiError("not_found", f"No outbox row {row_id}.", 404)
        if row.state != "dead":
            raise ApiError("conflict", f"Outbox row {row_id} is {row.state}, not dead.", 409)
        # [] when the row was folded into a pending row with the same key: that one delivers.
        replayed = store.replay_outbox(session, [row_id], now)
        audit(session, actor=who.actor, action="outbox.retried", subject=("outbox", str(row_id)),
              now=now, detail={"replayed": replayed})  # fmt: skip
    log.info("API token %s replayed dead outbox row %s", who.name, row_id)
    return jsonify(replayed=replayed)


def silence_json(row: SilenceRow) -> dict[str, Any]:
    """Return the public JSON form of a stored silence."""
    return {
        "id": row.id,
        "matcher": row.matcher,
        "starts_at": iso_time(row.starts_at),
        "ends_at": iso_time(row.ends_at),
        "reason": row.reason,
        "created_by": row.created_by,
        "created_at": iso_time(row.created_at),
    }


def _silence_window(body: dict[str, Any], now: datetime) -> tuple[datetime | None, datetime]:
    if ("ends_at" in body) == ("duration" in body):
        raise ApiError("invalid_body", "Give exactly one of ends_at or duration.")
    starts_at = parse_time(body["starts_at"], "starts_at") if "starts_at" in body else None
    if "ends_at" in body:
        ends_at = parse_time(body["ends_at"], "ends_at")
    else:
        try:
            ends_at = (starts_at or now) + parse_duration(body["duration"])
        except ValueError as exc:
            raise ApiError("invalid_body", f"duration: {exc}") from None
    if starts_at is not None and ends_at <= starts_at:
        raise ApiError("invalid_body", "ends_at must be later than starts_at.")
    return starts_at, ends_at


def parse_time(value: str, name: str) -> datetime:
    """Return the UTC time of an RFC 3339 date-time with an offset; raise a 400 otherwise."""
    found = RFC3339_RE.fullmatch(value)
    problem = ApiError("invalid_body", f"{name}: not an RFC 3339 time like 2030-01-01T00:00:00Z.")
    if found is None:
        raise problem
    day, minutes, seconds, fraction, offset = found.groups()
    seconds = "59" if seconds == "60" else seconds  # a leap second; Python has none
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        when = datetime.fromisoformat(f"{day}T{minutes}:{seconds}{(fraction or '')[:7]}{offset}")
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise problem from None


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(body_schema(name))


def read_body(name: str, *, required: bool = True) -> dict[str, Any]:
    """Return the JSON body checked against its schema; raise a 400 naming the first fault."""
    raw = request.get_data(cache=False)
    if not required and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError too
        raise ApiError("bad_json", f"The body is not JSON: {str(exc)[:200]}.") from None
    except RecursionError:
        body = None
    if body is None or not json_depth_within(body):
        raise ApiError("bad_json", "The body is not a JSON object nested at most 32 deep.")
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: list(map(str, e.path)))
    if errors:
        where = ".".join(str(step) for step in errors[0].absolute_path) or "body"
        raise ApiError("invalid_body", f"{where}: {errors[0].message[:300]}")
    if not _storable(body):
        raise ApiError("invalid_body", "The body holds NUL or a lone surrogate.")
    assert isinstance(body, dict)
    return body


def _storable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not storable(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _text(body: dict[str, Any], name: str) -> str:
    text = str(body[name]).strip()
    if not text:
        raise ApiError("invalid_body", f"{name}: must not be blank.")
    return text


def register(app: Flask) -> None:
    """Mount the write API."""
    app.register_blueprint(bp)
