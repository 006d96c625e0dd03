"""AWS Health events, as EventBridge delivers them ("AWS Health Event").

Reads ``detail`` (``eventArn``, ``service``, ``eventTypeCode``,
``eventTypeCategory``, ``eventScopeCode``, ``statusCode``, ``eventRegion``,
``affectedAccount``, ``eventDescription``, ``affectedEntities``) —
https://docs.aws.amazon.com/health/latest/ug/aws-health-events-eventbridge-schema.html.

Identity: the ``eventArn`` and the affected account (an organisational view
repeats one event for every account), in the event's region.

Severity: by ``eventTypeCategory`` — issue and investigation high,
scheduledChange medium, accountNotification low; anything else medium.

Resolve: ``statusCode`` closed resolves; open, upcoming and anything else
fire.
"""

from __future__ import annotations

from typing import Any

from handlers.awsevents import envelope, field, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

CATEGORY_SEVERITY = {
    "issue": Severity.HIGH,
    "investigation": Severity.HIGH,
    "scheduledchange": Severity.MEDIUM,
    "accountnotification": Severity.LOW,
}
MAX_ENTITIES = 20


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one Health event; raise ValueError without an event ARN."""
    env = envelope(event, inbound)
    detail = env.detail
    arn = text(detail, "eventArn", limit=1000)
    if not arn:
        raise ValueError("Health event without an eventArn")
    account = text(detail, "affectedAccount", limit=20) or env.account
    category = text(detail, "eventTypeCategory", limit=60)
    service = text(detail, "service", limit=60)
    code = text(detail, "eventTypeCode", limit=120)
    entities = affected_entities(detail)
    closed = text(detail, "statusCode", limit=40).lower() == "closed"
    kind = "scheduled" if category == "scheduledChange" else category or "event"
    return [
        make_alert(
            env,
            identity=(arn, account),
            account=account,
            region=text(detail, "eventRegion", limit=40) or env.region,
            status=AlertStatus.RESOLVED if closed else AlertStatus.FIRING,
            severity=CATEGORY_SEVERITY.get(category.lower(), Severity.MEDIUM),
            title=f"AWS Health {kind}: {service} {code}".strip(),
            summary=text(detail, "eventDescription", 0, "latestDescription", limit=2000),
            resource=entities[0] if entities else "",
            labels={
                "service": service,
                "event_type_code": code,
                "category": category,
                "affected_entities": ",".join(entities),
            },
        )
    ]


def affected_entities(detail: Any) -> list[str]:
    """Return the affected entity values (instance ids, ARNs), at most MAX_ENTITIES."""
    entities = field(detail, "affectedEntities")
    if not isinstance(entities, list):
        return []
    values = (text(e, "entityValue", limit=200) for e in entities[:MAX_ENTITIES])
    return [v for v in values if v]
