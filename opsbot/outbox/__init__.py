"""The outbox: every call to Jira or Slack is a row, delivered later with retries."""

from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sender, Sent, Wait
from opsbot.outbox.queue import queue_effects
from opsbot.outbox.worker import OutboxWorker, backoff_seconds

__all__ = [
    "OutboxItem",
    "OutboxWorker",
    "PermanentFailure",
    "RetryLater",
    "Sender",
    "Sent",
    "Wait",
    "backoff_seconds",
    "queue_effects",
]
