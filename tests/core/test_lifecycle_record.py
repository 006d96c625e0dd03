"""RECORD: a resolved alert that must leave a resolved incident when nothing is open (pure core).

An RDS "failover completed" with no failover incident open is the case in point
(handlers/rds.py marks it with ``Alert.record_if_none_open``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.effects import effects_for
from opsbot.core.lifecycle import Action, IncidentSnapshot, decide_incident
from opsbot.core.policy import FlapPolicy
from opsbot.core.rules import Route

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ROUTE = Route(
    priority="P2",
    environment="prod",
    team="db",
    account_name="prod-cim",
    jira_project=None,
    slack_channel=None,
    ticket=True,
    runbook=None,
    runbook_auto=False,
    rule_index=None,
)


def completed(**kw: object) -> Alert:
    values: dict = {
        "fingerprint": "f" * 32,
        "status": AlertStatus.RESOLVED,
        "severity": Severity.HIGH,
        "source": "aws.rds",
        "title": "RDS failover on db-1: A Multi-AZ failover has completed.",
        "occurred_at": NOW,
        "record_if_none_open": True,
    }
    values.update(kw)
    return Alert(**values)


def latest(**kw: object) -> IncidentSnapshot:
    values: dict = {
        "id": 7,
        "status": "resolved",
        "severity": Severity.HIGH,
        "priority": "P2",
        "flapping": False,
        "last_alert_status": AlertStatus.RESOLVED,
        "resolved_at": NOW - timedelta(hours=2),
        "last_alert_at": NOW - timedelta(hours=2),
    }
    values.update(kw)
    return IncidentSnapshot(**values)


def decide(a: Alert, current: IncidentSnapshot | None, route: Route = ROUTE, silenced=False):
    return decide_incident(
        a,
        current,
        route,
        silenced=silenced,
        reopen_window=timedelta(hours=24),
        flap=FlapPolicy(),
        now=NOW,
    )


def test_completion_with_nothing_ever_open_is_recorded_with_a_review_ticket_in_prod() -> None:
    d = decide(completed(), None)

    assert (d.action, d.incident_id, d.priority, d.severity) == (Action.RECORD, None, "P2", "high")
    assert d.record_ticket is True
    assert [(e.target, e.kind) for e in effects_for(d, ticket=d.record_ticket)] == [
        ("slack", "post"),
        ("jira", "create"),
    ]


@pytest.mark.parametrize(
    ("environment", "ticket", "expected"),
    [
        ("prod", True, True),
        ("nonprod", True, False),
        ("sandbox", False, False),
        ("prod", False, False),
    ],
)
def test_only_prod_records_get_a_ticket_and_only_when_the_route_allows_one(
    environment: str, ticket: bool, expected: bool
) -> None:
    d = decide(completed(), None, replace(ROUTE, environment=environment, ticket=ticket))

    assert (d.action, d.record_ticket) == (Action.RECORD, expected)


def test_completion_after_an_earlier_resolved_incident_is_a_new_record() -> None:
    assert decide(completed(), latest()).action is Action.RECORD


def test_completion_resolves_an_open_failover_incident_as_before() -> None:
    current = latest(status="open", last_alert_status=AlertStatus.FIRING, resolved_at=None)

    d = decide(completed(), current)

    assert (d.action, d.incident_id) == (Action.RESOLVE, 7)


def test_the_same_occurrence_again_is_not_recorded_twice() -> None:
    # EventBridge → SNS may deliver one event twice under two SNS message ids.
    assert decide(completed(), latest(last_alert_at=NOW)).action is Action.IGNORE
    assert decide(completed(), latest(last_alert_at=NOW + timedelta(seconds=1))).action is (
        Action.IGNORE
    )


def test_a_silenced_completion_records_nothing() -> None:
    assert decide(completed(), None, silenced=True).action is Action.SILENCED


def test_an_unmarked_resolve_with_nothing_open_is_still_ignored() -> None:
    assert decide(completed(record_if_none_open=False), None).action is Action.IGNORE
