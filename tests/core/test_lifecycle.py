"""The incident lifecycle and the outbox effects it causes (pure core)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.effects import effects_for
from opsbot.core.lifecycle import Action, IncidentSnapshot, decide_incident, settle
from opsbot.core.policy import FlapPolicy
from opsbot.core.rules import Route

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FLAP = FlapPolicy(changes=4, window=timedelta(minutes=30))
WINDOW = timedelta(hours=24)
ROUTE = Route(
    priority="P2",
    environment="prod",
    team="cim",
    account_name="prod-cim",
    jira_project=None,
    slack_channel=None,
    ticket=True,
    runbook=None,
    runbook_auto=False,
    rule_index=None,
)


def alert(status: AlertStatus = AlertStatus.FIRING, **kw: object) -> Alert:
    values: dict = {
        "fingerprint": "f" * 32,
        "status": status,
        "severity": Severity.HIGH,
        "source": "aws.cloudwatch",
        "title": "ALARM: High-CPU",
    }
    values.update(kw)
    return Alert(**values)


def incident(**kw: object) -> IncidentSnapshot:
    values: dict = {
        "id": 7,
        "status": "open",
        "severity": Severity.HIGH,
        "priority": "P2",
        "flapping": False,
        "last_alert_status": AlertStatus.FIRING,
        "resolved_at": None,
        "flips": (NOW - timedelta(hours=1),),
    }
    values.update(kw)
    return IncidentSnapshot(**values)


def decide(a: Alert, current: IncidentSnapshot | None, *, silenced: bool = False, now=NOW):
    return decide_incident(
        a, current, ROUTE, silenced=silenced, reopen_window=WINDOW, flap=FLAP, now=now
    )


def test_first_firing_alert_opens_with_the_route_priority() -> None:
    d = decide(alert(), None)
    assert (d.action, d.incident_id, d.priority, d.severity) == (Action.OPEN, None, "P2", "high")


def test_firing_alert_on_active_incident_repeats_and_follows_latest_severity() -> None:
    d = decide(alert(severity=Severity.CRITICAL), incident())
    assert d.action is Action.REPEAT and d.incident_id == 7
    assert d.severity is Severity.CRITICAL
    assert not d.priority_changed


def test_acknowledged_incident_still_counts_repeats() -> None:
    assert decide(alert(), incident(status="acknowledged")).action is Action.REPEAT


def test_priority_change_is_reported_with_both_values() -> None:
    d = decide(alert(), incident(priority="P4"))
    assert d.priority_changed and (d.previous_priority, d.priority) == ("P4", "P2")


def test_resolved_alert_resolves_active_incident() -> None:
    d = decide(alert(AlertStatus.RESOLVED), incident())
    assert d.action is Action.RESOLVE and d.incident_id == 7


def test_resolved_alert_with_nothing_open_is_ignored() -> None:
    assert decide(alert(AlertStatus.RESOLVED), None).action is Action.IGNORE
    resolved = incident(status="resolved", resolved_at=NOW - timedelta(hours=1))
    assert decide(alert(AlertStatus.RESOLVED), resolved).action is Action.IGNORE


def test_firing_within_reopen_window_reopens_same_incident() -> None:
    resolved = incident(
        status="resolved",
        resolved_at=NOW - timedelta(hours=23),
        last_alert_status=AlertStatus.RESOLVED,
    )
    d = decide(alert(), resolved)
    assert d.action is Action.REOPEN and d.incident_id == 7


def test_firing_after_reopen_window_opens_a_new_incident() -> None:
    resolved = incident(
        status="resolved",
        resolved_at=NOW - timedelta(hours=25),
        last_alert_status=AlertStatus.RESOLVED,
    )
    d = decide(alert(), resolved)
    assert d.action is Action.OPEN and d.incident_id is None


def test_silenced_firing_alert_opens_nothing_but_resolve_still_works() -> None:
    assert decide(alert(), None, silenced=True).action is Action.SILENCED
    assert decide(alert(AlertStatus.RESOLVED), incident(), silenced=True).action is Action.RESOLVE


def test_late_retry_that_would_flip_state_back_is_ignored() -> None:
    current = incident(
        status="resolved",
        resolved_at=NOW,
        last_alert_status=AlertStatus.RESOLVED,
        last_alert_at=NOW,
    )
    late = alert(occurred_at=NOW - timedelta(minutes=5))
    assert decide(late, current).action is Action.IGNORE
    fresh = alert(occurred_at=NOW + timedelta(seconds=1))
    assert decide(fresh, current).action is Action.REOPEN


def run_flips(n: int) -> tuple[IncidentSnapshot, list[Action]]:
    """Flip one alarm n times a minute apart, feeding each decision back in."""
    current = incident(flips=(NOW,))
    actions = []
    for i in range(1, n + 1):
        status = AlertStatus.RESOLVED if i % 2 else AlertStatus.FIRING
        now = NOW + timedelta(minutes=i)
        d = decide(alert(status), current, now=now)
        actions.append(d.action)
        resolved = d.action is Action.RESOLVE
        current = incident(
            status="resolved" if resolved else "open",
            resolved_at=now if resolved else None,
            last_alert_status=status,
            flapping=d.flapping,
            flips=d.flips,
        )
    return current, actions


def test_flapping_is_detected_after_too_many_flips_and_holds_resolves() -> None:
    current, actions = run_flips(6)
    assert actions[:3] == [Action.RESOLVE, Action.REOPEN, Action.RESOLVE]
    assert Action.HOLD in actions
    assert current.flapping and current.status == "open"


def test_flapping_starts_exactly_once() -> None:
    current = incident(flips=tuple(NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)))
    d = decide(alert(AlertStatus.RESOLVED), current)
    assert d.flapping and d.flapping_started and d.action is Action.HOLD
    again = incident(flapping=True, flips=d.flips, last_alert_status=AlertStatus.RESOLVED)
    d2 = decide(alert(), again, now=NOW + timedelta(minutes=1))
    assert d2.flapping and not d2.flapping_started and d2.action is Action.REPEAT


def test_flips_outside_the_window_are_forgotten() -> None:
    old = tuple(NOW - timedelta(hours=h) for h in (2, 3, 4, 5, 6))
    d = decide(alert(AlertStatus.RESOLVED), incident(flips=old))
    assert d.action is Action.RESOLVE and d.flips == (NOW,)


@pytest.mark.parametrize(
    ("last", "quiet", "expected"),
    [
        (AlertStatus.RESOLVED, 31, Action.RESOLVE),
        (AlertStatus.FIRING, 31, Action.REPEAT),
        (AlertStatus.RESOLVED, 10, None),
    ],
)
def test_settle_after_a_quiet_window(
    last: AlertStatus, quiet: int, expected: Action | None
) -> None:
    current = incident(
        flapping=True, last_alert_status=last, flips=(NOW - timedelta(minutes=quiet),)
    )
    assert settle(current, FLAP, NOW) is expected


def test_settle_ignores_incidents_that_are_not_flapping() -> None:
    assert settle(incident(), FLAP, NOW) is None


def kinds(effects) -> list[tuple[str, str]]:
    return [(e.target, e.kind) for e in effects]


def test_open_posts_a_card_and_creates_a_ticket() -> None:
    d = decide(alert(), None)
    assert kinds(effects_for(d, ticket=True)) == [("slack", "post"), ("jira", "create")]
    assert kinds(effects_for(d, ticket=False)) == [("slack", "post")]


def test_repeat_is_a_coalesced_delayed_update_and_digest() -> None:
    effects = effects_for(decide(alert(), incident()), ticket=True)
    assert kinds(effects) == [("slack", "update"), ("jira", "digest")]
    assert all(e.coalesce for e in effects)
    assert effects[0].delay == timedelta(seconds=10)
    assert effects[1].delay == timedelta(minutes=15)


def test_resolve_updates_card_now_notes_thread_and_resolves_ticket() -> None:
    effects = effects_for(decide(alert(AlertStatus.RESOLVED), incident()), ticket=True)
    assert kinds(effects) == [("slack", "update"), ("slack", "thread"), ("jira", "resolve")]
    assert effects[0].delay == timedelta(0)


def test_priority_change_updates_ticket_priority_with_both_values() -> None:
    effects = effects_for(decide(alert(), incident(priority="P4")), ticket=True)
    priority = [e for e in effects if e.kind == "priority"]
    assert priority and priority[0].payload == {"from": "P4", "to": "P2"}


def test_silenced_and_ignored_alerts_cause_no_effects() -> None:
    assert effects_for(decide(alert(), None, silenced=True), ticket=True) == []
    assert effects_for(decide(alert(AlertStatus.RESOLVED), None), ticket=True) == []
