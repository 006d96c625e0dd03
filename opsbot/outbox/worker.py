"""The outbox worker: delivers queued calls to Jira and Slack with retries and backoff.

SSM runs are not outbox rows: ``opsbot.runbooks.runner`` starts and polls them.

Rows are claimed in a short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so many workers share the table) by moving them to ``sending``
with a lease; the call runs outside any transaction; the result is written in
another. A worker that dies mid-call leaves a lease that expires, and the row
is claimed again (that counts as a failed call): senders must be idempotent
(Jira searches before creating, Slack checks the stored card).

Attempts mean attempts: only a real call that failed (``RetryLater`` or an
unexpected error) is charged. A ``Wait`` (a rate budget slot, a Retry-After,
a stopped sender) reschedules the row for exactly when it asks, uncharged. A
row gives up after ``max_attempts`` failed calls or when it is older than
``give_up_after``; a row held by a stopped sender never ages out.

Fair draining: due rows are claimed first-card and first-ticket first, then
by due time, so in a burst every incident's card and ticket go out before any
update or digest.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from opsbot import logs
from opsbot.db.models import Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.metrics import Metrics
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sender, Wait
from opsbot.telemetry import tracing

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 15 * 60.0
LEASE = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(hours=24)
MAX_ATTEMPTS = 150
# the first call about an incident: claimed before any update, digest or thread note
FIRST_KINDS = ("create", "post")


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
        max_attempts: int = MAX_ATTEMPTS,
        give_up_after: timedelta = GIVE_UP_AFTER,
        batch: int = 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.factory = factory
        self.senders = dict(senders)
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.give_up_after = give_up_after
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
                if row.state == "sending":  # a worker died holding it: that call failed
                    row.attempts += 1
                row.state, row.locked_until, row.updated_at = "sending", now + LEASE, now
                items.append(_item(row))
        return items

    def deliver(self, item: OutboxItem) -> None:
        """Send one claimed row and record the outcome, logging with its ids."""
        token = logs.fresh(outbox_id=item.id, incident_id=item.incident_id)
        try:
            self._deliver(item)
        finally:
            logs.reset(token)

    def _deliver(self, item: OutboxItem) -> None:
        sender = self.senders[item.target]
        try:
            with _send_span(item):
                sent = sender.send(item)
        except Wait as exc:
            self._wait(item, exc)
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
                _finish(session, item.id, now, state="done", keep_error=True)
                if sent.incident_updates and item.incident_id is not None:
                    session.execute(
                        update(Incident)
                        .where(Incident.id == item.incident_id)
                        .values(**sent.incident_updates)
                    )
            self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="sent")

    def _retry(self, item: OutboxItem, reason: str, retry_after: float | None) -> None:
        failed = item.attempts + 1
        now = self.clock()
        if failed >= self.max_attempts:
            self._dead(item, f"gave up after {failed} failed calls: {reason}")
            return
        if now - item.created_at >= self.give_up_after:
            self._dead(item, f"gave up after {_age(now - item.created_at)}: {reason}")
            return
        delay = retry_after if retry_after is not None else backoff_seconds(failed, self.rng)
        log.warning(
            "outbox row %d (%s %s) failed: %s; retry in %.1fs",
            item.id,
            item.target,
            item.kind,
            reason,
            delay,
        )
        self._reschedule(item, now + timedelta(seconds=delay), attempts=failed, error=reason)
        self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="retried")

    def _wait(self, item: OutboxItem, wait: Wait) -> None:
        now = self.clock()
        if not wait.hold and now - item.created_at >= self.give_up_after:
            self._dead(item, f"gave up after {_age(now - item.created_at)}: {wait.reason}")
            return
        due = now + timedelta(seconds=wait.seconds)
        log.debug("outbox row %d waits %.1fs: %s", item.id, wait.seconds, wait.reason)
        self._reschedule(
            item,
            due,
            reserved=due if wait.reserved else None,
            error=wait.reason if wait.hold else None,
        )
        self.metrics.inc("opsbot_outbox_total", target=item.target, outcome="waited")

    def _reschedule(
        self,
        item: OutboxItem,
        due: datetime,
        *,
        attempts: int | None = None,
        reserved: datetime | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, object] = {
            "state": "pending",
            "due_at": due,
            "locked_until": None,
            "reserved_slot": reserved,
            "updated_at": self.clock(),
        }
        if attempts is not None:
            values["attempts"] = attempts
        if error is not None:
            values["last_error"] = error[:2000]
        with transaction(self.factory) as session:
            session.execute(update(OutboxRow).where(OutboxRow.id == item.id).values(**values))

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
    first = case((OutboxRow.kind.in_(FIRST_KINDS), 0), else_=1)
    return (
        select(OutboxRow)
        .where(or_(pending, abandoned))
        .order_by(first, OutboxRow.due_at, OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _finish(
    session: Session,
    row_id: int,
    now: datetime,
    *,
    state: str,
    error: str | None = None,
    keep_error: bool = False,
) -> None:
    values: dict[str, object] = {
        "state": state,
        "locked_until": None,
        "reserved_slot": None,
        "updated_at": now,
    }
    if not keep_error:  # a delivered row keeps the last error it overcame, for the record
        values["last_error"] = error and error[:2000]
    session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))


def _age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h"


def _send_span(item: OutboxItem):  # type: ignore[no-untyped-def]
    """Trace the send in a span linked to the delivery that queued it (with opsbot[otel])."""
    attributes: dict[str, str | int] = {"opsbot.outbox.id": item.id}
    attributes["opsbot.outbox.target"] = item.target
    attributes |= {"opsbot.outbox.kind": item.kind, "opsbot.incident.id": item.incident_id or 0}
    name = f"outbox {item.target} {item.kind}"
    return tracing.send_span(name, item.trace_parent, attributes, benign=(Wait,))


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        target=row.target,
        kind=row.kind,
        incident_id=row.incident_id,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        created_at=row.created_at,
        reserved_slot=row.reserved_slot,
        trace_parent=row.trace_parent,
    )
