"""The OpenAPI 3.1 document of ``/api/*``, served at ``GET /api/openapi.json``.

One Python structure: the views validate request bodies against the schemas
named here (``body_schema``), and a test holds the document and the Flask URL
map to the same routes, so the two cannot drift. Every operation names the
scope its bearer token needs (``security: [{"bearerAuth": [scope]}]``; OpenAPI
3.1 allows role names there for non-OAuth schemes) and ``x-opsbot-scope``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from opsbot.core.accounts import ENVIRONMENTS
from opsbot.core.rules import PRIORITIES

VERSION = "1.0.0"
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
OUTBOX_DEFAULT_LIMIT = 100
OUTBOX_MAX_LIMIT = 1000
STATUSES = ("open", "acknowledged", "resolved", "active")
# "unknown" stays an accepted filter value from earlier releases (it matches nothing today).
ENVIRONMENT_FILTERS = (*ENVIRONMENTS, "unknown")
SEVERITIES = ("critical", "high", "medium", "low", "info")
NOTE_LIMIT = 4000  # a resolve note or a comment: one Slack message, one Jira comment
OWNER_LIMIT = 100  # incidents.owner is 128 wide; Slack names are cut at 100 too
AUTHOR_LIMIT = 100  # silences.created_by is 128 wide
MATCH_TEXT_LIMIT = 512
RUNBOOK_PARAMS_LIMIT = 50
PARAM_VALUE_LIMIT = 1000
# The events batch (a copy of opsbot.intake.events_schema.SCHEMA; a test keeps them equal).
EVENTS_MAX = 100


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


STR: dict[str, Any] = {"type": "string"}
NSTR: dict[str, Any] = {"type": ["string", "null"]}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NTIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
INT: dict[str, Any] = {"type": "integer"}
NINT: dict[str, Any] = {"type": ["integer", "null"]}
ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _object(props: dict[str, Any], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Return an object schema; a response lists every property as required."""
    return {
        "type": "object",
        "required": list(props if required is None else required),
        "properties": props,
    }


def _body(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return a request body schema: no property beyond those named."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": props,
    }


MATCH_TEXT = {"type": "string", "minLength": 1, "maxLength": MATCH_TEXT_LIMIT}
MATCHER = {
    "type": "object",
    "description": "The YAML silences' match keys; globs for alarm_name and resource.",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        **{
            key: MATCH_TEXT
            for key in ("source", "detail_type", "region", "alarm_name", "resource", "fingerprint")
        },
        "account": {**MATCH_TEXT, "description": "An account id or a configured account name."},
        "environment": {"enum": list(ENVIRONMENTS)},
        "severity": {
            "oneOf": [
                {"enum": list(SEVERITIES)},
                {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {"enum": list(SEVERITIES)},
                },
            ]
        },
        "labels": {
            "type": "object",
            "maxProperties": 50,
            "propertyNames": {"minLength": 1, "maxLength": 100},
            "additionalProperties": MATCH_TEXT,
        },
    },
}

EVENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "source", "resource", "title", "severity"],
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "The sender's unique event id; an id seen before changes nothing.",
        },
        "source": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$",
            "description": "The sending system, e.g. 'nagios' or 'backup.onprem'.",
        },
        "resource": {"type": "string", "maxLength": 512, "description": "What is affected."},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "summary": {"type": "string", "maxLength": 4000},
        "severity": {"enum": list(SEVERITIES)},
        "status": {
            "enum": ["firing", "resolved"],
            "default": "firing",
            "description": "resolved closes the incident of the same identity.",
        },
        "dedup_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "The incident identity within the source; default: resource + title.",
        },
        "labels": {
            "type": "object",
            "maxProperties": 50,
            "additionalProperties": {"type": "string", "maxLength": 500},
            "propertyNames": {"maxLength": 100},
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 time with an offset, e.g. 2026-11-29T08:00:00Z.",
        },
        "link": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
        "account_id": {"type": "string", "pattern": "^[0-9]{12}$"},
        "region": {"type": "string", "maxLength": 32},
    },
}

INCIDENT = _object(
    {
        "id": INT,
        "fingerprint": STR,
        "status": {"enum": ["open", "acknowledged", "resolved"]},
        "priority": {"enum": list(PRIORITIES)},
        "severity": STR,
        "title": STR,
        "summary": STR,
        "source": STR,
        "account_id": STR,
        "account_name": STR,
        "environment": STR,
        "team": STR,
        "region": STR,
        "resource": STR,
        "console_url": STR,
        "count": INT,
        "flapping": {"type": "boolean"},
        "first_seen": TIME,
        "last_seen": TIME,
        "resolved_at": NTIME,
        "jira_key": NSTR,
        "slack_channel": NSTR,
        "slack_ts": NSTR,
        "route": {"type": ["object", "null"]},
        "owner": NSTR,
        "acknowledged_by": NSTR,
        "acknowledged_at": NTIME,
    }
)
ALERT = _object(
    {
        "id": INT,
        "status": STR,
        "severity": STR,
        "title": STR,
        "summary": STR,
        "resource": STR,
        "labels": {"type": ["object", "null"]},
        "decision": STR,
        "silence_id": NSTR,
        "occurred_at": NTIME,
        "received_at": TIME,
    }
)
AUDIT = _object({"at": TIME, "actor": STR, "action": STR, "detail": {"type": ["object", "null"]}})
RUN = _object(
    {
        "id": INT,
        "runbook": STR,
        "kind": STR,
        "document": STR,
        "parameters": {"type": ["object", "null"]},
        "targets": {"type": ["object", "null"]},
        "requester": STR,
        "approval": {"enum": ["none", "one", "other"]},
        "approver": NSTR,
        "account_id": STR,
        "region": STR,
        "environment": STR,
        "incident_id": NINT,
        "auto": {"type": "boolean"},
        "state": STR,
        "reason": STR,
        "command_id": NSTR,
        "execution_id": NSTR,
        "output": STR,
        "patch_window": NSTR,
        "created_at": TIME,
        "approved_at": NTIME,
        "started_at": NTIME,
        "finished_at": NTIME,
        "expires_at": NTIME,
    }
)
SILENCE = _object(
    {
        "id": INT,
        "matcher": {"type": "object"},
        "starts_at": NTIME,
        "ends_at": TIME,
        "reason": STR,
        "created_by": STR,
        "created_at": TIME,
    }
)
OUTBOX_ROW = _object(
    {
        "id": INT,
        "target": STR,
        "kind": STR,
        "incident_id": NINT,
        "state": STR,
        "attempts": INT,
        "due_at": TIME,
        "last_error": NSTR,
        "created_at": TIME,
        "updated_at": TIME,
    }
)

BODIES: dict[str, dict[str, Any]] = {
    "AcknowledgeRequest": _body({}),
    "ResolveRequest": _body({"note": {"type": "string", "maxLength": NOTE_LIMIT}}),
    "AssignRequest": _body(
        {"owner": {"type": "string", "minLength": 1, "maxLength": OWNER_LIMIT}}, ("owner",)
    ),
    "CommentRequest": _body(
        {"text": {"type": "string", "minLength": 1, "maxLength": NOTE_LIMIT}}, ("text",)
    ),
    "SilenceRequest": _body(
        {
            "matcher": MATCHER,
            "author": {
                "type": "string",
                "minLength": 1,
                "maxLength": AUTHOR_LIMIT,
                "description": "Who asked for the silence (its created_by).",
            },
            "comment": {
                "type": "string",
                "minLength": 1,
                "maxLength": NOTE_LIMIT,
                "description": "Why (its reason).",
            },
            "starts_at": {**TIME, "description": "RFC 3339; default: now."},
            "ends_at": {**TIME, "description": "RFC 3339; give this or duration."},
            "duration": {
                "type": "string",
                "pattern": "^(?=.)([0-9]{1,4}d)?([0-9]{1,4}h)?([0-9]{1,4}m)?([0-9]{1,4}s)?$",
                "description": "Like 2h or 1h30m; give this or ends_at.",
            },
        },
        ("matcher", "author", "comment"),
    ),
    "RunRequest": _body(
        {
            "runbook": {"type": "string", "minLength": 1, "maxLength": 64},
            "params": {
                "type": "object",
                "maxProperties": RUNBOOK_PARAMS_LIMIT,
                "propertyNames": {"minLength": 1, "maxLength": 64},
                "additionalProperties": {"type": "string", "maxLength": PARAM_VALUE_LIMIT},
            },
            "incident_id": ID,
            "dry_run": {"type": "boolean", "default": False},
        },
        ("runbook",),
    ),
    "EventBatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "minItems": 1, "maxItems": EVENTS_MAX, "items": EVENT}
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "A machine code, e.g. bad_parameter."},
            "detail": {"type": "string", "description": "A sentence for a human."},
            "field": {"type": "string", "description": "The body field at fault (events)."},
        },
    },
    "Incident": INCIDENT,
    "IncidentPage": _object(
        {"incidents": {"type": "array", "items": _ref("Incident")}, "next": NSTR}
    ),
    "IncidentDetail": {
        "allOf": [
            _ref("Incident"),
            _object(
                {
                    "alerts": {"type": "array", "items": _ref("Alert")},
                    "audit": {"type": "array", "items": _ref("AuditEntry")},
                    "runs": {"type": "array", "items": _ref("Run")},
                }
            ),
        ]
    },
    "Alert": ALERT,
    "AuditEntry": AUDIT,
    "Run": RUN,
    "RunPreview": _object({"dry_run": {"const": True}, "preview": STR}),
    "ActionResult": _object(
        {"changed": {"type": "boolean"}, "message": STR, "incident": _ref("Incident")}
    ),
    "Silence": SILENCE,
    "SilenceList": _object({"silences": {"type": "array", "items": _ref("Silence")}}),
    "SilenceResult": _object({"changed": {"type": "boolean"}, "message": STR}),
    "OutboxRow": OUTBOX_ROW,
    "OutboxList": _object({"rows": {"type": "array", "items": _ref("OutboxRow")}}),
    "Replayed": _object({"replayed": {"type": "array", "items": INT}}),
    "EventResults": _object(
        {
            "results": {
                "type": "array",
                "items": _object(
                    {
                        "id": STR,
                        "status": {"enum": ["recorded", "duplicate"]},
                        "alerts": {
                            "type": "array",
                            "items": _object(
                                {"fingerprint": STR, "action": STR, "incident_id": NINT}
                            ),
                        },
                    }
                ),
            }
        }
    ),
    **BODIES,
}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def _id_param(name: str, what: str) -> dict[str, Any]:
    return _param(name, "path", ID, f"The {what} id (1 to 2^63-1).")


def _operation(
    summary: str,
    scope: str,
    ok: dict[str, dict[str, Any]],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    body_required: bool = True,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = dict(ok)
    extra = {
        400: "Bad input: a parameter or the body (the detail names it).",
        404: "No such resource.",
        409: "The resource is not in a state that allows this.",
        413: "The body is larger than 1 MiB.",
    }
    for status in sorted({*errors, *((400, 413) if body else ())}):
        responses[str(status)] = _error(extra[status])
    responses["401"] = _error("No token, or not a known one.")
    responses["403"] = _error(f"The token lacks the {scope} scope.")
    responses["503"] = _error("The database is unreachable; retry.")
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": summary.replace(" ", "_").lower()[:60],
        "security": [{"bearerAuth": [scope]}],
        "x-opsbot-scope": scope,
        "parameters": params or [],
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def _incident_action(summary: str, body: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "post": _operation(
            summary,
            "write",
            {"200": _json(_ref("ActionResult"), "What it did (changed: false if nothing).")},
            params=[_id_param("incident_id", "incident")],
            body=body,
            body_required=required,
            errors=(400, 404),
        )
    }


def _paths() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    outbox_limit = {
        "type": "integer",
        "minimum": 1,
        "maximum": OUTBOX_MAX_LIMIT,
        "default": OUTBOX_DEFAULT_LIMIT,
    }
    return {
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI 3.1 document of /api/*."}},
            }
        },
        "/api/incidents": {
            "get": _operation(
                "List incidents",
                "read",
                {"200": _json(_ref("IncidentPage"), "A page of incidents, newest first.")},
                params=[
                    _param("status", "query", {"enum": list(STATUSES)}, "active: open or acked."),
                    _param("priority", "query", {"enum": list(PRIORITIES)}, "P1 to P5."),
                    _param("environment", "query", {"enum": list(ENVIRONMENT_FILTERS)}, ""),
                    _param("limit", "query", limit, f"At most {MAX_LIMIT} a page."),
                    _param("cursor", "query", STR, "The next of the previous page."),
                ],
                errors=(400,),
            )
        },
        "/api/incidents/{incident_id}": {
            "get": _operation(
                "Show an incident",
                "read",
                {"200": _json(_ref("IncidentDetail"), "The incident, its alerts, audit, runs.")},
                params=[_id_param("incident_id", "incident")],
                errors=(404,),
            )
        },
        "/api/incidents/{incident_id}/acknowledge": _incident_action(
            "Acknowledge an incident", "AcknowledgeRequest", required=False
        ),
        "/api/incidents/{incident_id}/resolve": _incident_action(
            "Resolve an incident", "ResolveRequest", required=False
        ),
        "/api/incidents/{incident_id}/assign": _incident_action(
            "Assign an incident", "AssignRequest"
        ),
        "/api/incidents/{incident_id}/comment": _incident_action(
            "Comment on an incident", "CommentRequest"
        ),
        "/api/silences": {
            "get": _operation(
                "List silences",
                "read",
                {"200": _json(_ref("SilenceList"), "The stored silences in force.")},
            ),
            "post": _operation(
                "Create a silence",
                "write",
                {"201": _json(_ref("Silence"), "The silence, in force at once.")},
                body="SilenceRequest",
                errors=(400,),
            ),
        },
        "/api/silences/{silence_id}/expire": {
            "post": _operation(
                "Expire a silence",
                "write",
                {"200": _json(_ref("SilenceResult"), "Ended now (changed: false if it had).")},
                params=[_id_param("silence_id", "silence")],
                errors=(404,),
            )
        },
        "/api/runs": {
            "post": _operation(
                "Request a runbook run",
                "write",
                {
                    "201": _json(_ref("Run"), "The run: approved, or awaiting approval."),
                    "200": _json(_ref("RunPreview"), "dry_run: what would be sent."),
                },
                body="RunRequest",
                errors=(400,),
            )
        },
        "/api/runs/{run_id}": {
            "get": _operation(
                "Show a runbook run",
                "read",
                {"200": _json(_ref("Run"), "The run.")},
                params=[_id_param("run_id", "run")],
                errors=(404,),
            )
        },
        "/api/outbox/dead": {
            "get": _operation(
                "List dead outbox rows",
                "read",
                {"200": _json(_ref("OutboxList"), "Dead-lettered rows, oldest first.")},
                params=[_param("limit", "query", outbox_limit, "")],
                errors=(400,),
            )
        },
        "/api/outbox/{row_id}/retry": {
            "post": _operation(
                "Retry a dead outbox row",
                "write",
                {"200": _json(_ref("Replayed"), "Pending again ([]: folded into a pending row).")},
                params=[_id_param("row_id", "outbox row")],
                errors=(404, 409),
            )
        },
        "/api/events": {
            "post": _operation(
                "Post events",
                "events",
                {"200": _json(_ref("EventResults"), "What each event did.")},
                body="EventBatch",
                errors=(400,),
            )
        },
    }


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opsbot REST API",
            "version": VERSION,
            "description": (
                "Incidents, silences, runbook runs, the outbox and event intake. Every "
                "operation but this document needs 'Authorization: Bearer <token>' with the "
                "scope it names (read, write or events). Errors are "
                '{"error": code, "detail": sentence}.'
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A named API token (api_tokens: in the YAML, or "
                    "OPSBOT_API_TOKEN as 'default' with every scope).",
                }
            },
            "schemas": SCHEMAS,
        },
    }


def document() -> dict[str, Any]:
    """Return the OpenAPI document (a fresh copy the caller may change)."""
    return copy.deepcopy(_document())


def body_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema of a request body the document names."""
    return BODIES[name]
