"""Singleton jobs: a PostgreSQL advisory lock runs each one on one replica only.

A run that finishes without error stores its time in ``job_runs`` in the same
transaction as its work, for the ``opsbot_job_last_success_timestamp_seconds``
gauge: a job that keeps failing, or stopped being run, shows as a stale time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsbot.db.models import JobRun
from opsbot.db.session import is_postgres, transaction
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)

# Advisory lock keys: one per singleton job, stable across releases.
LOCK_KEYS = {
    "settle_flapping": 0x6F70_0001,
    "jira_reconcile": 0x6F70_0002,
    "escalate_incidents": 0x6F70_0003,
    "runbook_runs": 0x6F70_0004,
    "auto_remediation": 0x6F70_0005,
    "patch_windows": 0x6F70_0006,
    "heartbeats": 0x6F70_0012,
    "housekeeping": 0x6F70_0013,
    "approvals_expiry": 0x6F70_0107,  # issue 13: approvals
    "codepipeline_approvals": 0x6F70_0108,
    "runbook_expiry": 0x6F70_0109,
}
# Options every interval job shares: never two runs at once, missed runs coalesce.
JOB_OPTIONS = {"max_instances": 1, "coalesce": True}


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
        now = rt.clock()
        result = job(session, now)
        record_success(session, name, now)
        return result


def record_success(session: Session, name: str, at: datetime) -> None:
    """Store that a job ran to the end at ``at``."""
    dialect = postgresql if is_postgres(session) else sqlite
    stmt = dialect.insert(JobRun).values(name=name, last_success_at=at)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"], set_={"last_success_at": stmt.excluded.last_success_at}
        )
    )
