"""CodePipeline manual approvals: the SNS notification and the Approval action's events."""

from __future__ import annotations

import json
from typing import Any

import pytest

import handlers
from handlers import Inbound
from opsbot.core.alert import AlertStatus, Severity

TOPIC = "arn:aws:sns:us-east-2:111122223333:approvals"
TOKEN = "0a1b2c3d-0000-4000-8000-123456789abc"
CONSOLE = "https://console.aws.amazon.com/codepipeline/home?region=us-east-2#/view/MyFirstPipeline"
# AWS's example ("JSON data format for manual approval notifications"), with a real token.
NOTIFICATION = {
    "region": "us-east-2",
    "consoleLink": CONSOLE,
    "approval": {
        "pipelineName": "MyFirstPipeline",
        "stageName": "MyApprovalStage",
        "actionName": "MyApprovalAction",
        "token": TOKEN,
        "expires": "2016-07-07T20:22Z",
        "externalEntityLink": "http://example.com",
        "approvalReviewLink": f"{CONSOLE}/MyApprovalStage/MyApprovalAction/approve/{TOKEN}",
        "customData": "Review the latest changes and approve or reject within seven days.",
    },
}  # fmt: skip


def event(state: str, category: str = "Approval") -> dict[str, Any]:
    return {
        "version": "0", "id": "e", "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline", "account": "111122223333", "time": "2026-11-29T08:00:00Z",
        "region": "us-east-2", "resources": [],
        "detail": {"pipeline": "MyFirstPipeline", "execution-id": "x-1",
                   "stage": "MyApprovalStage", "action": "MyApprovalAction", "state": state,
                   "type": {"owner": "AWS", "provider": "Manual", "category": category,
                            "version": "1"}},
    }  # fmt: skip


def parse(document: dict[str, Any], topic: str = TOPIC) -> Any:
    return handlers.parse(Inbound(text=json.dumps(document), topic_arn=topic))


def test_the_notification_is_a_pending_approval_in_the_topics_account() -> None:
    [alert] = parse(NOTIFICATION)
    assert (alert.source, alert.status, alert.severity) == (
        "aws.codepipeline", AlertStatus.FIRING, Severity.MEDIUM,
    )  # fmt: skip
    assert (alert.account_id, alert.region) == ("111122223333", "us-east-2")
    assert alert.labels["approval"] == "pending" and alert.labels["token"] == TOKEN
    assert alert.labels["expires"] == "2016-07-07T20:22:00+00:00"
    assert (
        alert.title
        == "CodePipeline MyFirstPipeline: approval needed at MyApprovalStage/MyApprovalAction"
    )
    assert alert.console_url == NOTIFICATION["consoleLink"]


def test_both_forms_are_one_incident_and_the_action_ending_resolves_it() -> None:
    [notified] = parse(NOTIFICATION)
    [started] = parse(event("STARTED"))
    assert started.fingerprint == notified.fingerprint
    assert "token" not in started.labels  # EventBridge carries none: GetPipelineState has it
    for state in ("SUCCEEDED", "FAILED", "ABANDONED", "CANCELED"):
        [ended] = parse(event(state))
        assert (ended.status, ended.labels["approval"]) == (AlertStatus.RESOLVED, "ended")
        assert ended.fingerprint == notified.fingerprint


def test_other_actions_and_odd_approvals_need_no_incident() -> None:
    [build] = parse(event("STARTED", category="Build"))
    [odd] = parse(event("SLEEPING"))
    for alert in (build, odd):
        assert alert.status is AlertStatus.RESOLVED and "approval" not in alert.labels


@pytest.mark.parametrize(
    "broken",
    [{**NOTIFICATION, "approval": "yes"},
     {**NOTIFICATION, "approval": {**NOTIFICATION["approval"], "stageName": ""}},
     {**NOTIFICATION, "approval": {**NOTIFICATION["approval"], "pipelineName": ["x"]}}],
)  # fmt: skip
def test_a_broken_notification_is_kept_as_a_generic_alert(broken) -> None:
    [alert] = parse(broken)
    assert alert.source != "aws.codepipeline" and "approval" not in alert.labels


def test_a_topic_that_is_no_arn_leaves_the_account_empty() -> None:
    [alert] = parse(NOTIFICATION, topic="not-an-arn")
    assert alert.account_id == "" and alert.region == "us-east-2"
