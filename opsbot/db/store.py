"""Store functions: the queries ingest, the outbox, the API and the actions share."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from opsbot.db.models import (
    ACTIVE_SQL,
    PENDING_SQL,
    AlertRow,
    AuditEntry,
    Delivery,
    Incident,
    OutboxRow,
    SilenceRow,
)
from opsbot.db.session import is_postgres

# The ingest path runs these statements thousands of times a second: each is
# built once per dialect (building a statement costs more than running it)
# and executed on the session's connection with plain parameter dicts.


def _insert(session: Session, table: Any) -> Any:
    return pg_insert(table) if is_postgres(session) else sqlite_insert(table)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert_for(dialect: str, table: Any) -> Any:
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


@cache
def _delivery_insert(dialect: str) -> Any:
    table = Delivery.__table__
    return (
        _insert_for(dialect, table)
        .on_conflict_do_nothing(index_elements=["namespace", "message_id"])
        .returning(table.c.id)
    )


@cache
def _plain_insert(dialect: str, table: Any, returning: bool) -> Any:
    stmt = _insert_for(dialect, table)
    return stmt.returning(table.c.id) if returning else stmt


@cache
def _outbox_upsert(dialect: str) -> Any:
    table = OutboxRow.__table__
    stmt = _insert_for(dialect, table)
    # A pending row with the key absorbs this one, but runs no later than it asks.
    earliest = func.least if dialect == "postgresql" else func.min
    return stmt.on_conflict_do_update(
        index_elements=["coalesce_key"],
        index_where=text(PENDING_SQL),
        set_={"due_at": earliest(table.c.due_at, stmt.excluded.due_at)},
    )


LIFECYCLE_COLUMNS = (
    "id",
    "status",
    "severity",
    "priority",
    "flapping",
    "last_alert_status",
    "resolved_at",
    "flips",
    "last_alert_at",
)


@cache
def _latest_incident(dialect: str) -> Any:
    table: Any = Incident.__table__
    return (
        select(*(table.c[name] for name in LIFECYCLE_COLUMNS))
        .where(table.c.fingerprint == bindparam("fingerprint"))
        .order_by(table.c.id.desc())
        .limit(1)
        .with_for_update()
    )


@cache
def _incident_update(keys: frozenset[str], count: bool) -> Any:
    table: Any = Incident.__table__
    values: dict[str, Any] = {key: bindparam(f"v_{key}") for key in sorted(keys)}
    if count:
        values["count"] = table.c.count + 1
    return update(table).where(table.c.id == bindparam("incident_id")).values(**values)


def insert_delivery(session: Session, values: Mapping[str, Any]) -> int | None:
    """Record a delivery once; return its id, or None when its message id was seen before."""
    stmt = _delivery_insert(_dialect(session))
    return session.connection().execute(stmt, dict(values)).scalar_one_or_none()


def find_delivery(session: Session, namespace: str, message_id: str) -> Delivery | None:
    """Return the delivery recorded for a message id, or None."""
    stmt = select(Delivery).where(
        Delivery.namespace == namespace, Delivery.message_id == message_id
    )
    return session.execute(stmt).scalar_one_or_none()


def set_delivery_outcome(session: Session, delivery_id: int, outcome: str) -> None:
    """Record what came of a delivery."""
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(outcome=outcome))


def latest_incident(session: Session, fingerprint: str) -> Row[Any] | None:
    """Return the lifecycle columns of a fingerprint's newest incident, locked for update."""
    stmt = _latest_incident(_dialect(session))
    return session.connection().execute(stmt, {"fingerprint": fingerprint}).first()


def insert_incident(session: Session, values: Mapping[str, Any]) -> int:
    """Insert a new incident and return its id (the partial unique index guards races)."""
    stmt = _plain_insert(_dialect(session), Incident.__table__, True)
    return int(session.connection().execute(stmt, dict(values)).scalar_one())


def update_incident(
    session: Session, incident_id: int, values: Mapping[str, Any], *, count: bool = False
) -> None:
    """Update an incident in place; ``count`` adds one to its count in the database."""
    stmt = _incident_update(frozenset(values), count)
    params = {f"v_{key}": value for key, value in values.items()}
    session.connection().execute(stmt, {**params, "incident_id": incident_id})


def insert_deliveries(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """Record deliveries in one statement; return each one's id, None for a message id seen
    before (in the database or earlier in the same batch)."""
    if not rows:
        return []
    table: Any = Delivery.__table__
    stmt = (
        _insert(session, table)
        .values([dict(r) for r in rows])
        .on_conflict_do_nothing(index_elements=["namespace", "message_id"])
        .returning(table.c.id, table.c.namespace, table.c.message_id)
    )
    ids = {(ns, mid): int(i) for i, ns, mid in session.connection().execute(stmt)}
    answer: list[int | None] = []
    for row in rows:
        answer.append(ids.pop((row["namespace"], row["message_id"]), None))
    return answer


def lock_latest_incidents(session: Session, fingerprints: Sequence[str]) -> dict[str, Row[Any]]:
    """Return the newest incident of each fingerprint, locked for update in id order."""
    if not fingerprints:
        return {}
    table: Any = Incident.__table__
    newest = (
        select(func.max(table.c.id))
        .where(table.c.fingerprint.in_(sorted(set(fingerprints))))
        .group_by(table.c.fingerprint)
    )
    columns = [table.c[name] for name in LIFECYCLE_COLUMNS]
    stmt = (
        select(table.c.fingerprint, *columns)
        .where(table.c.id.in_(newest))
        .order_by(table.c.id)
        .with_for_update()
    )
    return {row.fingerprint: row for row in session.connection().execute(stmt)}


def insert_incidents(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert incidents in one statement; return their ids in the order given."""
    if not rows:
        return []
    table: Any = Incident.__table__
    stmt = _insert(session, table).returning(table.c.id, sort_by_parameter_order=True)
    result = session.connection().execute(stmt, [dict(r) for r in rows])
    return [int(i) for i in result.scalars()]


def insert_rows(session: Session, model: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows of one table (alerts, audit entries) in one multi-row statement."""
    if rows:
        stmt = _insert(session, model.__table__).values([dict(r) for r in rows])
        session.connection().execute(stmt)


def add_to_incident(
    session: Session, incident_id: int, values: Mapping[str, Any], *, count: int
) -> None:
    """Update an incident in place and add ``count`` to its count in the database."""
    stmt = _incident_add(frozenset(values))
    params = {f"v_{key}": value for key, value in values.items()}
    session.connection().execute(stmt, {**params, "incident_id": incident_id, "add": count})


@cache
def _incident_add(keys: frozenset[str]) -> Any:
    table: Any = Incident.__table__
    values: dict[str, Any] = {key: bindparam(f"v_{key}") for key in sorted(keys)}
    values["count"] = table.c.count + bindparam("add")
    return update(table).where(table.c.id == bindparam("incident_id")).values(**values)


def insert_alert(session: Session, values: Mapping[str, Any]) -> None:
    """Record one alert."""
    stmt = _plain_insert(_dialect(session), AlertRow.__table__, False)
    session.connection().execute(stmt, dict(values))


def insert_outbox(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue outbound calls; a coalesced one merges into the pending row with its key."""
    dialect = _dialect(session)
    plain = [dict(r) for r in rows if not r.get("coalesce_key")]
    merged = [dict(r) for r in rows if r.get("coalesce_key")]
    conn = session.connection()
    if plain:
        conn.execute(_plain_insert(dialect, OutboxRow.__table__, False), plain)
    if merged:
        conn.execute(_outbox_upsert(dialect), merged)


def insert_audit(session: Session, values: Mapping[str, Any]) -> None:
    """Append one entry to the audit log."""
    stmt = _plain_insert(_dialect(session), AuditEntry.__table__, False)
    session.connection().execute(stmt, dict(values))


def active_silence_rows(session: Session, now: datetime) -> Sequence[SilenceRow]:
    """Return the stored silences that have not ended."""
    stmt = select(SilenceRow).where(SilenceRow.ends_at > now).order_by(SilenceRow.id)
    return session.execute(stmt).scalars().all()


def insert_silence(session: Session, values: Mapping[str, Any]) -> int:
    """Store a silence and return its id."""
    return session.execute(
        _insert(session, SilenceRow).values(**values).returning(SilenceRow.id)
    ).scalar_one()


@dataclass(frozen=True)
class IncidentFilter:
    """Filters of ``GET /api/incidents``; None means any."""

    status: str | None = None
    priority: str | None = None
    environment: str | None = None


def list_incidents(
    session: Session, filters: IncidentFilter, *, limit: int, cursor: int | None
) -> tuple[list[Incident], int | None]:
    """Return a page of incidents, newest first, and the cursor of the next page."""
    conditions: list[ColumnElement[bool]] = []
    if filters.status == "active":
        conditions.append(Incident.status.in_(("open", "acknowledged")))
    elif filters.status:
        conditions.append(Incident.status == filters.status)
    if filters.priority:
        conditions.append(Incident.priority == filters.priority)
    if filters.environment:
        conditions.append(Incident.environment == filters.environment)
    if cursor is not None:
        conditions.append(Incident.id < cursor)
    stmt = select(Incident).where(*conditions).order_by(Incident.id.desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def encode_cursor(incident_id: int | None) -> str | None:
    """Return an opaque cursor for an incident id."""
    if incident_id is None:
        return None
    return base64.urlsafe_b64encode(f"i:{incident_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Return the incident id inside a cursor; raise ValueError when it is not one of ours."""
    padded = cursor + "=" * (-len(cursor) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith("i:") or not text[2:].isdigit():
        raise ValueError("not an opsbot cursor")
    return int(text[2:])


def get_incident(session: Session, incident_id: int) -> Incident | None:
    """Return one incident, or None."""
    return session.get(Incident, incident_id)


def incident_alerts(session: Session, incident_id: int, limit: int = 100) -> Sequence[AlertRow]:
    """Return the newest alerts of an incident."""
    stmt = (
        select(AlertRow)
        .where(AlertRow.incident_id == incident_id)
        .order_by(AlertRow.id.desc())
        .limit(limit)
    )
    return session.execute(stmt).scalars().all()


def incident_audit(session: Session, incident_id: int) -> Sequence[AuditEntry]:
    """Return the audit trail of an incident, oldest first."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.subject_type == "incident", AuditEntry.subject_id == str(incident_id))
        .order_by(AuditEntry.id)
    )
    return session.execute(stmt).scalars().all()


def count_by(session: Session, column: Any) -> dict[str, int]:
    """Return row counts grouped by one column."""
    rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {str(key): int(n) for key, n in rows}


def outbox_backlog(session: Session, now: datetime) -> tuple[int, float]:
    """Return the number of undelivered outbox rows and the age in seconds of the oldest."""
    stmt = select(func.count(), func.min(OutboxRow.created_at)).where(
        OutboxRow.state.in_(("pending", "sending"))
    )
    n, oldest = session.execute(stmt).one()
    if oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:  # aggregate results bypass the column type on SQLite
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
    return int(n), max(0.0, (now - oldest).total_seconds())


def outbox_counts(session: Session) -> dict[tuple[str, str], int]:
    """Return outbox row counts by (target, state)."""
    stmt = select(OutboxRow.target, OutboxRow.state, func.count()).group_by(
        OutboxRow.target, OutboxRow.state
    )
    return {(str(t), str(s)): int(n) for t, s, n in session.execute(stmt).all()}


def list_outbox(session: Session, *, dead: bool, limit: int) -> Sequence[OutboxRow]:
    """Return undelivered outbox rows (or only dead ones), oldest first."""
    states = ("dead",) if dead else ("pending", "sending", "dead")
    stmt = select(OutboxRow).where(OutboxRow.state.in_(states)).order_by(OutboxRow.id).limit(limit)
    return session.execute(stmt).scalars().all()


def replay_outbox(session: Session, ids: Sequence[int] | None, now: datetime) -> list[int]:
    """Make dead rows (all of them when ``ids`` is None) pending again; return the replayed ids.

    A replayed row starts afresh: no failed calls and a new give-up clock. A
    dead coalesced row whose key already has a pending row is folded into it.
    """
    stmt = select(OutboxRow).where(OutboxRow.state == "dead").order_by(OutboxRow.id)
    if ids is not None:
        stmt = stmt.where(OutboxRow.id.in_(ids))
    replayed = []
    for row in session.execute(stmt.with_for_update()).scalars():
        if row.coalesce_key and _pending_key(session, row.coalesce_key):
            row.state, row.updated_at = "skipped", now
            continue
        row.state, row.attempts, row.due_at = "pending", 0, now
        row.created_at = row.updated_at = now
        row.locked_until = row.reserved_slot = None
        session.flush()
        replayed.append(row.id)
    return replayed


def _pending_key(session: Session, key: str) -> bool:
    stmt = select(OutboxRow.id).where(OutboxRow.coalesce_key == key, OutboxRow.state == "pending")
    return session.execute(stmt.limit(1)).first() is not None


# The ingest fast path (PostgreSQL): one statement per delivery, run on an
# autocommit connection (``session.statement_engine``), so it is its own
# transaction and one round trip. Each statement records the delivery and
# applies a decision the core made, guarded so that it applies only where the
# core's premise still holds; where it does not, it writes nothing and says so.

_ALERT_COLUMNS = (
    "delivery_id, incident_id, fingerprint, status, severity, source, title, summary,"
    " account_id, region, resource, labels, decision, silence_id, occurred_at, received_at"
)
_ALERT_VALUES = (
    "d.id, i.id, %(fingerprint)s, %(alert_status)s, %(severity)s, %(source)s, %(title)s,"
    " %(alert_summary)s, %(account_id)s, %(region)s, %(resource)s, %(labels)s::jsonb,"
    " %(decision)s, NULL, %(occurred_at)s, %(now)s"
)
_DELIVERY_INSERT = """
    INSERT INTO deliveries (namespace, message_id, channel, message_type, topic_arn, subject,
                            body, sent_at, received_at, outcome)
    SELECT %(namespace)s, %(message_id)s, %(channel)s, %(message_type)s, %(topic_arn)s,
           %(subject)s, %(body)s, %(sent_at)s, %(now)s, 'processed'
"""
_LIFECYCLE_RETURNING = ", ".join(f"incidents.{name}" for name in LIFECYCLE_COLUMNS)


def _outbox_cte() -> str:
    trace = "trace_parent" in OutboxRow.__table__.c
    columns = "target, kind, incident_id, payload, coalesce_key, state, attempts, due_at,"
    columns += " created_at, updated_at" + (", trace_parent" if trace else "")
    values = "v.target, v.kind, i.id, v.payload, v.coalesce_key || i.id::text, 'pending', 0,"
    values += " v.due_at, %(now)s, %(now)s" + (", %(trace_parent)s" if trace else "")
    # coalesce_key arrives as "target:kind:" (the id is known only here) or NULL.
    # (S608 below: these statements are built from constants; every value is bound.)
    return f"""
    o AS (
        INSERT INTO outbox ({columns})
        SELECT {values}
        FROM i, jsonb_to_recordset(%(outbox)s::jsonb)
             AS v(target text, kind text, payload jsonb, coalesce_key text, due_at timestamptz)
        ON CONFLICT (coalesce_key) WHERE {PENDING_SQL}
        DO UPDATE SET due_at = least(outbox.due_at, excluded.due_at)
    )"""  # noqa: S608 - constants only; every value is bound


def _audit_cte() -> str:
    return """
    au AS (
        INSERT INTO audit_log (at, actor, action, subject_type, subject_id, detail)
        SELECT %(now)s, v.actor, v.action, 'incident', i.id::text, v.detail
        FROM i, jsonb_to_recordset(%(audit)s::jsonb) AS v(actor text, action text, detail jsonb)
    )"""


def _answer(premise: str) -> str:
    # What the caller needs: whether the premise held, the delivery id (None: a duplicate), the
    # incident after the change, and where the premise failed the fingerprint's latest incident
    # as it is (``seen_*``), so the caller's next premise is right.
    # Columns by position (ANSWER_COLUMNS): naming them costs more than the statement's planning.
    columns = ", ".join(f"i.{name}" for name in LIFECYCLE_COLUMNS)
    seen = ", ".join(f"'{name}', {name}" for name in LIFECYCLE_COLUMNS)
    return f"""
    SELECT p.premise, (SELECT id FROM d), {columns}, l.seen
    FROM (SELECT {premise} AS premise) AS p
    LEFT JOIN i ON true
    LEFT JOIN LATERAL (
        SELECT jsonb_build_object({seen}) AS seen FROM incidents
        WHERE fingerprint = %(fingerprint)s ORDER BY id DESC LIMIT 1
    ) AS l ON NOT p.premise"""  # noqa: S608 - constants only; every value is bound


@cache
def _fast_repeat_sql() -> str:
    return f"""
    WITH cur AS (
        SELECT id FROM incidents
        WHERE id = %(incident_id)s AND {ACTIVE_SQL} AND priority = %(priority)s
          AND NOT flapping AND last_alert_status = %(alert_status)s
          AND flips = %(flips)s::jsonb
        FOR UPDATE
    ),
    d AS (
        {_DELIVERY_INSERT} FROM cur
        ON CONFLICT (namespace, message_id) DO NOTHING
        RETURNING id
    ),
    i AS (
        UPDATE incidents
        SET count = incidents.count + 1, severity = %(severity)s, summary = %(summary)s,
            last_alert_at = %(last_alert_at)s, last_seen = %(now)s
        FROM d WHERE incidents.id = %(incident_id)s
        RETURNING {_LIFECYCLE_RETURNING}
    ),
    a AS (INSERT INTO alerts ({_ALERT_COLUMNS}) SELECT {_ALERT_VALUES} FROM d, i),
    {_outbox_cte()},
    {_audit_cte()}
    {_answer("EXISTS (SELECT 1 FROM cur)")}
    """  # noqa: S608 - constants only; every value is bound


_INCIDENT_COLUMNS = (
    "fingerprint", "status", "priority", "severity", "title", "summary", "source", "account_id",
    "account_name", "environment", "team", "region", "resource", "console_url", "count",
    "flapping", "flips", "last_alert_status", "last_alert_at", "first_seen", "last_seen",
    "resolved_at", "route", "slack_channel",
)  # fmt: skip
_JSON_INCIDENT_COLUMNS = frozenset({"flips", "route"})


@cache
def _fast_open_sql() -> str:
    columns = ", ".join(_INCIDENT_COLUMNS)
    values = ", ".join(
        f"%(i_{name})s::jsonb" if name in _JSON_INCIDENT_COLUMNS else f"%(i_{name})s"
        for name in _INCIDENT_COLUMNS
    )
    return f"""
    WITH d AS (
        {_DELIVERY_INSERT}
        WHERE NOT EXISTS (SELECT 1 FROM incidents WHERE fingerprint = %(fingerprint)s)
        ON CONFLICT (namespace, message_id) DO NOTHING
        RETURNING id
    ),
    i AS (
        INSERT INTO incidents ({columns}) SELECT {values} FROM d
        RETURNING {_LIFECYCLE_RETURNING}
    ),
    a AS (INSERT INTO alerts ({_ALERT_COLUMNS}) SELECT {_ALERT_VALUES} FROM d, i),
    {_outbox_cte()},
    {_audit_cte()}
    {_answer("NOT EXISTS (SELECT 1 FROM incidents WHERE fingerprint = %(fingerprint)s)")}
    """  # noqa: S608 - constants only; every value is bound


ANSWER_COLUMNS = ("premise", "delivery_id", *LIFECYCLE_COLUMNS, "seen")


def _run_one(engine: Engine, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    # On the DBAPI connection itself: SQLAlchemy's result machinery would cost as much as the
    # statement. Errors are raised as SQLAlchemy's, a dropped connection invalidated as ever.
    raw = engine.raw_connection()
    cursor = None
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        row = cursor.fetchone()
        assert row is not None  # the statement answers one row, whatever it did
        return dict(zip(ANSWER_COLUMNS, row, strict=True))
    except engine.dialect.loaded_dbapi.Error as exc:
        gone = engine.dialect.is_disconnect(exc, raw, cursor)
        if gone:
            raw.invalidate(exc)
        error = engine.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(
            sql, dict(params), exc, error, connection_invalidated=gone, dialect=engine.dialect
        ) from exc
    finally:
        if cursor is not None:
            cursor.close()
        raw.close()


def fast_repeat(engine: Engine, params: Mapping[str, Any]) -> dict[str, Any]:
    """Record a delivery and count a repeat on its active incident, in one statement.

    ``premise`` in the answer says whether the incident was still as the core
    saw it (active, same priority, not flapping, same last status and flips);
    when it was not, nothing was written. ``delivery_id`` is None for a message
    id seen before (then nothing was written either); otherwise the answer
    carries the incident's lifecycle columns after the update; ``seen`` holds the latest
    incident's where the premise failed.
    """
    return _run_one(engine, _fast_repeat_sql(), params)


def fast_open(engine: Engine, params: Mapping[str, Any]) -> dict[str, Any]:
    """Record a delivery and open the first incident of a fingerprint, in one statement.

    ``premise`` says whether the fingerprint had no incident at all; when it
    had one, nothing was written. A concurrent open of the same fingerprint
    fails the statement on ``uq_incidents_active_fingerprint`` (nothing
    written). ``delivery_id`` is None for a message id seen before.
    """
    return _run_one(engine, _fast_open_sql(), params)
