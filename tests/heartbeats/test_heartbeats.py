"""Heartbeats: a silent heartbeat opens an incident on the controlled clock, its return resolves it.

Events arrive through the real ``POST /api/events`` (loopback, no token set);
the job is the one the worker schedules (``check_heartbeats``), run by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from opsbot.config import Settings
from opsbot.db.models import HEARTBEAT_SQL, AlertRow, AuditEntry, Delivery, Incident, OutboxRow
from opsbot.heartbeats import check_heartbeats
from opsbot.heartbeats.config import SOURCE, fingerprint
from opsbot.heartbeats.watch import last_seen
from opsbot.incidents import actions
from opsbot.runtime import Runtime
from tests.support.clock import Clock

CONFIG = """
accounts:
  "111122223333": {name: prod-cim, environment: prod}
heartbeats:
  - name: nightly
    match: {source: cron, resource: backup-runner, account: prod-cim}
    every: 5m
"""


@pytest.fixture
def beat_app(
    settings: Settings, config_path: Any, make_app: Callable[[Settings], Flask]
) -> tuple[Flask, Runtime]:
    config_path.write_text(CONFIG)
    app = make_app(settings)
    return app, app.extensions["opsbot"]


def send_beat(app: Flask, clock: Clock, n: int, **fields: Any) -> dict[str, Any]:
    """Send one heartbeat event through POST /api/events, as the cron job would."""
    event = {
        "id": f"beat-{n}",
        "source": "cron",
        "resource": "backup-runner",
        "account_id": "111122223333",
        "title": "backup runner alive",
        "severity": "info",
        "status": "firing",
        "occurred_at": clock.now.isoformat(),
    } | fields
    response = app.test_client().post("/api/events", json={"events": [event]})
    assert response.status_code == 200, response.json
    result: dict[str, Any] = response.json["results"][0]
    return result


def heartbeat_incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as session:
        stmt = select(Incident).where(Incident.source == SOURCE).order_by(Incident.id)
        return list(session.execute(stmt).scalars())


def test_heartbeat_events_are_stored_with_the_heartbeat_and_open_no_incident(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    app, rt = beat_app
    result = send_beat(app, clock, 1)

    assert result["alerts"][0]["action"] == "silenced"
    with rt.sessions() as session:
        row = session.execute(select(AlertRow)).scalar_one()
        assert row.silence_id == "heartbeat:nightly"
        assert session.execute(select(Incident)).first() is None


def test_silent_past_every_opens_an_incident_and_the_next_event_resolves_it(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    app, rt = beat_app
    send_beat(app, clock, 1)
    clock.advance(minutes=5)  # exactly `every` since the last event: not missing yet
    assert check_heartbeats(rt) == 0
    assert heartbeat_incidents(rt) == []

    clock.advance(seconds=1)  # one second past: missing
    assert check_heartbeats(rt) == 1
    [incident] = heartbeat_incidents(rt)
    assert (incident.status, incident.fingerprint) == ("open", fingerprint("nightly"))
    assert (incident.account_id, incident.environment, incident.priority) == (
        "111122223333",
        "prod",
        "P2",  # severity high (the default) in prod
    )
    assert incident.title.startswith("Heartbeat nightly missing: nothing for 5m")
    with rt.sessions() as session:
        targets = set(
            session.execute(
                select(OutboxRow.target).where(OutboxRow.incident_id == incident.id)
            ).scalars()
        )
        actions = list(session.execute(select(AuditEntry.action)).scalars())
    assert targets == {"jira", "slack"}  # ticket and card, as for any incident
    assert "incident.opened" in actions

    clock.advance(minutes=10)  # still missing: reported once, not every minute
    assert check_heartbeats(rt) == 0
    assert [i.count for i in heartbeat_incidents(rt)] == [1]

    clock.advance(seconds=30)
    send_beat(app, clock, 2)
    assert check_heartbeats(rt) == 1
    [incident] = heartbeat_incidents(rt)
    assert incident.status == "resolved"
    assert check_heartbeats(rt) == 0  # nothing more to say


def test_a_new_heartbeat_gets_its_grace_from_when_it_was_first_watched(
    settings: Settings, config_path: Any, make_app: Callable[[Settings], Flask], clock: Clock
) -> None:
    config_path.write_text(CONFIG.replace("every: 5m", "every: 5m\n    grace: 2m"))
    rt: Runtime = make_app(settings).extensions["opsbot"]
    assert check_heartbeats(rt) == 0  # first look: watched from now on
    clock.advance(minutes=7)
    assert check_heartbeats(rt) == 0  # every + grace, exactly
    clock.advance(seconds=1)
    assert check_heartbeats(rt) == 1
    [incident] = heartbeat_incidents(rt)
    assert "grace 2m" in incident.summary


def test_a_heartbeat_resolved_by_hand_stays_resolved_until_it_goes_silent_again(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    app, rt = beat_app
    send_beat(app, clock, 1)
    clock.advance(minutes=6)
    check_heartbeats(rt)
    [incident] = heartbeat_incidents(rt)
    with rt.sessions() as session, session.begin():
        actions.resolve(session, incident.id, actor="U0OPS", now=clock.now)  # /ops resolve
    clock.advance(minutes=3)
    assert check_heartbeats(rt) == 0
    assert [i.status for i in heartbeat_incidents(rt)] == ["resolved"]

    send_beat(app, clock, 2)
    clock.advance(minutes=6)
    assert check_heartbeats(rt) == 1  # a new silence: the incident reopens
    assert [i.status for i in heartbeat_incidents(rt)] == ["open"]


def test_a_missing_heartbeat_removed_from_the_configuration_resolves(
    beat_app: tuple[Flask, Runtime], clock: Clock, config_path: Any
) -> None:
    _, rt = beat_app
    clock.advance(minutes=1)
    check_heartbeats(rt)
    clock.advance(minutes=6)
    check_heartbeats(rt)
    assert [i.status for i in heartbeat_incidents(rt)] == ["open"]

    config_path.write_text(CONFIG.split("heartbeats:")[0])
    rt.reload()
    assert check_heartbeats(rt) == 1
    assert [i.status for i in heartbeat_incidents(rt)] == ["resolved"]
    assert check_heartbeats(rt) == 0


def test_events_of_other_resources_do_not_count(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    app, rt = beat_app
    check_heartbeats(rt)
    clock.advance(minutes=4)
    result = send_beat(app, clock, 1, resource="other-runner", title="other alive")
    assert result["alerts"][0]["action"] == "open"  # an ordinary alert, not the heartbeat
    clock.advance(minutes=1, seconds=1)
    assert check_heartbeats(rt) == 1


def test_the_changes_are_deliveries_recorded_once(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    _, rt = beat_app
    check_heartbeats(rt)
    clock.advance(minutes=6)
    check_heartbeats(rt)
    check_heartbeats(rt)
    with rt.sessions() as session:
        ids = list(
            session.execute(
                select(Delivery.message_id).where(Delivery.namespace == "heartbeat")
            ).scalars()
        )
    assert len(ids) == 1 and ids[0].startswith("nightly:missing:")


def test_last_seen_reads_the_partial_index_not_the_alerts_table(
    beat_app: tuple[Flask, Runtime], clock: Clock
) -> None:
    app, rt = beat_app
    send_beat(app, clock, 1)
    stmt = (
        select(AlertRow.received_at)
        .where(AlertRow.silence_id == "heartbeat:nightly", text(HEARTBEAT_SQL))
        .order_by(AlertRow.received_at.desc())
        .limit(1)
    )
    with rt.sessions() as session, session.begin():
        compiled = stmt.compile(session.get_bind())
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SET LOCAL enable_seqscan = off")
            )  # a tiny table: force the choice
            found = session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
            plan = " ".join(row[0] for row in found)
        else:
            sql = str(stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        assert last_seen(session, "heartbeat:nightly") == clock.now
    assert "ix_alerts_heartbeat" in plan, plan
