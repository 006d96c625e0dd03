"""What the dashboard reads: pages of incidents, runs, silences and dead outbox rows (keyset paged).

Every list is newest first and paged by id (``older`` than a cursor, or
``newer`` than one for the page before), so a page costs one index range
scan however deep it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from opsbot.db.models import AlertRow, AuditEntry, Incident, OutboxRow, RunbookRun, SilenceRow

T = TypeVar("T")
# Enough for a long incident; the API shows the same newest alerts.
TIMELINE_ALERTS = 100
TIMELINE_AUDIT = 500
MAX_OPTIONS = 100


@dataclass(frozen=True)
class IncidentQuery:
    """The dashboard's incident filters; None means any."""

    status: str | None = None
    priority: str | None = None
    environment: str | None = None
    account_id: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, newest first, with the ids to page from (None: no such page)."""

    rows: list[T]
    older: int | None
    newer: int | None


def incident_page(
    session: Session,
    query: IncidentQuery,
    *,
    limit: int,
    older: int | None = None,
    newer: int | None = None,
) -> Page[Incident]:
    """Return a page of incidents matching the filters, newest first."""
    return _page(session, select(Incident), Incident.id, _conditions(query), limit, older, newer)


def _conditions(query: IncidentQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.status == "active":
        found.append(Incident.status.in_(("open", "acknowledged")))
    elif query.status:
        found.append(Incident.status == query.status)
    for column, value in (
        (Incident.priority, query.priority),
        (Incident.environment, query.environment),
        (Incident.account_id, query.account_id),
        (Incident.source, query.source),
    ):
        if value is not None:
            found.append(column == value)
    return found


def _page(
    session: Session,
    stmt: Select[Any],
    key: Any,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    older: int | None,
    newer: int | None,
) -> Page[Any]:
    base = stmt.where(*conditions)
    if newer is not None:
        # the page before: the ``limit`` rows just above ``newer``, read upwards
        above = base.where(key > newer).order_by(key.asc()).limit(limit)
        rows = list(session.execute(above).scalars())[::-1]
    else:
        below = base.where(key < older) if older is not None else base
        rows = list(session.execute(below.order_by(key.desc()).limit(limit)).scalars())
    if not rows:
        return Page([], None, None)
    last, first = rows[-1].id, rows[0].id
    return Page(
        rows,
        last if _exists(session, base.where(key < last)) else None,
        first if _exists(session, base.where(key > first)) else None,
    )


def _exists(session: Session, stmt: Select[Any]) -> bool:
    return session.execute(stmt.limit(1)).first() is not None


def run_page(
    session: Session, *, limit: int, older: int | None = None, newer: int | None = None
) -> Page[RunbookRun]:
    """Return a page of runbook runs, newest first."""
    return _page(session, select(RunbookRun), RunbookRun.id, (), limit, older, newer)


def silence_page(
    session: Session, *, limit: int, older: int | None = None, newer: int | None = None
) -> Page[SilenceRow]:
    """Return a page of stored silences (made by operators and patch windows), newest first."""
    return _page(session, select(SilenceRow), SilenceRow.id, (), limit, older, newer)


def dead_page(
    session: Session, *, limit: int, older: int | None = None, newer: int | None = None
) -> Page[OutboxRow]:
    """Return a page of dead-lettered outbox rows, newest first."""
    dead = (OutboxRow.state == "dead",)
    return _page(session, select(OutboxRow), OutboxRow.id, dead, limit, older, newer)


def incident_alerts(session: Session, incident_id: int) -> Sequence[AlertRow]:
    """Return the newest alerts of an incident."""
    stmt = (
        select(AlertRow)
        .where(AlertRow.incident_id == incident_id)
        .order_by(AlertRow.id.desc())
        .limit(TIMELINE_ALERTS)
    )
    return session.execute(stmt).scalars().all()


def incident_audit(session: Session, incident_id: int) -> Sequence[AuditEntry]:
    """Return the newest audit entries about an incident."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.subject_type == "incident", AuditEntry.subject_id == str(incident_id))
        .order_by(AuditEntry.id.desc())
        .limit(TIMELINE_AUDIT)
    )
    return session.execute(stmt).scalars().all()


def incident_runs(session: Session, incident_id: int) -> Sequence[RunbookRun]:
    """Return the runbook runs of an incident, newest first."""
    stmt = select(RunbookRun).where(RunbookRun.incident_id == incident_id)
    return session.execute(stmt.order_by(RunbookRun.id.desc())).scalars().all()


def window_runs(session: Session, name: str, limit: int = 5) -> Sequence[RunbookRun]:
    """Return the newest runs of a patch window."""
    stmt = select(RunbookRun).where(RunbookRun.patch_window == name)
    return session.execute(stmt.order_by(RunbookRun.id.desc()).limit(limit)).scalars().all()


def incident_sources(session: Session) -> list[str]:
    """Return the sources incidents came from (the filter's choices), at most MAX_OPTIONS."""
    stmt = select(Incident.source).distinct().order_by(Incident.source).limit(MAX_OPTIONS)
    return [str(s) for s in session.execute(stmt).scalars()]


def incident_accounts(session: Session) -> list[tuple[str, str]]:
    """Return the (account id, account name) pairs incidents name, at most MAX_OPTIONS."""
    stmt = (
        select(Incident.account_id, Incident.account_name)
        .where(Incident.account_id != "")
        .distinct()
        .order_by(Incident.account_id)
        .limit(MAX_OPTIONS)
    )
    return [(str(i), str(n)) for i, n in session.execute(stmt).all()]
