"""The Alert value every handler produces and the core decides on."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_RANK = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One observation from a source: a thing is wrong (firing) or fine again (resolved).

    ``fingerprint`` is the identity of the problem: every alert with the same
    fingerprint belongs to the same incident. ``raw`` is the source event as
    parsed JSON (or ``{"text": ...}``), kept for the audit trail.
    ``record_if_none_open`` marks a resolved alert that must leave a (resolved)
    incident even when none is open, e.g. an RDS failover that completed.
    """

    fingerprint: str
    status: AlertStatus
    severity: Severity
    source: str
    title: str
    summary: str = ""
    account_id: str = ""
    region: str = ""
    resource: str = ""
    detail_type: str = ""
    alarm_name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    console_url: str = ""
    occurred_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    record_if_none_open: bool = False


def make_fingerprint(*parts: str) -> str:
    """Return a stable 32-hex-digit identity for the given parts, in order."""
    joined = "\x1f".join(p.strip() for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]
