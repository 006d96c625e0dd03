"""Runbook and approval operations for one Slack request (one transaction).

What the ``/ops`` run and approval words call. Returns plain text lines for the
handlers in ``opsbot/slack/commands/runbooks.py`` and raises ``ActionError``
(which the Slack dispatcher answers) on any refusal; a refusal by the approval
policy raises ``ApprovalRefused``, whose audit entries the dispatcher writes
again after the request's transaction rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.approvals import service as approvals
from opsbot.db.models import Approval, RunbookRun
from opsbot.incidents.actions import ActionError
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runtime import Runtime

LIST_LIMIT = 15


class RunbookDesk:
    """Runbook requests, approvals and listings inside the caller's transaction."""

    def __init__(self, rt: Runtime, session: Session, now: datetime) -> None:
        self.rt = rt
        self.session = session
        self.now = now

    def catalogue(self) -> list[str]:
        """Return one line per runbook."""
        return [
            f"`{b.name}` {b.title}{' (dangerous)' if b.dangerous else ''}"
            for b in catalogue_of(self.rt).runbooks.values()
        ]

    def request(
        self, runbook: str, params: Mapping[str, str], incident_id: int | None, actor: str,
        *, dry_run: bool = False,
    ) -> str:  # fmt: skip
        """Request a run (or only preview it); return what happened in one line."""
        req = service.RunRequest(runbook, actor, dict(params), incident_id)
        try:
            if dry_run:
                seen = service.preview(self.session, catalogue_of(self.rt), self.rt.policy, req)
                return f"Dry run, nothing sent: {seen.describe()}"
            run = service.request_run(
                self.session, catalogue_of(self.rt), self.rt.policy, req, now=self.now
            )
        except service.RunError as exc:
            raise ActionError(str(exc)) from None
        return f"Run {run.id} ({run.runbook}) is {run.state.replace('_', ' ')}."

    def approve(self, run_id: int, actor: str) -> str:
        """Approve a run."""
        run = self._do(lambda: service.approve(self.session, run_id, approver=actor, now=self.now))
        return f"Run {run.id} ({run.runbook}) approved by {actor}; it starts shortly."

    def deny(self, run_id: int, actor: str, reason: str) -> str:
        """Deny a run."""
        run = self._do(
            lambda: service.deny(self.session, run_id, approver=actor, now=self.now, reason=reason)
        )
        return f"Run {run.id} ({run.runbook}) denied by {actor}."

    def cancel(self, run_id: int, actor: str) -> str:
        """Cancel a run."""
        run = self._do(lambda: service.cancel(self.session, run_id, actor=actor, now=self.now))
        if run.state == "running":
            return f"Run {run.id} ({run.runbook}): cancelling in SSM."
        return f"Run {run.id} ({run.runbook}) cancelled."

    def runs(self, which: str, actor: str) -> list[str]:
        """Return lines for the newest runs: all, ``mine`` or ``running``."""
        query = select(RunbookRun).order_by(RunbookRun.id.desc()).limit(LIST_LIMIT)
        if which == "mine":
            query = query.where(RunbookRun.requester == actor)
        elif which == "running":
            query = query.where(RunbookRun.state.in_(("approved", "running")))
        return [_line(r) for r in self.session.execute(query).scalars()]

    def show(self, run_id: int) -> str:
        """Return a run in detail."""
        run = self.session.get(RunbookRun, run_id)
        if run is None:
            raise ActionError(f"There is no run {run_id}.")
        lines = [_line(run), f"parameters: {run.parameters}", f"targets: {run.targets}"]
        lines.append(f"account {run.account_id or 'default'} region {run.region or 'default'}")
        if run.approver:
            lines.append(f"approver: {run.approver}")
        if run.reason:
            lines.append(f"reason: {run.reason}")
        if run.output:
            lines.append(f"```\n{run.output[:1500]}\n```")
        return "\n".join(lines)

    def decide(self, approval_id: int, actor: str, verdict: str, reason: str) -> str:
        """Approve or deny an approval request (a run's goes through the run)."""
        try:
            request = approvals.get(self.session, approval_id)
        except approvals.ApprovalError as exc:
            raise ActionError(str(exc)) from None
        if request.run_id is not None:
            if verdict == "approve":
                return self.approve(request.run_id, actor)
            return self.deny(request.run_id, actor, reason)
        try:
            approvals.decide(
                self.session, approval_id, actor=actor, verdict=verdict, now=self.now,
                reason=reason,
            )  # fmt: skip
        except approvals.ApprovalRefused:
            raise
        except approvals.ApprovalError as exc:
            raise ActionError(str(exc)) from None
        then = " CodePipeline gets the decision now." if request.kind == "codepipeline" else ""
        return f"Approval A{approval_id} {request.state} by {actor}.{then}"

    def describe(self, approval_id: int) -> str:
        """Return what an approval request is about (for the Deny modal)."""
        row = self.session.get(Approval, approval_id)
        if row is None:
            raise ActionError(f"There is no approval A{approval_id}.")
        return row.what

    def _do(self, work: Any) -> RunbookRun:
        try:
            run: RunbookRun = work()
        except service.RunRefused as exc:
            raise approvals.ApprovalRefused(str(exc), exc.audit_entries) from None
        except service.RunError as exc:
            raise ActionError(str(exc)) from None
        return run


def _line(run: RunbookRun) -> str:
    on = f" on #{run.incident_id}" if run.incident_id else ""
    return (
        f"{run.id}: {run.runbook}{on} {run.state.replace('_', ' ')} "
        f"(by {run.requester}{', approved by ' + run.approver if run.approver else ''})"
    )
