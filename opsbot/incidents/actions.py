"""Operator actions on incidents and silences, from Slack, Jira or the API.

Each function runs inside the caller's transaction, changes state, queues the
outbox effects (card update, thread note, ticket comment) and appends the
audit entry naming who did it. Authorisation is the caller's job (Slack roles,
API token, Jira webhook secret); these functions trust the ``actor`` given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from opsbot.audit import audit
from opsbot.config import match_from_mapping
from opsbot.core.accounts import AccountMap
from opsbot.core.effects import effects_for_operator
from opsbot.core.slacktext import escape
from opsbot.db import store
from opsbot.db.models import Incident, SilenceRow
from opsbot.outbox.queue import queue_effects


@dataclass(frozen=True)
class Outcome:
    """What an action did: ``changed`` is False when there was nothing to do."""

    changed: bool
    message: str
    incident: Incident | None = None


class ActionError(Exception):
    """The action cannot apply (unknown incident, bad matcher, ...); the message says why."""


def _incident(session: Session, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id, with_for_update=True)
    if row is None:
        raise ActionError(f"There is no incident {incident_id}.")
    return row


def _ticket(row: Incident) -> bool:
    return bool((row.route or {}).get("ticket", True)) or row.jira_key is not None


def acknowledge(session: Session, incident_id: int, *, actor: str, now: datetime) -> Outcome:
    """Acknowledge an open incident: it stays active, escalation stops."""
    row = _incident(session, incident_id)
    if row.status != "open":
        return Outcome(
            False, f"Incident {incident_id} is {row.status}; nothing to acknowledge.", row
        )
    row.status, row.acknowledged_by, row.acknowledged_at = "acknowledged", actor, now
    _apply(session, row, "acknowledge", actor=actor, now=now)
    return Outcome(True, f"Incident {incident_id} acknowledged.", row)


def resolve(
    session: Session,
    incident_id: int,
    *,
    actor: str,
    now: datetime,
    note: str = "",
    from_jira: bool = False,
) -> Outcome:
    """Resolve an active incident by hand; ``from_jira`` skips transitioning the ticket back."""
    row = _incident(session, incident_id)
    if row.status == "resolved":
        return Outcome(False, f"Incident {incident_id} is already resolved.", row)
    row.status, row.resolved_at, row.flapping = "resolved", now, False
    ticket = _ticket(row) and not from_jira
    _apply(session, row, "resolve", actor=actor, now=now, note=note, ticket=ticket)
    return Outcome(True, f"Incident {incident_id} resolved.", row)


def assign(
    session: Session,
    incident_id: int,
    *,
    owner: str,
    actor: str,
    now: datetime,
    notify: bool = True,
) -> Outcome:
    """Record the owner of an incident; ``notify`` False when the change came from Jira."""
    row = _incident(session, incident_id)
    if row.owner == owner:
        return Outcome(False, f"Incident {incident_id} is already {owner}'s.", row)
    row.owner = owner
    _apply(session, row, "assign", actor=actor, now=now, note=owner, ticket=notify and _ticket(row))
    return Outcome(True, f"Incident {incident_id} assigned to {owner}.", row)


def comment(session: Session, incident_id: int, *, text: str, actor: str, now: datetime) -> Outcome:
    """Add a note to an incident: a line in its Slack thread and a comment on its ticket."""
    row = _incident(session, incident_id)
    _apply(session, row, "comment", actor=actor, now=now, note=text)
    return Outcome(True, f"Comment added to incident {incident_id}.", row)


def _apply(
    session: Session,
    row: Incident,
    action: str,
    *,
    actor: str,
    now: datetime,
    note: str = "",
    ticket: bool | None = None,
) -> None:
    session.flush()
    ticketed = _ticket(row) if ticket is None else ticket
    # The Slack thread note shows the names and the note as written (no mention, no link);
    # the Jira comment keeps them as they are.
    slack = effects_for_operator(action, actor=escape(actor), note=escape(note), ticket=False)
    jira = effects_for_operator(action, actor=actor, note=note, ticket=ticketed)
    effects = slack + [effect for effect in jira if effect.target != "slack"]
    queue_effects(session, row.id, effects, now)
    detail: dict[str, Any] = {"note": note} if note else {}
    audit(
        session,
        actor=actor,
        action=f"incident.{action}",
        subject=("incident", str(row.id)),
        now=now,
        detail=detail,
    )


def create_silence(
    session: Session,
    matcher: dict[str, Any],
    *,
    ends_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
    starts_at: datetime | None = None,
    author: str | None = None,
    accounts: AccountMap | None = None,
) -> int:
    """Store a silence after checking its matcher; return its id.

    ``author`` names the person behind a machine ``actor`` (an API token) as the
    silence's creator; ``accounts`` checks an ``account`` matcher against the map.
    """
    try:
        match_from_mapping(matcher, accounts)
    except Exception as exc:
        raise ActionError(f"Bad silence matcher: {exc}") from exc
    if ends_at <= now:
        raise ActionError("A silence must end in the future.")
    silence_id = store.insert_silence(
        session,
        {
            "matcher": matcher,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "reason": reason,
            "created_by": author or actor,
            "created_at": now,
        },
    )
    detail = {"matcher": matcher, "ends_at": ends_at.isoformat(), "reason": reason}
    audit(
        session,
        actor=actor,
        action="silence.created",
        subject=("silence", str(silence_id)),
        now=now,
        detail={**detail, "author": author} if author else detail,
    )
    return silence_id


def end_silence(session: Session, silence_id: int, *, actor: str, now: datetime) -> Outcome:
    """End a silence now (it is kept, with its history)."""
    row = session.get(SilenceRow, silence_id, with_for_update=True)
    if row is None:
        raise ActionError(f"There is no silence {silence_id}.")
    if row.ends_at <= now:
        return Outcome(False, f"Silence {silence_id} has already ended.")
    row.ends_at = now
    audit(
        session, actor=actor, action="silence.ended", subject=("silence", str(silence_id)), now=now
    )
    return Outcome(True, f"Silence {silence_id} ended.")
