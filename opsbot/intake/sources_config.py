"""Installs the YAML configuration of the per-source handlers (``cloudtrail:``, ``ec2:``).

The handlers stay pure: they read a module-level watch list that this module
parses from ``Policy.extra`` and installs once when the app or a worker starts.
"""

from __future__ import annotations

import logging

from handlers import cloudtrail, ec2
from opsbot.config import ConfigError
from opsbot.core.policy import Policy

log = logging.getLogger(__name__)


def install(policy: Policy) -> None:
    """Parse and install the CloudTrail watch list and the EC2 watch rule; raise ConfigError."""
    problems: list[str] = []
    try:
        watches = cloudtrail.watch_list_from_config(policy.extra.get("cloudtrail"))
    except ValueError as exc:
        problems.append(str(exc))
    try:
        watch = ec2.ec2_watch_from_config(policy.extra.get("ec2"), policy.accounts)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    cloudtrail.configure(watches)
    ec2.configure(watch)
    log.debug("CloudTrail watch list: %d entries", len(watches))
