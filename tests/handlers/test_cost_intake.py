"""Cost alerts and the RDS failover record through the real intake (signed SNS, the database,
the outbox and the fake Jira): incidents, priorities and tickets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from opsbot.config import Settings
from opsbot.db.models import AuditEntry, Incident, OutboxRow
from opsbot.runtime import Runtime
from opsbot.sns.sign import LocalSigner
from tests.fakes.jira_api import FakeJira, serve
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_api import serve as serve_slack
from tests.support.clock import Clock
from tests.support.jira import jira_settings, worker
from tests.support.outbox import drain
from tests.support.slack import slack_settings
from tests.support.sns import notify

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
CONFIG = """
accounts:
  "123456789012": {name: payer, environment: prod}
  "444455556666": {name: web-prod, environment: prod, team: web}
  "111122223333": {name: prod-cim, environment: prod}
  "555566667777": {name: staging, environment: nonprod}
cost:
  thresholds:
    critical: {dollars: 5000, percent: 200}
    high: {dollars: 1000}
    medium: {percent: 50}
"""


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    with serve(FakeJira()) as served:
        yield served


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serve_slack(FakeSlack()) as served:
        yield served


@pytest.fixture
def app(
    settings: Settings,
    fake: FakeJira,
    slack: FakeSlack,
    make_app: Callable[[Settings], Flask],
    config_path: Path,
) -> Flask:
    config_path.write_text(CONFIG)
    return make_app(slack_settings(jira_settings(settings, fake), slack))


def push(client: FlaskClient, signer: LocalSigner, clock: Clock, message: object) -> Any:
    clock.advance(seconds=30)
    text = message if isinstance(message, str) else json.dumps(message)
    response = notify(client, signer, clock, text)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def load(name: str) -> dict[str, Any]:
    value = json.loads((FIXTURES / name).read_text())
    assert isinstance(value, dict)
    return value


def incidents(rt: Runtime) -> list[Incident]:
    with rt.sessions() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def outbox(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id))
        return [(row.target, row.kind) for row in rows]


def test_one_anomaly_over_sns_and_eventbridge_is_one_incident_in_the_concerned_account(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock, fake: FakeJira
) -> None:
    event = load("eventbridge-ce-anomaly-detected-constructed.json")
    first = push(client, signer, clock, event)
    sns = load("costanomaly-sns-immediate-alert-awsdocs.json")
    sns["rootCauses"] = event["detail"]["rootCauses"]  # the docs' SNS example has placeholders
    sns["impact"]["totalImpact"] = 6200  # grown since: 6200 $ and 333 % reach critical
    second = push(client, signer, clock, sns)

    assert [a["action"] for a in first["alerts"] + second["alerts"]] == ["open", "repeat"]
    (incident,) = incidents(rt)
    assert (incident.source, incident.account_id, incident.team) == (
        "aws.ce",
        "444455556666",
        "web",
    )
    assert (incident.severity, incident.priority) == ("critical", "P1")  # first high → P2
    drain(worker(rt, clock))
    (ticket,) = fake.created()
    assert ticket.fields["summary"].startswith("Cost anomaly: $1,001.00 (334%)")  # the title
    description = ticket.fields["description"]
    assert "Root causes:" in description
    assert "account 444455556666 (web-prod), region eu-west-1" in description
    assert "usage type EU-BoxUsage:m5.4xlarge: $601.00" in description
    assert "Total impact: $6,200.00" in description  # the latest impact
    assert "cost-management/home#/anomaly-detection" in description


def test_budget_notifications_open_one_incident_whose_priority_follows_the_overrun(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    letter = (FIXTURES / "budgets-forecasted-constructed.txt").read_text()
    push(client, signer, clock, letter)  # $12,500 (31 %) over: high, a forecast one lower
    (forecast,) = incidents(rt)
    push(client, signer, clock, letter.replace("FORECASTED", "ACTUAL"))  # the same spent: high

    (incident,) = incidents(rt)
    assert (incident.source, incident.account_id) == ("aws.budgets", "111122223333")
    assert (forecast.severity, forecast.priority) == ("medium", "P3")
    assert (incident.severity, incident.priority, incident.count) == ("high", "P2", 2)
    assert incident.title.startswith("Budget prod-monthly: forecasted $52,500.00")


def test_rds_failover_completion_alone_leaves_a_resolved_record_and_a_review_ticket(
    client: FlaskClient,
    rt: Runtime,
    signer: LocalSigner,
    clock: Clock,
    fake: FakeJira,
    slack: FakeSlack,
) -> None:
    answer = push(
        client, signer, clock, load("eventbridge-rds-db-instance-event-failover-constructed.json")
    )

    assert answer["alerts"][0]["action"] == "record"
    (incident,) = incidents(rt)
    assert (incident.status, incident.environment) == ("resolved", "prod")
    assert incident.resolved_at == clock.now
    assert incident.title.startswith("RDS failover on mysql-instance-2018-10-06-12-24")
    assert outbox(rt) == [("slack", "post"), ("jira", "create")]
    with rt.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.subject_type == "incident", AuditEntry.subject_id == str(incident.id)
            )
        ).all()
    assert "incident.recorded" in actions
    drain(rt)  # the app's senders: Slack and Jira
    (ticket,) = fake.created()
    assert ticket.status() == "To Do"  # open for the post-incident review
    (card,) = slack.cards()
    assert card.text.startswith("P2 RDS failover on mysql-instance") and "Resolved" in card.text


def test_a_repeated_completion_and_a_nonprod_completion_are_handled(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    event = load("eventbridge-rds-db-instance-event-failover-constructed.json")
    push(client, signer, clock, event)
    again = push(client, signer, clock, event)  # the same event under another SNS message id
    staging = json.loads(json.dumps(event).replace("123456789012", "555566667777"))
    other = push(client, signer, clock, staging)

    assert again["alerts"][0]["action"] == "ignore"
    assert other["alerts"][0]["action"] == "record"
    records = incidents(rt)
    assert [(i.account_id, i.status) for i in records] == [
        ("123456789012", "resolved"),
        ("555566667777", "resolved"),
    ]
    assert [kind for kind in outbox(rt) if kind[0] == "jira"] == [("jira", "create")]  # prod only


def test_failover_started_then_completed_resolves_without_a_second_record(
    client: FlaskClient, rt: Runtime, signer: LocalSigner, clock: Clock
) -> None:
    event = load("eventbridge-rds-db-instance-event-failover-constructed.json")
    started = json.loads(json.dumps(event))
    started["detail"].update(EventID="RDS-EVENT-0013", Message="A Multi-AZ failover has started.")
    started["time"] = "2018-09-27T22:35:43Z"

    push(client, signer, clock, started)
    answer = push(client, signer, clock, event)

    assert answer["alerts"][0]["action"] == "resolve"
    assert [i.status for i in incidents(rt)] == ["resolved"]
