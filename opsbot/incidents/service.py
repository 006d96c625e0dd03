"""Services: the one place that applies decisions: state, outbox rows and audit, one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from opsbot.audit import audit_incident
from opsbot.config import silence_from_row
from opsbot.core.accounts import Account
from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.effects import effects_for
from opsbot.core.lifecycle import Action, Decision, IncidentSnapshot, decide_incident
from opsbot.core.policy import Policy
from opsbot.core.rules import Route, route_alert
from opsbot.core.silences import Silence, find_silence
from opsbot.db import store
from opsbot.db.models import Incident
from opsbot.db.session import transaction
from opsbot.outbox.queue import queue_effects
from opsbot.runtime import SilenceSource

log = logging.getLogger(__name__)

T = TypeVar("T")
RACE_RETRIES = 3


@dataclass(frozen=True)
class DeliveryIn:
    """An inbound message as it is recorded in ``deliveries``."""

    namespace: str
    message_id: str
    channel: str
    message_type: str
    body: str
    topic_arn: str = ""
    subject: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class AlertOutcome:
    fingerprint: str
    action: str
    incident_id: int | None


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    delivery_id: int | None = None
    outcomes: tuple[AlertOutcome, ...] = ()


def in_transaction(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run work in one transaction, retrying when another process opened the same incident."""
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            with transaction(factory) as session:
                return work(session)
        except IntegrityError as exc:
            if not _is_incident_race(exc) or attempt == RACE_RETRIES:
                raise
            log.info("another process opened the same incident; retrying (attempt %d)", attempt)
    raise AssertionError("unreachable")


def _is_incident_race(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_incidents_active_fingerprint" in text or "incidents.fingerprint" in text


def ingest(
    factory: sessionmaker[Session],
    *,
    delivery: DeliveryIn,
    alerts: Sequence[Alert],
    policy: Policy,
    now: datetime,
    silences: SilenceSource | None = None,
) -> IngestResult:
    """Record a delivery once and fold its alerts into incidents, in one transaction."""
    return in_transaction(
        factory,
        lambda session: record_delivery(
            session, delivery=delivery, alerts=alerts, policy=policy, now=now, silences=silences
        ),
    )


def record_delivery(
    session: Session,
    *,
    delivery: DeliveryIn,
    alerts: Sequence[Alert],
    policy: Policy,
    now: datetime,
    silences: SilenceSource | None = None,
) -> IngestResult:
    """Record a delivery and apply its alerts; a message id seen before changes nothing."""
    delivery_id = store.insert_delivery(
        session, {**delivery.__dict__, "received_at": now, "outcome": "processed"}
    )
    if delivery_id is None:
        return IngestResult(duplicate=True)
    if not alerts:
        return IngestResult(duplicate=False, delivery_id=delivery_id)
    stored = (silences or stored_silences)(session, now)
    active = policy.silences + tuple(stored)
    outcomes = tuple(
        apply_alert(
            session, alert, delivery_id=delivery_id, policy=policy, silences=active, now=now
        )
        for alert in alerts
    )
    return IngestResult(duplicate=False, delivery_id=delivery_id, outcomes=outcomes)


def stored_silences(session: Session, now: datetime) -> list[Silence]:
    """Return the operator-made silences that have not ended, as core values."""
    return [silence_from_row(row) for row in store.active_silence_rows(session, now)]


def apply_alert(
    session: Session,
    alert: Alert,
    *,
    delivery_id: int,
    policy: Policy,
    silences: Sequence[Silence],
    now: datetime,
) -> AlertOutcome:
    """Decide what one alert does to its incident and apply it."""
    account = policy.accounts.get(alert.account_id)
    route = route_alert(alert, policy.accounts, policy.rules, policy.priorities)
    silence = find_silence(alert, account, route.environment, silences, now)
    row = store.latest_incident(session, alert.fingerprint)
    decision = decide_incident(
        alert,
        snapshot(row) if row else None,
        route,
        silenced=silence is not None,
        reopen_window=policy.reopen_window,
        flap=policy.flapping,
        now=now,
    )
    incident_id = _apply_decision(session, alert, decision, route, account, now)
    store.insert_alert(
        session,
        _alert_values(alert, delivery_id, incident_id, decision, silence, now),
    )
    return AlertOutcome(alert.fingerprint, decision.action.value, incident_id)


def snapshot(row: Incident | Row[Any]) -> IncidentSnapshot:
    """Return the lifecycle's view of a stored incident."""
    return IncidentSnapshot(
        id=row.id,
        status=row.status,
        severity=Severity(row.severity),
        priority=row.priority,
        flapping=row.flapping,
        last_alert_status=AlertStatus(row.last_alert_status),
        resolved_at=row.resolved_at,
        flips=tuple(datetime.fromisoformat(t) for t in row.flips or ()),
        last_alert_at=row.last_alert_at,
    )


def _apply_decision(
    session: Session,
    alert: Alert,
    decision: Decision,
    route: Route,
    account: Account | None,
    now: datetime,
) -> int | None:
    action = decision.action
    if action in (Action.SILENCED, Action.IGNORE):
        return decision.incident_id if action is Action.IGNORE else None
    if action is Action.OPEN:
        incident_id = store.insert_incident(
            session, _new_incident(alert, decision, route, account, now)
        )
        audit_incident(session, "incident.opened", incident_id, now, priority=decision.priority)
        log_lifecycle("opened", incident_id, alert.fingerprint, f"priority {decision.priority}")
    else:
        incident_id = _update_incident(session, alert, decision, now)
    queue_effects(session, incident_id, effects_for(decision, ticket=route.ticket), now)
    return incident_id


def _update_incident(session: Session, alert: Alert, decision: Decision, now: datetime) -> int:
    assert decision.incident_id is not None
    incident_id = decision.incident_id
    values: dict[str, Any] = {
        "flips": [t.isoformat() for t in decision.flips],
        "flapping": decision.flapping,
        "last_alert_status": alert.status.value,
        "last_alert_at": alert.occurred_at or now,
        "last_seen": now,
    }
    action = decision.action
    if action in (Action.REPEAT, Action.REOPEN):
        values |= {"priority": decision.priority, "severity": decision.severity.value}
        values |= {"summary": alert.summary or alert.title}
    if action is Action.REOPEN:
        values |= {"status": "open", "resolved_at": None}
    if action is Action.RESOLVE:
        values |= {"status": "resolved", "resolved_at": now}
    count = action in (Action.REPEAT, Action.REOPEN)
    store.update_incident(session, incident_id, values, count=count)
    _audit_decision(session, decision, incident_id, now)
    _log_decision(decision, incident_id, alert.fingerprint)
    return incident_id


def settle_incident(session: Session, row: Incident, action: Action, *, now: datetime) -> None:
    """Clear the flapping mark of a quiet incident; resolve it when its alarm last said OK."""
    values: dict[str, Any] = {"flapping": False, "flips": []}
    reason = "flapping settled while firing"
    if action is Action.RESOLVE:
        values |= {"status": "resolved", "resolved_at": now}
        reason = "flapping settled and the source reports OK"
    store.update_incident(session, row.id, values)
    decision = Decision(action, row.id, row.priority, Severity(row.severity), reason=reason)
    if action is Action.RESOLVE:
        audit_incident(session, "incident.resolved", row.id, now, reason=reason)
        log_lifecycle("resolved", row.id, row.fingerprint, reason)
    else:
        audit_incident(session, "incident.settled", row.id, now, reason=reason)
    ticket = bool((row.route or {}).get("ticket", True))
    queue_effects(session, row.id, effects_for(decision, ticket=ticket), now)


def _audit_decision(session: Session, decision: Decision, incident_id: int, now: datetime) -> None:
    if decision.action is Action.RESOLVE:
        audit_incident(session, "incident.resolved", incident_id, now, reason=decision.reason)
    if decision.action is Action.REOPEN:
        audit_incident(session, "incident.reopened", incident_id, now, reason=decision.reason)
    if decision.priority_changed:
        change = {"from": decision.previous_priority, "to": decision.priority}
        audit_incident(session, "incident.priority_changed", incident_id, now, **change)
    if decision.flapping_started:
        audit_incident(session, "incident.flapping", incident_id, now, flips=len(decision.flips))


def log_lifecycle(event: str, incident_id: int, fingerprint: str, detail: str = "") -> None:
    """Log one incident lifecycle event at INFO, with the incident id and fingerprint."""
    extra = {"incident_id": incident_id, "fingerprint": fingerprint}
    log.info("incident %d %s%s", incident_id, event, f": {detail}" if detail else "", extra=extra)


def _log_decision(decision: Decision, incident_id: int, fingerprint: str) -> None:
    # Only changes are logged: a repeat that changes nothing (a storm) logs nothing.
    if decision.action is Action.RESOLVE:
        log_lifecycle("resolved", incident_id, fingerprint, decision.reason)
    if decision.action is Action.REOPEN:
        log_lifecycle("reopened", incident_id, fingerprint, decision.reason)
    if decision.priority_changed:
        change = f"{decision.previous_priority} -> {decision.priority}"
        log_lifecycle("changed priority", incident_id, fingerprint, change)
    if decision.flapping_started:
        log_lifecycle("started flapping", incident_id, fingerprint, f"{len(decision.flips)} flips")


def _new_incident(
    alert: Alert, decision: Decision, route: Route, account: Account | None, now: datetime
) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": "open",
        "priority": decision.priority,
        "severity": alert.severity.value,
        "title": alert.title[:512],
        "summary": alert.summary,
        "source": alert.source,
        "account_id": alert.account_id,
        "account_name": account.name if account else "",
        "environment": route.environment,
        "team": route.team,
        "region": alert.region,
        "resource": alert.resource[:512],
        "console_url": alert.console_url,
        "count": 1,
        "flapping": False,
        "flips": [t.isoformat() for t in decision.flips],
        "last_alert_status": alert.status.value,
        "last_alert_at": alert.occurred_at or now,
        "first_seen": now,
        "last_seen": now,
        "resolved_at": None,
        "route": _route_dict(route),
        "slack_channel": route.slack_channel,
    }


def _route_dict(route: Route) -> dict[str, Any]:
    keys = ("jira_project", "slack_channel", "ticket", "runbook", "runbook_auto", "rule_index")
    return {key: getattr(route, key) for key in keys}


def _alert_values(
    alert: Alert,
    delivery_id: int,
    incident_id: int | None,
    decision: Decision,
    silence: Silence | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "incident_id": incident_id,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "source": alert.source,
        "title": alert.title[:512],
        "summary": alert.summary,
        "account_id": alert.account_id,
        "region": alert.region,
        "resource": alert.resource[:512],
        "labels": dict(alert.labels),
        "decision": decision.action.value,
        "silence_id": silence.id if silence else None,
        "occurred_at": alert.occurred_at,
        "received_at": now,
    }
