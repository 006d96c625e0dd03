"""AWS Config rule compliance changes, as EventBridge delivers them.

Reads a "Config Rules Compliance Change" event: ``detail.configRuleName``,
``resourceType``, ``resourceId``, ``awsAccountId``, ``awsRegion`` and
``newEvaluationResult.complianceType`` —
https://docs.aws.amazon.com/config/latest/developerguide/monitor-config-with-cloudwatchevents.html,
https://docs.aws.amazon.com/config/latest/developerguide/example-config-rule-compliance-notification.html.

Identity: account + region + rule name + resource type + resource id.

Severity: medium for NON_COMPLIANT (routing rules raise it for the rules that
matter); low for INSUFFICIENT_DATA or an unknown compliance type.

Resolve: COMPLIANT and NOT_APPLICABLE resolve; NON_COMPLIANT opens (or keeps
open); INSUFFICIENT_DATA and unknown values fire at low severity.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

RESOLVING = frozenset({"COMPLIANT", "NOT_APPLICABLE"})


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one compliance change; raise ValueError without rule or resource."""
    env = envelope(event, inbound)
    detail = env.detail
    rule = text(detail, "configRuleName", limit=200)
    resource = text(detail, "resourceId", limit=512)
    if not rule or not resource:
        raise ValueError("Config compliance change without rule or resource")
    kind = text(detail, "resourceType", limit=100)
    compliance = text(detail, "newEvaluationResult", "complianceType", limit=40).upper()
    status = AlertStatus.RESOLVED if compliance in RESOLVING else AlertStatus.FIRING
    severity = Severity.MEDIUM if compliance in ("NON_COMPLIANT", *RESOLVING) else Severity.LOW
    return [
        make_alert(
            env,
            identity=(rule, kind, resource),
            account=text(detail, "awsAccountId", limit=20),
            region=text(detail, "awsRegion", limit=40),
            status=status,
            severity=severity,
            title=f"Config: {kind} {resource} is {compliance or 'UNKNOWN'} with {rule}",
            summary=text(detail, "newEvaluationResult", "annotation", limit=2000),
            resource=resource,
            labels={"config_rule": rule, "resource_type": kind, "compliance": compliance},
        )
    ]
