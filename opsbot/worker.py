"""The worker side of opsbot: outbox delivery and the scheduler, in background threads."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler

from opsbot.jobs import start_scheduler
from opsbot.outbox.ports import Sender
from opsbot.outbox.worker import OutboxWorker
from opsbot.runtime import Runtime

log = logging.getLogger(__name__)


def configured_senders(rt: Runtime) -> dict[str, Sender]:
    """Return the senders of the integrations that are configured (none yet are built here)."""
    senders: dict[str, Sender] = {}
    if rt.settings.slack_enabled:
        from opsbot.slack import sync as slack_sync

        senders["slack"] = slack_sync.sender(rt)
    if rt.settings.jira_enabled:
        from opsbot.jira.sync import JiraSync

        senders["jira"] = JiraSync(rt)
    return senders


@dataclass
class Background:
    """Runs the outbox worker and the scheduler until stopped."""

    rt: Runtime
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Start the outbox thread and the scheduler."""
        worker = OutboxWorker(
            self.rt.sessions,
            configured_senders(self.rt),
            metrics=self.rt.metrics,
            max_attempts=self.rt.settings.outbox_max_attempts,
        )
        self.thread = threading.Thread(
            target=worker.run_forever,
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
        log.info("worker stopped")
