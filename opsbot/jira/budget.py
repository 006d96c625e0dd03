"""The Jira request budget: one token bucket in the database, shared by every worker on it.

N workers together stay within ``OPSBOT_JIRA_REQUESTS_PER_SECOND``. A send
that finds the bucket short is given a slot ahead and deferred by the outbox
until then, never slept on and never charged an attempt.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from opsbot.db.session import transaction
from opsbot.outbox.budget import take

BUDGET_KEY = "jira"


def take_budget(
    factory: sessionmaker[Session], *, rate: float, cost: float, now: datetime
) -> float:
    """Take ``cost`` requests from the shared bucket; return 0, or seconds until the slot."""
    with transaction(factory) as session:
        return take(session, BUDGET_KEY, rate=rate, capacity=max(rate, cost), cost=cost, now=now)
