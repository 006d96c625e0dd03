"""Escalation: remind about unacknowledged incidents, then escalate them.

CloudWatch notifies once per state change, so an alarm that keeps firing is
silent after its first notification: opsbot reminds. Per priority, while an
incident is open (not acknowledged), and its alarm still firing, a reminder
goes to the card's thread every ``remind_every``, mentioning the on-call user
group; once the incident is ``escalate_after`` old it is escalated once: its
priority goes up one step and it is announced in a second channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from opsbot.core.rules import PRIORITIES


@dataclass(frozen=True)
class Step:
    """The escalation policy of one priority."""

    remind_every: timedelta | None = None
    escalate_after: timedelta | None = None
    mention: str | None = None  # a user-group id (S…) to mention
    channel: str | None = None  # where escalations are announced


@dataclass(frozen=True)
class EscalationPolicy:
    """The escalation policy per priority (P1…P5); priorities not named are never escalated."""

    steps: dict[str, Step]


@dataclass(frozen=True)
class Facts:
    """What escalation needs to know about an incident and its reminders so far."""

    status: str
    priority: str
    firing: bool
    first_seen: datetime
    last_reminded_at: datetime | None
    escalated: bool


class Kind(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Due:
    """An escalation step that is due: remind, or escalate to ``priority``."""

    kind: Kind
    step: Step
    priority: str


def bump(priority: str) -> str:
    """Return the next more urgent priority (P1 stays P1)."""
    return PRIORITIES[max(0, PRIORITIES.index(priority) - 1)]


def decide(facts: Facts, policy: EscalationPolicy, now: datetime) -> Due | None:
    """Return the escalation step due for an incident at ``now``, or None."""
    step = policy.steps.get(facts.priority)
    if step is None or facts.status != "open" or not facts.firing:
        return None
    age = now - facts.first_seen
    if step.escalate_after is not None and not facts.escalated and age >= step.escalate_after:
        return Due(Kind.ESCALATE, step, bump(facts.priority))
    if step.remind_every is not None:
        since = facts.last_reminded_at or facts.first_seen
        if now - since >= step.remind_every:
            return Due(Kind.REMIND, step, facts.priority)
    return None


def mention(group: str | None) -> str:
    """Return the Slack mention of a user group, or nothing."""
    return f"<!subteam^{group}> " if group else ""


def reminder_text(incident_id: int, priority: str, age: timedelta, step: Step) -> str:
    """Return the reminder posted in the card's thread."""
    minutes = int(age.total_seconds() // 60)
    return (
        f"{mention(step.mention)}Reminder: {priority} incident {incident_id} is still firing "
        f"and unacknowledged after {minutes} min."
    )


def escalation_text(incident_id: int, title: str, old: str, new: str, step: Step) -> str:
    """Return the escalation notice (thread and second channel)."""
    change = f"priority {old} → {new}" if old != new else f"priority stays {new}"
    return (
        f"{mention(step.mention)}Escalated: incident {incident_id} ({title}) is unacknowledged; "
        f"{change}."
    )
