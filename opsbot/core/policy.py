"""The policy: everything the YAML file configures, as one immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opsbot.core.accounts import AccountMap
from opsbot.core.alert import Alert, Severity
from opsbot.core.rules import DEFAULT_PRIORITIES, PRIORITIES, Route, Rule, route_alert
from opsbot.core.silences import Silence, find_silence

__all__ = ["PRIORITIES", "SLACK_ROLES", "FlapPolicy", "Policy"]

SLACK_ROLES = ("viewer", "operator", "approver", "admin")


@dataclass(frozen=True)
class FlapPolicy:
    """An incident is flapping when it changes state (resolve or reopen) more than
    ``changes`` times within ``window``."""

    changes: int = 4
    window: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Policy:
    """Accounts, routing rules, priorities, silences and lifecycle settings.

    ``extra`` keeps the top-level keys this version does not interpret
    (escalation, patch windows, ...) for later features.
    """

    accounts: AccountMap = field(default_factory=AccountMap)
    rules: tuple[Rule, ...] = ()
    priorities: Mapping[str, Mapping[Severity, str]] = field(
        default_factory=lambda: DEFAULT_PRIORITIES
    )
    silences: tuple[Silence, ...] = ()
    reopen_window: timedelta = timedelta(hours=24)
    flapping: FlapPolicy = field(default_factory=FlapPolicy)
    slack_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Policy:
        """Return the policy used when there is no configuration file."""
        return cls()

    def route(self, alert: Alert) -> Route:
        """Return the route of an alert under this policy."""
        return route_alert(alert, self.accounts, self.rules, self.priorities)

    def silence_for(self, alert: Alert, now: datetime) -> Silence | None:
        """Return the first configured silence active at ``now`` that matches the alert."""
        account = self.accounts.get(alert.account_id)
        environment = self.accounts.environment_of(alert.account_id)
        return find_silence(alert, account, environment, self.silences, now)
