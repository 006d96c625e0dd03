"""What the per-source EventBridge handlers share: the event envelope and alert building.

Every AWS service event has the same envelope
(https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html):
``source``, ``detail-type``, ``account``, ``region``, ``time``, ``resources``
and ``detail``. A handler reads the envelope with ``envelope`` and builds its
alerts with ``make_alert``; the fingerprint is always
``make_fingerprint(source, account, region, *identity)``.

An event a handler recognises but does not care about (an EC2 instance that is
not watched, a task that started) becomes ``ignored_alert``: a resolved, info
alert under an identity no firing alert ever uses, so it is recorded once and
never opens an incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.base import Inbound, bound, one_line, parse_time, text_of
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

TITLE_LIMIT = 200
SUMMARY_LIMIT = 2000
LABEL_LIMIT = 200
IGNORED = "not-watched"
SEVERITY_WORDS = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "low": Severity.LOW,
    "informational": Severity.INFO,
    "info": Severity.INFO,
}


@dataclass(frozen=True)
class Envelope:
    """The envelope facts of one EventBridge event, all clean text."""

    source: str
    detail_type: str
    account: str
    region: str
    occurred_at: datetime | None
    resources: tuple[str, ...]
    detail: Mapping[str, Any]
    raw: Mapping[str, Any]


def envelope(event: dict[str, Any], inbound: Inbound) -> Envelope:
    """Return the envelope of an event; raise ValueError when its detail is not an object."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise ValueError("event detail is not an object")
    resources = event.get("resources")
    items = resources if isinstance(resources, list) else []
    return Envelope(
        source=text_of(event.get("source")).strip(),
        detail_type=text_of(event.get("detail-type")).strip(),
        account=text_of(event.get("account")).strip(),
        region=text_of(event.get("region")).strip(),
        occurred_at=parse_time(event.get("time")) or inbound.received_at,
        resources=tuple(t for t in (text_of(i).strip() for i in items) if t),
        detail=detail,
        raw=event,
    )


def field(data: object, *path: str | int) -> Any:
    """Return the value at a path of keys and indexes, or None when any step is missing."""
    value = data
    for step in path:
        if isinstance(step, int):
            value = (
                value[step]
                if isinstance(value, list) and -len(value) <= step < len(value)
                else None
            )
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def text(data: object, *path: str | int, limit: int = 500) -> str:
    """Return the text at a path (see ``field``), on one line and bounded; "" when missing."""
    return one_line(text_of(field(data, *path)), limit)


def severity_word(value: str, default: Severity) -> Severity:
    """Return the severity a word such as "HIGH" or "INFORMATIONAL" names, else the default."""
    return SEVERITY_WORDS.get(value.strip().lower(), default)


def make_alert(
    env: Envelope,
    *,
    identity: tuple[str, ...],
    status: AlertStatus,
    severity: Severity,
    title: str,
    summary: str = "",
    resource: str = "",
    labels: Mapping[str, str] | None = None,
    account: str = "",
    region: str = "",
    alarm_name: str = "",
    console_url: str = "",
) -> Alert:
    """Return an alert for the event, identified by (source, account, region, *identity)."""
    account = account or env.account
    region = region or env.region
    return Alert(
        fingerprint=make_fingerprint(env.source, account, region, *identity),
        status=status,
        severity=severity,
        source=env.source,
        title=bound(one_line(title, TITLE_LIMIT * 2), TITLE_LIMIT),
        summary=bound(summary, SUMMARY_LIMIT),
        account_id=account,
        region=region,
        resource=bound(resource, 512),
        detail_type=env.detail_type,
        alarm_name=alarm_name,
        labels={k: bound(v, LABEL_LIMIT) for k, v in (labels or {}).items() if v},
        console_url=console_url,
        occurred_at=env.occurred_at,
        raw=env.raw,
    )


def ignored_alert(env: Envelope, reason: str) -> Alert:
    """Return the resolved info alert recorded for an event that needs no incident."""
    return make_alert(
        env,
        identity=(env.detail_type, IGNORED),
        status=AlertStatus.RESOLVED,
        severity=Severity.INFO,
        title=f"{env.detail_type}: {reason}",
        summary=reason,
        labels={"ignored": reason},
    )
