"""Scheduled jobs (APScheduler); a PostgreSQL advisory lock runs each singleton on one replica."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from opsbot import services
from opsbot.core.lifecycle import settle
from opsbot.db.models import Incident
from opsbot.db.session import is_postgres, transaction
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

# Advisory lock keys: one per singleton job, stable across releases.
LOCK_KEYS = {"settle_flapping": 0x6F70_0001}


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
    scheduler.start()
    return scheduler
