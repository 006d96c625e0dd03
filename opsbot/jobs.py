"""Scheduled jobs (APScheduler); a PostgreSQL advisory lock runs each singleton on one replica."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from opsbot.core.lifecycle import settle
from opsbot.db.models import Incident
from opsbot.db.session import is_postgres, transaction
from opsbot.incidents import service as services
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

# Advisory lock keys: one per singleton job, stable across releases.
LOCK_KEYS = {
    "escalate_incidents": 0x6F70_0003,
    "settle_flapping": 0x6F70_0001,
    "jira_reconcile": 0x6F70_0002,
}
# Runbook jobs (opsbot.runbook_jobs, opsbot.patch_windows).
LOCK_KEYS |= {"runbook_runs": 0x6F70_0004, "auto_remediation": 0x6F70_0005}
LOCK_KEYS |= {"patch_windows": 0x6F70_0006}


def run_singleton(rt: Runtime, name: str, job: Callable[[Session, datetime], int]) -> int | None:
    """Run a job in one transaction on the one replica that takes its lock; None elsewhere."""
    with transaction(rt.sessions) as session:
        if is_postgres(session):
            got = session.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEYS[name]}
            ).scalar_one()
            if not got:
                log.debug("job %s runs on another replica", name)
                return None
        return job(session, rt.clock())


def settle_flapping(rt: Runtime) -> Callable[[Session, datetime], int]:
    """Return the job that settles flapping incidents quiet for a whole flap window."""

    def job(session: Session, now: datetime) -> int:
        rows = session.execute(
            select(Incident)
            .where(Incident.flapping.is_(True), Incident.status.in_(("open", "acknowledged")))
            .with_for_update(skip_locked=True)
        ).scalars()
        settled = 0
        for row in rows:
            action = settle(services.snapshot(row), rt.policy.flapping, now)
            if action is not None:
                services.settle_incident(session, row, action, now=now)
                settled += 1
        return settled

    return job


def start_scheduler(rt: Runtime) -> BackgroundScheduler:
    """Start the background scheduler with opsbot's jobs."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        lambda: run_singleton(rt, "settle_flapping", settle_flapping(rt)),
        "interval",
        seconds=60,
        id="settle_flapping",
        max_instances=1,
        coalesce=True,
    )
    _add_escalation(rt, scheduler)
    _add_jira_reconcile(rt, scheduler)
    from opsbot.runbooks.jobs import add_jobs

    add_jobs(scheduler, rt)
    scheduler.start()
    return scheduler


def _add_escalation(rt: Runtime, scheduler: BackgroundScheduler) -> None:
    from opsbot.config import ConfigError
    from opsbot.incidents.escalation import escalate_incidents, parse_escalation

    try:
        policy = parse_escalation(rt.policy.extra)
    except ConfigError as exc:
        log.error("escalation is off: %s", exc)
        return
    if policy.steps:
        scheduler.add_job(
            lambda: run_singleton(rt, "escalate_incidents", escalate_incidents(policy)),
            "interval",
            seconds=60,
            id="escalate_incidents",
            max_instances=1,
            coalesce=True,
        )


def _add_jira_reconcile(rt: Runtime, scheduler: BackgroundScheduler) -> None:
    from opsbot.config import ConfigError
    from opsbot.jira.webhook import reconcile_tickets

    if not rt.settings.jira_enabled:
        return
    try:
        job = reconcile_tickets(rt)
    except ConfigError as exc:
        log.error("Jira reconciliation is off: %s", exc)
        return
    scheduler.add_job(
        lambda: run_singleton(rt, "jira_reconcile", job),
        "interval",
        seconds=rt.settings.jira_reconcile_seconds,
        id="jira_reconcile",
        max_instances=1,
        coalesce=True,
    )
