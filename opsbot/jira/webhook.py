"""Jira → opsbot: ``POST /jira/webhook`` (``opsbot.jira.reconcile`` catches missed webhooks).

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
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, jsonify, request

from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.jira.client import ticket_state
from opsbot.jira.reconcile import incident_for_ticket, status_text
from opsbot.runtime import Runtime
from opsbot.web import error_response, runtime

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
        incident_id = incident_for_ticket(session, key)
        if incident_id is None:
            return "ignored"
        done = []
        state = ticket_state(issue)
        if state.done and ({"status", "resolution"} & changed.keys()):
            note = f"Ticket {key} was set to {status_text(state)} in Jira."
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


def _actor(user: Mapping[str, Any]) -> str:
    name = user.get("displayName") or user.get("name") or user.get("accountId") or "someone"
    return f"jira:{name}"


def _by_opsbot(rt: Runtime, user: Mapping[str, Any]) -> bool:
    own = rt.settings.jira_user
    return bool(own) and own in (user.get("emailAddress"), user.get("name"))


def _assignee(issue: Mapping[str, Any]) -> str | None:
    assignee = (issue.get("fields") or {}).get("assignee") or {}
    return assignee.get("displayName") or assignee.get("name")
