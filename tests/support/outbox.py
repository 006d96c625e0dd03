"""Outbox helpers: a worker with the app's senders, and one drain loop for every test."""

from __future__ import annotations

from opsbot.outbox.worker import OutboxWorker
from opsbot.runtime import Runtime
from opsbot.worker import configured_senders


def app_worker(rt: Runtime) -> OutboxWorker:
    """Return an outbox worker with the app's configured senders on the runtime's clock."""
    return OutboxWorker(
        rt.sessions, configured_senders(rt), metrics=rt.metrics, clock=rt.clock, batch=50
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
