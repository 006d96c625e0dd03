"""Approval requests: open, decide, close and expire; every step audited, messages queued.

Each function runs in the caller's transaction and trusts the ``actor`` given
(Slack roles authorise who may decide at all); the policy of who may decide
*this* request (not the requester in prod) is enforced here, for buttons and
``/ops approve|deny`` alike. The request's Slack message is one outbox row of
target ``slack`` and kind ``approval`` (coalesced per request): the sender
posts it the first time and updates it in place afterwards, from the row's
state at that moment. A CodePipeline decision queues one ``codepipeline``
row (``opsbot.approvals.pipelines`` calls ``PutApprovalResult``). The
consequence of a decision on a runbook run is applied by the runbook service,
which calls ``decide`` first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.audit import ACTOR, audit
from opsbot.core import approvals as core
from opsbot.core.effects import Effect
from opsbot.db import store
from opsbot.db.models import Approval, Incident
from opsbot.incidents import actions
from opsbot.outbox.queue import queue_effects

log = logging.getLogger(__name__)

TERMINAL = ("approved", "denied", "expired", "closed")
ACTOR_LIMIT = 128  # approvals.requester and .decider, like audit_log.actor


class ApprovalError(Exception):
    """The request cannot be decided or changed; the message says why."""


class ApprovalRefused(ApprovalError):
    """The policy refused a decision; ``audit_entries`` must outlive a rolled-back transaction."""

    def __init__(self, message: str, audit_entries: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.audit_entries = audit_entries


@dataclass(frozen=True)
class Ask:
    """What needs approving, where, asked by whom, at which level, until when."""

    kind: str
    key: str  # identifies what is approved: one request per key
    what: str
    requester: str
    level: str
    environment: str
    expires_at: datetime
    account_id: str = ""
    region: str = ""
    incident_id: int | None = None
    run_id: int | None = None
    channel: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def open_request(session: Session, ask: Ask, now: datetime) -> Approval:
    """Store a pending request and queue its Slack message; a known key returns the stored one."""
    found = session.execute(select(Approval).where(Approval.key == ask.key)).scalar_one_or_none()
    if found is not None:
        return found
    row = Approval(
        kind=ask.kind, key=ask.key, state="pending", level=ask.level, what=ask.what,
        account_id=ask.account_id, region=ask.region, environment=ask.environment,
        requester=fit(ask.requester, ACTOR_LIMIT), reason="", incident_id=ask.incident_id,
        run_id=ask.run_id,
        details=dict(ask.details), channel=ask.channel, created_at=now, updated_at=now,
        expires_at=ask.expires_at,
    )  # fmt: skip
    session.add(row)
    session.flush()
    _audit(session, row, "approval.requested", ask.requester, now, what=ask.what, level=ask.level)
    queue_message(session, row, now)
    _ticket_note(session, row, f"Approval A{row.id} requested: {ask.what} ({_where(row)}).", now)
    return row


def get(session: Session, approval_id: int) -> Approval:
    """Return a request locked for update; raise ApprovalError if there is none."""
    row = session.get(Approval, approval_id, with_for_update=True)
    if row is None:
        raise ApprovalError(f"There is no approval A{approval_id}.")
    return row


def for_run(session: Session, run_id: int) -> Approval | None:
    """Return the request of a runbook run, or None (a run that needed no approval)."""
    stmt = select(Approval).where(Approval.run_id == run_id).order_by(Approval.id.desc()).limit(1)
    return session.execute(stmt).scalar_one_or_none()


def decide(
    session: Session,
    approval_id: int,
    *,
    actor: str,
    verdict: str,
    now: datetime,
    reason: str = "",
) -> Approval:
    """Approve or deny a pending request; a refused decision is audited and raises."""
    row = get(session, approval_id)
    try:
        core.check_decision(row.state, row.level, row.requester, actor, verdict)
    except core.Refusal as exc:
        entry = _entry(row, "approval.refused", actor, now, verdict=verdict, reason=str(exc))
        audit(session, **entry)
        log.info("approval A%d: %s refused for %s: %s", row.id, verdict, actor, exc)
        raise ApprovalRefused(f"Approval A{row.id}: {exc}.", [entry]) from None
    row.state, row.decider, row.reason = core.outcome(verdict), actor, reason
    row.decided_at = row.updated_at = now
    _audit(session, row, f"approval.{row.state}", actor, now, reason=reason)
    queue_message(session, row, now)
    if row.kind == "codepipeline":
        _queue_result(session, row, now)
    why = f": {reason}" if reason else ""
    _ticket_note(session, row, f"Approval A{row.id} {row.state} by {actor}{why}. {row.what}", now)
    return row


def close(
    session: Session, row: Approval, state: str, reason: str, now: datetime, *, actor: str = ACTOR
) -> bool:
    """End a pending request as expired or closed (decided elsewhere); False if it had ended."""
    if row.state != "pending":
        return False
    row.state, row.reason, row.decided_at, row.updated_at = state, reason, now, now
    _audit(session, row, f"approval.{state}", actor, now, reason=reason)
    queue_message(session, row, now)
    _ticket_note(session, row, f"Approval A{row.id} {state}: {reason}. {row.what}", now)
    settle_incident(session, row, now)
    return True


def expire_due(session: Session, now: datetime) -> int:
    """Expire every pending request whose time is up; return how many."""
    rows = session.execute(
        select(Approval)
        .where(Approval.state == "pending", Approval.expires_at <= now)
        .order_by(Approval.id)
        .with_for_update(skip_locked=True)
    ).scalars()
    return sum(close(session, row, "expired", "no decision in time", now) for row in list(rows))


def result_sent(session: Session, row: Approval, now: datetime) -> None:
    """Record that CodePipeline took the decision, and settle the approval's incident."""
    row.details = {**row.details, "result_sent_at": now.isoformat()}
    row.updated_at = now
    _audit(session, row, "approval.result_sent", ACTOR, now, state=row.state)
    settle_incident(session, row, now)


def result_refused(session: Session, row: Approval, reason: str, now: datetime) -> None:
    """Record that CodePipeline refused the decision (token expired or decided elsewhere)."""
    row.details = {**row.details, "result_refused": reason}
    row.state, row.updated_at = "closed", now
    row.reason = f"{reason}; the decision by {row.decider} did not apply" if row.decider else reason
    _audit(session, row, "approval.closed", ACTOR, now, reason=row.reason)
    queue_message(session, row, now)
    _ticket_note(session, row, f"Approval A{row.id} closed: {row.reason}.", now)
    settle_incident(session, row, now)


def settle_incident(session: Session, row: Approval, now: datetime) -> None:
    """Resolve the incident a CodePipeline request raised, once the request has ended."""
    if row.kind != "codepipeline" or row.incident_id is None:
        return
    note = f"Approval A{row.id} {row.state}" + (f" by {row.decider}" if row.decider else "")
    actions.resolve(session, row.incident_id, actor=ACTOR, now=now, note=note)


def queue_message(session: Session, row: Approval, now: datetime) -> None:
    """Queue the post or in-place update of the request's Slack message (one pending row)."""
    store.insert_outbox(session, [_outbox("slack", "approval", row, now, coalesce=True)])


def _queue_result(session: Session, row: Approval, now: datetime) -> None:
    store.insert_outbox(session, [_outbox("codepipeline", "result", row, now, coalesce=False)])


def _outbox(target: str, kind: str, row: Approval, now: datetime, *, coalesce: bool) -> dict:
    return {
        "target": target, "kind": kind, "incident_id": None,
        "payload": {"approval_id": row.id},
        "coalesce_key": f"{target}:{kind}:{row.id}" if coalesce else None,
        "state": "pending", "attempts": 0, "due_at": now, "locked_until": None,
        "last_error": None, "created_at": now, "updated_at": now,
    }  # fmt: skip


def _ticket_note(session: Session, row: Approval, text: str, now: datetime) -> None:
    # A runbook run reports on its incident itself; a pipeline's request does it here.
    if row.kind != "codepipeline" or row.incident_id is None:
        return
    incident = session.get(Incident, row.incident_id)
    if incident is None or not (incident.jira_key or (incident.route or {}).get("ticket", True)):
        return
    link = row.details.get("review_link") or row.details.get("console_link") or ""
    body = f"{text}\nPipeline: {link}" if link else text
    queue_effects(
        session, row.incident_id, [Effect("jira", "comment", payload={"text": body})], now
    )


def fit(text: str, limit: int) -> str:
    """Return text cut to ``limit`` characters, a cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(row: Approval) -> str:
    return f"{row.account_id or 'default account'} {row.region or ''} {row.environment}".strip()


def _entry(row: Approval, action: str, actor: str, now: datetime, **detail: Any) -> dict[str, Any]:
    detail = {"kind": row.kind, "run": row.run_id, "incident": row.incident_id, **detail}
    return {
        "actor": actor, "action": action, "subject": ("approval", str(row.id)), "now": now,
        "detail": detail,
    }  # fmt: skip


def _audit(
    session: Session, row: Approval, action: str, actor: str, now: datetime, **detail: Any
) -> None:
    audit(session, **_entry(row, action, actor, now, **detail))


def approval_json(row: Approval) -> dict[str, Any]:
    """Return the public JSON form of a request."""
    body = {
        key: getattr(row, key)
        for key in (
            "id", "kind", "state", "level", "what", "account_id", "region", "environment",
            "requester", "decider", "reason", "incident_id", "run_id",
        )
    }  # fmt: skip
    for key in ("created_at", "expires_at", "decided_at"):
        value = getattr(row, key)
        body[key] = value.isoformat().replace("+00:00", "Z") if value else None
    return body
