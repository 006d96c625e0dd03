"""The incident lifecycle: what one alert does to the incident of its fingerprint.

Given the alert, the latest incident with the same fingerprint (or None), the
route the rules chose, the lifecycle settings and the time, ``decide_incident``
returns a ``Decision``; ``opsbot.incidents.service`` applies it. States: an incident is
``open`` or ``acknowledged`` (both *active*) or ``resolved``.

Flapping: every flip of the alert's status (firing <-> resolved) is recorded
on the incident; more than ``FlapPolicy.changes`` flips inside
``FlapPolicy.window`` mark it flapping. A flapping incident stays active and
holds resolves until it settles, so its ticket and card do not churn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.policy import FlapPolicy
from opsbot.core.rules import Route

ACTIVE = frozenset({"open", "acknowledged"})


class Action(StrEnum):
    OPEN = "open"
    REPEAT = "repeat"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    HOLD = "hold"  # a resolve held back because the incident is flapping
    SILENCED = "silenced"
    IGNORE = "ignore"  # a resolve for no active incident
    RECORD = "record"  # a resolve for no active incident that must still leave a resolved one


@dataclass(frozen=True)
class IncidentSnapshot:
    """The facts about a stored incident that the lifecycle needs."""

    id: int
    status: str
    severity: Severity
    priority: str
    flapping: bool
    last_alert_status: AlertStatus
    resolved_at: datetime | None
    flips: tuple[datetime, ...] = ()
    last_alert_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class Decision:
    """What to do with one alert; ``incident_id`` is None when a new incident opens."""

    action: Action
    incident_id: int | None = None
    priority: str = ""
    severity: Severity = Severity.INFO
    flapping: bool = False
    flips: tuple[datetime, ...] = ()
    priority_changed: bool = False
    flapping_started: bool = False
    reason: str = ""
    previous_priority: str = ""
    notes: tuple[str, ...] = field(default=())
    record_ticket: bool = False  # RECORD only: whether the record gets a ticket (a review)


def decide_incident(
    alert: Alert,
    current: IncidentSnapshot | None,
    route: Route,
    *,
    silenced: bool,
    reopen_window: timedelta,
    flap: FlapPolicy,
    now: datetime,
) -> Decision:
    """Return what the alert does to the latest incident of its fingerprint."""
    if current is not None and _out_of_order(alert, current):
        return Decision(Action.IGNORE, current.id, reason="older than the incident's last change")
    if alert.status is AlertStatus.FIRING:
        if silenced:
            return Decision(Action.SILENCED, current.id if current else None, reason="silenced")
        return _decide_firing(alert, current, route, reopen_window, flap, now)
    if alert.record_if_none_open and not _open_or_recorded(alert, current):
        if silenced:
            return Decision(Action.SILENCED, current.id if current else None, reason="silenced")
        return decide_record(alert, route)
    return _decide_resolved(alert, current, flap, now)


def decide_record(alert: Alert, route: Route) -> Decision:
    """Return the RECORD of a resolved alert with nothing open: a resolved incident, and in
    prod (where the route allows tickets) a ticket for the post-incident review."""
    return Decision(
        Action.RECORD,
        None,
        route.priority,
        alert.severity,
        record_ticket=route.ticket and route.environment == "prod",
        reason="it happened and ended while no incident was open: kept as a record",
    )


def _open_or_recorded(alert: Alert, current: IncidentSnapshot | None) -> bool:
    """Return True when an incident is active, or the latest one already holds this occurrence."""
    if current is None:
        return False
    if current.active:
        return True
    seen = current.last_alert_at
    return seen is not None and alert.occurred_at is not None and alert.occurred_at <= seen


def _decide_firing(
    alert: Alert,
    current: IncidentSnapshot | None,
    route: Route,
    reopen_window: timedelta,
    flap: FlapPolicy,
    now: datetime,
) -> Decision:
    if current is None or (not current.active and not _within(current, reopen_window, now)):
        return Decision(
            Action.OPEN, None, route.priority, alert.severity, flips=(now,), reason="first alert"
        )
    flips = _flip(current, alert.status, flap, now)
    flapping = current.flapping or len(flips) > flap.changes
    common = {
        "incident_id": current.id,
        "priority": route.priority,
        "severity": alert.severity,
        "flapping": flapping,
        "flips": flips,
        "priority_changed": route.priority != current.priority,
        "previous_priority": current.priority,
        "flapping_started": flapping and not current.flapping,
    }
    if current.active:
        return Decision(Action.REPEAT, reason="still firing", **common)  # type: ignore[arg-type]
    return Decision(Action.REOPEN, reason="fired again within the reopen window", **common)  # type: ignore[arg-type]


def _decide_resolved(
    alert: Alert, current: IncidentSnapshot | None, flap: FlapPolicy, now: datetime
) -> Decision:
    if current is None or not current.active:
        return Decision(Action.IGNORE, current.id if current else None, reason="nothing open")
    flips = _flip(current, alert.status, flap, now)
    flapping = current.flapping or len(flips) > flap.changes
    action = Action.HOLD if flapping else Action.RESOLVE
    return Decision(
        action,
        current.id,
        current.priority,
        current.severity,
        flapping=flapping,
        flips=flips,
        flapping_started=flapping and not current.flapping,
        previous_priority=current.priority,
        reason="flapping: resolve held until it settles" if flapping else "source reports OK",
    )


def _out_of_order(alert: Alert, current: IncidentSnapshot) -> bool:
    """Return True for a late retry that would flip the state back (SNS does not order)."""
    if alert.occurred_at is None or current.last_alert_at is None:
        return False
    return (
        alert.status is not current.last_alert_status and alert.occurred_at < current.last_alert_at
    )


def _within(current: IncidentSnapshot, window: timedelta, now: datetime) -> bool:
    return current.resolved_at is not None and now - current.resolved_at <= window


def _flip(
    current: IncidentSnapshot, status: AlertStatus, flap: FlapPolicy, now: datetime
) -> tuple[datetime, ...]:
    """Return the flips inside the window, plus this one when the status changed."""
    recent = tuple(t for t in current.flips if now - t <= flap.window)
    return (*recent, now) if status is not current.last_alert_status else recent


def settle(current: IncidentSnapshot, flap: FlapPolicy, now: datetime) -> Action | None:
    """Return RESOLVE or REPEAT for a flapping incident quiet for a whole window, else None."""
    if not current.flapping or not current.active:
        return None
    if current.flips and now - max(current.flips) < flap.window:
        return None
    return Action.RESOLVE if current.last_alert_status is AlertStatus.RESOLVED else Action.REPEAT
