"""The runbook job: start approved runs in SSM, follow running ones, cancel on timeout.

Runs are started straight from this job, not through an outbox row: the
``runbook_runs`` row already is the durable queue (state, attempts, next
check), and starting and polling share the same AWS session, backoff and
timeout clock. Rows are claimed with a short lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, under the job's advisory lock); AWS is called outside
any transaction; the outcome is written in another.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.core import runbook_policy as rp
from opsbot.db.models import RunbookRun
from opsbot.db.session import transaction
from opsbot.jobs import run_singleton
from opsbot.outbox.worker import backoff_seconds
from opsbot.runbooks import service
from opsbot.runbooks.ssm import (
    Progress,
    SsmRejected,
    SsmThrottled,
    Where,
    automation_request,
    command_request,
)
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

POLL_EVERY = timedelta(seconds=15)
LEASE = timedelta(minutes=2)
MAX_THROTTLES = 8
BATCH = 20
TOKEN_NAMESPACE = uuid.UUID("5f0c7d2e-8a55-4d0e-9a43-6f70736274a1")


class Ssm(Protocol):
    """The part of SsmRunbooks the runner uses."""

    def send_command(self, where: Where, request: Any) -> str: ...
    def start_automation(self, where: Where, request: Any) -> str: ...
    def command_progress(self, where: Where, command_id: str) -> Progress: ...
    def automation_progress(self, where: Where, execution_id: str) -> Progress: ...
    def cancel(self, where: Where, *, command_id: str | None, execution_id: str | None) -> None: ...


@dataclass
class Step:
    """What one look at a run decided: started, finished (with an event), or check again."""

    started: str | None = None
    event: str | None = None
    reason: str = ""
    output: str = ""


FinishHook = Callable[[Session, RunbookRun, datetime], None]


@dataclass
class RunbookRunner:
    """Advances runbook runs; ``on_finish`` hooks see every run that ends (patch windows)."""

    rt: Runtime
    ssm: Ssm
    on_finish: list[FinishHook] = field(default_factory=list)

    def run_once(self) -> int:
        """Expire stale approvals, then advance every due run once; return how many."""
        claimed: list[int] = []
        run_singleton(self.rt, "runbook_runs", lambda s, now: self._claim(s, now, claimed))
        for run_id in claimed:
            self.advance(run_id)
        return len(claimed)

    def _claim(self, session: Session, now: datetime, claimed: list[int]) -> int:
        service.expire_due(session, now)
        rows = session.execute(
            select(RunbookRun)
            .where(RunbookRun.state.in_(("approved", "running")), RunbookRun.next_check_at <= now)
            .order_by(RunbookRun.next_check_at, RunbookRun.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).scalars()
        for row in rows:
            row.next_check_at = now + LEASE
            claimed.append(row.id)
        return len(claimed)

    def advance(self, run_id: int) -> None:
        """Take one step on a run: start it, poll it, or cancel it; write what happened."""
        with transaction(self.rt.sessions) as session:
            run = session.get(RunbookRun, run_id)
            if run is None:
                return
            session.expunge(run)
        now = self.rt.clock()
        try:
            step = self._step(run, now)
        except SsmThrottled as exc:
            why = exc.reason
            self._write(run_id, lambda s, r: self._throttled(s, r, why, now))
            return
        except SsmRejected as exc:
            step = Step(event="fail", reason=exc.reason)
        except Exception as exc:  # a surprise from AWS must not stop the other runs
            log.exception("run %d: unexpected error; retrying later", run_id)
            why = f"unexpected {type(exc).__name__}: {exc}"
            self._write(run_id, lambda s, r: self._throttled(s, r, why, now))
            return
        self._write(run_id, lambda s, r: self._apply(s, r, step, now))

    def _step(self, run: RunbookRun, now: datetime) -> Step:
        where = Where(run.account_id, run.region, run.approver or run.requester)
        if run.state == "approved":
            return Step(started=self._start(where, run))
        ids = {"command_id": run.command_id, "execution_id": run.execution_id}
        if run.reason.startswith("cancel requested"):
            self.ssm.cancel(where, **ids)
            return Step(event="cancel", reason=run.reason.replace("cancel requested", "cancelled"))
        progress = self._progress(where, run)
        event = rp.SSM_STATUS_EVENT.get(progress.status)
        if event is None and run.deadline_at is not None and now >= run.deadline_at:
            self.ssm.cancel(where, **ids)
            reason = f"no result within {run.timeout_seconds}s; cancelled in SSM"
            return Step(event="time_out", reason=reason, output=progress.output)
        if event is None:
            return Step()
        reason = "" if event == "succeed" else f"SSM reports {progress.status}"
        return Step(event=event, reason=reason, output=progress.output)

    def _start(self, where: Where, run: RunbookRun) -> str:
        if run.kind == "automation":
            token = str(uuid.uuid5(TOKEN_NAMESPACE, f"run-{run.id}"))
            request = automation_request(
                document=run.document, parameters=run.document_parameters, client_token=token
            )
            return self.ssm.start_automation(where, request)
        request = command_request(
            document=run.document,
            parameters=run.document_parameters,
            instance_ids=run.targets.get("instance_ids", []),
            tags=run.targets.get("tags", {}),
            max_concurrency=run.max_concurrency,
            max_errors=run.max_errors,
            timeout_seconds=run.timeout_seconds,
            comment=f"opsbot run {run.id} {run.runbook} by {run.requester}",
        )
        return self.ssm.send_command(where, request)

    def _progress(self, where: Where, run: RunbookRun) -> Progress:
        if run.execution_id:
            return self.ssm.automation_progress(where, run.execution_id)
        if run.command_id:
            return self.ssm.command_progress(where, run.command_id)
        raise SsmRejected(f"run {run.id} is running without an SSM id")

    def _write(self, run_id: int, work: Callable[[Session, RunbookRun], None]) -> None:
        with transaction(self.rt.sessions) as session:
            run = session.get(RunbookRun, run_id, with_for_update=True)
            if run is not None and run.state in ("approved", "running"):
                work(session, run)

    def _apply(self, session: Session, run: RunbookRun, step: Step, now: datetime) -> None:
        if step.started is not None:
            if run.kind == "automation":
                run.execution_id = step.started
            else:
                run.command_id = step.started
            service.start(session, run, now)
            run.deadline_at = now + timedelta(seconds=run.timeout_seconds)
            run.next_check_at = now + POLL_EVERY
            return
        if step.event is None:
            run.next_check_at, run.updated_at = now + POLL_EVERY, now
            return
        if step.event == "fail" and run.state == "approved":
            log.warning("run %d failed to start: %s", run.id, step.reason)
        service.finish(session, run, step.event, now, reason=step.reason, output=step.output)
        for hook in self.on_finish:
            hook(session, run, now)

    def _throttled(self, session: Session, run: RunbookRun, reason: str, now: datetime) -> None:
        run.attempts += 1
        if run.attempts > MAX_THROTTLES:
            service.finish(session, run, "fail", now, reason=f"gave up: {reason}")
            for hook in self.on_finish:
                hook(session, run, now)
            return
        delay = backoff_seconds(run.attempts)
        log.info("run %d: %s; retry in %.0fs", run.id, reason, delay)
        run.next_check_at, run.updated_at = now + timedelta(seconds=delay), now
