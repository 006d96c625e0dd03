"""The daily housekeeping job: export the audit log if configured, then prune."""

from __future__ import annotations

from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.orm import Session

from opsbot.housekeeping.prune import prune
from opsbot.jobs import JOB_OPTIONS, run_singleton
from opsbot.runtime import Runtime

# Once a day, at a quiet hour (UTC) and off the full hour that other cron work favours.
PRUNE_AT = {"hour": 3, "minute": 17}


def prune_job(rt: Runtime) -> int | None:
    """Run the prune on the one replica that takes the lock; None elsewhere.

    The lock's transaction stays idle while the prune runs its own short
    transactions, one batch each (on SQLite it takes no lock at all).
    """

    def job(_session: Session, now: datetime) -> int:
        return sum(prune(rt, now).counts.values())

    return run_singleton(rt, "housekeeping", job)


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add the daily prune."""
    scheduler.add_job(lambda: prune_job(rt), "cron", **PRUNE_AT, id="housekeeping", **JOB_OPTIONS)
