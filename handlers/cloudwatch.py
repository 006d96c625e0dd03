"""CloudWatch alarm notifications, as SNS delivers them.

Reads the JSON message CloudWatch publishes to an SNS topic when an alarm
changes state — metric, metric-math, anomaly-detection and composite alarms
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
``AlarmName``, ``NewStateValue``, ``OldStateValue``, ``NewStateReason``,
``StateChangeTime``, ``Region`` (a display name), ``AWSAccountId``,
``AlarmArn`` (absent in older messages), ``Trigger`` (metric alarms) or
``AlarmRule`` and ``TriggeringChildren`` (composite alarms).

Identity: ``make_fingerprint("aws.cloudwatch", account, region, alarm name)``.
The EventBridge "CloudWatch Alarm State Change" handler must use exactly the
same parts, so that both routes of one alarm meet in one incident. The account
is ``AWSAccountId`` (when that is not a 12-digit id: the account of ``AlarmArn``
or of the SNS topic); the region code comes from ``AlarmArn``, else from the
``Region`` display name (``REGION_NAMES``), else from the SNS topic ARN.

Severity: the first explicit token in the alarm name, then in its description —
``[critical]``, ``sev:high``, ``severity=medium``, ``SEV2``, ``P1``..``P4``
(critical..low) — else high.

Resolve: OK resolves; ALARM fires. INSUFFICIENT_DATA after ALARM keeps firing
at the same severity (still broken, and now unobserved); after any other state
it fires at low severity (the metric went missing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from handlers.base import (
    Inbound,
    account_id,
    bound,
    parse_arn,
    parse_time,
    region_code,
    text_of,
)
from handlers.regions import alarm_console_url, region_from_name
from opsbot.core.alert import Alert, AlertStatus, Severity, make_fingerprint

SOURCE = "aws.cloudwatch"
DEFAULT_SEVERITY = Severity.HIGH
MISSING_DATA_SEVERITY = Severity.LOW
STATE_TO_STATUS = {
    "ALARM": AlertStatus.FIRING,
    "OK": AlertStatus.RESOLVED,
    "INSUFFICIENT_DATA": AlertStatus.FIRING,
}
SEVERITY_TOKENS = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.INFO,
    "1": Severity.CRITICAL,
    "2": Severity.HIGH,
    "3": Severity.MEDIUM,
    "4": Severity.LOW,
}
# "(?!\.\w)" keeps instance types such as "p3.2xlarge" from reading as P3.
SEVERITY_TOKEN_RE = re.compile(
    r"\[(?P<bracketed>critical|high|medium|low|info)\]"
    r"|\b(?:sev|severity)[\s:=_-]*(?P<keyed>critical|high|medium|low|info|[1-4])\b"
    r"|\bP(?P<priority>[1-4])\b(?!\.\w)",
    re.IGNORECASE,
)
ANOMALY_BAND = "ANOMALY_DETECTION_BAND"
TITLE_LIMIT = 200
SUMMARY_LIMIT = 4000
LABEL_LIMIT = 500


@dataclass(frozen=True)
class Metric:
    """The metric an alarm watches, as far as the notification tells."""

    namespace: str = ""
    name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()


def parse(message: dict[str, Any], inbound: Inbound) -> list[Alert]:
    """Return the alert for one alarm notification; raise ValueError if it is not one."""
    alarm_name = text_of(message.get("AlarmName")).strip()
    state = text_of(message.get("NewStateValue")).strip().upper()
    if not alarm_name or state not in STATE_TO_STATUS:
        raise ValueError(f"not an alarm state change (state {state[:40]!r})")
    account, region = find_account(message, inbound), find_region(message, inbound)
    metric = watched_metric(message.get("Trigger"))
    resource = metric.dimensions[0][1] if metric.dimensions else alarm_name
    status, severity = decide(message, alarm_name, state)
    return [
        Alert(
            fingerprint=make_fingerprint(SOURCE, account, region, alarm_name),
            status=status,
            severity=severity,
            source=SOURCE,
            title=make_title(state, alarm_name, resource, account, region),
            summary=bound(text_of(message.get("NewStateReason")), SUMMARY_LIMIT),
            account_id=account,
            region=region,
            resource=resource,
            alarm_name=alarm_name,
            labels=make_labels(message, alarm_name, metric, state),
            console_url=alarm_console_url(region, alarm_name),
            occurred_at=parse_time(message.get("StateChangeTime")) or inbound.received_at,
            raw=message,
        )
    ]


def find_account(message: dict[str, Any], inbound: Inbound) -> str:
    """Return the alarm's account id: AWSAccountId, else the alarm ARN's, else the topic's."""
    given = text_of(message.get("AWSAccountId")).strip()
    return (
        account_id(given)
        or account_id(parse_arn(message.get("AlarmArn")).account)
        or account_id(parse_arn(inbound.topic_arn).account)
        or given
    )


def find_region(message: dict[str, Any], inbound: Inbound) -> str:
    """Return the alarm's region code: from AlarmArn, the Region name, or the topic ARN."""
    return (
        region_code(parse_arn(message.get("AlarmArn")).region)
        or region_from_name(text_of(message.get("Region")))
        or region_code(parse_arn(inbound.topic_arn).region)
    )


def decide(message: dict[str, Any], alarm_name: str, state: str) -> tuple[AlertStatus, Severity]:
    """Return the status and severity for a new alarm state."""
    old_state = text_of(message.get("OldStateValue")).strip().upper()
    if state == "INSUFFICIENT_DATA" and old_state != "ALARM":
        return AlertStatus.FIRING, MISSING_DATA_SEVERITY
    description = text_of(message.get("AlarmDescription"))
    explicit = token_severity(alarm_name) or token_severity(description)
    return STATE_TO_STATUS[state], explicit or DEFAULT_SEVERITY


def token_severity(text: str) -> Severity | None:
    """Return the severity an explicit token in the text names, or None."""
    match = SEVERITY_TOKEN_RE.search(text)
    if match is None:
        return None
    token = match["bracketed"] or match["keyed"] or match["priority"]
    return SEVERITY_TOKENS[token.lower()]


def classify(message: dict[str, Any]) -> str:
    """Return the alarm type: metric, metric_math, anomaly_detection or composite."""
    trigger = message.get("Trigger")
    if not isinstance(trigger, dict):
        return "composite" if "AlarmRule" in message else "metric"
    queries = [q for q in as_list(trigger.get("Metrics")) if isinstance(q, dict)]
    expressions = (text_of(q.get("Expression")) for q in queries)
    if text_of(trigger.get("ThresholdMetricId")) or any(ANOMALY_BAND in e for e in expressions):
        return "anomaly_detection"
    return "metric_math" if queries else "metric"


def watched_metric(trigger: object) -> Metric:
    """Return the alarm's metric: the Trigger itself, or the first metric of a math query."""
    if not isinstance(trigger, dict):
        return Metric()
    if "MetricName" in trigger or "Namespace" in trigger:
        return metric_of(trigger)
    for query in as_list(trigger.get("Metrics")):
        stat = query.get("MetricStat") if isinstance(query, dict) else None
        metric = stat.get("Metric") if isinstance(stat, dict) else None
        if isinstance(metric, dict):
            return metric_of(metric)
    return Metric()


def metric_of(metric: dict[str, Any]) -> Metric:
    """Return the Metric described by a Namespace/MetricName/Dimensions object."""
    return Metric(
        namespace=text_of(metric.get("Namespace")),
        name=text_of(metric.get("MetricName")),
        dimensions=dimensions_of(metric.get("Dimensions")),
    )


def dimensions_of(value: object) -> tuple[tuple[str, str], ...]:
    """Return (name, value) pairs from [{name, value}] (any key case) or a {name: value} map."""
    if isinstance(value, dict):
        pairs = [(name, val) for name, val in value.items()]
    else:
        pairs = [
            (item.get("name", item.get("Name")), item.get("value", item.get("Value")))
            for item in as_list(value)
            if isinstance(item, dict)
        ]
    found = ((text_of(name), text_of(val)) for name, val in pairs)
    return tuple((name, val) for name, val in found if name and val)


def make_title(state: str, alarm_name: str, resource: str, account: str, region: str) -> str:
    """Return a short title: "ALARM: High-CPU on i-0abc (account 111122223333, eu-west-1)"."""
    where = ", ".join(part for part in (account and f"account {account}", region) if part)
    on = f" on {bound(resource, 80)}" if resource != alarm_name else ""
    tail = f" ({where})" if where else ""
    return bound(f"{state}: {bound(alarm_name, 100)}{on}{tail}", TITLE_LIMIT)


def make_labels(
    message: dict[str, Any], alarm_name: str, metric: Metric, state: str
) -> dict[str, str]:
    """Return the labels rules can match on, without empty values."""
    labels = {
        "alarm_name": alarm_name,
        "alarm_type": classify(message),
        "namespace": metric.namespace,
        "metric_name": metric.name,
        "state": state,
        "old_state": text_of(message.get("OldStateValue")).strip().upper(),
        "alarm_rule": text_of(message.get("AlarmRule")),
        "triggering_alarms": ",".join(triggering_alarms(message)),
    }
    labels.update((f"dim.{name}", value) for name, value in metric.dimensions)
    return {bound(key, 200): bound(value, LABEL_LIMIT) for key, value in labels.items() if value}


def triggering_alarms(message: dict[str, Any]) -> list[str]:
    """Return the names of the child alarms that moved a composite alarm."""
    children = (c for c in as_list(message.get("TriggeringChildren")) if isinstance(c, dict))
    resources = (parse_arn(child.get("Arn")).resource for child in children)
    return [resource.removeprefix("alarm:") for resource in resources if resource]


def as_list(value: object) -> list[Any]:
    """Return the value when it is a list, else an empty list."""
    return value if isinstance(value, list) else []
