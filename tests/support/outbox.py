"""Outbox helpers: a worker with the app's senders, and one drain loop for every test."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from opsbot.db.models import OutboxRow
from opsbot.outbox.worker import OutboxWorker
from opsbot.runtime import Runtime
from opsbot.worker import configured_senders
from tests.support.clock import Clock


def app_worker(rt: Runtime, batch: int = 50) -> OutboxWorker:
    """Return an outbox worker with the app's configured senders and settings, on its clock."""
    return OutboxWorker(
        rt.sessions,
        configured_senders(rt),
        metrics=rt.metrics,
        max_attempts=rt.settings.outbox_max_attempts,
        give_up_after=rt.settings.outbox_give_up_after,
        clock=rt.clock,
        batch=batch,
    )


def drain(work: OutboxWorker | Runtime, rounds: int = 50) -> int:
    """Run the worker until nothing is due; return how many rows it handled.

    Given a runtime rather than a worker, drain with ``app_worker(rt)``. Fails when
    the outbox is still busy after ``rounds`` rounds (rows that keep queueing others).
    """
    if isinstance(work, Runtime):
        work = app_worker(work)
    handled = 0
    for _ in range(rounds):
        done = work.run_once()
        if not done:
            return handled
        handled += done
    raise AssertionError("the outbox did not drain")


def next_due(rt: Runtime) -> datetime | None:
    """Return when the next outbox row comes due (a pending row, or an expiring lease)."""
    with rt.sessions() as session:
        pending = session.execute(
            select(func.min(OutboxRow.due_at)).where(OutboxRow.state == "pending")
        ).scalar()
        leased = session.execute(
            select(func.min(OutboxRow.locked_until)).where(OutboxRow.state == "sending")
        ).scalar()
    found = [_aware(d) for d in (pending, leased) if d is not None]
    return min(found) if found else None


def run_until(work: OutboxWorker, rt: Runtime, clock: Clock, end: datetime) -> None:
    """Deliver everything due up to ``end``, moving the clock from one due row to the next.

    The clock ends at ``end``, or at the last delivery when the outbox fell idle before.
    """
    for _ in range(200_000):
        for _ in range(10_000):
            if not work.run_once():
                break
        else:
            raise AssertionError("the outbox kept rows due without ever moving the clock")
        due = next_due(rt)
        if due is None:
            return  # idle: the clock stays at the last delivery
        if due > end:
            clock.now = max(clock.now, end)
            return
        # a lease is taken again only once it has passed
        clock.now = max(clock.now, due + timedelta(microseconds=1))
    raise AssertionError("the outbox did not settle")


def run_until_idle(work: OutboxWorker, rt: Runtime, clock: Clock, horizon: timedelta) -> None:
    """Deliver until no row is left; fail when rows remain after ``horizon`` of test time."""
    run_until(work, rt, clock, clock.now + horizon)
    assert next_due(rt) is None, "rows were still waiting at the end of the horizon"


def states(rt: Runtime) -> Counter[tuple[str, str]]:
    """Return how many outbox rows there are by (target, state)."""
    with rt.sessions() as session:
        found = session.execute(select(OutboxRow.target, OutboxRow.state)).all()
    return Counter((t, s) for t, s in found)


def _aware(moment: datetime | str) -> datetime:
    # aggregates bypass the column type on SQLite
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
