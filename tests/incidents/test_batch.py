"""Batches (SQS; issue 14): ten deliveries in one transaction write what ten single deliveries
write -- incidents, alerts, outbox rows, audit entries -- with duplicates dropped and the
lifecycle followed alert after alert inside the batch."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

import handlers
from handlers.base import Inbound
from opsbot.db.models import AlertRow, AuditEntry, Delivery, Incident, OutboxRow
from opsbot.incidents import service
from tests.support.sns import alarm_message

# (alarm, state): opens, repeats, a resolve and a reopen of one alarm, a second alarm between.
SCRIPT = [
    ("A", "ALARM"), ("A", "ALARM"), ("B", "ALARM"), ("A", "ALARM"), ("A", "OK"),
    ("B", "ALARM"), ("A", "ALARM"), ("B", "OK"), ("C", "OK"),
]  # fmt: skip


def item(name: str, state: str, now: Any, message_id: str = "") -> Any:
    message = alarm_message(name, state, when=now)
    alerts = handlers.parse(Inbound(text=message, message_id=name, received_at=now))
    delivery = service.DeliveryIn(
        "sns", message_id or str(uuid.uuid4()), "sqs", "Notification", message
    )
    return delivery, alerts


def story(rt, prefix: str) -> dict[str, Any]:
    """Return what the database holds for the alarms named with a prefix, ids left out."""
    with rt.sessions() as s:
        incidents = s.execute(
            select(Incident).where(Incident.title.contains(f": {prefix}")).order_by(Incident.id)
        ).scalars()
        told: dict[str, Any] = {}
        for row in incidents:
            alarm = row.title.split(f": {prefix}", 1)[1].split()[0]
            alerts = s.execute(
                select(AlertRow.decision, AlertRow.status)
                .where(AlertRow.incident_id == row.id)
                .order_by(AlertRow.id)
            ).all()
            outbox = s.execute(
                select(OutboxRow.target, OutboxRow.kind, OutboxRow.due_at, OutboxRow.payload)
                .where(OutboxRow.incident_id == row.id)
                .order_by(OutboxRow.target, OutboxRow.kind, OutboxRow.id)
            ).all()
            audit = s.execute(
                select(AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.subject_id == str(row.id))
                .order_by(AuditEntry.id)
            ).all()
            told[alarm] = {
                "incident": (row.status, row.count, row.priority, row.flapping, len(row.flips)),
                "times": (row.resolved_at, row.last_alert_status),
                "alerts": [tuple(a) for a in alerts],
                "outbox": [tuple(o) for o in outbox],
                "audit": [tuple(a) for a in audit],
            }
        return told


def test_a_batch_writes_what_single_deliveries_write(rt, clock) -> None:
    now = clock.now
    batch = [item(f"Batch-{name}", state, now) for name, state in SCRIPT]
    results = service.ingest_batch(
        rt.sessions, batch, policy=rt.policy, now=now, silences=rt.silences
    )
    for name, state in SCRIPT:
        delivery, alerts = item(f"Single-{name}", state, now)
        service.ingest(
            rt.sessions, delivery=delivery, alerts=alerts, policy=rt.policy, now=now,
            silences=rt.silences,
        )  # fmt: skip
    batched, single = story(rt, "Batch-"), story(rt, "Single-")
    assert batched == single
    assert batched["A"]["incident"][:2] == ("open", 4)
    assert [d for d, _ in batched["A"]["alerts"]] == [
        "open", "repeat", "repeat", "resolve", "reopen"
    ]  # fmt: skip
    assert "C" not in batched  # a resolve for nothing open opens nothing
    assert [r.outcomes[0].action for r in results] == [
        "open", "repeat", "open", "repeat", "resolve", "repeat", "reopen", "resolve", "ignore"
    ]  # fmt: skip


def test_duplicates_in_a_batch_and_before_it_change_nothing(rt, clock) -> None:
    now = clock.now
    first = item("Dup-X", "ALARM", now, message_id="m-1")
    service.ingest_batch(rt.sessions, [first], policy=rt.policy, now=now, silences=rt.silences)
    again = [first, item("Dup-X", "ALARM", now, "m-2"), item("Dup-X", "ALARM", now, "m-2")]
    results = service.ingest_batch(
        rt.sessions, again, policy=rt.policy, now=now, silences=rt.silences
    )
    assert [r.duplicate for r in results] == [True, False, True]
    with rt.sessions() as s:
        assert s.execute(select(Incident.count)).scalar_one() == 2
        assert len(s.execute(select(Delivery.id)).all()) == 2
        assert len(s.execute(select(AlertRow.id)).all()) == 2


def test_a_batch_is_one_transaction_with_one_insert_per_table(rt, clock) -> None:
    now = clock.now
    batch = [item(f"Many-{i % 3}", "ALARM", now) for i in range(10)]
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO"):
            inserts.append(statement.split()[2])

    event.listen(rt.engine, "before_cursor_execute", seen)
    try:
        service.ingest_batch(rt.sessions, batch, policy=rt.policy, now=now, silences=rt.silences)
    finally:
        event.remove(rt.engine, "before_cursor_execute", seen)
    tables = ("deliveries", "alerts", "audit_log")
    assert {t: inserts.count(t) for t in tables} == dict.fromkeys(tables, 1)
    # New incidents' ids come back in order: one statement on PostgreSQL; SQLite's driver
    # needs one INSERT ... RETURNING per row for that (SQLAlchemy's "insertmanyvalues").
    opened = 1 if rt.engine.dialect.name == "postgresql" else 3
    assert inserts.count("incidents") == opened
    assert 1 <= inserts.count("outbox") <= 2  # plain rows, and coalesced rows merging
    with rt.sessions() as s:
        counts = sorted(s.execute(select(Incident.count)).scalars())
    assert counts == [3, 3, 4]


@pytest.mark.postgres
def test_batches_of_one_storm_from_many_threads_count_every_alert_once(rt, clock) -> None:
    now = clock.now
    service.ingest_batch(
        rt.sessions, [item("Storm-Z", "ALARM", now)], policy=rt.policy, now=now,
        silences=rt.silences,
    )  # fmt: skip
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        for _ in range(5):
            batch = [item("Storm-Z", "ALARM", now) for _ in range(10)]
            service.ingest_batch(
                rt.sessions, batch, policy=rt.policy, now=now, silences=rt.silences
            )

    workers = [threading.Thread(target=send) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with rt.sessions() as s:
        assert s.execute(select(Incident.count)).scalar_one() == 201
        assert len(s.execute(select(AlertRow.id)).all()) == 201
