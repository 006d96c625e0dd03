"""Anything else: plain-text SNS messages and JSON no other handler recognises.

Reads the SNS ``Message`` and ``Subject`` of any notification
(https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html),
e.g. a text alert from a script, the S3 test event, or an event shape opsbot
does not know yet. Nothing is dropped: every such message becomes one alert.

Identity: ``make_fingerprint("generic", topic ARN, headline)`` where the
headline is the subject, else the first line of the text (or, for a JSON
object, its first title-like field), trimmed to 200 characters, with a leading
"RESOLVED"/"OK:"/"ALARM:"/"FIRING:" marker removed so that a problem and its
recovery share one identity.

Severity: medium.

Resolve: the alert is resolved when the subject or first line starts with
"RESOLVED" or "OK:"; otherwise it fires.
"""

from __future__ import annotations

import json
import re
from typing import Any

from handlers.base import Inbound, account_id, bound, first_line, parse_arn, region_code, text_of
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

DEFAULT_SEVERITY = Severity.MEDIUM
RESOLVED_RE = re.compile(r"^\s*(?:RESOLVED\b|OK:)", re.IGNORECASE)
STATUS_MARKER_RE = re.compile(
    r"^\s*(?:RESOLVED\b\s*[:\-]?|OK:|(?:FIRING|ALARM|PROBLEM)\s*[:\-])\s*", re.IGNORECASE
)
HEADLINE_KEYS = ("title", "subject", "summary", "message", "description", "Event", "event", "type")
HEADLINE_LIMIT = 200
SUMMARY_LIMIT = 4000
EMPTY_TITLE = "(empty message)"


def parse(inbound: Inbound, document: dict[str, Any] | None = None) -> list[Alert]:
    """Return the one alert for a message no other handler reads; ``document`` is its JSON."""
    headline = (inbound.subject or "").strip() or headline_of(inbound.text, document)
    topic = parse_arn(inbound.topic_arn)
    labels = {"topic": bound(topic.resource, 200)} if topic.resource else {}
    return [
        Alert(
            fingerprint=make_fingerprint("generic", inbound.topic_arn, identity_of(headline)),
            status=AlertStatus.RESOLVED if is_resolved(inbound) else AlertStatus.FIRING,
            severity=DEFAULT_SEVERITY,
            source="sns" if inbound.topic_arn else "generic",
            title=bound(headline, HEADLINE_LIMIT) or EMPTY_TITLE,
            summary=bound(inbound.text, SUMMARY_LIMIT),
            account_id=account_id(topic.account),
            region=region_code(topic.region),
            labels=labels,
            occurred_at=inbound.received_at,
            raw=document if document is not None else {"text": inbound.text},
        )
    ]


def headline_of(text: str, document: dict[str, Any] | None) -> str:
    """Return the text's first line or, for a JSON object, its first title-like field."""
    if document is None:
        return first_line(text, HEADLINE_LIMIT)
    for key in HEADLINE_KEYS:
        line = first_line(text_of(document.get(key)), HEADLINE_LIMIT)
        if line:
            return line
    return first_line(compact(document), HEADLINE_LIMIT)


def is_resolved(inbound: Inbound) -> bool:
    """Return whether the subject or the first line announces a recovery."""
    subject = inbound.subject or ""
    return bool(RESOLVED_RE.match(subject) or RESOLVED_RE.match(first_line(inbound.text)))


def identity_of(headline: str) -> str:
    """Return the headline without its leading status marker, bounded."""
    return bound(STATUS_MARKER_RE.sub("", headline, count=1).strip(), HEADLINE_LIMIT)


def compact(document: dict[str, Any]) -> str:
    """Return the JSON object on one line, or "" when it cannot be rendered."""
    try:
        return text_of(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return ""
