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

from handlers.base import bound, clean, json_depth_within, storable
from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.jira.client import ticket_state
from opsbot.jira.reconcile import incident_for_ticket, status_text
from opsbot.runtime import Runtime
from opsbot.web import error_response, runtime

log = logging.getLogger(__name__)

bp = Blueprint("jira_webhook", __name__)
ACTIVE = ("open", "acknowledged")
KEY_LIMIT = 64  # incidents.jira_key
NAME_LIMIT = 128  # incidents.owner, audit_log.actor


def register(app: Flask) -> None:
    """Add the Jira webhook route to the app."""
    app.register_blueprint(bp)


def signature_valid(secret: str, body: bytes, header: str | None, query: str | None) -> bool:
    """Return whether the request carries the secret: a Cloud signature or a DC query secret."""
    if header:
        method, _, given = header.partition("=")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        # Bytes, not str: compare_digest refuses a non-ASCII str ("sha256=é") with TypeError.
        given_bytes = given.lower().encode("utf-8", "replace")
        return method.lower() == "sha256" and hmac.compare_digest(given_bytes, expected)
    if query is not None:
        return hmac.compare_digest(query.encode("utf-8", "replace"), secret.encode())
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
    except (ValueError, RecursionError):
        return error_response("bad_json", "The body is not JSON.", 400)
    if not json_depth_within(event):
        return error_response("bad_json", "The body is nested more than 32 deep.", 400)
    if not isinstance(event, dict) or not isinstance(event.get("issue"), dict):
        return error_response(
            "bad_event", "Expected a Jira issue event with an 'issue' object.", 400
        )
    outcome = apply_event(rt, shape_event(event))
    return jsonify(status=outcome)


def shape_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parts of an event opsbot reads, each of the documented type or empty."""
    issue = _object(event.get("issue"))
    fields = _object(issue.get("fields"))
    status = _object(fields.get("status"))
    changelog = _object(event.get("changelog"))
    items = changelog.get("items")
    items = items if isinstance(items, list) else []
    return {
        "webhookEvent": event.get("webhookEvent"),
        "user": {k: _name(v) for k, v in _object(event.get("user")).items()},
        "issue": {
            "key": _text(issue.get("key")),
            "fields": {
                "status": {
                    "name": _name(status.get("name")),
                    "statusCategory": {
                        "key": _text(_object(status.get("statusCategory")).get("key"))
                    },
                },
                "resolution": {"name": _name(_object(fields.get("resolution")).get("name"))},
                "assignee": {k: _name(v) for k, v in _object(fields.get("assignee")).items()},
            },
        },
        "changelog": {
            "items": [
                {"field": _text(i.get("field")), "toString": _name(i.get("toString"))}
                for i in items
                if isinstance(i, dict)
            ]
        },
    }


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _name(value: Any) -> str:
    return bound(clean(value), NAME_LIMIT) if isinstance(value, str) else ""


def apply_event(rt: Runtime, event: Mapping[str, Any]) -> str:
    """Apply one (shaped) Jira issue event to its incident; return what was done."""
    if event.get("webhookEvent") != "jira:issue_updated":
        return "ignored"
    issue = event["issue"]
    key = str(issue.get("key") or "")
    if len(key) > KEY_LIMIT or not storable(key):
        return "ignored"  # no ticket of opsbot's has such a key
    changed = {str(i.get("field")): i for i in event["changelog"]["items"]}
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
                    session,
                    incident_id,
                    owner=bound(clean(str(owner)), NAME_LIMIT),
                    actor=actor,
                    now=now,
                    notify=False,
                )
                done.append("assigned" if outcome.changed else "")
    return ", ".join(d for d in done if d) or "unchanged"


def _actor(user: Mapping[str, Any]) -> str:
    name = user.get("displayName") or user.get("name") or user.get("accountId") or "someone"
    return bound(f"jira:{name}", NAME_LIMIT)


def _by_opsbot(rt: Runtime, user: Mapping[str, Any]) -> bool:
    own = rt.settings.jira_user
    return bool(own) and own in (user.get("emailAddress"), user.get("name"))


def _assignee(issue: Mapping[str, Any]) -> str | None:
    assignee = (issue.get("fields") or {}).get("assignee") or {}
    return assignee.get("displayName") or assignee.get("name")
