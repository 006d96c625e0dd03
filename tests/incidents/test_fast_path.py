"""The ingest fast path (issue 14): one statement per common delivery on PostgreSQL, with the same
rows as the full path, duplicates dropped, the one-open-incident rule held by the database, and
the full path taken wherever the core's premise no longer holds. On SQLite every delivery takes
the full path, so the comparisons below hold there trivially and pin that it stays correct."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

import handlers
from handlers.base import Inbound
from opsbot.db.models import AlertRow, AuditEntry, Delivery, Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.incidents import actions, service
from tests.support.sns import alarm_message

IGNORED = {"id", "incident_id", "delivery_id", "fingerprint", "title", "resource", "summary"}
IGNORED |= {"console_url", "labels"}  # name the alarm, which differs by design


def alerts_of(name: str, when: Any, state: str = "ALARM") -> list[Any]:
    message = alarm_message(name, state, when=when)
    return handlers.parse(Inbound(text=message, message_id=name, received_at=when))


def delivery(message_id: str | None = None) -> service.DeliveryIn:
    return service.DeliveryIn("sns", message_id or str(uuid.uuid4()), "push", "Notification", "{}")


def fast(rt, name: str, now, *, message_id: str | None = None, state: str = "ALARM"):
    """Ingest as POST /sns does (with the process's cached silences)."""
    return service.ingest(
        rt.sessions,
        delivery=delivery(message_id),
        alerts=alerts_of(name, now, state),
        policy=rt.policy,
        now=now,
        silences=rt.silences,
    )


def full(rt, name: str, now, *, state: str = "ALARM"):
    """Ingest through the full path only."""
    return service.in_transaction(
        rt.sessions,
        lambda session: service.record_delivery(
            session,
            delivery=delivery(),
            alerts=alerts_of(name, now, state),
            policy=rt.policy,
            now=now,
            silences=rt.silences,
        ),
    )


@pytest.fixture
def round_trips(tmp_path) -> Iterator[Callable[[], int]]:
    """Count round trips to PostgreSQL on the wire: one per ReadyForQuery (libpq's trace)."""
    from psycopg import pq

    trace = (tmp_path / "libpq.trace").open("w")

    def attach(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.pgconn.trace(trace.fileno())
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def count() -> int:
        trace.flush()
        lines = (tmp_path / "libpq.trace").read_text().splitlines()
        return sum(line.startswith("B\t") and "\tReadyForQuery" in line for line in lines)

    event.listen(Engine, "connect", attach)
    yield count
    event.remove(Engine, "connect", attach)
    trace.close()


def rows_of(rt, model: Any, **where: Any) -> list[dict[str, Any]]:
    with rt.sessions() as s:
        stmt = select(model).filter_by(**where).order_by(model.id)
        return [
            {c.name: getattr(row, c.name) for c in model.__table__.c if c.name not in IGNORED}
            for row in s.execute(stmt).scalars()
        ]


def incident_of(rt, name: str) -> Incident:
    with rt.sessions() as s:
        return s.execute(select(Incident).where(Incident.title.contains(name))).scalar_one()


def effects(rt, incident_id: int) -> list[tuple[str, str, str, Any]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(OutboxRow).where(OutboxRow.incident_id == incident_id).order_by(OutboxRow.id)
        ).scalars()
        return [
            (r.target, r.kind, (r.coalesce_key or "").replace(str(incident_id), "ID"), r.due_at)
            for r in rows
        ]


def audit_of(rt, incident_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(AuditEntry)
            .where(AuditEntry.subject_id == str(incident_id))
            .order_by(AuditEntry.id)
        ).scalars()
        return [(r.actor, r.action, r.detail) for r in rows]


def test_a_storm_writes_the_same_rows_as_the_full_path(rt, clock) -> None:
    for _step in range(4):  # an open and three repeats, each way, at the same moments
        fast(rt, "Fast-CPU", clock.now)
        full(rt, "Full-CPU", clock.now)
        clock.advance(seconds=3)
    quick, slow = incident_of(rt, "Fast-CPU"), incident_of(rt, "Full-CPU")
    columns = [c.name for c in Incident.__table__.c if c.name not in IGNORED]
    assert {c: getattr(quick, c) for c in columns} == {c: getattr(slow, c) for c in columns}
    assert quick.count == 4 and quick.status == "open"
    assert rows_of(rt, AlertRow, incident_id=quick.id) == rows_of(rt, AlertRow, incident_id=slow.id)
    assert len(rows_of(rt, AlertRow, incident_id=quick.id)) == 4
    assert effects(rt, quick.id) == effects(rt, slow.id)
    assert [kind for _, kind, _, _ in effects(rt, quick.id)] == [
        "post",
        "create",
        "update",
        "digest",
    ]
    assert (
        audit_of(rt, quick.id)
        == audit_of(rt, slow.id)
        == [("opsbot", "incident.opened", {"priority": quick.priority})]
    )


@pytest.mark.postgres
def test_a_common_delivery_is_one_round_trip_on_postgresql(rt, clock, round_trips) -> None:
    fast(rt, "Storm-CPU", clock.now)  # connects, and loads the process's silences
    before = round_trips()
    opened = fast(rt, "Other-CPU", clock.now)
    assert round_trips() - before == 1 and opened.outcomes[0].action == "open"
    repeated = fast(rt, "Other-CPU", clock.now + timedelta(seconds=1))
    assert round_trips() - before == 2 and repeated.outcomes[0].action == "repeat"
    assert repeated.outcomes[0].incident_id == opened.outcomes[0].incident_id


def test_a_message_id_seen_before_changes_nothing(rt, clock) -> None:
    first = fast(rt, "Dup-CPU", clock.now, message_id="m-1")
    again = fast(rt, "Dup-CPU", clock.now, message_id="m-1")
    fast(rt, "Dup-CPU", clock.now, message_id="m-2")
    repeat = fast(rt, "Dup-CPU", clock.now, message_id="m-2")
    assert not first.duplicate and again.duplicate and repeat.duplicate
    assert again.outcomes == () and again.delivery_id is None
    assert incident_of(rt, "Dup-CPU").count == 2
    assert len(rows_of(rt, AlertRow)) == 2 and len(rows_of(rt, Delivery)) == 2


def test_a_resolved_incident_reopens_though_this_process_saw_it_open(rt, clock) -> None:
    opened = fast(rt, "Back-CPU", clock.now).outcomes[0]
    with transaction(rt.sessions) as s:
        actions.resolve(s, opened.incident_id, actor="U1", now=clock.now)
    clock.advance(minutes=5)
    again = fast(rt, "Back-CPU", clock.now).outcomes[0]
    assert (again.action, again.incident_id) == ("reopen", opened.incident_id)
    row = incident_of(rt, "Back-CPU")
    assert row.status == "open" and row.count == 2
    assert [a for _, a, _ in audit_of(rt, row.id)][-1] == "incident.reopened"
    after = fast(rt, "Back-CPU", clock.now + timedelta(seconds=1)).outcomes[0]
    assert after.action == "repeat" and incident_of(rt, "Back-CPU").count == 3


def test_an_acknowledged_incident_still_counts_repeats(rt, clock) -> None:
    opened = fast(rt, "Ack-CPU", clock.now).outcomes[0]
    with transaction(rt.sessions) as s:
        actions.acknowledge(s, opened.incident_id, actor="U1", now=clock.now)
    assert fast(rt, "Ack-CPU", clock.now).outcomes[0].action == "repeat"
    row = incident_of(rt, "Ack-CPU")
    assert row.status == "acknowledged" and row.count == 2


def test_a_resolve_and_a_later_alarm_take_the_full_path_correctly(rt, clock) -> None:
    fast(rt, "Flip-CPU", clock.now)
    clock.advance(minutes=1)
    resolved = fast(rt, "Flip-CPU", clock.now, state="OK").outcomes[0]
    clock.advance(minutes=1)
    reopened = fast(rt, "Flip-CPU", clock.now).outcomes[0]
    assert (resolved.action, reopened.action) == ("resolve", "reopen")
    row = incident_of(rt, "Flip-CPU")
    assert row.status == "open" and row.count == 2 and len(row.flips) == 3


def test_a_process_that_did_not_see_the_open_repeats_on_the_same_incident(rt, clock) -> None:
    full(rt, "Seen-Elsewhere", clock.now)  # another process opened it
    outcomes = [fast(rt, "Seen-Elsewhere", clock.now).outcomes[0] for _ in range(3)]
    assert [o.action for o in outcomes] == ["repeat"] * 3
    row = incident_of(rt, "Seen-Elsewhere")
    assert row.count == 4 and {o.incident_id for o in outcomes} == {row.id}


@pytest.mark.postgres
def test_many_first_alerts_at_once_open_one_incident(rt, clock) -> None:
    threads, start = 8, threading.Barrier(8)
    results: list[Any] = []

    def send() -> None:
        start.wait()
        results.append(fast(rt, "Together-CPU", clock.now))

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    row = incident_of(rt, "Together-CPU")
    assert row.count == threads
    assert sorted(r.outcomes[0].action for r in results) == ["open"] + ["repeat"] * (threads - 1)
    assert {r.outcomes[0].incident_id for r in results} == {row.id}
    assert len(rows_of(rt, AlertRow, incident_id=row.id)) == threads


@pytest.mark.postgres
def test_a_storm_from_many_threads_counts_every_alert_once(rt, clock) -> None:
    fast(rt, "Busy-CPU", clock.now)
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        for _ in range(10):
            fast(rt, "Busy-CPU", clock.now)

    workers = [threading.Thread(target=send) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    row = incident_of(rt, "Busy-CPU")
    assert row.count == 61
    pending = [e for e in effects(rt, row.id) if e[1] in ("update", "digest")]
    assert len(pending) == 2  # one coalesced card update and one digest, however many repeats
