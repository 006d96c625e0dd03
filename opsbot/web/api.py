"""The incident API: ``GET /api/incidents`` and ``GET /api/incidents/<id>`` (bearer token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from handlers.base import parse_int
from opsbot.core.accounts import ENVIRONMENTS
from opsbot.core.rules import PRIORITIES
from opsbot.db import store
from opsbot.db.models import AlertRow, AuditEntry, Incident
from opsbot.db.session import transaction
from opsbot.runbooks.service import incident_runs, run_json
from opsbot.web.errors import ApiError
from opsbot.web.request import authenticate, runtime

bp = Blueprint("api", __name__, url_prefix="/api")

STATUSES = ("open", "acknowledged", "resolved", "active")
# "unknown" stays an accepted filter value from earlier releases (it matches nothing today).
ENVIRONMENT_FILTERS = (*ENVIRONMENTS, "unknown")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_ID = 2**63 - 1


bp.before_request(authenticate)


@bp.get("/incidents")
def list_incidents() -> Response:
    """Return a page of incidents, newest first."""
    filters = store.IncidentFilter(
        status=_choice("status", STATUSES),
        priority=_choice("priority", PRIORITIES),
        environment=_choice("environment", ENVIRONMENT_FILTERS),
    )
    limit = _limit()
    cursor = _cursor()
    with transaction(runtime().sessions) as session:
        rows, last = store.list_incidents(session, filters, limit=limit, cursor=cursor)
        body = [incident_json(row) for row in rows]
    return jsonify(incidents=body, next=store.encode_cursor(last))


@bp.get("/incidents/<raw_id>")
def show_incident(raw_id: str) -> Response:
    """Return one incident with its newest alerts and its audit trail."""
    # ASCII digits within BIGINT only: a full-width digit or 2**63 is no row, not a DB error.
    incident_id = parse_int(raw_id, 1, MAX_ID)
    if incident_id is None:
        raise ApiError("not_found", "No such incident.", 404)
    with transaction(runtime().sessions) as session:
        row = store.get_incident(session, incident_id)
        if row is None:
            raise ApiError("not_found", f"No incident {incident_id}.", 404)
        body = incident_json(row)
        body["alerts"] = [alert_json(a) for a in store.incident_alerts(session, incident_id)]
        body["audit"] = [audit_json(e) for e in store.incident_audit(session, incident_id)]
        body["runs"] = [run_json(r) for r in incident_runs(session, incident_id)]
    return jsonify(body)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ApiError("bad_parameter", f"{name} must be one of {', '.join(allowed)}.")
    return value


def _limit() -> int:
    limit = parse_int(request.args.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT)
    if limit is None:
        raise ApiError("bad_parameter", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return limit


def _cursor() -> int | None:
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        cursor = store.decode_cursor(raw)
    except ValueError:
        cursor = None
    if cursor is None or not 0 < cursor <= MAX_ID:
        raise ApiError("bad_parameter", "cursor is not one this API returned.")
    return cursor


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def incident_json(row: Incident) -> dict[str, Any]:
    """Return the public JSON form of an incident."""
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "status": row.status,
        "priority": row.priority,
        "severity": row.severity,
        "title": row.title,
        "summary": row.summary,
        "source": row.source,
        "account_id": row.account_id,
        "account_name": row.account_name,
        "environment": row.environment,
        "team": row.team,
        "region": row.region,
        "resource": row.resource,
        "console_url": row.console_url,
        "count": row.count,
        "flapping": row.flapping,
        "first_seen": _iso(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "resolved_at": _iso(row.resolved_at),
        "jira_key": row.jira_key,
        "slack_channel": row.slack_channel,
        "slack_ts": row.slack_ts,
        "route": row.route,
    }


def alert_json(row: AlertRow) -> dict[str, Any]:
    """Return the public JSON form of a stored alert."""
    return {
        "id": row.id,
        "status": row.status,
        "severity": row.severity,
        "title": row.title,
        "summary": row.summary,
        "resource": row.resource,
        "labels": row.labels,
        "decision": row.decision,
        "silence_id": row.silence_id,
        "occurred_at": _iso(row.occurred_at),
        "received_at": _iso(row.received_at),
    }


def audit_json(row: AuditEntry) -> dict[str, Any]:
    """Return the public JSON form of an audit entry."""
    return {
        "at": _iso(row.at),
        "actor": row.actor,
        "action": row.action,
        "detail": row.detail,
    }


def register(app: Flask) -> None:
    """Mount the incident API."""
    app.register_blueprint(bp)
