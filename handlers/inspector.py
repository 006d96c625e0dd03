"""Amazon Inspector findings, as EventBridge delivers them ("Inspector2 Finding").

Reads the finding in ``detail`` (``findingArn``, ``awsAccountId``,
``severity``, ``status``, ``title``, ``description``, ``type``,
``resources``, ``packageVulnerabilityDetails``) —
https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html.

Identity: the ``findingArn`` in its account and region.

Severity: ``severity`` — CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL;
UNTRIAGED, missing or unknown is medium.

Resolve: ``status`` CLOSED (the vulnerability is gone) or SUPPRESSED resolves;
ACTIVE and anything else fires. The title names the vulnerable package and
the resource.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, make_alert, severity_word, text
from handlers.base import Inbound, parse_arn
from opsbot.core.alert import Alert, AlertStatus, Severity

RESOLVED_STATUSES = frozenset({"CLOSED", "SUPPRESSED"})


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one Inspector finding; raise ValueError without a finding ARN."""
    env = envelope(event, inbound)
    detail = env.detail
    arn = text(detail, "findingArn", limit=1000)
    if not arn:
        raise ValueError("Inspector finding without a findingArn")
    status = text(detail, "status", limit=40).upper()
    resource = text(detail, "resources", 0, "id", limit=512)
    package = package_of(detail)
    heading = text(detail, "title", limit=120) or text(detail, "type", limit=60)
    title = f"Inspector: {heading}"
    if package:
        title += f" in {package}"
    if resource:
        title += f" on {resource}"
    return [
        make_alert(
            env,
            identity=(arn,),
            account=text(detail, "awsAccountId", limit=20),
            region=parse_arn(arn).region,
            status=AlertStatus.RESOLVED if status in RESOLVED_STATUSES else AlertStatus.FIRING,
            severity=severity_word(text(detail, "severity", limit=40), Severity.MEDIUM),
            title=title,
            summary=text(detail, "description", limit=2000),
            resource=resource,
            labels={
                "finding_type": text(detail, "type", limit=60),
                "status": status,
                "vulnerability": text(
                    detail, "packageVulnerabilityDetails", "vulnerabilityId", limit=60
                ),
            },
        )
    ]


def package_of(detail: Any) -> str:
    """Return "name version" of the first vulnerable package, or ""."""
    name = text(detail, "packageVulnerabilityDetails", "vulnerablePackages", 0, "name", limit=100)
    version = text(
        detail, "packageVulnerabilityDetails", "vulnerablePackages", 0, "version", limit=60
    )
    return f"{name} {version}".strip()
