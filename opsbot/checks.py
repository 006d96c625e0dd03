"""Everything ``opsbot check`` validates, in one function ``run``, ``serve`` and ``worker`` share.

A process must not start on a configuration ``check`` rejects: a bad
``escalation:`` would turn escalation silently off, a bad ``cloudtrail:``
would crash after the server says it is listening. Each part is parsed by its
own package; every problem of every part is reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from opsbot.config import ConfigError, Settings, load_policy
from opsbot.core.policy import Policy
from opsbot.heartbeats import parse_heartbeats
from opsbot.incidents.escalation import parse_escalation
from opsbot.intake.sources_config import parse_sources
from opsbot.jira.config import jira_config
from opsbot.runbooks.cli import check_runbooks
from opsbot.web.tokens import check_tokens


def check_configuration(settings: Settings) -> list[str]:
    """Validate the policy and every section; return the summary lines, or raise ConfigError."""
    policy = load_policy(settings.config, required="OPSBOT_CONFIG" in os.environ)
    errors: list[str] = []
    parts: list[Callable[[Policy], Any]] = [
        parse_escalation_of,
        jira_config,
        parse_sources,
        check_tokens,
        parse_heartbeats,
    ]
    for part in parts:
        errors += _problems(part, policy)
    summary: list[str] = []
    try:
        summary.append(check_runbooks(settings, policy))
    except ConfigError as exc:
        errors += exc.errors
    if errors:
        raise ConfigError(_in_order(errors))
    source = settings.config if settings.config.exists() else "built-in defaults"
    head = (
        f"{source}: {len(policy.accounts)} accounts, {len(policy.rules)} rules, "
        f"{len(policy.silences)} silences"
    )
    return [head, *summary]


def parse_escalation_of(policy: Policy) -> Any:
    """Parse the policy's ``escalation:`` section; raise ConfigError listing its problems."""
    return parse_escalation(policy.extra)


def _problems(part: Callable[[Policy], Any], policy: Policy) -> list[str]:
    try:
        part(policy)
    except ConfigError as exc:
        return exc.errors
    return []


def _in_order(errors: list[str]) -> list[str]:
    """Return the problems without repeats, those of one file in line order."""

    def line(message: str) -> tuple[str, int]:
        source, _, rest = message.partition(":")
        number = rest.split(":", 1)[0]
        return (source, int(number)) if number.isdigit() else (source, 0)

    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=line)
