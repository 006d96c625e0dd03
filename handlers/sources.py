"""The per-source EventBridge handlers, keyed by event ``source`` for ``SOURCE_HANDLERS``.

Several services publish more than one detail-type under one source, and
CloudTrail publishes API calls under the source of the called service
("aws.ec2", "aws.iam", …). ``source_handlers`` therefore returns, per source,
a small router that picks the handler by detail-type and hands anything it
does not know to the generic EventBridge alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers import (
    acm,
    cloudtrail,
    cloudwatch_events,
    codepipeline,
    config_rules,
    cost,
    ec2,
    ecs,
    guardduty,
    health,
    inspector,
    rds,
    securityhub,
    ssm,
)
from handlers.base import EventHandler, Inbound, text_of
from opsbot.core.alert import Alert

CLOUDTRAIL_TYPES = frozenset({"AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"})
# source -> {detail-type: handler}; CloudTrail detail-types are added for every source.
BY_SOURCE: dict[str, dict[str, EventHandler]] = {
    "aws.guardduty": {"GuardDuty Finding": guardduty.parse},
    "aws.securityhub": {"Security Hub Findings - Imported": securityhub.parse},
    "aws.inspector2": {"Inspector2 Finding": inspector.parse},
    "aws.health": {"AWS Health Event": health.parse},
    "aws.config": {"Config Rules Compliance Change": config_rules.parse},
    "aws.ecs": {
        "ECS Task State Change": ecs.parse,
        "ECS Deployment State Change": ecs.parse,
    },
    "aws.codepipeline": {
        "CodePipeline Pipeline Execution State Change": codepipeline.parse,
        "CodePipeline Stage Execution State Change": codepipeline.parse,
        "CodePipeline Action Execution State Change": codepipeline.parse,
    },
    "aws.ec2": {"EC2 Instance State-change Notification": ec2.parse},
    "aws.rds": {"RDS DB Instance Event": rds.parse, "RDS DB Cluster Event": rds.parse},
    "aws.ce": {cost.DETAIL_TYPE: cost.parse_event},
    "aws.acm": {
        "ACM Certificate Approaching Expiration": acm.parse,
        "ACM Certificate Expired": acm.parse,
    },
    "aws.ssm": {
        "EC2 Command Status-change Notification": ssm.parse,
        "EC2 Automation Execution Status-change Notification": ssm.parse,
        "Configuration Compliance State Change": ssm.parse,
    },
    "aws.cloudwatch": {"CloudWatch Alarm State Change": cloudwatch_events.parse},
    "aws.iam": {},
    "aws.s3": {},
    "aws.kms": {},
    "aws.cloudtrail": {},
    "aws.signin": {},
    "aws.sts": {},
}


class Router:
    """Picks a source's handler by detail-type; CloudTrail events go to ``cloudtrail``."""

    def __init__(self, by_type: Mapping[str, EventHandler], fallback: EventHandler) -> None:
        self.by_type = dict(by_type)
        self.fallback = fallback

    def __call__(self, event: dict[str, Any], inbound: Inbound) -> list[Alert]:
        detail_type = text_of(event.get("detail-type")).strip()
        if detail_type in CLOUDTRAIL_TYPES:
            return cloudtrail.parse(event, inbound)
        return self.by_type.get(detail_type, self.fallback)(event, inbound)


def source_handlers(fallback: EventHandler) -> dict[str, EventHandler]:
    """Return the handler of every known source, sending unknown detail-types to fallback."""
    return {source: Router(by_type, fallback) for source, by_type in BY_SOURCE.items()}
