"""GuardDuty findings, as EventBridge delivers them ("GuardDuty Finding").

Reads the finding in ``detail`` (``id``, ``type``, ``severity``, ``title``,
``description``, ``accountId``, ``region``, ``resource``, ``service``) —
https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings_eventbridge.html,
https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-severity.html.

Identity: the finding ``id`` in its account and region, so every update of a
finding (GuardDuty re-publishes it as ``service.count`` grows) is one incident.

Severity: GuardDuty's numeric bands — 9.0 and above critical, 7.0-8.9 high,
4.0-6.9 medium, 1.0-3.9 low, below 1 (or missing / not a number) info; the
latest update sets it.

Resolve: ``service.archived`` true (the finding was archived) resolves;
otherwise it fires.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, field, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

BANDS = (
    (9.0, Severity.CRITICAL),
    (7.0, Severity.HIGH),
    (4.0, Severity.MEDIUM),
    (1.0, Severity.LOW),
)


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one GuardDuty finding; raise ValueError without a finding id."""
    env = envelope(event, inbound)
    detail = env.detail
    finding_id = text(detail, "id", limit=200)
    if not finding_id:
        raise ValueError("GuardDuty finding without an id")
    archived = field(detail, "service", "archived") is True
    resource = finding_resource(detail)
    kind = text(detail, "type", limit=120)
    return [
        make_alert(
            env,
            identity=(finding_id,),
            account=text(detail, "accountId", limit=20),
            region=text(detail, "region", limit=40),
            status=AlertStatus.RESOLVED if archived else AlertStatus.FIRING,
            severity=band(field(detail, "severity")),
            title=f"GuardDuty: {text(detail, 'title', limit=160) or kind or finding_id}",
            summary=text(detail, "description", limit=2000),
            resource=resource,
            labels={"finding_type": kind, "finding_id": finding_id},
            console_url=console_url(text(detail, "region", limit=40) or env.region, finding_id),
        )
    ]


def band(value: object) -> Severity:
    """Return the severity of a GuardDuty numeric severity."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return Severity.INFO
    try:
        number = float(value)
    except ValueError:
        return Severity.INFO
    return next((severity for floor, severity in BANDS if number >= floor), Severity.INFO)


def finding_resource(detail: Any) -> str:
    """Return the affected resource: the instance id, access key, bucket, or resource type."""
    return (
        text(detail, "resource", "instanceDetails", "instanceId", limit=200)
        or text(detail, "resource", "accessKeyDetails", "accessKeyId", limit=200)
        or text(detail, "resource", "s3BucketDetails", 0, "name", limit=200)
        or text(detail, "resource", "resourceType", limit=200)
    )


def console_url(region: str, finding_id: str) -> str:
    """Return the GuardDuty console link of a finding."""
    if not region:
        return ""
    return (
        f"https://{region}.console.aws.amazon.com/guardduty/home?region={region}"
        f"#/findings?fId={finding_id}"
    )
