"""The Jira request budget: a token bucket in the database, shared by every worker on it.

One row holds the tokens left and when they were counted; a send takes its
cost under a row lock (``FOR UPDATE`` on PostgreSQL; SQLite serialises
writers), so N workers together stay within ``OPSBOT_JIRA_REQUESTS_PER_SECOND``.
A send that finds the bucket short is deferred by the outbox, never slept on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from opsbot.db.models import JiraRequestBudget
from opsbot.db.session import is_postgres, transaction

BUDGET_KEY = "jira"


def take_budget(
    factory: sessionmaker[Session], *, rate: float, cost: float, now: datetime
) -> float:
    """Take ``cost`` requests from the shared token bucket; return 0, or seconds to wait."""
    capacity = max(rate, cost)
    with transaction(factory) as session:
        _ensure_bucket(session, capacity, now)
        row = session.get(JiraRequestBudget, BUDGET_KEY, with_for_update=True)
        assert row is not None
        elapsed = max(0.0, (now - row.updated_at).total_seconds())
        tokens = min(capacity, row.tokens + elapsed * rate)
        row.updated_at = max(now, row.updated_at)
        if tokens >= cost:
            row.tokens = tokens - cost
            return 0.0
        row.tokens = tokens
        return (cost - tokens) / rate


def _ensure_bucket(session: Session, capacity: float, now: datetime) -> None:
    insert = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(
        insert(JiraRequestBudget)
        .values(key=BUDGET_KEY, tokens=capacity, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
