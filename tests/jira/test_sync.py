"""One ticket per incident, kept in step: create, digest, priority, resolve, reopen, won't fix."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

import handlers
from handlers.base import Inbound
from opsbot.core.effects import Effect
from opsbot.db.models import AuditEntry
from opsbot.db.session import transaction
from opsbot.incidents import actions, service
from opsbot.jira.sync import JiraSync
from opsbot.outbox.queue import queue_effects
from tests.support.jira import incidents, jira_rows, jira_settings, worker, write_config
from tests.support.outbox import drain
from tests.support.sns import alarm_message, notify


def fire(client, signer, clock, state: str = "ALARM", name: str = "High-CPU") -> None:
    old = "OK" if state == "ALARM" else "ALARM"
    message = alarm_message(name, state, old=old, when=clock.now)
    assert notify(client, signer, clock, message).status_code == 200


def test_a_signed_alarm_makes_exactly_one_ticket_with_priority_labels_and_text(
    client, signer, clock, rt, fake
) -> None:
    fire(client, signer, clock)
    drain(worker(rt, clock))
    [ticket] = fake.created()
    [incident] = incidents(rt)
    assert incident.jira_key == ticket.key == "OPS-1"
    fields = ticket.fields
    names = {"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low", "P5": "Lowest"}
    assert fields["priority"] == {"name": names[incident.priority]}
    assert fields["labels"][:2] == ["opsbot", f"opsbot-{incident.fingerprint[:12].lower()}"]
    assert "prod" in fields["labels"] and all(" " not in label for label in fields["labels"])
    assert fields["summary"] == incident.title
    assert fields["summary"].startswith("ALARM: High-CPU")
    assert "prod-cim (111122223333)" in fields["description"]
    assert f"https://opsbot.example.com/api/incidents/{incident.id}" in fields["description"]
    assert "Threshold Crossed" in fields["description"]
    assert [r.state for r in jira_rows(rt)] == ["done"]
    drain(worker(rt, clock))  # running again changes nothing
    assert len(fake.issues) == 1


def test_ok_resolves_by_transition_and_recurrence_reopens_the_same_ticket(
    client, signer, clock, rt, fake
) -> None:
    fire(client, signer, clock)
    drain(worker(rt, clock))
    clock.advance(minutes=5)
    fire(client, signer, clock, "OK")
    drain(worker(rt, clock))
    ticket = fake.issue("OPS-1")
    assert ticket.status() == "Done" and ticket.fields["resolution"]["name"] == "Done"
    assert "Resolved by opsbot: source reports OK." in ticket.comments[-1]["body"]
    clock.advance(hours=1)
    fire(client, signer, clock)
    drain(worker(rt, clock))
    assert ticket.status() == "To Do" and ticket.fields["resolution"] is None
    assert ticket.comments[-1]["body"].startswith("Fired again")
    assert len(fake.issues) == 1
    assert [i.status for i in incidents(rt)] == ["open"]


def test_a_wont_fix_ticket_is_not_reopened_a_new_linked_ticket_is_made(
    client, signer, clock, rt, fake
) -> None:
    fire(client, signer, clock)
    drain(worker(rt, clock))
    clock.advance(minutes=5)
    fire(client, signer, clock, "OK")
    drain(worker(rt, clock))
    fake.issue("OPS-1").fields["resolution"] = {"id": "2", "name": "Won't Fix"}
    clock.advance(hours=1)
    fire(client, signer, clock)
    drain(worker(rt, clock))
    old, new = fake.issue("OPS-1"), fake.issue("OPS-2")
    assert old.status() == "Done" and old.fields["resolution"]["name"] == "Won't Fix"
    assert new.status() == "To Do"
    assert {"type": {"name": "Relates"}, "outwardIssue": {"key": "OPS-1"}} in new.links
    first, second = incidents(rt)
    assert (first.status, first.jira_key) == ("resolved", "OPS-1")
    assert (second.status, second.jira_key) == ("open", "OPS-2")
    assert second.fingerprint == first.fingerprint
    assert second.route["supersedes"] == first.id
    fire(client, signer, clock)  # the next alarm counts towards the successor
    assert incidents(rt)[1].count == 2


@pytest.mark.timeout(600)  # 10,000 real ingests; slow on a busy PostgreSQL
def test_ten_thousand_deliveries_make_one_ticket_and_few_digests(rt, clock, fake) -> None:
    [alert] = handlers.parse(Inbound(text=alarm_message(), message_id="m0", received_at=clock.now))
    work = worker(rt, clock)
    start = clock.now
    for batch in range(100):  # 100 deliveries per transaction keeps the test fast on PostgreSQL
        with transaction(rt.sessions) as session:
            for _ in range(100):
                delivery = service.DeliveryIn(
                    "sns", str(uuid.uuid4()), "push", "Notification", "{}"
                )
                service.record_delivery(
                    session,
                    delivery=delivery,
                    alerts=[alert],
                    policy=rt.policy,
                    now=clock.now,
                    silences=rt.silences,
                )
                clock.advance(seconds=1)
        if batch % 3 == 0:
            drain(work)
    clock.advance(minutes=15)
    drain(work)
    [ticket] = fake.created()
    [incident] = incidents(rt)
    assert incident.count == 10_000
    elapsed = clock.now - start
    allowed = elapsed // timedelta(minutes=15) + 1
    digests = [c for c in ticket.comments if c["body"].startswith("Still open")]
    assert 1 <= len(digests) <= allowed
    assert "10000 alerts" in digests[-1]["body"]


def test_a_priority_change_updates_the_ticket_and_says_why(
    client, signer, clock, rt, fake, config_path
) -> None:
    fire(client, signer, clock)
    drain(worker(rt, clock))
    [incident] = incidents(rt)
    with transaction(rt.sessions) as session:
        queue_effects(
            session,
            incident.id,
            [Effect("jira", "priority", payload={"from": incident.priority, "to": "P1"})],
            clock.now,
        )
    drain(worker(rt, clock))
    ticket = fake.issue("OPS-1")
    assert ticket.fields["priority"] == {"name": "Highest"}
    assert ticket.comments[-1]["body"].startswith(
        f"Priority changed {incident.priority} → P1 (Highest)"
    )


def test_operator_actions_become_comments(client, signer, clock, rt, fake) -> None:
    fire(client, signer, clock)
    drain(worker(rt, clock))
    [incident] = incidents(rt)
    with transaction(rt.sessions) as session:
        actions.acknowledge(session, incident.id, actor="alice", now=clock.now)
        actions.assign(session, incident.id, owner="bob", actor="alice", now=clock.now)
        actions.resolve(session, incident.id, actor="alice", now=clock.now, note="rebooted")
    drain(worker(rt, clock))
    ticket = fake.issue("OPS-1")
    bodies = [c["body"] for c in ticket.comments]
    assert bodies[:2] == ["Acknowledged by alice.", "Assigned to bob by alice."]
    assert bodies[2] == "Resolved by alice. rebooted"
    assert ticket.status() == "Done"


def test_no_fitting_transition_comments_and_reports_instead_of_failing(
    client, signer, clock, rt, fake
) -> None:
    fake.workflow = [t for t in fake.workflow if t[1] != "Resolve Issue"]
    fire(client, signer, clock)
    drain(worker(rt, clock))
    clock.advance(minutes=5)
    fire(client, signer, clock, "OK")
    drain(worker(rt, clock))
    ticket = fake.issue("OPS-1")
    assert ticket.status() == "To Do"
    assert "no resolve transition" in ticket.comments[-1]["body"]
    assert all(r.state == "done" for r in jira_rows(rt))
    with rt.sessions() as session:
        actions_seen = [a.action for a in session.query(AuditEntry)]
    assert "jira.no_transition" in actions_seen


def test_service_management_mode_creates_a_customer_request(
    settings, fake, make_app, config_path, signer, clock
) -> None:
    write_config(config_path)
    app = make_app(
        jira_settings(
            settings, fake, jira_project=None, jira_service_desk_id="4", jira_request_type_id="25"
        )
    )
    rt = app.extensions["opsbot"]
    fire(app.test_client(), signer, clock)
    drain(worker(rt, clock))
    [incident] = incidents(rt)
    assert incident.jira_key == "SD-1"
    assert ("POST", "/rest/servicedeskapi/request") in fake.calls
    assert fake.issue("SD-1").fields["labels"][0] == "opsbot"


def test_route_overrides_from_rules(settings, fake, make_app, config_path, signer, clock) -> None:
    write_config(
        config_path,
        """
rules:
  - match: {alarm_name: "High-*"}
    priority: P1
    jira_project: SEC
    jira_issue_type: Bug
    components: [ec2]
    jira_fields: {customfield_10020: {value: Security}}
""",
    )
    app = make_app(jira_settings(settings, fake))
    rt = app.extensions["opsbot"]
    fire(app.test_client(), signer, clock)
    drain(worker(rt, clock, JiraSync(rt)))
    [ticket] = fake.created()
    assert ticket.key == "SEC-1"
    assert ticket.fields["issuetype"] == {"name": "Bug"}
    assert ticket.fields["components"] == [{"name": "ec2"}]
    assert ticket.fields["customfield_10020"] == {"value": "Security"}
    assert ticket.fields["priority"] == {"name": "Highest"}
