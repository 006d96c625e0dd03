"""Runbook policy: the schema's values, parameter typing, approvals, guards and run states.

Pure: given a runbook, an environment, who asks and what happened before, it
decides. Nothing here reads files, databases or AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsbot.core.accounts import ENVIRONMENTS

KINDS = ("command", "automation")
PARAM_TYPES = ("string", "int", "bool", "choice")
# none: runs at once; one: any approver; other: one approver who is not the requester.
APPROVALS = ("none", "one", "other")
APPROVAL_RANK = {"none": 0, "one": 1, "other": 2}
DEFAULT_APPROVAL = {"sandbox": "none", "dev": "none", "nonprod": "one", "prod": "other"}
MAX_TARGETS_LIMIT = 50  # SendCommand takes at most 50 instance ids
RATE = re.compile(r"[1-9][0-9]*|[1-9][0-9]?%|100%")  # SSM MaxConcurrency
ERROR_RATE = re.compile(r"0|[1-9][0-9]*|[0-9][0-9]?%|100%")  # SSM MaxErrors
NAME = re.compile(r"[a-z][a-z0-9-]{1,62}")
PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
# "ana (U0OPS)": the Slack id in brackets at the end is who the person is.
SLACK_ID = re.compile(r"\(([UW][A-Z0-9]{2,})\)\s*$")
TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")


@dataclass(frozen=True)
class Param:
    """One typed runbook parameter; ``value`` is a Jinja2 template filled from the incident."""

    name: str
    type: str = "string"
    description: str = ""
    default: Any = None
    required: bool = True
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    value: str | None = None


@dataclass(frozen=True)
class Runbook:
    """One validated runbook from the catalogue."""

    name: str
    title: str
    kind: str
    document: str
    description: str = ""
    parameters: tuple[Param, ...] = ()
    document_parameters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    instance_ids: tuple[str, ...] = ()  # templates
    target_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    target_parameter: str | None = None  # automation: the parameter that names the target
    max_targets: int = 1
    max_concurrency: str = "1"
    max_errors: str = "0"
    environments: tuple[str, ...] = ENVIRONMENTS
    approval: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_APPROVAL))
    timeout_seconds: int = 600
    dangerous: bool = False
    auto_per_day: int = 3
    auto_prod: bool = False
    source: str = ""


class ParamError(ValueError):
    """A parameter value is wrong; the message names the parameter and the problem."""


class PolicyRefusal(Exception):
    """The policy forbids this (environment, approver, target count, auto-remediation)."""


def coerce(param: Param, raw: Any) -> str:
    """Return a parameter value checked against its type and limits, as SSM text."""
    text = raw if isinstance(raw, str) else _plain(raw)
    text = text.strip()
    if param.type == "int":
        if not re.fullmatch(r"-?\d+", text):
            raise ParamError(f"{param.name}: {text!r} is not a whole number")
        number = int(text)
        if param.minimum is not None and number < param.minimum:
            raise ParamError(f"{param.name}: {number} is below the minimum {param.minimum}")
        if param.maximum is not None and number > param.maximum:
            raise ParamError(f"{param.name}: {number} is above the maximum {param.maximum}")
        return str(number)
    if param.type == "bool":
        if text.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ParamError(f"{param.name}: {text!r} is not true or false")
        return "true" if text.lower() in TRUE_WORDS else "false"
    if param.type == "choice" and text not in param.choices:
        raise ParamError(f"{param.name}: {text!r} is not one of {', '.join(param.choices)}")
    if param.pattern is not None and not re.fullmatch(param.pattern, text):
        raise ParamError(f"{param.name}: {text!r} does not match {param.pattern}")
    if param.type == "string" and text == "" and param.required:
        raise ParamError(f"{param.name}: must not be empty")
    return text


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def check_parameters(runbook: Runbook, values: Mapping[str, Any]) -> dict[str, str]:
    """Return every parameter checked (defaults filled); raise ParamError on the first problem."""
    unknown = sorted(set(values) - {p.name for p in runbook.parameters})
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r} for runbook {runbook.name}")
    checked: dict[str, str] = {}
    for param in runbook.parameters:
        raw = values.get(param.name, param.default)
        if raw is None:
            if param.required:
                raise ParamError(f"{param.name}: required and not given")
            continue
        checked[param.name] = coerce(param, raw)
    return checked


def approval_needed(runbook: Runbook, environment: str) -> str:
    """Return the approval an environment needs for this runbook: none, one or other."""
    return runbook.approval.get(environment, DEFAULT_APPROVAL.get(environment, "other"))


def check_request(runbook: Runbook, environment: str, targets: int) -> None:
    """Refuse a run in an environment the runbook does not allow or with too many targets."""
    if environment not in runbook.environments:
        allowed = ", ".join(runbook.environments)
        raise PolicyRefusal(f"{runbook.name} may not run in {environment} (allowed: {allowed})")
    if targets < 1:
        raise PolicyRefusal(f"{runbook.name} has no target")
    if targets > runbook.max_targets:
        raise PolicyRefusal(
            f"{runbook.name} targets {targets} instances; its limit is {runbook.max_targets}"
        )


def check_approver(approval: str, requester: str, approver: str) -> None:
    """Refuse an approval the policy does not accept (the requester approving a prod run)."""
    # The same Slack user under another display name is still the requester.
    same = slack_id(requester) is not None and slack_id(approver) == slack_id(requester)
    if approval == "other" and (approver == requester or same):
        raise PolicyRefusal("the requester cannot approve their own run here")


def slack_id(actor: str) -> str | None:
    """Return the Slack user id an actor name ends with ("ana (U0OPS)" → "U0OPS"), or None."""
    found = SLACK_ID.search(actor)
    return found.group(1) if found else None


@dataclass(frozen=True)
class AutoHistory:
    """What ran automatically before: for this incident, and today for its fingerprint."""

    runs_for_incident: int
    runs_for_fingerprint_today: int


def check_auto(runbook: Runbook, environment: str, history: AutoHistory) -> None:
    """Refuse an automatic run that needs approval, is in prod, or would loop."""
    if environment == "prod" and not runbook.auto_prod:
        raise PolicyRefusal(f"{runbook.name} never runs automatically in prod")
    if approval_needed(runbook, environment) != "none":
        raise PolicyRefusal(f"{runbook.name} needs approval in {environment}")
    if history.runs_for_incident:
        raise PolicyRefusal(f"{runbook.name} already ran automatically for this incident")
    if history.runs_for_fingerprint_today >= runbook.auto_per_day:
        raise PolicyRefusal(
            f"{runbook.name} ran {history.runs_for_fingerprint_today} times today "
            f"for this alarm (limit {runbook.auto_per_day})"
        )


# The states of a run and the events that move it.
TERMINAL = ("denied", "expired", "succeeded", "failed", "timed_out", "cancelled")
ACTIVE = ("requested", "awaiting_approval", "approved", "running")
TRANSITIONS: Mapping[tuple[str, str], str] = {
    ("requested", "ask"): "awaiting_approval",
    ("requested", "approve"): "approved",
    ("awaiting_approval", "approve"): "approved",
    ("awaiting_approval", "deny"): "denied",
    ("awaiting_approval", "expire"): "expired",
    ("awaiting_approval", "cancel"): "cancelled",
    ("approved", "start"): "running",
    ("approved", "fail"): "failed",
    ("approved", "cancel"): "cancelled",
    ("running", "succeed"): "succeeded",
    ("running", "fail"): "failed",
    ("running", "time_out"): "timed_out",
    ("running", "cancel"): "cancelled",
}
# SSM statuses (Run Command invocations and Automation executions) → the run's event.
SSM_STATUS_EVENT = {
    "Success": "succeed",
    "Failed": "fail",
    "TimedOut": "time_out",
    "Cancelled": "cancel",
    "DeliveryTimedOut": "time_out",
    "ExecutionTimedOut": "time_out",
    "Undeliverable": "fail",
    "Terminated": "fail",
    "Rejected": "fail",
    "CompletedWithFailure": "fail",
    "CompletedWithSuccess": "succeed",
}


class InvalidTransition(Exception):
    """The event does not apply to a run in this state."""


def transition(state: str, event: str) -> str:
    """Return the state a run moves to on an event; raise InvalidTransition otherwise."""
    new = TRANSITIONS.get((state, event))
    if new is None:
        raise InvalidTransition(f"a {state.replace('_', ' ')} run cannot {event}")
    return new


def overall_status(statuses: list[str]) -> str | None:
    """Return the run's event for per-target SSM statuses, or None while any is unfinished."""
    events = [SSM_STATUS_EVENT.get(s) for s in statuses]
    if not events or None in events:
        return None
    for event in ("time_out", "fail", "cancel"):
        if event in events:
            return event
    return "succeed"


def truncate(text: str, limit: int = 4000) -> str:
    """Return text cut to ``limit`` characters keeping its head and tail, marked where cut."""
    if len(text) <= limit:
        return text
    half = (limit - 40) // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n… [{cut} characters cut] …\n{text[-half:]}"
