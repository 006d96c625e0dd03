"""EventBridge events, as SNS delivers them when an EventBridge rule targets a topic.

Reads the event envelope every AWS service (and any custom publisher) uses —
``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time``,
``region``, ``resources`` and ``detail``
(https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html).
``SOURCE_HANDLERS`` maps an event ``source`` ("aws.guardduty", "aws.health", …)
to the module that understands its ``detail``; every other source gets the
generic EventBridge alert below.

Identity: for the generic EventBridge alert, ``make_fingerprint(source,
account, region, detail-type, sorted resources joined by ",")``; an event
without resources drops the last part, so its identity is its detail-type in
that account and region.

Severity: low — an event opsbot does not understand informs; routing rules
may raise it.

Resolve: never — EventBridge events report occurrences, not states; the
incident is resolved by people or by a per-source handler that knows better.
"""

from __future__ import annotations

import json
from typing import Any

from handlers.base import (
    EventHandler,
    Inbound,
    bound,
    one_line,
    parse_time,
    short_resource,
    text_of,
)
from handlers.sources import source_handlers
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

SOURCE_HANDLERS: dict[str, EventHandler] = {}
DEFAULT_SEVERITY = Severity.LOW
TITLE_LIMIT = 200
SUMMARY_LIMIT = 500
VALUE_LIMIT = 120


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alerts for one EventBridge event, using its source's handler if any."""
    source = text_of(event.get("source")).strip()
    detail_type = text_of(event.get("detail-type")).strip()
    if not source or not detail_type:
        raise ValueError("EventBridge event without source or detail-type")
    handler = SOURCE_HANDLERS.get(source, parse_unknown_source)
    return handler(event, inbound)


def parse_unknown_source(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the one generic, low-severity alert for an event no source handler reads."""
    source = text_of(event.get("source")).strip()
    detail_type = text_of(event.get("detail-type")).strip()
    account = text_of(event.get("account")).strip()
    region = text_of(event.get("region")).strip()
    resources = resources_of(event)
    identity = [source, account, region, detail_type]
    if resources:
        identity.append(",".join(sorted(resources)))
    return [
        Alert(
            fingerprint=make_fingerprint(*identity),
            status=AlertStatus.FIRING,
            severity=DEFAULT_SEVERITY,
            source=source,
            title=make_title(detail_type, source, resources),
            summary=render_detail(event.get("detail")),
            account_id=account,
            region=region,
            resource=resources[0] if resources else "",
            detail_type=detail_type,
            labels={"source": bound(source, 200), "detail_type": bound(detail_type, 200)},
            occurred_at=parse_time(event.get("time")) or inbound.received_at,
            raw=event,
        )
    ]


def resources_of(event: dict[str, Any]) -> list[str]:
    """Return the event's resource ARNs, in their order, without empty entries."""
    value = event.get("resources")
    items = value if isinstance(value, list) else [value]
    return [text for text in (text_of(item).strip() for item in items) if text]


def make_title(detail_type: str, source: str, resources: list[str]) -> str:
    """Return "<detail-type> (<source>)", followed by the first resource's short name."""
    title = f"{bound(detail_type, 100)} ({bound(source, 60)})"
    if resources:
        title += f": {short_resource(resources[0])}"
    return bound(title, TITLE_LIMIT)


def render_detail(detail: object) -> str:
    """Return the detail's top-level keys on one line: "state=FAILED, pipeline=web", bounded."""
    if not isinstance(detail, dict):
        return render_value(detail, SUMMARY_LIMIT)
    parts: list[str] = []
    size = 0
    for key, value in detail.items():
        if size > SUMMARY_LIMIT:
            break
        part = f"{one_line(text_of(key), 60)}={render_value(value, VALUE_LIMIT)}"
        parts.append(part)
        size += len(part) + 2
    return bound(", ".join(parts), SUMMARY_LIMIT)


def render_value(value: object, limit: int) -> str:
    """Return a JSON value on one line: text as is, anything else as compact JSON."""
    if isinstance(value, str):
        return one_line(text_of(value), limit)
    try:
        rendered = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "…"
    return one_line(text_of(rendered), limit)


# Filled after parse_unknown_source exists: each per-source router falls back to it.
SOURCE_HANDLERS.update(source_handlers(parse_unknown_source))
