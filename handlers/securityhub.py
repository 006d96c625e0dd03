"""Security Hub findings, as EventBridge delivers them ("Security Hub Findings - Imported").

Reads each ASFF finding in ``detail.findings`` (``Id``, ``AwsAccountId``,
``Region``, ``Title``, ``Description``, ``Severity.Label``,
``Workflow.Status``, ``RecordState``, ``Resources``) —
https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-cwe-event-formats.html,
https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format.html.

Identity: the finding ``Id`` in its account and region (one incident per
finding, one alert per finding in the event).

Severity: ``Severity.Label`` — CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL; a
missing or unknown label is medium.

Resolve: ``Workflow.Status`` RESOLVED or SUPPRESSED, or ``RecordState``
ARCHIVED, resolves; anything else fires.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import Envelope, envelope, field, make_alert, severity_word, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

RESOLVED_WORKFLOW = frozenset({"RESOLVED", "SUPPRESSED"})
MAX_FINDINGS = 100


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return one alert per finding; raise ValueError when the event holds none."""
    env = envelope(event, inbound)
    findings = field(env.detail, "findings")
    items = [f for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
    alerts = [finding_alert(env, f) for f in items[:MAX_FINDINGS] if text(f, "Id")]
    if not alerts:
        raise ValueError("Security Hub event without findings")
    return alerts


def finding_alert(env: Envelope, finding: dict[str, Any]) -> Alert:
    """Return the alert for one ASFF finding."""
    workflow = text(finding, "Workflow", "Status", limit=40).upper()
    record = text(finding, "RecordState", limit=40).upper()
    resolved = workflow in RESOLVED_WORKFLOW or record == "ARCHIVED"
    label = text(finding, "Severity", "Label", limit=40)
    return make_alert(
        env,
        identity=(text(finding, "Id", limit=1000),),
        account=text(finding, "AwsAccountId", limit=20),
        region=text(finding, "Region", limit=40),
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=severity_word(label, Severity.MEDIUM),
        title=f"Security Hub: {text(finding, 'Title', limit=180) or 'finding'}",
        summary=text(finding, "Description", limit=2000),
        resource=text(finding, "Resources", 0, "Id", limit=512),
        labels={
            "product": text(finding, "ProductName", limit=80)
            or text(finding, "ProductFields", "aws/securityhub/ProductName", limit=80),
            "workflow_status": workflow,
            "record_state": record,
            "generator": text(finding, "GeneratorId", limit=200),
        },
    )
