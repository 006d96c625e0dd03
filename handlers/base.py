"""What every handler shares: the inbound message and small, total text helpers.

Every helper here accepts any value (handlers read untrusted JSON) and never
raises; each returns clean text that encodes to UTF-8.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from opsbot.core.alert import Alert

ELLIPSIS = "…"
REPLACEMENT = "\ufffd"
# A str holds code points, so any surrogate in it is a lone one (e.g. from surrogateescape).
SURROGATE_RE = re.compile("[\ud800-\udfff]")
# What PostgreSQL cannot store in text or JSONB: NUL and lone surrogates.
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
ASCII_DIGITS_RE = re.compile(r"[0-9]{1,19}")
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
# The widths of the alerts and incidents columns (a test compares them with the models);
# display text is cut to fit with an ellipsis, the values of a fixed form are dropped.
ALERT_TEXT_LIMITS = {"title": 512, "source": 128, "resource": 512, "summary": 16_000}
ALERT_CODE_LIMITS = {"account_id": 32, "region": 32}
LABEL_LIMITS = (100, 500, 50)  # key length, value length, labels per alert
URL_LIMIT = 2000
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
    """Return the text with NUL and lone surrogates replaced by U+FFFD (storable anywhere)."""
    return UNSTORABLE_RE.sub(REPLACEMENT, value)


def storable(value: str) -> bool:
    """Return whether the text holds no NUL and no lone surrogate."""
    return UNSTORABLE_RE.search(value) is None


def parse_int(text: str, low: int = 0, high: int = INT64_MAX) -> int | None:
    """Return the ASCII decimal number in ``low..high``, or None (no superscripts or signs)."""
    if not ASCII_DIGITS_RE.fullmatch(text):
        return None
    number = int(text)
    return number if low <= number <= high else None


def json_depth_within(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether decoded JSON nests no deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def scrub(value: object, depth: int = 0) -> object:
    """Return decoded JSON with every key and string clean, nesting cut at MAX_JSON_DEPTH."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSONB has no NaN or Infinity
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
        return ELLIPSIS
    if isinstance(value, dict):
        return {clean(str(k)): scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, depth + 1) for v in value]
    return value


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


def fit_alert(alert: Alert) -> Alert:
    """Return the alert cleaned and cut to the widths of the columns that store it."""
    text: dict[str, Any] = {
        name: bound(clean(getattr(alert, name)), n) for name, n in ALERT_TEXT_LIMITS.items()
    }
    codes: dict[str, Any] = {
        name: _code(getattr(alert, name), n) for name, n in ALERT_CODE_LIMITS.items()
    }
    key_n, value_n, count = LABEL_LIMITS
    labels = {
        bound(clean(str(k)), key_n): bound(clean(str(v)), value_n)
        for k, v in list(alert.labels.items())[:count]
    }
    raw = scrub(alert.raw)
    return replace(
        alert,
        **text,
        **codes,
        detail_type=bound(clean(alert.detail_type), 256),
        alarm_name=bound(clean(alert.alarm_name), 256),
        labels=labels,
        console_url=_code(alert.console_url, URL_LIMIT),
        occurred_at=utc_or_none(alert.occurred_at),
        raw=raw if isinstance(raw, dict) else {},
    )


def utc_or_none(value: datetime | None) -> datetime | None:
    """Return the time in UTC, or None when UTC cannot hold it (year 1 at +14:00)."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        return None


def _code(value: str, limit: int) -> str:
    # A value of a fixed form (account id, region, URL) that does not fit is wrong, not long.
    return value if len(value) <= limit and storable(value) else ""
