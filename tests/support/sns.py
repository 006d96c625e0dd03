"""SNS helpers: the documented CloudWatch alarm shape, and signed deliveries to POST /sns."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient

from opsbot.sns.sign import LocalSigner
from tests.support.clock import Clock

TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-alarms"


def alarm_message(
    name: str = "High-CPU",
    state: str = "ALARM",
    *,
    old: str = "OK",
    account: str = "111122223333",
    region: str = "us-east-1",
    when: datetime | None = None,
    description: str = "",
) -> str:
    """Return a CloudWatch alarm notification as SNS carries it (the documented shape)."""
    stamp = (when or datetime(2026, 11, 29, 8, 0, tzinfo=UTC)).strftime(
        "%Y-%m-%dT%H:%M:%S.000+0000"
    )
    return json.dumps(
        {
            "AlarmName": name,
            "AlarmDescription": description or None,
            "AWSAccountId": account,
            "AlarmConfigurationUpdatedTimestamp": "2026-11-01T10:00:00.000+0000",
            "NewStateValue": state,
            "NewStateReason": f"Threshold Crossed: 1 datapoint [91.0] was {state}",
            "StateChangeTime": stamp,
            "Region": "US East (N. Virginia)" if region == "us-east-1" else "EU (Ireland)",
            "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
            "OldStateValue": old,
            "OKActions": [],
            "AlarmActions": [f"arn:aws:sns:{region}:{account}:opsbot-alarms"],
            "InsufficientDataActions": [],
            "Trigger": {
                "MetricName": "CPUUtilization",
                "Namespace": "AWS/EC2",
                "StatisticType": "Statistic",
                "Statistic": "AVERAGE",
                "Unit": None,
                "Dimensions": [{"value": "i-0123456789abcdef0", "name": "InstanceId"}],
                "Period": 300,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 80.0,
                "TreatMissingData": "missing",
            },
        }
    )


def post_sns(client: FlaskClient, envelope: dict[str, Any]) -> Any:
    """POST an SNS envelope the way SNS does: text/plain, no JSON content type."""
    return client.post(
        "/sns",
        data=json.dumps(envelope),
        headers={"Content-Type": "text/plain; charset=UTF-8"},
    )


def notify(
    client: FlaskClient,
    signer: LocalSigner,
    clock: Clock,
    message: str,
    *,
    message_id: str | None = None,
    topic: str = TOPIC,
) -> Any:
    """Sign a notification stamped with the test clock and POST it."""
    envelope = signer.notification(
        message, topic_arn=topic, message_id=message_id or str(uuid.uuid4()), timestamp=clock.now
    )
    return post_sns(client, envelope)
