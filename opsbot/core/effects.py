"""The outbound work each lifecycle decision causes, as outbox effects.

Effects are written in the same transaction as the state change. A
*coalesced* effect has a key: while a row with that key is still pending, a
new one is not written, so a storm of repeats is one card update and one
digest comment per interval. Senders render the incident as it is when they
run, so a coalesced row never carries stale content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opsbot.core.lifecycle import Action, Decision

SLACK_UPDATE_INTERVAL = timedelta(seconds=10)
JIRA_DIGEST_INTERVAL = timedelta(minutes=15)


@dataclass(frozen=True)
class Effect:
    """One call to the outside world: ``target`` (jira, slack, ssm) and what to do there."""

    target: str
    kind: str
    coalesce: bool = False
    delay: timedelta = timedelta(0)
    payload: dict[str, Any] = field(default_factory=dict)


def effects_for(
    decision: Decision,
    *,
    ticket: bool,
    slack_interval: timedelta = SLACK_UPDATE_INTERVAL,
    jira_interval: timedelta = JIRA_DIGEST_INTERVAL,
) -> list[Effect]:
    """Return the outbox effects that a decision causes; ``ticket`` is the route's choice."""
    effects = _slack_effects(decision, slack_interval)
    if ticket:
        effects += _jira_effects(decision, jira_interval)
    return effects


def _slack_effects(decision: Decision, interval: timedelta) -> list[Effect]:
    action = decision.action
    if action in (Action.OPEN, Action.RECORD):
        return [Effect("slack", "post")]
    if action not in (Action.REPEAT, Action.RESOLVE, Action.REOPEN, Action.HOLD):
        return []
    notable = action in (Action.RESOLVE, Action.REOPEN) or decision.priority_changed
    effects = [
        Effect("slack", "update", coalesce=True, delay=timedelta(0) if notable else interval)
    ]
    for note in _notes(decision):
        effects.append(Effect("slack", "thread", payload={"text": note}))
    return effects


def _jira_effects(decision: Decision, interval: timedelta) -> list[Effect]:
    action = decision.action
    if action in (Action.OPEN, Action.RECORD):
        return [Effect("jira", "create")]
    effects: list[Effect] = []
    if action is Action.RESOLVE:
        effects.append(Effect("jira", "resolve", payload={"reason": decision.reason}))
    elif action is Action.REOPEN:
        effects.append(Effect("jira", "reopen", payload={"reason": decision.reason}))
    elif action is Action.REPEAT:
        effects.append(Effect("jira", "digest", coalesce=True, delay=interval))
    if decision.priority_changed and action in (Action.REPEAT, Action.REOPEN):
        effects.append(Effect("jira", "priority", payload=_priority_payload(decision)))
    if decision.flapping_started:
        effects.append(Effect("jira", "comment", payload={"text": _FLAPPING_NOTE}))
    return effects


_FLAPPING_NOTE = "Flapping: the alarm keeps changing state; resolves are held until it settles."


def _priority_payload(decision: Decision) -> dict[str, Any]:
    return {"from": decision.previous_priority, "to": decision.priority}


def _notes(decision: Decision) -> list[str]:
    notes = []
    if decision.action is Action.REOPEN:
        notes.append("Reopened: the alarm fired again within the reopen window.")
    if decision.action is Action.RESOLVE:
        notes.append(f"Resolved: {decision.reason}.")
    if decision.priority_changed:
        notes.append(f"Priority changed {decision.previous_priority} → {decision.priority}.")
    if decision.flapping_started:
        notes.append(_FLAPPING_NOTE)
    return notes


OPERATOR_NOTES = {
    "acknowledge": "Acknowledged by {actor}.",
    "resolve": "Resolved by {actor}.",
    "assign": "Assigned to {note} by {actor}.",
    "comment": "{actor}: {note}",
}


def effects_for_operator(action: str, *, actor: str, note: str = "", ticket: bool) -> list[Effect]:
    """Return the effects of an operator's action: card update, thread note, ticket comment."""
    text = OPERATOR_NOTES[action].format(actor=actor, note=note)
    if note and action in ("acknowledge", "resolve"):
        text = f"{text} {note}"
    effects = [
        Effect("slack", "update", coalesce=True),
        Effect("slack", "thread", payload={"text": text}),
    ]
    if ticket:
        kind = "resolve" if action == "resolve" else "comment"
        effects.append(Effect("jira", kind, payload={"text": text, "reason": text}))
    return effects
