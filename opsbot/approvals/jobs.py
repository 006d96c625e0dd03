"""Wiring of the approval jobs: expiry of requests, and the CodePipeline approvals intake."""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.base import BaseScheduler

from opsbot.approvals import service
from opsbot.approvals.pipelines import ApprovalIntake, CodePipelineApprovals
from opsbot.jobs import JOB_OPTIONS, run_singleton
from opsbot.runtime import Runtime

EXPIRY_SECONDS = 30
INTAKE_SECONDS = 15


def expire_requests(rt: Runtime) -> int | None:
    """Expire the requests whose time is up (their messages are updated in place)."""
    return run_singleton(rt, "approvals_expiry", service.expire_due)


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add the expiry job and the CodePipeline approvals intake."""
    intake = ApprovalIntake(rt, CodePipelineApprovals(rt.policy.accounts))
    options: dict[str, Any] = dict(JOB_OPTIONS)
    scheduler.add_job(
        lambda: expire_requests(rt), "interval", seconds=EXPIRY_SECONDS, id="approvals_expiry",
        **options,
    )  # fmt: skip
    scheduler.add_job(
        intake.run_once, "interval", seconds=INTAKE_SECONDS, id="codepipeline_approvals", **options
    )
