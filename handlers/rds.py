"""Amazon RDS and Aurora events, as EventBridge delivers them.

Reads "RDS DB Instance Event" and "RDS DB Cluster Event" (``detail.EventCategories``,
``SourceType``, ``SourceArn``, ``SourceIdentifier``, ``Message``, ``EventID``) —
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-cloud-watch-events.html,
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html.

Only the categories an operator acts on open incidents: failure, failover,
low storage, maintenance (and the cluster equivalents); any other category
(backup, notification, configuration change, …) is recorded without one.

Identity: the source identifier (instance or cluster) and the category.

Severity: failure critical, failover and low storage high, maintenance low.

Resolve: never — RDS events report occurrences; "failover completed"
(RDS-EVENT-0049, RDS-EVENT-0071) resolves the failover incident. When no
failover incident is open (the "started" event was missed or filtered out), the
completion still leaves a record (``Alert.record_if_none_open``): a resolved
incident with its card and, in prod, a ticket for the post-incident review.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from handlers.awsevents import envelope, field, ignored_alert, make_alert, text
from handlers.base import Inbound
from opsbot.core.alert import Alert, AlertStatus, Severity

CATEGORY_SEVERITY = {
    "failure": Severity.CRITICAL,
    "failover": Severity.HIGH,
    "low storage": Severity.HIGH,
    "maintenance": Severity.LOW,
}
FAILOVER_COMPLETED = frozenset({"RDS-EVENT-0049", "RDS-EVENT-0071"})


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one RDS event of an actionable category."""
    env = envelope(event, inbound)
    detail = env.detail
    source_id = text(detail, "SourceIdentifier", limit=200)
    if not source_id:
        raise ValueError("RDS event without a SourceIdentifier")
    category = actionable_category(field(detail, "EventCategories"))
    event_id = text(detail, "EventID", limit=40)
    if category is None:
        return [ignored_alert(env, f"RDS event {event_id or 'of an ignored category'}")]
    resolved = category == "failover" and event_id in FAILOVER_COMPLETED
    message = text(detail, "Message", limit=1000)
    alert = make_alert(
        env,
        identity=(source_id, category),
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        severity=CATEGORY_SEVERITY[category],
        title=f"RDS {category} on {source_id}: {message}",
        summary=message,
        resource=text(detail, "SourceArn", limit=512) or source_id,
        labels={
            "event_id": event_id,
            "category": category,
            "source_type": text(detail, "SourceType", limit=40),
        },
    )
    return [replace(alert, record_if_none_open=resolved)]


def actionable_category(categories: object) -> str | None:
    """Return the most severe actionable category of the event, or None."""
    names = categories if isinstance(categories, list) else [categories]
    found = {text([n], 0, limit=60).lower() for n in names}
    return next((c for c in CATEGORY_SEVERITY if c in found), None)
