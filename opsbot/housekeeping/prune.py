"""Pruning: keep the database bounded without ever locking ingest or losing the audit trail.

What goes, and when (``OPSBOT_RETAIN_*``, defaults in brackets):

- delivery bodies [7d]: emptied (the row stays: it is the message id's dedup key);
- Slack dedup rows [2d]: the ``slack`` deliveries that catch Slack's retries;
- alerts [90d]: those of no incident (silenced, ignored) and of incidents resolved
  that long ago; an open or acknowledged incident keeps all of its alerts;
- deliveries [90d]: once no alert refers to them;
- finished outbox rows [7d]: ``done`` and ``skipped``; pending and dead rows stay
  (a dead row is an operator's to retry);
- the audit log [never]: with ``OPSBOT_RETAIN_AUDIT``, entries are first exported
  (``export.py``), and the database itself refuses to delete an entry no
  recorded export covers (migration 0008).

Incidents are never deleted. Every part walks its table by primary key in
batches of ``OPSBOT_PRUNE_BATCH_SIZE`` rows, one short transaction per batch,
and stops at the first row younger than its limit (ids grow with time), so no
index is added to what ingest writes. Parts whose every old row goes (bodies,
Slack rows) keep a cursor in ``job_cursors`` and never walk a row twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from opsbot.config import Settings
from opsbot.db.models import AlertRow, AuditEntry, Delivery, Incident, JobCursor, OutboxRow
from opsbot.db.session import transaction
from opsbot.housekeeping.export import export_audit, exported_up_to
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

FINISHED_OUTBOX = ("done", "skipped")
PARTS = ("delivery_bodies", "slack_dedup", "alerts", "deliveries", "outbox", "audit")
Act = Callable[[Session, list[int]], int]


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept, and the batch size of every walk."""

    delivery_bodies: timedelta
    slack_dedup: timedelta
    alerts: timedelta
    deliveries: timedelta
    outbox: timedelta
    audit: timedelta | None
    batch: int

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        """Return the retention the settings configure."""
        return cls(
            delivery_bodies=settings.retain_delivery_bodies,
            slack_dedup=settings.retain_slack_dedup,
            alerts=settings.retain_alerts,
            deliveries=settings.retain_deliveries,
            outbox=settings.retain_outbox,
            audit=settings.retain_audit,
            batch=settings.prune_batch_size,
        )


@dataclass
class PruneReport:
    """How many rows each part changed, how many audit entries were exported, and where."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    exported: int = 0
    export_destination: str | None = None

    def lines(self) -> list[str]:
        """Return the report as lines for the command line and the log."""
        verbs = {"delivery_bodies": "emptied"}
        found = [f"{part}: {n} {verbs.get(part, 'deleted')}" for part, n in self.counts.items()]
        if self.export_destination:
            found.append(f"audit export: {self.exported} entries to {self.export_destination}")
        return found


def prune(rt: Runtime, now: datetime) -> PruneReport:
    """Export the audit log if configured, then prune every part by the retention settings."""
    keep = Retention.of(rt.settings)
    factory = rt.sessions
    report = PruneReport()
    if rt.settings.audit_export:
        report.exported, report.export_destination = export_audit(
            factory, rt.settings.audit_export, now, batch=keep.batch
        )
    counts = report.counts
    counts["delivery_bodies"] = walk(
        factory, Delivery.id, Delivery.received_at, now - keep.delivery_bodies, keep.batch,
        _empty_bodies, cursor="prune.delivery_bodies", now=now,
    )  # fmt: skip
    counts["slack_dedup"] = walk(
        factory, Delivery.id, Delivery.received_at, now - keep.slack_dedup, keep.batch,
        _delete_deliveries, cursor="prune.slack_dedup", now=now,
        where=(Delivery.namespace == "slack",),
    )  # fmt: skip
    counts["alerts"] = walk(
        factory, AlertRow.id, AlertRow.received_at, now - keep.alerts, keep.batch,
        _alerts_of_closed(now - keep.alerts),
    )  # fmt: skip
    counts["deliveries"] = walk(
        factory, Delivery.id, Delivery.received_at, now - keep.deliveries, keep.batch,
        _delete_deliveries,
    )  # fmt: skip
    counts["outbox"] = walk(
        factory, OutboxRow.id, OutboxRow.created_at, now - keep.outbox, keep.batch,
        _finished_outbox(now - keep.outbox),
    )  # fmt: skip
    if keep.audit is not None:
        counts["audit"] = walk(
            factory, AuditEntry.id, AuditEntry.at, now - keep.audit, keep.batch,
            _exported_audit,
        )  # fmt: skip
    log.info("prune: %s", "; ".join(report.lines()))
    return report


def walk(
    factory: sessionmaker[Session],
    id_col: Any,
    time_col: Any,
    cutoff: datetime,
    batch: int,
    act: Act,
    *,
    cursor: str | None = None,
    now: datetime | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> int:
    """Apply ``act`` to the rows older than ``cutoff``, oldest first, one batch per transaction.

    The walk stops at the first row that is not older than the cutoff. With
    ``cursor`` it starts after the id it reached last time and records how far
    it got; ``act`` returns how many rows it changed.
    """
    after = _position(factory, cursor) if cursor else 0
    total = 0
    while True:
        with transaction(factory) as session:
            stmt = select(id_col, time_col).where(id_col > after, *where).order_by(id_col)
            rows = session.execute(stmt.limit(batch)).all()
            old = []
            for row_id, at in rows:
                if at >= cutoff:
                    break
                old.append(row_id)
            if old:
                total += act(session, old)
                after = old[-1]
                if cursor and now is not None:
                    _advance(session, cursor, after, now)
        if len(old) < batch:
            return total


def _empty_bodies(session: Session, ids: list[int]) -> int:
    stmt = update(Delivery).where(Delivery.id.in_(ids), Delivery.body != "").values(body="")
    return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]


def _delete_deliveries(session: Session, ids: list[int]) -> int:
    referenced = exists().where(AlertRow.delivery_id == Delivery.id)
    stmt = delete(Delivery).where(Delivery.id.in_(ids), ~referenced)
    return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]


def _alerts_of_closed(cutoff: datetime) -> Act:
    def act(session: Session, ids: list[int]) -> int:
        closed = select(Incident.id).where(
            Incident.status == "resolved", Incident.resolved_at < cutoff
        )
        stmt = delete(AlertRow).where(
            AlertRow.id.in_(ids),
            AlertRow.incident_id.is_(None) | AlertRow.incident_id.in_(closed),
        )
        return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]

    return act


def _finished_outbox(cutoff: datetime) -> Act:
    def act(session: Session, ids: list[int]) -> int:
        stmt = delete(OutboxRow).where(
            OutboxRow.id.in_(ids),
            OutboxRow.state.in_(FINISHED_OUTBOX),
            OutboxRow.updated_at < cutoff,
        )
        return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]

    return act


def _exported_audit(session: Session, ids: list[int]) -> int:
    # The database refuses the rest too (0008); this keeps the batch from failing on them.
    stmt = delete(AuditEntry).where(
        AuditEntry.id.in_(ids), AuditEntry.id <= exported_up_to(session)
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]


def _position(factory: sessionmaker[Session], name: str) -> int:
    with transaction(factory) as session:
        row = session.get(JobCursor, name)
        return row.position if row else 0


def _advance(session: Session, name: str, position: int, now: datetime) -> None:
    row = session.get(JobCursor, name)
    if row is None:
        session.add(JobCursor(name=name, position=position, updated_at=now))
    else:
        row.position, row.updated_at = position, now
