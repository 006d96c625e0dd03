"""Integration status: what each sender last saw of its remote, kept in the database.

Every replica reads the same rows (``GET /status``, the ``opsbot_integration_up``
gauge), so the ``serve`` processes see what the workers saw. A sender whose
credentials were refused is stopped by its ``SenderGate``: its rows wait
without being charged, and one real call every ``probe_every`` tests whether
the credentials work again; the first success drains the held rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from opsbot.db.models import IntegrationStatus
from opsbot.db.session import is_postgres, transaction
from opsbot.outbox.ports import Wait

log = logging.getLogger(__name__)

PROBE_EVERY = timedelta(minutes=1)
# "ok" is rewritten at most this often, so a replica's stale row is corrected soon.
REFRESH = timedelta(minutes=1)


def record_status(session: Session, target: str, state: str, detail: str, now: datetime) -> None:
    """Store an integration's state (``since`` moves only when the state changes)."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(
        dialect.insert(IntegrationStatus)
        .values(target=target, state=state, detail=detail, since=now, checked_at=now)
        .on_conflict_do_nothing(index_elements=["target"])
    )
    row = session.get(IntegrationStatus, target, with_for_update=True, populate_existing=True)
    assert row is not None
    if row.state != state:
        row.state, row.since = state, now
    row.detail, row.checked_at = detail[:2000], now


def read_status(session: Session) -> dict[str, IntegrationStatus]:
    """Return the stored status of every integration, by target."""
    rows = session.execute(select(IntegrationStatus)).scalars()
    return {row.target: row for row in rows}


class SenderGate:
    """Stops a sender whose credentials were refused; lets one probe call through per interval."""

    def __init__(
        self,
        target: str,
        factory: sessionmaker[Session],
        clock: Callable[[], datetime],
        probe_every: timedelta = PROBE_EVERY,
    ) -> None:
        self.target = target
        self.factory = factory
        self.clock = clock
        self.probe_every = probe_every
        self.stopped: str | None = None
        self._next_probe: datetime | None = None
        self._reported: tuple[str, datetime] | None = None
        self._lock = threading.Lock()

    def admit(self) -> None:
        """Raise a holding ``Wait`` while stopped, except for the periodic probe call."""
        now = self.clock()
        with self._lock:
            if self.stopped is None:
                return
            assert self._next_probe is not None
            if now < self._next_probe:
                wait = (self._next_probe - now).total_seconds()
                raise Wait(f"{self.target} delivery is stopped: {self.stopped}", wait, hold=True)
            self._next_probe = now + self.probe_every  # this call is the probe

    def stop(self, reason: str) -> Wait:
        """Stop the sender after its credentials were refused; return the Wait for the row."""
        now = self.clock()
        with self._lock:
            first = self.stopped is None
            self.stopped, self._next_probe = reason, now + self.probe_every
        if first:
            log.error("%s delivery stopped until its credentials work: %s", self.target, reason)
        self._report("stopped", reason, now)
        return Wait(
            f"{self.target} delivery is stopped: {reason}",
            self.probe_every.total_seconds(),
            hold=True,
        )

    def succeeded(self) -> None:
        """Record a call the remote accepted: a stopped sender starts again."""
        now = self.clock()
        with self._lock:
            was = self.stopped
            self.stopped = self._next_probe = None
        if was is not None:
            log.warning("%s delivery resumed: the credentials work again", self.target)
        self._report("ok", "", now)

    def failing(self, reason: str) -> None:
        """Record a transient failure of the remote (outage, 5xx, rate limited)."""
        self._report("failing", reason, self.clock())

    def _report(self, state: str, detail: str, now: datetime) -> None:
        with self._lock:
            last = self._reported
            if last is not None and last[0] == state and now - last[1] < REFRESH:
                return
            self._reported = (state, now)
        with transaction(self.factory) as session:
            record_status(session, self.target, state, detail, now)
