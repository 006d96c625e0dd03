"""CloudWatch alarm state changes, as EventBridge delivers them ("CloudWatch Alarm State Change").

Reads ``detail.alarmName``, ``state`` and ``previousState`` (``value``,
``reason``, ``timestamp``) and ``configuration`` (``description``,
``metrics``) —
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html.

Identity: exactly that of ``handlers.cloudwatch`` for the SNS form of the
same alarm — ``make_fingerprint("aws.cloudwatch", account, region, alarm
name)`` with the event's ``account`` and ``region`` — so a team that routes
one alarm both ways gets one incident.

Severity: as ``handlers.cloudwatch`` — an explicit token in the alarm name,
then in the description, else high; INSUFFICIENT_DATA not after ALARM is low.

Resolve: as ``handlers.cloudwatch`` — OK resolves, ALARM fires,
INSUFFICIENT_DATA fires.
"""

from __future__ import annotations

from typing import Any

from handlers import cloudwatch
from handlers.awsevents import envelope, field, make_alert, text
from handlers.base import Inbound, bound, text_of
from handlers.regions import alarm_console_url
from opsbot.core.alert import Alert


def parse(event: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one alarm state change; raise ValueError if it is not one."""
    env = envelope(event, inbound)
    detail = env.detail
    # Exactly as handlers.cloudwatch reads AlarmName, so both forms share the identity.
    name = text_of(field(detail, "alarmName")).strip()
    state = text(detail, "state", "value", limit=40).upper()
    if not name or state not in cloudwatch.STATE_TO_STATUS:
        raise ValueError(f"not an alarm state change (state {state[:40]!r})")
    like_sns = {
        "OldStateValue": text(detail, "previousState", "value", limit=40),
        "AlarmDescription": text(detail, "configuration", "description", limit=1000),
    }
    status, severity = cloudwatch.decide(like_sns, name, state)
    resource = first_dimension(detail) or name
    return [
        make_alert(
            env,
            identity=(name,),
            status=status,
            severity=severity,
            title=cloudwatch.make_title(state, name, resource, env.account, env.region),
            summary=bound(text(detail, "state", "reason", limit=4000), cloudwatch.SUMMARY_LIMIT),
            resource=resource,
            alarm_name=name,
            labels={"alarm_name": name, "state": state, "delivery": "eventbridge"},
            console_url=alarm_console_url(env.region, name),
        )
    ]


def first_dimension(detail: Any) -> str:
    """Return the value of the first dimension of the first metric, or ""."""
    dimensions = field(detail, "configuration", "metrics", 0, "metricStat", "metric", "dimensions")
    if isinstance(dimensions, dict) and dimensions:
        return text([next(iter(dimensions.values()))], 0, limit=255)
    return ""
