"""Jira → opsbot: ``POST /jira/webhook`` and the reconciliation job that catches missed webhooks.

The webhook body is Jira's ``jira:issue_updated`` event (Cloud and Data
Center share the shape: ``webhookEvent``, ``user``, ``issue`` with
``fields``, ``changelog.items`` of ``{field, fromString, toString}``). Jira
Cloud signs the body when the webhook has a secret (``X-Hub-Signature:
sha256=<HMAC-SHA256 hex>``); Data Center cannot sign, so its webhook URL
carries ``?secret=``. Both are compared in constant time.

A ticket moved to a done status by a person resolves its incident; an
assignee change records the incident's owner. Everything else is answered
200 and ignored, so Jira does not retry it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.db.models import Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.jira.client import JiraError, JiraUnreachable, TicketState, ticket_state
from opsbot.runtime import Runtime, runtime
from opsbot.web.errors import error_response

log = logging.getLogger(__name__)

bp = Blueprint("jira_webhook", __name__)
ACTIVE = ("open", "acknowledged")


def register(app: Flask) -> None:
    """Add the Jira webhook route to the app."""
    app.register_blueprint(bp)


def signature_valid(secret: str, body: bytes, header: str | None, query: str | None) -> bool:
    """Return whether the request carries the secret: a Cloud signature or a DC query secret."""
    if header:
        method, _, given = header.partition("=")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return method.lower() == "sha256" and hmac.compare_digest(given.lower(), expected)
    if query is not None:
        return hmac.compare_digest(query.encode(), secret.encode())
    return False


@bp.post("/jira/webhook")
def jira_webhook() -> Any:
    """Apply a Jira issue event: resolved by a person resolves, assignee recorded as owner."""
    rt = runtime()
    secret = rt.settings.jira_webhook_secret
    if secret is None:
        return error_response(
            "not_configured", "Jira webhooks are off: set OPSBOT_JIRA_WEBHOOK_SECRET.", 404
        )
    body = request.get_data()
    given = request.headers.get("X-Hub-Signature")
    if not signature_valid(secret.get_secret_value(), body, given, request.args.get("secret")):
        log.warning("Jira webhook refused: missing or wrong secret")
        return error_response(
            "unauthorized", "The webhook secret or signature is missing or wrong.", 401
        )
    try:
        event = json.loads(body)
    except ValueError:
        return error_response("bad_json", "The body is not JSON.", 400)
    if not isinstance(event, dict) or not isinstance(event.get("issue"), dict):
        return error_response(
            "bad_event", "Expected a Jira issue event with an 'issue' object.", 400
        )
    outcome = apply_event(rt, event)
    return jsonify(status=outcome)


def apply_event(rt: Runtime, event: Mapping[str, Any]) -> str:
    """Apply one Jira issue event to its incident; return what was done."""
    if event.get("webhookEvent") != "jira:issue_updated":
        return "ignored"
    issue = event["issue"]
    key = str(issue.get("key") or "")
    changed = {str(i.get("field")): i for i in (event.get("changelog") or {}).get("items") or []}
    actor = _actor(event.get("user") or {})
    if _by_opsbot(rt, event.get("user") or {}):
        return "ignored"
    now = rt.clock()
    with transaction(rt.sessions) as session:
        incident_id = _incident_for(session, key)
        if incident_id is None:
            return "ignored"
        done = []
        state = ticket_state(issue)
        if state.done and ({"status", "resolution"} & changed.keys()):
            note = f"Ticket {key} was set to {_status(state)} in Jira."
            outcome = actions.resolve(
                session, incident_id, actor=actor, now=now, note=note, from_jira=True
            )
            done.append("resolved" if outcome.changed else "")
        if "assignee" in changed:
            owner = changed["assignee"].get("toString") or _assignee(issue)
            if owner:
                outcome = actions.assign(
                    session, incident_id, owner=str(owner), actor=actor, now=now, notify=False
                )
                done.append("assigned" if outcome.changed else "")
    return ", ".join(d for d in done if d) or "unchanged"


def _incident_for(session: Session, key: str) -> int | None:
    if not key:
        return None
    found = session.execute(select(Incident.id).where(Incident.jira_key == key)).scalar()
    return int(found) if found is not None else None


def _in_flight(session: Session, incident_id: int) -> bool:
    """Return whether Jira calls for the incident are still queued (the ticket may lag)."""
    pending = select(OutboxRow.id).where(
        OutboxRow.incident_id == incident_id,
        OutboxRow.target == "jira",
        OutboxRow.state.in_(("pending", "sending")),
    )
    return session.execute(pending.limit(1)).first() is not None


def _status(state: TicketState) -> str:
    return f"{state.status} ({state.resolution or 'no resolution'})"


def _actor(user: Mapping[str, Any]) -> str:
    name = user.get("displayName") or user.get("name") or user.get("accountId") or "someone"
    return f"jira:{name}"


def _by_opsbot(rt: Runtime, user: Mapping[str, Any]) -> bool:
    own = rt.settings.jira_user
    return bool(own) and own in (user.get("emailAddress"), user.get("name"))


def _assignee(issue: Mapping[str, Any]) -> str | None:
    assignee = (issue.get("fields") or {}).get("assignee") or {}
    return assignee.get("displayName") or assignee.get("name")


def reconcile_tickets(rt: Runtime) -> Callable[[Session, datetime], int]:
    """Return the job that resolves incidents whose tickets were recently moved to done."""
    from opsbot.jira.config import jira_config
    from opsbot.jira.sync import jira_parts

    window = jira_config(rt.policy).reconcile_window
    minutes = max(1, int(window.total_seconds() // 60))

    def job(session: Session, now: datetime) -> int:
        tickets, _ = jira_parts(rt)
        jql = f'labels = "opsbot" AND statusCategory = Done AND updated >= "-{minutes}m"'
        try:
            found = tickets.search(jql, limit=100)
        except (JiraError, JiraUnreachable) as exc:
            log.warning("Jira reconciliation skipped: %s", exc)
            return 0
        resolved = 0
        for state in found:
            incident_id = _incident_for(session, state.key)
            if incident_id is None or _in_flight(session, incident_id):
                continue
            note = f"Ticket {state.key} is {_status(state)} in Jira."
            outcome = actions.resolve(
                session, incident_id, actor="jira:reconcile", now=now, note=note, from_jira=True
            )
            resolved += outcome.changed
        return resolved

    return job
