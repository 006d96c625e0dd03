"""Singleton jobs: a PostgreSQL advisory lock runs each one on one replica only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

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
        return job(session, rt.clock())
