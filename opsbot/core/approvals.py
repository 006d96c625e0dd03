"""Approvals: who must agree before something happens, and who may decide.

Pure: one model for everything that needs a second person (runbook runs,
patch windows, CodePipeline manual approvals). The level an environment
needs comes from the YAML ``approvals.environments`` over the defaults of
``runbook_policy`` (none in sandbox and dev, one approver in nonprod, one
approver who is not the requester in prod); a request asks for the strictest
of its own level and its environment's. A decision is refused when the
request is no longer pending or, at level ``other``, when the approver is the
requester (the same Slack user id, whatever the display name); a requester
may always deny, that is withdraw, their own request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from opsbot.core.runbook_policy import APPROVAL_RANK, APPROVALS, DEFAULT_APPROVAL, slack_id

__all__ = ["APPROVALS", "ApprovalPolicy", "Refusal", "check_decision", "level_for", "slack_id"]

KINDS = ("run", "patch_window", "codepipeline")
STATES = ("pending", "approved", "denied", "expired", "closed")
VERDICTS = {"approve": "approved", "deny": "denied"}
DEFAULT_TTL = timedelta(minutes=30)
LEVEL_WORDS = {
    "none": "no approval",
    "one": "one approver",
    "other": "one approver who is not the requester",
}


class Refusal(Exception):
    """The decision is not allowed; the message says why in one sentence."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """The ``approvals:`` section: channel, expiry, level per environment, people map."""

    channel: str | None = None
    ttl: timedelta = DEFAULT_TTL
    # the levels the YAML sets; an environment it does not name gets DEFAULT_APPROVAL's
    levels: Mapping[str, str] = field(default_factory=dict)
    # an AWS principal's name (IAM user, role session, e-mail) -> a Slack user id
    people: Mapping[str, str] = field(default_factory=dict)


def level_for(policy: ApprovalPolicy, environment: str, *asked: str) -> str:
    """Return the strictest of the environment's level and the levels asked for."""
    base = policy.levels.get(environment, DEFAULT_APPROVAL.get(environment, "other"))
    return stricter(base, *asked)


def floor_for(policy: ApprovalPolicy, environment: str, *asked: str) -> str:
    """Return the strictest of the levels asked for and the one the YAML sets (if it does)."""
    return stricter(policy.levels.get(environment, "none"), *asked)


def stricter(*levels: str) -> str:
    """Return the strictest of some levels (none < one < other)."""
    return max(levels, key=lambda level: APPROVAL_RANK[level])


def same_person(one: str, other: str) -> bool:
    """Return whether two actor names are the same person (by Slack id when both carry one)."""
    first, second = slack_id(one), slack_id(other)
    if first and second:
        return first == second
    return one.strip() == other.strip()


def check_decision(
    state: str, level: str, requester: str, decider: str, verdict: str = "approve"
) -> None:
    """Refuse a decision on a request that is not pending, or an approval its requester gives
    where that is barred (a requester may still deny, that is withdraw, their own request)."""
    if state != "pending":
        raise Refusal(f"it is already {state}")
    if verdict == "approve" and level == "other" and same_person(requester, decider):
        raise Refusal("the requester cannot approve their own request here")


def outcome(verdict: str) -> str:
    """Return the state a verdict (approve, deny) leaves a request in."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    return VERDICTS[verdict]


def requester_for(principal: str, people: Mapping[str, str]) -> str:
    """Return how a request names an AWS principal: with the Slack id the people map gives."""
    name = principal_name(principal)
    user = people.get(name) or people.get(principal)
    return f"{name} ({user})" if user else name


def principal_name(principal: str) -> str:
    """Return the person in an AWS principal ARN: a role session or user name, else the text."""
    if not principal.startswith("arn:"):
        return principal
    resource = principal.split(":", 5)[-1]
    parts = resource.split("/")
    if parts[0] in ("assumed-role", "federated-user") and len(parts) >= 3:
        return parts[-1]
    if parts[0] == "user":
        return parts[-1]
    return principal


def describe_level(level: str) -> str:
    """Return what a level asks for, in words."""
    return LEVEL_WORDS.get(level, level)
