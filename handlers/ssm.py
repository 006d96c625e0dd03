"""AWS Systems Manager run status and patch compliance, as EventBridge delivers them.

Reads "EC2 Command Status-change Notification" (``detail.command-id``,
``document-name``, ``status``), "EC2 Automation Execution Status-change
Notification" (``detail.ExecutionId``, ``Definition``, ``Status``,
``ExecutedBy``) and "Configuration Compliance State Change"
(``detail.resource-id``, ``compliance-type``, ``compliance-status``,
``severity``) —
https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html.

Runs opsbot started are not alerted on: opsbot follows its own runs (its
runbook poller reports them). They are recognised by ``ExecutedBy`` naming an
opsbot role (an ARN containing "opsbot"); Run Command events do not say who
started them, so failed commands always alert.

Identity: a command — document name + command id; an automation — the
definition name; patch compliance — compliance type + resource id.

Severity: Failed, TimedOut (and Cancelled automations) medium; patch
non-compliance the event's ``severity`` (CRITICAL…UNSPECIFIED), medium when
absent or unknown.

Resolve: a Success of the same automation definition resolves; "compliant"
resolves patch compliance. Other statuses are recorded without an incident.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import Envelope, envelope, ignored_alert, make_alert, severity_word, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

COMMAND = "EC2 Command Status-change Notification"
AUTOMATION = "EC2 Automation Execution Status-change Notification"
COMPLIANCE = "Configuration Compliance State Change"
FAILED = frozenset({"FAILED", "TIMEDOUT", "TIMED_OUT", "CANCELLED"})
OPSBOT_MARK = "opsbot"


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for an SSM run status or compliance change."""
    env = envelope(event, inbound)
    if env.detail_type == COMMAND:
        return [command_alert(env)]
    if env.detail_type == AUTOMATION:
        return [automation_alert(env)]
    if env.detail_type == COMPLIANCE:
        return [compliance_alert(env)]
    raise ValueError(f"not an SSM status change: {env.detail_type[:60]!r}")


def command_alert(env: Envelope) -> Alert:
    """Return the alert for a failed Run Command, else the ignored alert."""
    status = text(env.detail, "status", limit=40)
    document = text(env.detail, "document-name", limit=200)
    command = text(env.detail, "command-id", limit=100)
    if status.upper().replace("-", "") not in FAILED:
        return ignored_alert(env, f"command {status or 'status'}")
    return make_alert(
        env,
        identity=(document, command),
        status=AlertStatus.FIRING,
        severity=Severity.MEDIUM,
        title=f"SSM Run Command {document} {status}",
        summary=f"command {command} ({document}) ended {status}",
        resource=command,
        labels={"document": document, "command_id": command, "status": status},
    )


def automation_alert(env: Envelope) -> Alert:
    """Return the alert for an automation run opsbot did not start."""
    status = text(env.detail, "Status", limit=40)
    definition = text(env.detail, "Definition", limit=200)
    execution = text(env.detail, "ExecutionId", limit=100)
    if OPSBOT_MARK in text(env.detail, "ExecutedBy", limit=300).lower():
        return ignored_alert(env, "automation started by opsbot")
    normalised = status.upper()
    if normalised not in FAILED and normalised != "SUCCESS":
        return ignored_alert(env, f"automation {status or 'status'}")
    failed = normalised in FAILED
    return make_alert(
        env,
        identity=("automation", definition),
        status=AlertStatus.FIRING if failed else AlertStatus.RESOLVED,
        severity=Severity.MEDIUM,
        title=f"SSM Automation {definition} {status}",
        summary=f"execution {execution} of {definition} ended {status}",
        resource=execution,
        labels={"definition": definition, "execution_id": execution, "status": status},
    )


def compliance_alert(env: Envelope) -> Alert:
    """Return the alert for a patch (or other) compliance change of a managed instance."""
    resource = text(env.detail, "resource-id", limit=200)
    kind = text(env.detail, "compliance-type", limit=60)
    compliance = text(env.detail, "compliance-status", limit=40).lower()
    if not resource:
        raise ValueError("compliance change without a resource-id")
    severity = severity_word(text(env.detail, "severity", limit=40), Severity.MEDIUM)
    resolved = compliance == "compliant"
    return make_alert(
        env,
        identity=(kind, resource),
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=severity,
        title=f"SSM {kind} compliance: {resource} is {compliance or 'unknown'}",
        summary=f"patch baseline {text(env.detail, 'patch-baseline-id', limit=100)}".strip()
        if kind == "Patch"
        else "",
        resource=resource,
        labels={"compliance_type": kind, "compliance_status": compliance},
    )
