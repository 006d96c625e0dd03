"""Runbook runs: request, approve, deny, expire, cancel; every step audited, results queued.

Each function runs in the caller's transaction and trusts the ``actor`` given
(Slack roles, the CLI or the API authorise). A run needing no approval is
``approved`` at once; the polling job (``RunbookRunner`` in
``opsbot.runbooks.runner``, scheduled by ``opsbot.runbooks.jobs``) starts and
follows it. A dry run renders and checks everything and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsbot.approvals import service as approvals
from opsbot.approvals.config import approval_policy
from opsbot.audit import ACTOR, audit
from opsbot.core import approvals as approval_rules
from opsbot.core import runbook_policy as rp
from opsbot.core.effects import Effect
from opsbot.core.policy import Policy
from opsbot.core.slacktext import escape
from opsbot.db import store
from opsbot.db.models import AlertRow, Incident, RunbookRun
from opsbot.outbox.queue import queue_effects
from opsbot.runbooks.catalogue import Catalogue, RenderError, render_request

log = logging.getLogger(__name__)

APPROVAL_TTL = timedelta(minutes=30)


class RunError(Exception):
    """The run cannot be requested or changed; the message says why."""


class RunRefused(RunError):
    """The approval policy refused a decision; its audit entries outlive a rollback."""

    def __init__(self, message: str, audit_entries: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.audit_entries = audit_entries


@dataclass(frozen=True)
class RunRequest:
    """What someone asked to run, where, with which parameters."""

    runbook: str
    requester: str
    params: Mapping[str, Any] = field(default_factory=dict)
    incident_id: int | None = None
    account_id: str = ""
    region: str = ""
    environment: str | None = None
    auto: bool = False
    patch_window: str | None = None
    window: Mapping[str, Any] = field(default_factory=dict)
    approval_floor: str = "none"  # a patch window may ask for more than the runbook does


@dataclass(frozen=True)
class Preview:
    """A run as it would be sent (what a dry run and a confirmation show)."""

    runbook: rp.Runbook
    parameters: dict[str, str]
    document_parameters: dict[str, list[str]]
    instance_ids: list[str]
    tags: dict[str, list[str]]
    account_id: str
    region: str
    environment: str
    approval: str

    def describe(self) -> str:
        """Return one line naming the runbook, its targets, where, and the approval needed."""
        targets = ", ".join(self.instance_ids) or ", ".join(
            f"tag:{k}={'|'.join(v)}" for k, v in self.tags.items()
        )
        params = " ".join(f"{k}={v}" for k, v in self.parameters.items())
        need = {"none": "no approval", "one": "one approver", "other": "another approver"}
        return (
            f"{self.runbook.name} on {targets or 'nothing'} in {self.account_id or 'default'}/"
            f"{self.region or 'default'} ({self.environment}; {need[self.approval]}) {params}"
        ).strip()


def preview(session: Session, catalogue: Catalogue, policy: Policy, req: RunRequest) -> Preview:
    """Render and check a run against the runbook and the policy; send nothing, store nothing."""
    book = catalogue.get(req.runbook)
    if book is None:
        raise RunError(f"There is no runbook {req.runbook!r}.")
    incident = session.get(Incident, req.incident_id) if req.incident_id else None
    if req.incident_id and incident is None:
        raise RunError(f"There is no incident {req.incident_id}.")
    context = template_context(session, incident)
    try:
        rendered = render_request(book, req.params, context)
    except (RenderError, rp.ParamError) as exc:
        raise RunError(f"{book.name}: {exc}") from None
    account = req.account_id or (incident.account_id if incident else "")
    region = req.region or (incident.region if incident else "")
    environment = req.environment or (
        incident.environment if incident else policy.accounts.environment_of(account)
    )
    targets = len(rendered.instance_ids) if rendered.instance_ids else len(rendered.tags)
    try:
        rp.check_request(book, environment, targets)
    except rp.PolicyRefusal as exc:
        raise RunError(str(exc)) from None
    return Preview(
        book,
        rendered.parameters,
        rendered.document_parameters,
        rendered.instance_ids,
        rendered.tags,
        account,
        region,
        environment,
        approval_rules.floor_for(
            approval_policy(policy), environment, rp.approval_needed(book, environment),
            req.approval_floor,
        ),
    )  # fmt: skip


def template_context(session: Session, incident: Incident | None) -> dict[str, Any]:
    """Return what templates see: the incident and its latest alert (labels, resource, ...)."""
    if incident is None:
        return {"incident": {}, "alert": {"labels": {}}}
    latest = session.execute(
        select(AlertRow)
        .where(AlertRow.incident_id == incident.id)
        .order_by(AlertRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    fields = ("id", "fingerprint", "title", "source", "account_id", "region", "resource")
    alert = {"labels": dict(latest.labels or {}), "resource": latest.resource} if latest else {}
    return {
        "incident": {key: getattr(incident, key) for key in (*fields, "environment", "priority")},
        "alert": {"labels": {}, **alert},
    }


def request_run(
    session: Session,
    catalogue: Catalogue,
    policy: Policy,
    req: RunRequest,
    *,
    now: datetime,
    approval_ttl: timedelta | None = None,
) -> RunbookRun:
    """Store a requested run: approved at once, or awaiting approval until it expires."""
    seen = preview(session, catalogue, policy, req)
    book = seen.runbook
    if req.auto:
        try:
            rp.check_auto(book, seen.environment, auto_history(session, req, now))
        except rp.PolicyRefusal as exc:
            raise RunError(str(exc)) from None
    run = RunbookRun(
        runbook=book.name,
        kind=book.kind,
        document=book.document,
        parameters=seen.parameters,
        document_parameters=seen.document_parameters,
        targets={"instance_ids": seen.instance_ids, "tags": seen.tags},
        max_concurrency=book.max_concurrency,
        max_errors=book.max_errors,
        timeout_seconds=book.timeout_seconds,
        requester=req.requester,
        approval=seen.approval,
        account_id=seen.account_id,
        region=seen.region,
        environment=seen.environment,
        incident_id=req.incident_id,
        fingerprint=_fingerprint(session, req.incident_id),
        auto=req.auto,
        patch_window=req.patch_window,
        window=dict(req.window),
        state="requested",
        reason="",
        output="",
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    _audit(session, run, "run.requested", req.requester, now, summary=seen.describe())
    if seen.approval == "none":
        _move(run, "approve", now)
        run.approved_at = now
        run.next_check_at = None if run.patch_window else now  # a window releases its own run
        _note(session, run, f"{req.requester} started {seen.describe()} (run {run.id}).", now)
    else:
        _move(run, "ask", now)
        starts = req.window.get("starts_at")
        opens = datetime.fromisoformat(starts) if starts else now
        # No approval before a scheduled window opens, no install: the request expires then.
        ttl = approval_ttl or approval_policy(policy).ttl  # approvals.expires_after
        run.expires_at = opens if opens > now else now + ttl
        _note(session, run, f"{req.requester} asks to run {seen.describe()} (run {run.id}).", now)
        _ask_approvers(session, policy, run, seen, now)
    return run


def auto_history(session: Session, req: RunRequest, now: datetime) -> rp.AutoHistory:
    """Return how often remediation ran automatically for this incident and today's alarm."""
    fingerprint = _fingerprint(session, req.incident_id)
    count = select(func.count()).select_from(RunbookRun).where(RunbookRun.auto.is_(True))
    mine = session.execute(count.where(RunbookRun.incident_id == req.incident_id)).scalar_one()
    since = now - timedelta(days=1)
    today = session.execute(
        count.where(RunbookRun.fingerprint == fingerprint, RunbookRun.created_at > since)
    ).scalar_one()
    return rp.AutoHistory(int(mine), int(today))


def _fingerprint(session: Session, incident_id: int | None) -> str | None:
    row = session.get(Incident, incident_id) if incident_id else None
    return row.fingerprint if row else None


def get_run(session: Session, run_id: int) -> RunbookRun:
    """Return a run locked for update; raise RunError if there is none."""
    run = session.get(RunbookRun, run_id, with_for_update=True)
    if run is None:
        raise RunError(f"There is no run {run_id}.")
    return run


def approve(session: Session, run_id: int, *, approver: str, now: datetime) -> RunbookRun:
    """Approve a run awaiting approval (never the requester's own where policy says so)."""
    run = get_run(session, run_id)
    _decide(session, run, approver, "approve", now)
    _move(run, "approve", now)
    run.approver, run.approved_at = approver, now
    run.next_check_at = None if run.patch_window else now  # a window releases its own run
    _audit(session, run, "run.approved", approver, now)
    _note(session, run, f"Run {run.id} ({run.runbook}) approved by {approver}.", now)
    return run


def deny(
    session: Session, run_id: int, *, approver: str, now: datetime, reason: str = ""
) -> RunbookRun:
    """Deny a run awaiting approval; nothing is sent."""
    run = get_run(session, run_id)
    _decide(session, run, approver, "deny", now, reason)
    _move(run, "deny", now)
    run.approver, run.reason, run.finished_at = approver, reason, now
    _audit(session, run, "run.denied", approver, now, reason=reason)
    why = f": {reason}" if reason else ""
    _note(session, run, f"Run {run.id} ({run.runbook}) denied by {approver}{why}.", now)
    return run


def cancel(session: Session, run_id: int, *, actor: str, now: datetime) -> RunbookRun:
    """Cancel a run; one already running is cancelled in SSM by the polling job."""
    run = get_run(session, run_id)
    if run.state == "running":
        run.reason, run.next_check_at = f"cancel requested by {actor}", now
        _audit(session, run, "run.cancel_requested", actor, now)
        return run
    _move(run, "cancel", now)
    run.reason, run.finished_at = f"cancelled by {actor}", now
    _close_request(session, run, "closed", f"run cancelled by {actor}", now)
    _audit(session, run, "run.cancelled", actor, now)
    _note(session, run, f"Run {run.id} ({run.runbook}) cancelled by {actor}.", now)
    return run


def expire_due(session: Session, now: datetime) -> int:
    """Expire runs whose approval did not come in time; return how many."""
    rows = session.execute(
        select(RunbookRun)
        .where(RunbookRun.state == "awaiting_approval", RunbookRun.expires_at <= now)
        .with_for_update(skip_locked=True)
    ).scalars()
    expired = 0
    for run in rows:
        _move(run, "expire", now)
        run.finished_at, run.reason = now, "no approval in time"
        _close_request(session, run, "expired", "no decision in time", now)
        _audit(session, run, "run.expired", ACTOR, now)
        _note(session, run, f"Run {run.id} ({run.runbook}) expired unapproved.", now)
        expired += 1
    return expired


def start(session: Session, run: RunbookRun, now: datetime) -> None:
    """Mark a run as started in SSM (its command or execution id is set)."""
    _move(run, "start", now)
    run.started_at = now
    ssm_id = run.command_id or run.execution_id
    _audit(session, run, "run.started", ACTOR, now, ssm_id=ssm_id)
    _note(session, run, f"Run {run.id} ({run.runbook}) running in SSM as {ssm_id}.", now)


def finish(
    session: Session,
    run: RunbookRun,
    event: str,
    now: datetime,
    *,
    reason: str = "",
    output: str = "",
) -> None:
    """Move a run to its terminal state, keep an output excerpt, audit and report it."""
    _move(run, event, now)
    run.finished_at, run.next_check_at = now, None
    run.reason = reason or run.reason
    run.output = rp.truncate(output) if output else run.output
    _audit(session, run, f"run.{run.state}", ACTOR, now, reason=run.reason)
    text = f"Run {run.id} ({run.runbook}) {run.state.replace('_', ' ')}"
    text += f": {run.reason}" if run.reason else "."
    if run.output:
        text += f"\n```\n{rp.truncate(run.output, 1500)}\n```"
    _note(session, run, text, now, jira=True)


def _decide(
    session: Session, run: RunbookRun, actor: str, verdict: str, now: datetime, reason: str = ""
) -> None:
    """Decide the run's approval request (the policy is enforced there), or check a bare run."""
    request = approvals.for_run(session, run.id)
    if request is None or run.state != "awaiting_approval":
        if verdict == "approve" and run.state == "awaiting_approval":
            _check_bare(session, run, actor, now)
        return
    try:
        approvals.decide(session, request.id, actor=actor, verdict=verdict, now=now, reason=reason)
    except approvals.ApprovalRefused as exc:
        why = str(exc).split(": ", 1)[-1].rstrip(".")
        _audit(session, run, "run.approval_refused", actor, now, reason=why)
        entry = _entry(run, "run.approval_refused", actor, now, reason=why)
        raise RunRefused(f"Run {run.id}: {why}.", [*exc.audit_entries, entry]) from None
    except approvals.ApprovalError as exc:
        raise RunError(str(exc)) from None


def _check_bare(session: Session, run: RunbookRun, actor: str, now: datetime) -> None:
    try:
        rp.check_approver(run.approval, run.requester, actor)
    except rp.PolicyRefusal as exc:
        _audit(session, run, "run.approval_refused", actor, now, reason=str(exc))
        entry = _entry(run, "run.approval_refused", actor, now, reason=str(exc))
        raise RunRefused(f"Run {run.id}: {exc}.", [entry]) from None


def _close_request(session: Session, run: RunbookRun, state: str, why: str, now: datetime) -> None:
    request = approvals.for_run(session, run.id)
    if request is not None:
        approvals.close(session, request, state, why, now)


def _move(run: RunbookRun, event: str, now: datetime) -> None:
    try:
        run.state = rp.transition(run.state, event)
    except rp.InvalidTransition as exc:
        raise RunError(f"Run {run.id}: {exc}.") from None
    run.updated_at = now


def _audit(
    session: Session, run: RunbookRun, action: str, actor: str, now: datetime, **detail: Any
) -> None:
    audit(session, **_entry(run, action, actor, now, **detail))


def _entry(
    run: RunbookRun, action: str, actor: str, now: datetime, **detail: Any
) -> dict[str, Any]:
    detail = {"runbook": run.runbook, "incident": run.incident_id, **detail}
    return {
        "actor": actor, "action": action, "subject": ("run", str(run.id)), "now": now,
        "detail": detail,
    }  # fmt: skip


def _note(
    session: Session, run: RunbookRun, text: str, now: datetime, *, jira: bool = False
) -> None:
    if run.incident_id is None:
        return
    # Names, parameters and SSM output are shown in Slack as written (no mention, no link).
    effects = [Effect("slack", "thread", payload={"text": escape(text)})]
    if jira:
        effects.append(Effect("jira", "comment", payload={"text": text}))
    queue_effects(session, run.incident_id, effects, now)


def _ask_approvers(
    session: Session, policy: Policy, run: RunbookRun, seen: Preview, now: datetime
) -> None:
    """Open the run's approval request: a message with buttons in the approvers' channel."""
    assert run.expires_at is not None
    ask = approvals.Ask(
        kind="patch_window" if run.patch_window else "run", key=f"run:{run.id}",
        what=f"Run {run.id}: {seen.describe()}", requester=run.requester, level=run.approval,
        environment=run.environment, expires_at=run.expires_at, account_id=run.account_id,
        region=run.region, incident_id=run.incident_id, run_id=run.id,
        channel=approval_policy(policy).channel,
    )  # fmt: skip
    request = approvals.open_request(session, ask, now)
    who = approval_rules.describe_level(run.approval)
    _note(session, run, f"Approval A{request.id} asks {who} to approve run {run.id}.", now)


def notify(
    session: Session,
    text: str,
    now: datetime,
    *,
    channel: str | None = None,
    incident_id: int | None = None,
    **extra: Any,
) -> None:
    """Queue a Slack message to a channel (the default one when None), not in a thread."""
    payload = {"text": text, **extra, **({"channel": channel} if channel else {})}
    row = {
        "target": "slack", "kind": "notify", "incident_id": incident_id, "payload": payload,
        "coalesce_key": None, "state": "pending", "attempts": 0, "due_at": now,
        "locked_until": None, "last_error": None, "created_at": now, "updated_at": now,
    }  # fmt: skip
    store.insert_outbox(session, [row])


def incident_runs(session: Session, incident_id: int) -> list[RunbookRun]:
    """Return the runbook runs of an incident, oldest first."""
    stmt = select(RunbookRun).where(RunbookRun.incident_id == incident_id).order_by(RunbookRun.id)
    return list(session.execute(stmt).scalars())


def run_json(run: RunbookRun) -> dict[str, Any]:
    """Return the public JSON form of a runbook run."""
    stamps = ("created_at", "approved_at", "started_at", "finished_at", "expires_at")
    body: dict[str, Any] = {
        key: getattr(run, key)
        for key in (
            "id", "runbook", "kind", "document", "parameters", "targets", "requester", "approval",
            "approver", "account_id", "region", "environment", "incident_id", "auto", "state",
            "reason", "command_id", "execution_id", "output", "patch_window",
        )
    }  # fmt: skip
    for key in stamps:
        value = getattr(run, key)
        body[key] = value.isoformat().replace("+00:00", "Z") if value else None
    return body
