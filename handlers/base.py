"""What every handler shares: the inbound message and small, total text helpers.

Every helper here accepts any value (handlers read untrusted JSON) and never
raises; each returns clean text that encodes to UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opsbot.core.alert import Alert

ELLIPSIS = "…"
REPLACEMENT = "\ufffd"
# A str holds code points, so any surrogate in it is a lone one (e.g. from surrogateescape).
SURROGATE_RE = re.compile("[\ud800-\udfff]")
REGION_CODE_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Inbound:
    """One message to parse: the SNS ``Message`` text and the envelope facts around it."""

    text: str
    subject: str | None = None
    topic_arn: str = ""
    message_id: str = ""
    received_at: datetime | None = None
    # Per-source configuration from the YAML file ("cloudtrail": watch list, "ec2": watch rule),
    # passed with every message so that handlers keep no module state.
    sources: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN handlers use; all empty when the value is not an ARN."""

    partition: str = ""
    service: str = ""
    region: str = ""
    account: str = ""
    resource: str = ""


# A handler for one decoded JSON object, e.g. one EventBridge source.
EventHandler = Callable[[dict[str, Any], Inbound], list[Alert]]


def clean(value: str) -> str:
    """Return the text with lone surrogates replaced by U+FFFD, so it always encodes to UTF-8."""
    return SURROGATE_RE.sub(REPLACEMENT, value)


def text_of(value: object) -> str:
    """Return a JSON scalar as clean text; containers and null give ""."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def bound(text: str, limit: int) -> str:
    """Return the text cut to at most ``limit`` characters, marking a cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def first_line(text: str, limit: int = 200) -> str:
    """Return the first non-blank line of the text, trimmed and bounded."""
    for line in text[: limit * 20].splitlines():
        if line.strip():
            return bound(line.strip(), limit)
    return ""


def one_line(text: str, limit: int) -> str:
    """Return the text with all whitespace runs collapsed to single spaces, bounded."""
    return bound(" ".join(text[: limit * 4].split()), limit)


def parse_time(value: object) -> datetime | None:
    """Return an aware datetime for an AWS timestamp ("…T19:28:08.011+0000", "…Z"), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_arn(value: object) -> Arn:
    """Return the parts of an ARN ("arn:partition:service:region:account:resource")."""
    parts = text_of(value).split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return Arn()
    return Arn(*parts[1:])


def region_code(value: str) -> str:
    """Return the value when it looks like a region code ("eu-west-1"), else ""."""
    return value if REGION_CODE_RE.match(value) else ""


def account_id(value: str) -> str:
    """Return the value when it is a 12-digit account id, else ""."""
    return value if ACCOUNT_ID_RE.match(value) else ""


def short_resource(value: str) -> str:
    """Return the resource part of an ARN ("service/default/web"), or the value itself."""
    return parse_arn(value).resource or value
