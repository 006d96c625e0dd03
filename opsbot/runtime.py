"""The runtime that ``create_app`` wires: settings, policy, database, verifier, metrics, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opsbot.config import Settings
from opsbot.core.policy import Policy
from opsbot.incidents.service import StoredSilences
from opsbot.metrics import Metrics
from opsbot.sns import verify as sns


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a request or job needs, built once per process by ``create_app``."""

    settings: Settings
    policy: Policy
    engine: Engine
    sessions: sessionmaker[Session]
    certs: sns.CertificateStore
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = utcnow
    confirm_subscription: Callable[[str], int] = sns.confirm_subscription
    silences: StoredSilences = field(default_factory=StoredSilences)
    # Integrations keep their per-process clients here (e.g. "slack.chat").
    integrations: dict[str, Any] = field(default_factory=dict)
    # Readiness hooks: each returns a problem sentence, or None when fine (see /readyz).
    readiness: list[Callable[[], str | None]] = field(default_factory=list)


def runtime() -> Runtime:
    """Return the runtime of the current Flask app."""
    rt: Runtime = current_app.extensions["opsbot"]
    return rt
