"""Jira → opsbot without the webhook: the job that resolves incidents whose tickets are done.

Webhooks get lost (Jira down, opsbot down, a misconfigured URL); every few
minutes this job asks Jira for opsbot's tickets moved to done recently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsbot.config import ConfigError
from opsbot.db.models import Incident, OutboxRow
from opsbot.incidents import actions
from opsbot.jira.client import JiraError, JiraUnreachable, TicketState
from opsbot.jira.config import jira_config
from opsbot.jira.sync import jira_parts
from opsbot.jobs import JOB_OPTIONS, run_singleton
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)


def incident_for_ticket(session: Session, key: str) -> int | None:
    """Return the id of the incident whose ticket has this key, or None."""
    if not key:
        return None
    found = session.execute(select(Incident.id).where(Incident.jira_key == key)).scalar()
    return int(found) if found is not None else None


def _in_flight(session: Session, incident_id: int) -> bool:
    """Return whether Jira calls for the incident are still queued (the ticket may lag)."""
    pending = select(OutboxRow.id).where(
        OutboxRow.incident_id == incident_id,
        OutboxRow.target == "jira",
        OutboxRow.state.in_(("pending", "sending")),
    )
    return session.execute(pending.limit(1)).first() is not None


def status_text(state: TicketState) -> str:
    """Return a ticket's status and resolution as one phrase."""
    return f"{state.status} ({state.resolution or 'no resolution'})"


def reconcile_tickets(rt: Runtime) -> Callable[[Session, datetime], int]:
    """Return the job that resolves incidents whose tickets were recently moved to done."""
    window = jira_config(rt.policy).reconcile_window
    minutes = max(1, int(window.total_seconds() // 60))

    def job(session: Session, now: datetime) -> int:
        tickets, _ = jira_parts(rt)
        jql = f'labels = "opsbot" AND statusCategory = Done AND updated >= "-{minutes}m"'
        try:
            found = tickets.search(jql, limit=100)
        except (JiraError, JiraUnreachable) as exc:
            log.warning("Jira reconciliation skipped: %s", exc)
            return 0
        resolved = 0
        for state in found:
            incident_id = incident_for_ticket(session, state.key)
            if incident_id is None or _in_flight(session, incident_id):
                continue
            note = f"Ticket {state.key} is {status_text(state)} in Jira."
            outcome = actions.resolve(
                session, incident_id, actor="jira:reconcile", now=now, note=note, from_jira=True
            )
            resolved += outcome.changed
        return resolved

    return job


def add_jobs(scheduler: BaseScheduler, rt: Runtime) -> None:
    """Add the reconciliation job when Jira is configured."""
    if not rt.settings.jira_enabled:
        return
    try:
        job = reconcile_tickets(rt)
    except ConfigError as exc:
        log.error("Jira reconciliation is off: %s", exc)
        return
    scheduler.add_job(
        lambda: run_singleton(rt, "jira_reconcile", job),
        "interval", seconds=rt.settings.jira_reconcile_seconds, id="jira_reconcile",
        **JOB_OPTIONS,
    )  # fmt: skip
