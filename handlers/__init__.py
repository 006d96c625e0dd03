"""Handlers: pure parsers that turn the text of an inbound message into Alert values.

``parse(inbound)`` recognises the message and hands it to one handler module:

- a JSON object with ``AlarmName`` and ``NewStateValue`` → ``handlers.cloudwatch``;
- a JSON object with ``detail-type``, ``source`` and ``detail`` → ``handlers.eventbridge``;
- a JSON object with ``approval`` and ``consoleLink`` (a CodePipeline manual approval
  notification) → ``handlers.codepipeline``;
- a JSON object with ``anomalyId``, ``accountId`` and ``impact`` (a Cost Anomaly Detection
  alert) → ``handlers.cost``;
- a plain-text AWS Budgets notification → ``handlers.budgets``;
- anything else → ``handlers.generic``.

Some publishers encode the JSON twice (the message is a JSON string holding
JSON); such a string is decoded once more. ``parse`` never raises: a message
that looks like a known kind but fails to parse is logged and kept as a
generic alert, because nothing is ever dropped.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from handlers import budgets, cloudwatch, codepipeline, cost, eventbridge, generic, sentry
from handlers.base import EventHandler, Inbound, clean, fit_alert
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

__all__ = ["Inbound", "metric_source", "parse"]

log = logging.getLogger(__name__)

RECOGNISERS: tuple[tuple[str, frozenset[str], EventHandler], ...] = (
    ("cloudwatch", frozenset({"AlarmName", "NewStateValue"}), cloudwatch.parse),
    ("eventbridge", frozenset({"detail-type", "source", "detail"}), eventbridge.parse),
    ("approval", frozenset({"approval", "consoleLink"}), codepipeline.parse_notification),
    ("cost anomaly", frozenset({"anomalyId", "accountId", "impact"}), cost.parse_sns),
)
JSON_START_RE = re.compile(r'\s*[\[{"]')
# "\ud800" escapes decode to lone surrogates, which no UTF-8 encoder accepts.
LONE_SURROGATE_ESCAPE_RE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def metric_source(source: str) -> str:
    """Return the source as a metrics label: a source opsbot has a handler for, else "other"."""
    # One series per distinct sender-chosen source would let a sender grow /metrics unbounded.
    known = source in eventbridge.SOURCE_HANDLERS or source in (cloudwatch.SOURCE, "sns", "generic")
    known = known or source in (cost.SOURCE, budgets.SOURCE, sentry.SOURCE)
    return source if known else "other"


def parse(inbound: Inbound) -> list[Alert]:
    """Return the alerts in one inbound message, cut to fit storage; never raises, never []."""
    try:
        prepared, document = prepare(inbound)
        return [fit_alert(alert) for alert in parse_document(prepared, document)]
    except Exception:
        log.exception("handlers: message %r could not be parsed at all", inbound.message_id)
        return [unparseable_alert(inbound.received_at)]


def prepare(inbound: Inbound) -> tuple[Inbound, dict[str, Any] | None]:
    """Return the inbound message with clean text (decoded once more if nested) and its JSON."""
    text = clean(as_text(inbound.text))
    value = decode_json(text)
    if isinstance(value, str):
        text, value = value, decode_json(value)
    prepared = replace(
        inbound,
        text=text,
        subject=clean(as_text(inbound.subject)) if inbound.subject is not None else None,
        topic_arn=clean(as_text(inbound.topic_arn)),
        message_id=clean(as_text(inbound.message_id)),
    )
    return prepared, value if isinstance(value, dict) else None


def parse_document(inbound: Inbound, document: dict[str, Any] | None) -> list[Alert]:
    """Return the alerts of the handler that recognises the message, else the generic alert."""
    recognised = recognise(document) if document is not None else None
    if document is not None and recognised is not None:
        alerts = try_handler(*recognised, document, inbound)
        if alerts:
            return alerts
    if document is None and budgets.looks_like(inbound.text):
        alerts = try_handler("budgets", budgets.parse, {}, inbound)
        if alerts:
            return alerts
    return generic.parse(inbound, document)


def recognise(document: dict[str, Any]) -> tuple[str, EventHandler] | None:
    """Return the name and handler for a JSON object of a known kind, or None."""
    for name, keys, handler in RECOGNISERS:
        if document.keys() >= keys:
            return name, handler
    return None


def try_handler(
    name: str, handler: EventHandler, document: dict[str, Any], inbound: Inbound
) -> list[Alert]:
    """Return the handler's alerts, or [] after logging why it could not parse the message."""
    try:
        return handler(document, inbound)
    except Exception as error:
        log.warning(
            "handlers: %s message %r did not parse, kept as a generic alert: %s",
            name,
            inbound.message_id,
            f"{type(error).__name__}: {error}"[:300],
        )
        return []


def decode_json(text: str) -> object:
    """Return the JSON value of a text that holds an object, array or string, else None."""
    if not JSON_START_RE.match(text):
        return None
    try:
        return json.loads(LONE_SURROGATE_ESCAPE_RE.sub(r"\\ufffd", text))
    except (ValueError, RecursionError):
        return None


def as_text(value: object) -> str:
    """Return the value as text: bytes decoded leniently, None as ""."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def unparseable_alert(received_at: datetime | None) -> Alert:
    """Return the alert kept when even the generic handler fails (a bug, logged above)."""
    return Alert(
        fingerprint=make_fingerprint("generic", "unparseable"),
        status=AlertStatus.FIRING,
        severity=Severity.MEDIUM,
        source="generic",
        title="Unparseable message",
        occurred_at=received_at if isinstance(received_at, datetime) else None,
    )
