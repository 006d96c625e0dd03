"""The small interfaces between opsbot and the outside world (adapters implement them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboxItem:
    """One outbox row as a sender sees it."""

    id: int
    target: str
    kind: str
    incident_id: int | None
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime
    # the moment a rate budget slot was reserved for this row (see ``Wait``), or None
    reserved_slot: datetime | None = None
    # the W3C traceparent of the span that queued the row (its send span links to it), or None
    trace_parent: str | None = None


@dataclass(frozen=True)
class Sent:
    """A successful send; ``incident_updates`` are stored on the incident (e.g. its Jira key)."""

    incident_updates: Mapping[str, Any] = field(default_factory=dict)


class RetryLater(Exception):
    """A real call that failed for now; it counts as an attempt (see ``Wait`` for waits)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Wait(Exception):
    """The call was not made, or the far side said when to come back: reschedule, uncharged.

    ``reserved`` means the sender took a rate budget slot ``seconds`` from now
    for this row, so the row may call then without taking another. ``hold``
    means the sender is stopped (credentials refused): the row is kept however
    old it grows, until the sender works again.
    """

    def __init__(
        self, reason: str, seconds: float, *, reserved: bool = False, hold: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = max(0.0, seconds)
        self.reserved = reserved
        self.hold = hold


class PermanentFailure(Exception):
    """A failure no retry can fix (the row is dead-lettered with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    """Delivers outbox rows of one target (jira, slack, ssm)."""

    target: str

    def send(self, item: OutboxItem) -> Sent:
        """Perform the call; raise RetryLater or PermanentFailure when it did not happen."""
        ...
