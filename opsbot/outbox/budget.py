"""Rate budgets shared by every worker: token buckets in the database that hand out slots ahead.

A bucket holds ``capacity`` tokens and refills at ``rate`` per second. A send
takes its cost under a row lock (``FOR UPDATE`` on PostgreSQL; SQLite
serialises writers). When the bucket is short the tokens go negative: the
send is given the moment its slot comes due, and the outbox reschedules the
row for exactly then (``Wait(reserved=True)``), so the budget is used fully
and no row waits longer than it requires, whatever the backlog.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsbot.db.models import RateBudget
from opsbot.db.session import is_postgres
from opsbot.outbox.ports import Wait

# A reservation not used within this long of its slot (a worker was down) is
# void: the row takes a fresh slot, so a backlog never bursts past the budget.
RESERVATION_GRACE = timedelta(seconds=10)


def take(
    session: Session, key: str, *, rate: float, capacity: float, cost: float, now: datetime
) -> float:
    """Take ``cost`` tokens from a shared bucket; return 0, or seconds until the reserved slot."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(
        dialect.insert(RateBudget)
        .values(key=key, tokens=capacity, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.get(RateBudget, key, with_for_update=True, populate_existing=True)
    assert row is not None
    elapsed = max(0.0, (now - row.updated_at).total_seconds())
    row.tokens = min(capacity, row.tokens + elapsed * rate) - cost
    row.updated_at = max(now, row.updated_at)
    return 0.0 if row.tokens >= 0 else -row.tokens / rate


def holds_reservation(reserved_slot: datetime | None, now: datetime) -> bool:
    """Return whether a row's reserved slot is good to call on now; raise Wait when early.

    A coalesced row can be made due before its slot (a newer change asked for
    sooner): it waits for the slot it paid for rather than paying again.
    """
    if reserved_slot is None or now > reserved_slot + RESERVATION_GRACE:
        return False
    if now < reserved_slot:
        early = (reserved_slot - now).total_seconds()
        raise Wait("waiting for the rate budget slot it holds", early, reserved=True)
    return True
