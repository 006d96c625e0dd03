"""The JSON Schema of ``POST /api/events``; ``docs/events.schema.json`` is this, published.

Regenerate the published copy with ``python -m opsbot.events_schema > docs/events.schema.json``
(a test keeps the two equal).
"""

from __future__ import annotations

import json
from typing import Any

MAX_EVENTS = 100
SEVERITIES = ["critical", "high", "medium", "low", "info"]

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
        "severity": {"enum": SEVERITIES},
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

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:opsbot:api:events:v1",
    "title": "opsbot POST /api/events request",
    "description": "A batch of events from a non-AWS system, authenticated with a bearer token.",
    "type": "object",
    "additionalProperties": False,
    "required": ["events"],
    "properties": {
        "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": EVENT}
    },
}


def published() -> str:
    """Return the schema as published in docs/events.schema.json."""
    return json.dumps(SCHEMA, indent=2) + "\n"


if __name__ == "__main__":
    print(published(), end="")
