"""The read API: incidents, runs, dead outbox rows, and ``GET /api/openapi.json``.

Each view names the scope its bearer token needs (``opsbot.web.request.authenticate``);
the write endpoints are in ``opsbot.web.api_write``, the document in ``opsbot.web.openapi``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from handlers.base import parse_int
from opsbot.core.rules import PRIORITIES
from opsbot.db import store
from opsbot.db.models import AlertRow, AuditEntry, Incident, OutboxRow, RunbookRun
from opsbot.db.session import transaction
from opsbot.runbooks.service import incident_runs, run_json
from opsbot.web.errors import ApiError
from opsbot.web.openapi import (
    DEFAULT_LIMIT,
    ENVIRONMENT_FILTERS,
    MAX_ID,
    MAX_LIMIT,
    OUTBOX_DEFAULT_LIMIT,
    OUTBOX_MAX_LIMIT,
    STATUSES,
    document,
)
from opsbot.web.request import authenticate, runtime

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Return the OpenAPI 3.1 document of /api/* (public: it holds no data)."""
    return jsonify(document())


@bp.get("/incidents")
def list_incidents() -> Response:
    """Return a page of incidents, newest first."""
    authenticate(request, "read")
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
    authenticate(request, "read")
    incident_id = path_id(raw_id, "incident")
    with transaction(runtime().sessions) as session:
        row = store.get_incident(session, incident_id)
        if row is None:
            raise ApiError("not_found", f"No incident {incident_id}.", 404)
        body = incident_json(row)
        body["alerts"] = [alert_json(a) for a in store.incident_alerts(session, incident_id)]
        body["audit"] = [audit_json(e) for e in store.incident_audit(session, incident_id)]
        body["runs"] = [run_json(r) for r in incident_runs(session, incident_id)]
    return jsonify(body)


@bp.get("/runs/<raw_id>")
def show_run(raw_id: str) -> Response:
    """Return one runbook run."""
    authenticate(request, "read")
    run_id = path_id(raw_id, "run")
    with transaction(runtime().sessions) as session:
        run = session.get(RunbookRun, run_id)
        if run is None:
            raise ApiError("not_found", f"No run {run_id}.", 404)
        return jsonify(run_json(run))


@bp.get("/outbox/dead")
def list_dead() -> Response:
    """Return the dead-lettered outbox rows, oldest first."""
    authenticate(request, "read")
    limit = _limit(OUTBOX_DEFAULT_LIMIT, OUTBOX_MAX_LIMIT)
    with transaction(runtime().sessions) as session:
        rows = [outbox_json(row) for row in store.list_outbox(session, dead=True, limit=limit)]
    return jsonify(rows=rows)


def path_id(raw: str, what: str) -> int:
    """Return the id in a path segment; anything but ASCII digits within BIGINT is a 404."""
    # A full-width digit or 2**63 is no row, not a database error (issue 15).
    number = parse_int(raw, 1, MAX_ID)
    if number is None:
        raise ApiError("not_found", f"No such {what}.", 404)
    return number


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ApiError("bad_parameter", f"{name} must be one of {', '.join(allowed)}.")
    return value


def _limit(default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    limit = parse_int(request.args.get("limit", str(default)), 1, most)
    if limit is None:
        raise ApiError("bad_parameter", f"limit must be a whole number from 1 to {most}.")
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


def iso_time(value: datetime | None) -> str | None:
    """Return a time as RFC 3339 in UTC with a Z, or None."""
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
        "first_seen": iso_time(row.first_seen),
        "last_seen": iso_time(row.last_seen),
        "resolved_at": iso_time(row.resolved_at),
        "jira_key": row.jira_key,
        "slack_channel": row.slack_channel,
        "slack_ts": row.slack_ts,
        "route": row.route,
        "owner": row.owner,
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": iso_time(row.acknowledged_at),
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
        "occurred_at": iso_time(row.occurred_at),
        "received_at": iso_time(row.received_at),
    }


def audit_json(row: AuditEntry) -> dict[str, Any]:
    """Return the public JSON form of an audit entry."""
    return {
        "at": iso_time(row.at),
        "actor": row.actor,
        "action": row.action,
        "detail": row.detail,
    }


def outbox_json(row: OutboxRow) -> dict[str, Any]:
    """Return the public JSON form of an outbox row (without its payload)."""
    return {
        "id": row.id,
        "target": row.target,
        "kind": row.kind,
        "incident_id": row.incident_id,
        "state": row.state,
        "attempts": row.attempts,
        "due_at": iso_time(row.due_at),
        "last_error": row.last_error,
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
    }


def register(app: Flask) -> None:
    """Mount the read API and the OpenAPI document."""
    app.register_blueprint(bp)
