"""The incidents' scheduled jobs: settle flapping incidents, escalate unacknowledged ones."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.config import ConfigError
from opsbot.core.lifecycle import settle
from opsbot.db.models import Incident
from opsbot.incidents import service
from opsbot.incidents.escalation import escalate_incidents, parse_escalation
from opsbot.jobs import JOB_OPTIONS, run_singleton
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

SETTLE_SECONDS = 60
ESCALATE_SECONDS = 60


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
            action = settle(service.snapshot(row), rt.policy.flapping, now)
            if action is not None:
                service.settle_incident(session, row, action, now=now)
                settled += 1
        return settled

    return job


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add flap settling, and escalation when the YAML file has steps."""
    scheduler.add_job(
        lambda: run_singleton(rt, "settle_flapping", settle_flapping(rt)),
        "interval", seconds=SETTLE_SECONDS, id="settle_flapping", **JOB_OPTIONS,
    )  # fmt: skip
    try:
        policy = parse_escalation(rt.policy.extra)
    except ConfigError as exc:
        log.error("escalation is off: %s", exc)
        return
    if policy.steps:
        scheduler.add_job(
            lambda: run_singleton(rt, "escalate_incidents", escalate_incidents(policy)),
            "interval", seconds=ESCALATE_SECONDS, id="escalate_incidents", **JOB_OPTIONS,
        )  # fmt: skip
