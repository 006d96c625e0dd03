"""Escalation: the YAML ``escalation:`` section and the scheduled job that applies it.

```yaml
escalation:
  mention: S0ONCALL            # on-call user group, mentioned in reminders
  channel: "#ops-escalations"  # where escalations are announced
  P1: {remind_every: 15m, escalate_after: 30m}
  P2: {remind_every: 1h, escalate_after: 4h, mention: S0TEAM2}
```

The job runs on one replica (advisory lock) and records each reminder and
escalation in ``incident_escalations`` in the transaction that queues its
outbox rows, so a reminder is sent once however many processes run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.audit import audit
from opsbot.config.yamldoc import Document, KeyPath, document_for, keys
from opsbot.core.durations import parse_duration
from opsbot.core.effects import Effect
from opsbot.core.escalation import (
    Due,
    EscalationPolicy,
    Facts,
    Kind,
    Step,
    decide,
    escalation_text,
    reminder_text,
)
from opsbot.core.rules import PRIORITIES
from opsbot.core.slacktext import escape
from opsbot.db.models import Incident, IncidentEscalation
from opsbot.outbox.queue import queue_effects

log = logging.getLogger(__name__)

STEP_KEYS = ("remind_every", "escalate_after", "mention", "channel")
DEFAULT_KEYS = ("mention", "channel")


def parse_escalation(extra: Mapping[str, Any]) -> EscalationPolicy:
    """Return the escalation policy of the YAML's ``escalation`` key; ConfigError lists problems."""
    doc = document_for(extra)
    data = extra.get("escalation")
    if data is None:
        return EscalationPolicy({})
    if not isinstance(data, dict):
        doc.error(("escalation",), f"expected a mapping, got {type(data).__name__}")
        doc.check()
    defaults = {key: data[key] for key in DEFAULT_KEYS if key in data}
    for key in DEFAULT_KEYS:
        _text(doc, ("escalation", key), defaults.get(key))
    keys(doc, data, ("escalation",), DEFAULT_KEYS + PRIORITIES, ())
    steps: dict[str, Step] = {}
    for key, value in data.items():
        if key in DEFAULT_KEYS or key not in PRIORITIES:
            continue
        step = _step(doc, key, value, defaults)
        if step is not None:
            steps[key] = step
    doc.check()
    return EscalationPolicy(steps)


def _step(doc: Document, priority: str, value: Any, defaults: dict[str, Any]) -> Step | None:
    path: KeyPath = ("escalation", priority)
    if not isinstance(value, dict):
        doc.error(path, "expected a mapping like {remind_every: 15m, escalate_after: 1h}")
        return None
    keys(doc, value, path, STEP_KEYS, ())
    durations = {key: _duration(doc, (*path, key), value.get(key)) for key in STEP_KEYS[:2]}
    texts = {
        key: _text(doc, (*path, key), value.get(key, defaults.get(key))) for key in DEFAULT_KEYS
    }
    if not any(durations.values()) and not doc.found:
        doc.error(path, "give remind_every, escalate_after or both")
    return Step(durations["remind_every"], durations["escalate_after"], **texts)


def _duration(doc: Document, path: KeyPath, value: Any) -> Any:
    if value is None:
        return None
    try:
        length = parse_duration(str(value))
    except ValueError as exc:
        doc.error(path, str(exc))
        return None
    if not length:
        doc.error(path, "must be longer than 0s")
        return None
    return length


def _text(doc: Document, path: KeyPath, value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        doc.error(path, f"expected text, got {value!r}")
        return None
    return value


def escalate_incidents(policy: EscalationPolicy) -> Callable[[Session, datetime], int]:
    """Return the job that reminds about and escalates unacknowledged incidents."""

    def job(session: Session, now: datetime) -> int:
        if not policy.steps:
            return 0
        rows = session.execute(
            select(Incident, IncidentEscalation)
            .outerjoin(IncidentEscalation, IncidentEscalation.incident_id == Incident.id)
            .where(Incident.status == "open", Incident.priority.in_(tuple(policy.steps)))
            .with_for_update(of=Incident, skip_locked=True)
        ).all()
        done = 0
        for incident, state in rows:
            due = decide(_facts(incident, state), policy, now)
            if due is not None:
                _apply(session, incident, state, due, now)
                done += 1
        return done

    return job


def _facts(incident: Incident, state: IncidentEscalation | None) -> Facts:
    return Facts(
        status=incident.status,
        priority=incident.priority,
        firing=incident.last_alert_status == "firing",
        first_seen=incident.first_seen,
        last_reminded_at=state.last_reminded_at if state else None,
        escalated=bool(state and state.escalated_at),
    )


def _apply(
    session: Session,
    incident: Incident,
    state: IncidentEscalation | None,
    due: Due,
    now: datetime,
) -> None:
    if state is None:
        state = IncidentEscalation(incident_id=incident.id, reminders=0)
        session.add(state)
    state.last_reminded_at = now
    if due.kind is Kind.REMIND:
        state.reminders += 1
        text = reminder_text(incident.id, incident.priority, now - incident.first_seen, due.step)
        effects = [Effect("slack", "thread", payload={"text": text})]
        audit(
            session,
            actor="opsbot",
            action="incident.reminded",
            subject=("incident", str(incident.id)),
            now=now,
        )
    else:
        state.escalated_at = now
        effects = _escalate(session, incident, due, now)
    queue_effects(session, incident.id, effects, now)


def _escalate(session: Session, incident: Incident, due: Due, now: datetime) -> list[Effect]:
    old = incident.priority
    incident.priority = due.priority
    # The title is alert text: escaped, so the notice mentions only the configured group.
    text = escalation_text(incident.id, escape(incident.title), old, due.priority, due.step)
    effects = [
        Effect("slack", "update", coalesce=True),
        Effect("slack", "thread", payload={"text": text}),
    ]
    channel = due.step.channel
    if channel:
        effects.append(Effect("slack", "notify", payload={"channel": channel, "text": text}))
    if old != due.priority and (incident.route or {}).get("ticket", True):
        effects.append(Effect("jira", "priority", payload={"from": old, "to": due.priority}))
    audit(
        session,
        actor="opsbot",
        action="incident.escalated",
        subject=("incident", str(incident.id)),
        now=now,
        detail={"from": old, "to": due.priority, "channel": channel},
    )
    return effects
