"""The composition root of the worker: outbox delivery and scheduled jobs, in background threads.

Each domain plugs in here: ``sender(rt)`` for its outbox target and
``add_jobs(scheduler, rt)`` for its scheduled jobs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler

from opsbot import approvals, heartbeats, housekeeping, incidents, jira, runbooks, slack
from opsbot.outbox import OutboxWorker, Sender
from opsbot.probes import ProbeListener
from opsbot.runtime import Runtime
from opsbot.telemetry import DatabaseGauges

log = logging.getLogger(__name__)


def configured_senders(rt: Runtime) -> dict[str, Sender]:
    """Return the outbox senders of the integrations that are configured."""
    senders: dict[str, Sender] = {}
    if rt.settings.slack_enabled:
        senders["slack"] = slack.sender(rt)
    if rt.settings.jira_enabled:
        senders["jira"] = jira.sender(rt)
    senders["codepipeline"] = approvals.sender(rt)  # PutApprovalResult; boto3's credentials
    return senders


def start_scheduler(rt: Runtime) -> BackgroundScheduler:
    """Start the scheduler with every domain's jobs."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for domain in (incidents, jira, runbooks, heartbeats, housekeeping, approvals):
        domain.add_jobs(scheduler, rt)
    scheduler.start()
    return scheduler


@dataclass
class Worker:
    """Runs the outbox worker and the scheduler until stopped.

    With ``listen`` (host, port), as ``opsbot worker`` runs it, it also serves
    ``/healthz`` and ``/metrics`` there; ``opsbot run`` has the web app for that.
    """

    rt: Runtime
    listen: tuple[str, int] | None = None
    listener: ProbeListener | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Start the listener (OSError if its port is taken), the outbox thread, the scheduler."""
        if self.listen is not None:
            gauges = DatabaseGauges(
                self.rt.sessions, self.rt.clock, self.rt.settings.sns_topic_arns
            )
            self.listener = ProbeListener(self.rt.metrics, *self.listen, collectors=[gauges])
            self.listener.start()
        outbox = OutboxWorker(
            self.rt.sessions,
            configured_senders(self.rt),
            metrics=self.rt.metrics,
            max_attempts=self.rt.settings.outbox_max_attempts,
            give_up_after=self.rt.settings.outbox_give_up_after,
        )
        self.thread = threading.Thread(
            target=outbox.run_forever,
            args=(self.stop_event, self.rt.settings.outbox_poll_seconds),
            name="opsbot-outbox",
            daemon=True,
        )
        self.thread.start()
        self.scheduler = start_scheduler(self.rt)
        log.info("worker started: outbox delivery and scheduled jobs")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work and wait for the current send to finish."""
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.thread is not None:
            self.thread.join(timeout)
        if self.listener is not None:
            self.listener.stop()
        log.info("worker stopped")
