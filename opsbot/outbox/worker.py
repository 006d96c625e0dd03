"""The outbox worker: delivers queued calls to Jira and Slack with retries and backoff.

SSM runs are not outbox rows: ``opsbot.runbooks.runner`` starts and polls them.

Rows are claimed in a short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so many workers share the table) by moving them to ``sending``
with a lease; the call runs outside any transaction; the result is written in
another. A worker that dies mid-call leaves a lease that expires, and the row
is claimed again: senders must be idempotent (Jira searches before creating).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from opsbot.db.models import Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.metrics import Metrics
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sender

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 15 * 60.0
LEASE = timedelta(minutes=5)


def backoff_seconds(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Return the delay before retry number ``attempts``: exponential, capped, with jitter."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return ceiling / 2 + rng() * ceiling / 2


class OutboxWorker:
    """Claims due outbox rows and hands each to the sender of its target."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        senders: Mapping[str, Sender],
        *,
        metrics: Metrics,
        max_attempts: int = 12,
        batch: int = 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.factory = factory
        self.senders = dict(senders)
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.batch = batch
        self.clock = clock
        self.rng = rng

    def run_once(self) -> int:
        """Deliver one batch of due rows; return how many were handled."""
        items = self.claim()
        for item in items:
            self.deliver(item)
        return len(items)

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set, sleeping between empty polls."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:
                log.exception("outbox poll failed; retrying after a pause")
                handled = 0
            if not handled:
                stop.wait(poll_seconds)

    def claim(self) -> list[OutboxItem]:
        """Lease a batch of due rows; rows of unconfigured targets are marked skipped."""
        now = self.clock()
        with transaction(self.factory) as session:
            rows = session.execute(_due(now, self.batch)).scalars().all()
            items = []
            for row in rows:
                if row.target not in self.senders:
                    _finish(session, row.id, now, state="skipped", error="integration off")
                    self.metrics.inc("opsbot_outbox_total", target=row.target, outcome="skipped")
                    continue
                row.state, row.locked_until, row.updated_at = "sending", now + LEASE, now
                row.attempts += 1
                items.append(_item(row))
        return items

    def deliver(self, item: OutboxItem) -> None:
        """Send one claimed row and record the outcome."""
        sender = self.senders[item.target]
        try:
            sent = sender.send(item)
        except RetryLater as exc:
            self._retry(item, exc.reason, exc.retry_after)
        except PermanentFailure as exc:
            self._dead(item, exc.reason)
        except Exception as exc:
            log.exception("sender %s failed on outbox row %d", item.target, item.id)
            self._retry(item, f"{type(exc).__name__}: {exc}", None)
        else:
            now = self.clock()
            with transaction(self.factory) as session:
                _finish(session, item.id, now, state="done")
                if sent.incident_updates and item.incident_id is not None:
                    session.execute(
                        update(Incident)
                        .where(Incident.id == item.incident_id)
                        .values(**sent.incident_updates)
                    )
            self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="sent")

    def _retry(self, item: OutboxItem, reason: str, retry_after: float | None) -> None:
        if item.attempts >= self.max_attempts:
            self._dead(item, f"gave up after {item.attempts} attempts: {reason}")
            return
        delay = retry_after if retry_after is not None else backoff_seconds(item.attempts, self.rng)
        now = self.clock()
        log.warning(
            "outbox row %d (%s %s) failed: %s; retry in %.1fs",
            item.id,
            item.target,
            item.kind,
            reason,
            delay,
        )
        with transaction(self.factory) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item.id)
                .values(
                    state="pending",
                    due_at=now + timedelta(seconds=delay),
                    locked_until=None,
                    last_error=reason[:2000],
                    updated_at=now,
                )
            )
        self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="retried")

    def _dead(self, item: OutboxItem, reason: str) -> None:
        log.error(
            "outbox row %d (%s %s) dead-lettered: %s", item.id, item.target, item.kind, reason
        )
        with transaction(self.factory) as session:
            _finish(session, item.id, self.clock(), state="dead", error=reason)
        self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="dead")


def _due(now: datetime, limit: int):  # type: ignore[no-untyped-def]
    pending = and_(OutboxRow.state == "pending", OutboxRow.due_at <= now)
    abandoned = and_(OutboxRow.state == "sending", OutboxRow.locked_until < now)
    return (
        select(OutboxRow)
        .where(or_(pending, abandoned))
        .order_by(OutboxRow.due_at, OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _finish(
    session: Session, row_id: int, now: datetime, *, state: str, error: str | None = None
) -> None:
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id)
        .values(state=state, locked_until=None, updated_at=now, last_error=error and error[:2000])
    )


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        target=row.target,
        kind=row.kind,
        incident_id=row.incident_id,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        created_at=row.created_at,
    )
