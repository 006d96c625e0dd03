"""Wiring of the runbook jobs: the catalogue, the SSM adapter, polling and auto-remediation."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from opsbot.audit import audit
from opsbot.db.models import AuditEntry, Incident, RunbookRun
from opsbot.jobs import run_singleton
from opsbot.runbooks import patch_windows, service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runbooks.patch_windows import tick
from opsbot.runbooks.runner import RunbookRunner, Ssm
from opsbot.runbooks.ssm import SsmRunbooks
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

AUTO_ACTOR = "opsbot:auto-remediation"
POLL_SECONDS = 15


def aws_usable() -> bool:
    """Return whether boto3 finds credentials (the SSM integration is off without them)."""
    import boto3

    return boto3.session.Session().get_credentials() is not None


def build_runner(rt: Runtime, ssm: Ssm | None = None) -> RunbookRunner:
    """Return the runner of runbook runs, with the patch-window report hooked in."""
    adapter = ssm or SsmRunbooks(rt.policy.accounts)
    runner = RunbookRunner(rt, adapter)
    runner.on_finish.append(patch_windows.report_hook(rt, adapter))
    return runner


def auto_remediate(rt: Runtime) -> Any:
    """Return the job that requests the automatic runbook of matching open incidents."""

    def job(session: Session, now: Any) -> int:
        done = select(RunbookRun.incident_id).where(RunbookRun.auto.is_(True))
        refused = select(AuditEntry.subject_id).where(
            AuditEntry.subject_type == "incident", AuditEntry.action == "runbook.auto_refused"
        )
        rows = session.execute(
            select(Incident).where(
                Incident.status == "open",
                Incident.id.not_in(done.where(RunbookRun.incident_id.is_not(None))),
                cast(Incident.id, String).not_in(refused),
            )
        ).scalars()
        started = 0
        for incident in rows:
            route = incident.route or {}
            if route.get("runbook_auto") and route.get("runbook"):
                started += _auto_one(rt, session, incident, route["runbook"], now)
        return started

    return job


def _auto_one(rt: Runtime, session: Session, incident: Incident, name: str, now: Any) -> int:
    req = service.RunRequest(runbook=name, requester=AUTO_ACTOR, incident_id=incident.id, auto=True)
    try:
        with session.begin_nested():
            service.request_run(session, catalogue_of(rt), rt.policy, req, now=now)
    except service.RunError as exc:
        log.info("no automatic %s for incident %d: %s", name, incident.id, exc)
        subject = ("incident", str(incident.id))
        detail = {"runbook": name, "reason": str(exc)}
        audit(
            session, actor=AUTO_ACTOR, action="runbook.auto_refused", subject=subject,
            now=now, detail=detail,
        )  # fmt: skip
        return 0
    return 1


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add the runbook jobs (polling, auto-remediation, patch windows); idle without AWS.

    Whether boto3 finds credentials is asked in the scheduler's thread on the
    first run, never at start (the credential chain may probe instance
    metadata), and boto3 itself is imported then too.
    """
    usable = _AwsCheck()
    runners: list[RunbookRunner] = []

    def poll() -> int | bool:
        if not usable():
            return False
        if not runners:
            runners.append(build_runner(rt))
        return runners[0].run_once()

    def windows() -> int | bool | None:
        if not usable():
            return False
        return run_singleton(rt, "patch_windows", tick(rt, SsmRunbooks(rt.policy.accounts)))

    options: dict[str, Any] = {"max_instances": 1, "coalesce": True}
    scheduler.add_job(poll, "interval", seconds=POLL_SECONDS, id="runbook_runs", **options)
    scheduler.add_job(
        lambda: usable() and run_singleton(rt, "auto_remediation", auto_remediate(rt)),
        "interval", seconds=60, id="auto_remediation", **options,
    )  # fmt: skip
    scheduler.add_job(windows, "interval", seconds=60, id="patch_windows", **options)
    # Unapproved runs expire on time even where AWS is not usable (their requests say so).
    scheduler.add_job(
        lambda: run_singleton(rt, "runbook_expiry", service.expire_due),
        "interval", seconds=30, id="runbook_expiry", **options,
    )  # fmt: skip


class _AwsCheck:
    """Answers once whether AWS is usable, and says so in the log."""

    def __init__(self) -> None:
        self.answer: bool | None = None

    def __call__(self) -> bool:
        if self.answer is None:
            self.answer = aws_usable()
            if not self.answer:
                log.info("SSM runbooks off: boto3 finds no AWS credentials")
        return self.answer
