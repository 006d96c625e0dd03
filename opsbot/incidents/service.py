"""Services: the one place that applies decisions: state, outbox rows and audit, one transaction."""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from opsbot.audit import ACTOR, audit_incident
from opsbot.config import silence_from_row
from opsbot.core.accounts import Account
from opsbot.core.alert import Alert, AlertStatus, Severity
from opsbot.core.effects import Effect, effects_for
from opsbot.core.lifecycle import Action, Decision, IncidentSnapshot, decide_incident
from opsbot.core.policy import Policy
from opsbot.core.rules import Route, route_alert
from opsbot.core.silences import Silence, find_silence
from opsbot.db import store
from opsbot.db.models import AlertRow, AuditEntry, Incident
from opsbot.db.session import statement_engine, transaction
from opsbot.outbox.queue import outbox_rows, queue_effects
from opsbot.runtime import SilenceSource
from opsbot.telemetry import tracing

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
    fast = ingest_fast(
        factory, delivery=delivery, alerts=alerts, policy=policy, now=now, silences=silences
    )
    if fast is not None:
        return fast
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


def snapshot(row: Incident | Row[Any] | Any) -> IncidentSnapshot:
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
    if action is Action.RECORD:
        return _record_incident(session, alert, decision, route, account, now)
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


def _record_incident(
    session: Session,
    alert: Alert,
    decision: Decision,
    route: Route,
    account: Account | None,
    now: datetime,
) -> int:
    # A RECORD (core/lifecycle.py): a resolved incident, its card, and the review ticket it decided.
    values = _new_incident(alert, decision, route, account, now)
    values |= {"status": "resolved", "resolved_at": now}
    incident_id = store.insert_incident(session, values)
    audit_incident(session, "incident.recorded", incident_id, now, reason=decision.reason)
    log_lifecycle("recorded", incident_id, alert.fingerprint, decision.reason)
    effects = effects_for(decision, ticket=decision.record_ticket)
    queue_effects(session, incident_id, effects, now)
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


# The fast path (PostgreSQL; issue 14). The common deliveries -- a repeat of a firing alert on
# its active incident (the whole of a storm) and the first alert of a new fingerprint -- are
# one statement on an autocommit connection: one round trip, and the incident's row lock is held
# for that statement and its commit only, with no Python between. The core decides as ever, on
# the incident as this process last saw it (``Snapshots``); the statement carries the premise of
# that decision as its guard and writes nothing where the premise no longer holds, and then the
# delivery takes the full path. Resolves, silences, reopens, flapping, priority changes and
# several alerts in one delivery always take the full path; so does SQLite.

SNAPSHOTS_PER_PROCESS = 4096


class Snapshots:
    """The lifecycle facts this process last saw per fingerprint: a hint, guarded at every use."""

    def __init__(self, size: int = SNAPSHOTS_PER_PROCESS) -> None:
        self.size = size
        self._items: OrderedDict[str, IncidentSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, fingerprint: str) -> IncidentSnapshot | None:
        """Return the snapshot last seen for a fingerprint, or None."""
        with self._lock:
            found = self._items.get(fingerprint)
            if found is not None:
                self._items.move_to_end(fingerprint)
            return found

    def put(self, fingerprint: str, value: IncidentSnapshot | None) -> None:
        """Remember a fingerprint's latest incident (None forgets it)."""
        with self._lock:
            if value is None:
                self._items.pop(fingerprint, None)
                return
            self._items[fingerprint] = value
            self._items.move_to_end(fingerprint)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_snapshots: weakref.WeakKeyDictionary[Engine, Snapshots] = weakref.WeakKeyDictionary()
_snapshots_lock = threading.Lock()


def snapshots_for(engine: Engine) -> Snapshots:
    """Return this process's snapshots for a database."""
    with _snapshots_lock:
        found = _snapshots.get(engine)
        if found is None:
            found = _snapshots[engine] = Snapshots()
        return found


def fast_premise(current: IncidentSnapshot | None, decision: Decision) -> str | None:
    """Return "open" or "repeat" when one guarded statement applies the decision, else None."""
    if decision.action is Action.OPEN:
        return "open" if current is None else None
    plain = not (decision.priority_changed or decision.flapping or decision.flapping_started)
    if decision.action is Action.REPEAT and current is not None and plain:
        unchanged = decision.flips == current.flips
        return "repeat" if unchanged and current.last_alert_status is AlertStatus.FIRING else None
    return None


def ingest_fast(
    factory: sessionmaker[Session],
    *,
    delivery: DeliveryIn,
    alerts: Sequence[Alert],
    policy: Policy,
    now: datetime,
    silences: SilenceSource | None = None,
) -> IngestResult | None:
    """Apply a common delivery in one statement; return None when it needs the full path."""
    engine = factory.kw.get("bind")
    if len(alerts) != 1 or silences is None or not isinstance(engine, Engine):
        return None
    companion = statement_engine(engine)
    alert = alerts[0]
    if companion is None or alert.status is not AlertStatus.FIRING:
        return None
    snapshots = snapshots_for(engine)
    lazy = _LazySession(factory)
    try:
        active = policy.silences + tuple(silences(cast(Session, lazy), now))
    finally:
        lazy.close()
    account = policy.accounts.get(alert.account_id)
    route = route_alert(alert, policy.accounts, policy.rules, policy.priorities)
    current = snapshots.get(alert.fingerprint)
    decision = decide_incident(
        alert,
        current,
        route,
        silenced=find_silence(alert, account, route.environment, active, now) is not None,
        reopen_window=policy.reopen_window,
        flap=policy.flapping,
        now=now,
    )
    premise = fast_premise(current, decision)
    if premise is None:
        snapshots.put(alert.fingerprint, None)  # the full path changes it: read it afresh
        return None
    params = _fast_params(delivery, alert, decision, route, account, now)
    run = store.fast_open if premise == "open" else store.fast_repeat
    answer = _run_statement(companion, run, params)
    if answer is None:  # another process opened the same fingerprint at the same moment
        snapshots.put(alert.fingerprint, None)
        return None
    if not answer["premise"]:
        snapshots.put(alert.fingerprint, _seen(answer))
        return None
    if answer["delivery_id"] is None:
        return IngestResult(duplicate=True)
    snapshots.put(alert.fingerprint, snapshot(_Columns(answer)))
    if premise == "open":
        log_lifecycle("opened", answer["id"], alert.fingerprint, f"priority {decision.priority}")
    outcome = AlertOutcome(alert.fingerprint, decision.action.value, answer["id"])
    return IngestResult(duplicate=False, delivery_id=answer["delivery_id"], outcomes=(outcome,))


def _run_statement(
    engine: Engine, run: Callable[[Any, Mapping[str, Any]], dict[str, Any]], params: Any
) -> dict[str, Any] | None:
    # A whole statement either applied or did not, and a delivery is recorded once: running it
    # again on a fresh connection after the server dropped one is safe.
    for attempt in (1, 2):
        try:
            return run(engine, params)
        except IntegrityError as exc:
            if _is_incident_race(exc):
                return None
            raise
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == 2:
                raise
            log.info("the database dropped a connection; running the statement again")
    raise AssertionError("unreachable")


class _Columns:
    """Attribute access over an answer's columns, for ``snapshot``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values[name]


class _LazySession:
    """A session made on first use: the cached silences need one only to reload."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._factory()
        return getattr(self._session, name)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def _seen(answer: Mapping[str, Any]) -> IncidentSnapshot | None:
    seen = answer["seen"]
    if seen is None:
        return None
    for name in ("resolved_at", "last_alert_at"):  # JSON carries times as text
        seen[name] = datetime.fromisoformat(seen[name]) if seen[name] else None
    return snapshot(_Columns(seen))


def _fast_params(
    delivery: DeliveryIn,
    alert: Alert,
    decision: Decision,
    route: Route,
    account: Account | None,
    now: datetime,
) -> dict[str, Any]:
    values = _alert_values(alert, 0, None, decision, None, now)
    params: dict[str, Any] = {
        **delivery.__dict__,
        "now": now,
        "fingerprint": alert.fingerprint,
        "alert_status": values["status"],
        "severity": values["severity"],
        "source": values["source"],
        "title": values["title"],
        "alert_summary": values["summary"],
        "account_id": values["account_id"],
        "region": values["region"],
        "resource": values["resource"],
        "labels": json.dumps(values["labels"]),
        "decision": values["decision"],
        "occurred_at": values["occurred_at"],
        "outbox": json.dumps(_outbox_rows(effects_for(decision, ticket=route.ticket), now)),
        "trace_parent": tracing.current_trace_parent(),
    }
    if decision.action is Action.OPEN:
        incident = _new_incident(alert, decision, route, account, now)
        params |= {f"i_{key}": value for key, value in incident.items()}
        params |= {
            "i_flips": json.dumps(incident["flips"]),
            "i_route": json.dumps(incident["route"]),
        }
        opened = {"actor": ACTOR, "action": "incident.opened"}
        params["audit"] = json.dumps([{**opened, "detail": {"priority": decision.priority}}])
        return params
    assert decision.incident_id is not None
    return params | {
        "incident_id": decision.incident_id,
        "priority": decision.priority,
        "flips": json.dumps([t.isoformat() for t in decision.flips]),
        "summary": alert.summary or alert.title,
        "last_alert_at": alert.occurred_at or now,
        "audit": "[]",  # a plain repeat changes nothing worth an entry (see _audit_decision)
    }


def _outbox_rows(effects: Sequence[Effect], now: datetime) -> list[dict[str, Any]]:
    # The coalesce key ends with the incident id, which the statement appends.
    return [
        {
            "target": effect.target,
            "kind": effect.kind,
            "payload": effect.payload,
            "coalesce_key": f"{effect.target}:{effect.kind}:" if effect.coalesce else None,
            "due_at": (now + effect.delay).isoformat(),
        }
        for effect in effects
    ]


# Batches (SQS; issue 14): up to ten deliveries in one transaction. The deliveries are one
# multi-row insert, the fingerprints' newest incidents are locked by one statement, the core
# decides alert after alert on snapshots it carries forward, and the outcome is written with
# one statement per table (one update per incident touched). A batch whose alerts need what
# this does not cover (a RECORD, several alerts of one delivery for a new fingerprint are
# fine) applies its alerts one by one through the full path, in the same transaction.

BATCHED_ACTIONS = frozenset(
    {Action.OPEN, Action.REPEAT, Action.REOPEN, Action.RESOLVE, Action.HOLD}
    | {Action.SILENCED, Action.IGNORE}
)


@dataclass
class _Planned:
    """One alert's decision, and where its incident is (an id, or the index of a new one)."""

    alert: Alert
    delivery_id: int
    decision: Decision
    route: Route
    silence: Silence | None
    incident: int | None = None
    new: int | None = None


@dataclass
class _Batch:
    """What a batch writes, gathered before any of it is written."""

    planned: list[_Planned] = field(default_factory=list)
    new_incidents: list[dict[str, Any]] = field(default_factory=list)


def ingest_batch(
    factory: sessionmaker[Session],
    items: Sequence[tuple[DeliveryIn, Sequence[Alert]]],
    *,
    policy: Policy,
    now: datetime,
    silences: SilenceSource | None = None,
) -> list[IngestResult]:
    """Record a batch of deliveries and fold their alerts into incidents, in one transaction."""
    if not items:
        return []
    return in_transaction(
        factory,
        lambda session: record_batch(session, items, policy=policy, now=now, silences=silences),
    )


def record_batch(
    session: Session,
    items: Sequence[tuple[DeliveryIn, Sequence[Alert]]],
    *,
    policy: Policy,
    now: datetime,
    silences: SilenceSource | None = None,
) -> list[IngestResult]:
    """Record deliveries (duplicates change nothing) and apply their alerts, in the session."""
    rows = [{**d.__dict__, "received_at": now, "outcome": "processed"} for d, _ in items]
    ids = store.insert_deliveries(session, rows)
    fresh = [(i, alerts) for i, (_, alerts) in zip(ids, items, strict=True) if i is not None]
    active: tuple[Silence, ...] = ()
    if any(alerts for _, alerts in fresh):
        active = policy.silences + tuple((silences or stored_silences)(session, now))
    fingerprints = [a.fingerprint for _, alerts in fresh for a in alerts]
    current: dict[str, IncidentSnapshot | None] = {
        fp: snapshot(row) for fp, row in store.lock_latest_incidents(session, fingerprints).items()
    }
    batch = _plan(fresh, current, policy=policy, silences=active, now=now)
    if batch is None:
        outcomes = {
            delivery_id: tuple(
                apply_alert(session, a, delivery_id=delivery_id, policy=policy, silences=active,
                            now=now)
                for a in alerts
            )
            for delivery_id, alerts in fresh
        }  # fmt: skip
    else:
        outcomes = _write_batch(session, batch, policy, now)
    return [
        IngestResult(duplicate=True)
        if i is None
        else IngestResult(duplicate=False, delivery_id=i, outcomes=outcomes.get(i, ()))
        for i in ids
    ]


def _plan(
    fresh: Sequence[tuple[int, Sequence[Alert]]],
    current: dict[str, IncidentSnapshot | None],
    *,
    policy: Policy,
    silences: Sequence[Silence],
    now: datetime,
) -> _Batch | None:
    """Decide every alert in order on snapshots carried forward; None if one is not batched."""
    batch = _Batch()
    new_of: dict[str, int] = {}  # fingerprint -> index of its new incident in this batch
    for delivery_id, alerts in fresh:
        for alert in alerts:
            account = policy.accounts.get(alert.account_id)
            route = route_alert(alert, policy.accounts, policy.rules, policy.priorities)
            silence = find_silence(alert, account, route.environment, silences, now)
            before = current.get(alert.fingerprint)
            decision = decide_incident(
                alert,
                before,
                route,
                silenced=silence is not None,
                reopen_window=policy.reopen_window,
                flap=policy.flapping,
                now=now,
            )
            if decision.action not in BATCHED_ACTIONS:
                return None
            item = _Planned(alert, delivery_id, decision, route, silence)
            batch.planned.append(item)
            if decision.action is Action.OPEN:
                new_of[alert.fingerprint] = len(batch.new_incidents)
                batch.new_incidents.append(_new_incident(alert, decision, route, account, now))
            _locate(item, before, new_of)
            current[alert.fingerprint] = _carried(before, alert, decision, item, now)
    return batch


def _locate(item: _Planned, before: IncidentSnapshot | None, new_of: dict[str, int]) -> None:
    action = item.decision.action
    if action is Action.SILENCED:
        return  # a silenced alert counts towards no incident (as in apply_alert)
    if action is Action.OPEN or (before is not None and before.id < 0):
        item.new = new_of[item.alert.fingerprint]  # opened earlier in this batch
    else:
        item.incident = item.decision.incident_id


def _carried(
    before: IncidentSnapshot | None,
    alert: Alert,
    decision: Decision,
    item: _Planned,
    now: datetime,
) -> IncidentSnapshot | None:
    """Return the snapshot after the decision (a new incident's id is minus its index + 1)."""
    action = decision.action
    if action in (Action.SILENCED, Action.IGNORE):
        return before
    seen: dict[str, Any] = {
        "flapping": decision.flapping,
        "flips": decision.flips,
        "last_alert_status": alert.status,
        "last_alert_at": alert.occurred_at or now,
    }
    if action is Action.OPEN:
        assert item.new is not None
        return IncidentSnapshot(
            id=-(item.new + 1),
            status="open",
            severity=alert.severity,
            priority=decision.priority,
            resolved_at=None,
            **seen,
        )
    assert before is not None
    changed: dict[str, Any] = {}
    if action in (Action.REPEAT, Action.REOPEN):
        changed |= {"priority": decision.priority, "severity": decision.severity}
    if action is Action.REOPEN:
        changed |= {"status": "open", "resolved_at": None}
    if action is Action.RESOLVE:
        changed |= {"status": "resolved", "resolved_at": now}
    return replace(before, **seen, **changed)


def _write_batch(
    session: Session, batch: _Batch, policy: Policy, now: datetime
) -> dict[int, tuple[AlertOutcome, ...]]:
    """Write what the batch decided: one statement per table, one update per incident."""
    new_ids = store.insert_incidents(session, batch.new_incidents)
    alerts: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    updates: dict[int, tuple[dict[str, Any], int]] = {}
    outcomes: dict[int, list[AlertOutcome]] = {}
    for item in batch.planned:
        incident_id = new_ids[item.new] if item.new is not None else item.incident
        action = item.decision.action
        if action is Action.OPEN:
            assert incident_id is not None
            entries.append(
                _entry("incident.opened", incident_id, now, priority=item.decision.priority)
            )
            log_lifecycle(
                "opened", incident_id, item.alert.fingerprint, f"priority {item.decision.priority}"
            )
        elif action not in (Action.SILENCED, Action.IGNORE):
            assert incident_id is not None
            decision = replace(item.decision, incident_id=incident_id)
            values, counted = updates.get(incident_id, ({}, 0))
            values |= _update_values(item.alert, decision, now)
            updates[incident_id] = (values, counted + (action in (Action.REPEAT, Action.REOPEN)))
            entries += _decision_entries(decision, incident_id, now)
            _log_decision(decision, incident_id, item.alert.fingerprint)
        if action not in (Action.SILENCED, Action.IGNORE):
            assert incident_id is not None
            effects = effects_for(item.decision, ticket=item.route.ticket)
            outbox += outbox_rows(incident_id, effects, now)
        alerts.append(_alert_values(item.alert, item.delivery_id, incident_id, item.decision,
                                    item.silence, now))  # fmt: skip
        outcome = AlertOutcome(item.alert.fingerprint, action.value, incident_id)
        outcomes.setdefault(item.delivery_id, []).append(outcome)
    for incident_id, (values, counted) in sorted(updates.items()):
        store.add_to_incident(session, incident_id, values, count=counted)
    store.insert_rows(session, AlertRow, alerts)
    store.insert_outbox(session, _coalesced(outbox))
    store.insert_rows(session, AuditEntry, entries)
    return {key: tuple(value) for key, value in outcomes.items()}


def _update_values(alert: Alert, decision: Decision, now: datetime) -> dict[str, Any]:
    """Return the columns a decision sets on its incident (as ``_update_incident`` writes)."""
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
    return values


def _entry(action: str, incident_id: int, now: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "at": now,
        "actor": ACTOR,
        "action": action,
        "subject_type": "incident",
        "subject_id": str(incident_id),
        "detail": detail,
    }


def _decision_entries(decision: Decision, incident_id: int, now: datetime) -> list[dict[str, Any]]:
    """Return the audit entries ``_audit_decision`` writes for a decision."""
    entries = []
    if decision.action is Action.RESOLVE:
        entries.append(_entry("incident.resolved", incident_id, now, reason=decision.reason))
    if decision.action is Action.REOPEN:
        entries.append(_entry("incident.reopened", incident_id, now, reason=decision.reason))
    if decision.priority_changed:
        change = {"from": decision.previous_priority, "to": decision.priority}
        entries.append(_entry("incident.priority_changed", incident_id, now, **change))
    if decision.flapping_started:
        flips = len(decision.flips)
        entries.append(_entry("incident.flapping", incident_id, now, flips=flips))
    return entries


def _coalesced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge rows with one coalesce key into one that runs no later than any of them."""
    merged: dict[str, dict[str, Any]] = {}
    plain = []
    for row in rows:
        key = row["coalesce_key"]
        if key is None:
            plain.append(row)
        elif key not in merged or row["due_at"] < merged[key]["due_at"]:
            merged[key] = row
    return plain + list(merged.values())
