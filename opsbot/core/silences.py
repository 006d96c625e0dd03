"""Silences: a match that keeps matching alerts quiet for a while."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from opsbot.core.accounts import Account
from opsbot.core.alert import Alert
from opsbot.core.rules import Match, matches


@dataclass(frozen=True)
class Silence:
    """A silence from ``starts_at`` (or always, if None) until just before ``ends_at``."""

    id: str
    match: Match
    starts_at: datetime | None
    ends_at: datetime
    reason: str
    created_by: str


def active(silence: Silence, now: datetime) -> bool:
    """Return whether the silence is in force at ``now``."""
    started = silence.starts_at is None or silence.starts_at <= now
    return started and now < silence.ends_at


def find_silence(
    alert: Alert,
    account: Account | None,
    environment: str,
    silences: Iterable[Silence],
    now: datetime,
) -> Silence | None:
    """Return the first silence active at ``now`` that matches the alert, or None."""
    for silence in silences:
        if active(silence, now) and matches(silence.match, alert, account, environment):
            return silence
    return None
