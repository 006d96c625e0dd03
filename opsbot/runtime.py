"""The Runtime container: settings, policy, database, metrics, clock and per-process caches.

Built once per process by a composition root (``opsbot.app.build_runtime``);
imports neither the web framework nor any domain package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opsbot.config import Settings
from opsbot.core.policy import Policy
from opsbot.core.silences import Silence
from opsbot.metrics import Metrics

SilenceSource = Callable[[Session, datetime], Sequence[Silence]]
PolicyLoader = Callable[[], tuple[Policy, Mapping[str, Any]]]
_RELOAD_LOCK = threading.Lock()


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class StoredSilences:
    """Operator-made silences, read through ``load`` at most once per ``ttl`` per process.

    Ingest consults silences on every delivery; they change rarely. A silence
    made on another replica applies here within ``ttl``; one made in this
    process applies at once (``invalidate``).
    """

    def __init__(self, load: SilenceSource, ttl: timedelta = timedelta(seconds=2)) -> None:
        self.load = load
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[datetime, list[Silence]] | None = None

    def __call__(self, session: Session, now: datetime) -> Sequence[Silence]:
        with self._lock:
            cached = self._cached
        if cached is not None and timedelta(0) <= now - cached[0] < self.ttl:
            return [s for s in cached[1] if s.ends_at > now]
        fresh = list(self.load(session, now))
        with self._lock:
            self._cached = (now, fresh)
        return fresh

    def invalidate(self) -> None:
        """Forget the cached silences (after this process made or ended one)."""
        with self._lock:
            self._cached = None


@dataclass
class Runtime:
    """Everything a request or job needs, built once per process."""

    settings: Settings
    policy: Policy
    engine: Engine
    sessions: sessionmaker[Session]
    silences: StoredSilences
    # The per-source handler configuration (``cloudtrail:``, ``ec2:``), passed with every message.
    sources: Mapping[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = utcnow
    # Integrations keep their per-process clients here (e.g. "slack", "jira", "sns.certs").
    integrations: dict[str, Any] = field(default_factory=dict)
    # Reads and validates the YAML file again: the new (policy, sources), or ConfigError.
    loader: PolicyLoader | None = None

    def reload(self) -> Policy:
        """Validate the configuration file again and swap it in; ConfigError keeps the old one.

        What is read per use (routing, silences, heartbeats, the sources'
        settings) follows at once; what a process reads once at start
        (escalation steps, Jira fields, Slack roles) follows when the process is
        replaced, which is what SIGHUP does (see docs/operations.md).
        """
        if self.loader is None:
            raise RuntimeError("this runtime was built without a loader")
        policy, sources = self.loader()
        with _RELOAD_LOCK:
            self.policy, self.sources = policy, sources
        return policy
