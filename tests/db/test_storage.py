"""The schema: migrations match the models, the audit log is append-only, and PostgreSQL races."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from opsbot.audit import audit
from opsbot.config import Settings
from opsbot.db.models import AuditEntry, Base, Incident, OutboxRow
from opsbot.db.session import make_engine, make_sessionmaker, transaction
from tests.support.sns import alarm_message


def test_migrations_match_the_models(database_url) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_audit_log_refuses_update_and_delete(rt) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(rt.sessions) as s:
        audit(s, actor="U1", action="incident.acknowledged", subject=("incident", "1"), now=now)
    for statement in ("UPDATE audit_log SET actor = 'someone-else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), transaction(rt.sessions) as s:
            s.execute(text(statement))
    with rt.sessions() as s:
        assert s.execute(select(AuditEntry.actor)).scalars().all() == ["U1"]


def test_database_refuses_a_second_active_incident_per_fingerprint(rt) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values = dict(
        fingerprint="f" * 32,
        status="open",
        priority="P1",
        severity="high",
        title="t",
        summary="",
        source="s",
        account_id="",
        account_name="",
        environment="prod",
        team="",
        region="",
        resource="",
        console_url="",
        count=1,
        flapping=False,
        flips=[],
        last_alert_status="firing",
        first_seen=now,
        last_seen=now,
        route={},
    )
    with transaction(rt.sessions) as s:
        s.add(Incident(**values))
        s.add(Incident(**{**values, "status": "resolved"}))
    with pytest.raises(IntegrityError), transaction(rt.sessions) as s:
        s.add(Incident(**{**values, "status": "acknowledged"}))


def _ingest_many(
    url: str, start: multiprocessing.synchronize.Barrier, names: list[str], fast: bool
) -> None:
    """One process: ingest the same alarms as the other process, at the same moment.

    ``fast`` ingests as ``POST /sns`` does (with cached silences): on PostgreSQL the first
    alert of a fingerprint and its repeats take the one-statement fast path."""
    from handlers import parse
    from handlers.base import Inbound
    from opsbot.core.policy import Policy
    from opsbot.incidents.service import DeliveryIn, ingest

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    alerts = {n: parse(Inbound(text=alarm_message(name=n))) for n in names}
    start.wait()
    import uuid

    for name in names:
        delivery = DeliveryIn("sns", str(uuid.uuid4()), "push", "Notification", "{}")
        ingest(
            factory,
            delivery=delivery,
            alerts=alerts[name],
            policy=Policy.default(),
            now=now,
            silences=(lambda _session, _now: []) if fast else None,
        )
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("fast", [False, True], ids=["full-path", "fast-path"])
def test_two_processes_racing_on_the_same_alarms_open_one_incident_each(
    database_url, fast: bool
) -> None:
    names = [f"Race-{i}" for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_ingest_many, args=(database_url, barrier, names, fast))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    engine = make_engine(database_url)
    with engine.connect() as conn:
        per_fingerprint = conn.execute(
            select(Incident.title, func.count(), func.sum(Incident.count)).group_by(Incident.title)
        ).all()
    engine.dispose()
    assert len(per_fingerprint) == 40
    assert {(n, total) for _, n, total in per_fingerprint} == {(1, 2)}


@pytest.mark.postgres
def test_workers_claim_disjoint_rows_with_skip_locked(rt, clock) -> None:
    from opsbot.outbox.worker import OutboxWorker

    now = clock.now
    with transaction(rt.sessions) as s:
        for i in range(30):
            s.add(
                OutboxRow(
                    target="slack",
                    kind="post",
                    payload={"i": i},
                    state="pending",
                    attempts=0,
                    due_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    workers = [
        OutboxWorker(rt.sessions, {"slack": object()}, metrics=rt.metrics, batch=10, clock=clock)  # type: ignore[dict-item]
        for _ in range(3)
    ]
    claimed: list[list[int]] = [[] for _ in workers]
    start = threading.Barrier(len(workers))

    def claim(i: int) -> None:
        start.wait()
        claimed[i] = [item.id for item in workers[i].claim()]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [x for ids in claimed for x in ids]
    assert len(everything) == 30 and len(set(everything)) == 30
    assert all(len(ids) == 10 for ids in claimed)


def test_settings_hide_secrets_in_their_repr() -> None:
    from pydantic import SecretStr

    s = Settings(api_token=SecretStr("hunter2"), jira_token=SecretStr("jt"))
    assert "hunter2" not in repr(s) and "jt'" not in repr(s)
