"""Operator actions: acknowledge, resolve, assign, silences — state, outbox, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from opsbot.db.models import AuditEntry, Incident, OutboxRow
from opsbot.db.session import transaction
from opsbot.incidents import actions
from tests.support.sns import alarm_message, notify


@pytest.fixture
def incident_id(client, signer, clock) -> int:
    r = notify(client, signer, clock, alarm_message())
    return int(r.json["alerts"][0]["incident_id"])


def outbox(rt, incident_id: int) -> list[tuple[str, str, dict]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(OutboxRow).where(OutboxRow.incident_id == incident_id).order_by(OutboxRow.id)
        ).scalars()
        return [(r.target, r.kind, r.payload) for r in rows]


def test_acknowledge_records_who_and_notifies_once(rt, clock, incident_id) -> None:
    with transaction(rt.sessions) as s:
        done = actions.acknowledge(s, incident_id, actor="U0OPS (ana)", now=clock.now)
    assert done.changed
    with transaction(rt.sessions) as s:
        again = actions.acknowledge(s, incident_id, actor="U0OPS (ana)", now=clock.now)
    assert not again.changed and "acknowledged" in again.message
    with rt.sessions() as s:
        row = s.get(Incident, incident_id)
        audit = s.execute(select(AuditEntry.actor, AuditEntry.action)).all()
    assert (row.status, row.acknowledged_by) == ("acknowledged", "U0OPS (ana)")
    assert ("U0OPS (ana)", "incident.acknowledge") in audit
    sent = outbox(rt, incident_id)
    assert ("slack", "thread", {"text": "Acknowledged by U0OPS (ana)."}) in sent
    assert [k for t, k, _ in sent if t == "jira"] == ["create", "comment"]


def test_manual_resolve_transitions_the_ticket_but_not_when_jira_resolved_it(
    rt, clock, incident_id, client, signer
) -> None:
    with transaction(rt.sessions) as s:
        actions.resolve(s, incident_id, actor="U0OPS", now=clock.now, note="rebooted")
    assert [k for t, k, _ in outbox(rt, incident_id) if t == "jira"] == ["create", "resolve"]
    clock.advance(minutes=1)
    second = notify(client, signer, clock, alarm_message(name="Other", when=clock.now))
    other = int(second.json["alerts"][0]["incident_id"])
    with transaction(rt.sessions) as s:
        actions.resolve(s, other, actor="jira:ana", now=clock.now, from_jira=True)
    assert [k for t, k, _ in outbox(rt, other) if t == "jira"] == ["create"]
    with rt.sessions() as s:
        assert s.get(Incident, other).status == "resolved"


def test_unknown_incident_is_a_clear_error(rt, clock) -> None:
    with (
        pytest.raises(actions.ActionError, match="no incident 4242"),
        transaction(rt.sessions) as s,
    ):
        actions.acknowledge(s, 4242, actor="U1", now=clock.now)


def test_assign_records_the_owner(rt, clock, incident_id) -> None:
    with transaction(rt.sessions) as s:
        assert actions.assign(s, incident_id, owner="ana", actor="U1", now=clock.now).changed
    with transaction(rt.sessions) as s:
        assert not actions.assign(s, incident_id, owner="ana", actor="U1", now=clock.now).changed
    with rt.sessions() as s:
        assert s.get(Incident, incident_id).owner == "ana"


def test_a_stored_silence_silences_new_alerts_until_it_ends(rt, clock, client, signer) -> None:
    with transaction(rt.sessions) as s:
        silence_id = actions.create_silence(
            s,
            {"alarm_name": "Disk-*"},
            ends_at=clock.now + timedelta(hours=1),
            reason="maintenance",
            actor="U1",
            now=clock.now,
        )
    rt.silences.invalidate()
    r = notify(client, signer, clock, alarm_message(name="Disk-Full"))
    assert r.json["alerts"][0]["action"] == "silenced"
    with transaction(rt.sessions) as s:
        assert actions.end_silence(s, silence_id, actor="U1", now=clock.now).changed
    rt.silences.invalidate()
    r = notify(client, signer, clock, alarm_message(name="Disk-Full"))
    assert r.json["alerts"][0]["action"] == "open"


def test_silence_cache_expires_on_its_own(rt, clock, client, signer) -> None:
    notify(client, signer, clock, alarm_message(name="Warmup"))  # fills the cache
    with transaction(rt.sessions) as s:
        actions.create_silence(
            s,
            {"alarm_name": "Disk-*"},
            ends_at=clock.now + timedelta(hours=1),
            reason="",
            actor="U1",
            now=clock.now,
        )
    clock.advance(seconds=3)
    r = notify(client, signer, clock, alarm_message(name="Disk-Full"))
    assert r.json["alerts"][0]["action"] == "silenced"


@pytest.mark.parametrize(
    ("matcher", "ends_in", "error"),
    [({"alarm_nam": "x"}, 60, "Bad silence matcher"), ({"alarm_name": "x"}, -1, "future")],
)
def test_bad_silences_are_refused(rt, clock, matcher, ends_in, error) -> None:
    with pytest.raises(actions.ActionError, match=error), transaction(rt.sessions) as s:
        actions.create_silence(
            s,
            matcher,
            ends_at=clock.now + timedelta(seconds=ends_in),
            reason="",
            actor="U1",
            now=clock.now,
        )
