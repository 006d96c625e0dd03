"""Reads the YAML configuration of the per-source handlers (``cloudtrail:``, ``ec2:``, ``cost:``,
``sentry:``).

The handlers stay pure and keep no state: the runtime holds what this module
parses from ``Policy.extra`` and every message carries it (``Inbound.sources``).
A handler names the bad key in its ValueError (``cloudtrail.watch[0].when: ...``);
this module reports it at its line in the YAML file.
"""

from __future__ import annotations

import logging
from typing import Any

from handlers import cloudtrail, cost, ec2, sentry
from opsbot.config.yamldoc import document_for, split_problem
from opsbot.core.policy import Policy

log = logging.getLogger(__name__)


def parse_sources(policy: Policy) -> dict[str, Any]:
    """Return each source's configuration (watch lists, cost thresholds, Sentry projects)."""
    doc = document_for(policy.extra)
    try:
        watches = cloudtrail.watch_list_from_config(policy.extra.get("cloudtrail"))
    except ValueError as exc:
        doc.error(*split_problem(str(exc)))
    try:
        watch = ec2.ec2_watch_from_config(policy.extra.get("ec2"), policy.accounts)
    except ValueError as exc:
        doc.error(*split_problem(str(exc)))
    try:
        thresholds = cost.thresholds_from_config(policy.extra.get("cost"))
    except ValueError as exc:
        doc.error(*split_problem(str(exc)))
    try:
        projects = sentry.projects_from_config(policy.extra.get("sentry"), policy.accounts)
    except ValueError as exc:
        doc.error(*split_problem(str(exc)))
    doc.check()
    log.debug("CloudTrail watch list: %d entries", len(watches))
    return {"cloudtrail": watches, "ec2": watch, "cost": thresholds, "sentry": projects}
