"""Generic event intake, ``POST /api/events``, for on-premises and non-AWS systems.

The body is ``{"events": [...]}`` — at most 100 events, each as documented by
``docs/events.schema.json`` (``opsbot.events_schema``). Authentication is the
incident API's: ``Authorization: Bearer <token>`` with the ``events`` scope
(``opsbot.web.tokens``), loopback only when no token is set. Each event is one
delivery in namespace "api" keyed by its ``id`` (so a repeated id changes
nothing); the batch is recorded in one
transaction through the same services as SNS deliveries — the same rules,
silences and incident lifecycle.

Identity: ``make_fingerprint("api", source, dedup_key)``, or
``make_fingerprint("api", source, resource, title)`` without a dedup key.

A bad request is refused whole with a 400 naming the event and the field:
``{"error": "invalid_event", "detail": "events[3].severity: 'urgent' is not one
of [...]", "field": "events[3].severity"}``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from handlers.base import clean, fit_alert, json_depth_within, scrub, storable, utc_or_none
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint
from opsbot.incidents import service
from opsbot.intake.events_schema import SCHEMA
from opsbot.web import ApiError, require, runtime

bp = Blueprint("events_api", __name__, url_prefix="/api")
VALIDATOR = Draft202012Validator(SCHEMA)
# RFC 3339 section 5.6 date-time: "T" or "t" (or a space, section 5.6 NOTE), "Z"/"z" or ±hh:mm.
RFC3339_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
IDENTIFIERS = ("id", "dedup_key", "source", "account_id", "region", "link")


class InvalidEvent(ApiError):
    """A 400 that also names the field that is wrong."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__("invalid_event", f"{where}: {detail}" if where else detail, 400)
        self.field = where


bp.before_request(require("events"))  # a token with the events scope


@bp.errorhandler(InvalidEvent)
def _invalid(exc: InvalidEvent) -> tuple[Response, int]:
    return jsonify(error=exc.code, detail=exc.detail, field=exc.field), exc.status


@bp.post("/events")
def post_events() -> Response:
    """Record a batch of events; answer with what each did."""
    body = read_body()
    events = body["events"]
    rt = runtime()
    now = rt.clock()
    alerts = [to_alert(event, i) for i, event in enumerate(events)]

    def work(session: Any) -> list[service.IngestResult]:
        return [
            service.record_delivery(
                session,
                delivery=delivery_of(event),
                alerts=[alert],
                policy=rt.policy,
                now=now,
                silences=rt.silences,
            )
            for event, alert in zip(events, alerts, strict=True)
        ]

    results = service.in_transaction(rt.sessions, work)
    for result in results:
        outcome = "duplicate" if result.duplicate else "recorded"
        rt.metrics.inc("opsbot_deliveries_total", channel="api", outcome=outcome)
    return jsonify(results=[result_json(e, r) for e, r in zip(events, results, strict=True)])


def read_body() -> dict[str, Any]:
    """Return the validated JSON body, or raise the 400 naming the first wrong field."""
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError("bad_json", f"The body is not JSON: {exc}.", 400) from None
    except RecursionError:
        body = None  # deeper than the parser's stack: refused just below
    if body is None or not json_depth_within(body):
        raise ApiError("bad_json", "The body is not JSON nested at most 32 deep.", 400)
    errors = sorted(VALIDATOR.iter_errors(body), key=lambda e: (list(map(str, e.path)), e.message))
    if errors:
        raise InvalidEvent(path_of(errors[0]), describe(errors[0]))
    assert isinstance(body, dict)
    for i, event in enumerate(body["events"]):
        check_event_text(event, i)
    body = scrub(body)  # display text: NUL and lone surrogates become U+FFFD
    assert isinstance(body, dict)
    seen: dict[str, int] = {}
    for i, event in enumerate(body["events"]):
        if event["id"] in seen:
            raise InvalidEvent(f"events[{i}].id", f"repeats the id of events[{seen[event['id']]}]")
        seen[event["id"]] = i
    return body


def check_event_text(event: dict[str, Any], index: int) -> None:
    """Refuse an identifier with NUL or a lone surrogate, and a time that is not RFC 3339."""
    for name in IDENTIFIERS:
        if name in event and not storable(event[name]):
            raise InvalidEvent(f"events[{index}].{name}", "holds NUL or a lone surrogate")
    if "occurred_at" in event and parse_time(event["occurred_at"]) is None:
        raise InvalidEvent(
            f"events[{index}].occurred_at",
            f"{clean(event['occurred_at'])[:80]!r} is not an RFC 3339 time with an offset "
            "within the years 0001 to 9999 in UTC",
        )


def path_of(error: ValidationError) -> str:
    """Return "events[3].severity" for an error's location in the body."""
    where = ""
    for step in error.absolute_path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else str(step))
    return where


def describe(error: ValidationError) -> str:
    """Return a short sentence for a schema error, without echoing huge values."""
    if error.validator == "additionalProperties" and error.path and error.path[-1] != "labels":
        return error.message
    if error.validator in ("maxLength", "maxItems", "maxProperties"):
        return f"is longer than the allowed {error.validator_value}"
    return error.message if len(error.message) <= 300 else error.message[:297] + "…"


def parse_time(value: str) -> datetime | None:
    """Return the UTC time of an RFC 3339 date-time, or None (other ISO 8601 forms are not)."""
    match = RFC3339_RE.fullmatch(value)
    if match is None:
        return None
    day, minutes, seconds, fraction, offset = match.groups()
    # A leap second (":60") is valid RFC 3339; Python has no such second, so it is :59.
    seconds = "59" if seconds == "60" else seconds
    fraction = (fraction or "")[:7]  # Python reads at most microseconds
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{day}T{minutes}:{seconds}{fraction}{offset}")
    except ValueError:
        return None
    return utc_or_none(parsed)


def to_alert(event: dict[str, Any], index: int) -> Alert:
    """Return the alert one validated event stands for."""
    source = event["source"]
    dedup = event.get("dedup_key")
    identity = (dedup,) if dedup else (event["resource"], event["title"])
    occurred = parse_time(event["occurred_at"]) if "occurred_at" in event else None
    alert = Alert(
        fingerprint=make_fingerprint("api", source, *identity),
        status=AlertStatus(event.get("status", "firing")),
        severity=Severity(event["severity"]),
        source=source,
        title=event["title"],
        summary=event.get("summary", ""),
        account_id=event.get("account_id", ""),
        region=event.get("region", ""),
        resource=event["resource"],
        labels=dict(event.get("labels", {})),
        console_url=event.get("link", ""),
        occurred_at=occurred,
        raw=event,
    )
    return fit_alert(alert)


def delivery_of(event: dict[str, Any]) -> service.DeliveryIn:
    """Return the delivery row of one event, keyed by the sender's id."""
    return service.DeliveryIn(
        namespace="api",
        message_id=event["id"],
        channel="api",
        message_type="Event",
        body=clean(json.dumps(event, separators=(",", ":"), ensure_ascii=False)),
        subject=clean(event["title"])[:256],
        sent_at=parse_time(event["occurred_at"]) if "occurred_at" in event else None,
    )


def result_json(event: dict[str, Any], result: service.IngestResult) -> dict[str, Any]:
    """Return what one event did."""
    return {
        "id": event["id"],
        "status": "duplicate" if result.duplicate else "recorded",
        "alerts": [
            {"fingerprint": o.fingerprint, "action": o.action, "incident_id": o.incident_id}
            for o in result.outcomes
        ],
    }


def register(app: Flask) -> None:
    """Mount ``POST /api/events``."""
    app.register_blueprint(bp)
