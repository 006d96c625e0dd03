"""CodePipeline manual approvals end to end: SNS or EventBridge in, buttons, PutApprovalResult.

The message formats are AWS's: "JSON data format for manual approval
notifications" (https://docs.aws.amazon.com/codepipeline/latest/userguide/
approvals-json-format.html) and the "CodePipeline Action Execution State
Change" event (https://docs.aws.amazon.com/codepipeline/latest/userguide/
detect-state-changes-cloudwatch-events.html). boto3 talks real HTTP to the
CodePipeline stand-in (tests/fakes/codepipeline_api.py) and to moto for STS;
slack_sdk and Bolt to the fake Slack.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from opsbot.approvals.jobs import expire_requests
from opsbot.approvals.pipelines import ApprovalIntake, CodePipelineApprovals
from opsbot.db.models import AlertRow, Approval, AuditEntry, Incident, JobCursor
from tests.approvals.conftest import NONPROD, PROD
from tests.fakes.codepipeline_api import FakeCodePipeline
from tests.fakes.slack_api import TEAM_ID, FakeSlack
from tests.support.outbox import drain
from tests.support.slack import button_body, ops, signed_post
from tests.support.sns import alarm_message, notify

TOPIC = f"arn:aws:sns:us-east-1:{PROD}:pipeline-approvals"
NAMES = ("deploy-web", "Prod", "ManualApproval")


def notification(token: str, expires: str = "2026-12-06T08:00Z", region: str = "us-east-1") -> str:
    """Return an approval notification in AWS's documented JSON format."""
    pipeline, stage, action = NAMES
    console = f"https://console.aws.amazon.com/codepipeline/home?region={region}#/view/{pipeline}"
    return json.dumps({
        "region": region,
        "consoleLink": console,
        "approval": {
            "pipelineName": pipeline, "stageName": stage, "actionName": action,
            "token": token, "expires": expires,
            "externalEntityLink": "https://example.com/changes/42",
            "approvalReviewLink": f"{console}/{stage}/{action}/approve/{token}",
            "customData": "Release 42 <@channel>: review the canary first",
        },
    })  # fmt: skip


def action_event(state: str, account: str = PROD, execution: str = "") -> str:
    """Return a "CodePipeline Action Execution State Change" event of an Approval action."""
    pipeline, stage, action = NAMES
    return json.dumps({
        "version": "0", "id": f"evt-{state}", "source": "aws.codepipeline", "account": account,
        "detail-type": "CodePipeline Action Execution State Change",
        "time": "2026-11-29T08:00:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:codepipeline:us-east-1:{account}:{pipeline}"],
        "detail": {
            "pipeline": pipeline, "execution-id": execution, "stage": stage, "action": action,
            "state": state, "region": "us-east-1",
            "type": {"owner": "AWS", "provider": "Manual", "category": "Approval", "version": "1"},
            "version": 1,
        },
    })  # fmt: skip


def intake(rt: Any) -> int:
    return ApprovalIntake(rt, CodePipelineApprovals(rt.policy.accounts)).run_once()


def the_request(rt: Any) -> Approval:
    with rt.sessions() as s:
        row = s.execute(select(Approval)).scalar_one()
        s.expunge(row)
        return row


def audits(rt: Any, approval_id: int) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(AuditEntry)
            .where(AuditEntry.subject_type == "approval", AuditEntry.subject_id == str(approval_id))
            .order_by(AuditEntry.id)
        ).scalars()
        return [(r.actor, r.action) for r in rows]


def deliver(rt: Any, clock: Any) -> None:
    for _ in range(4):  # one message a second per channel: let the clock pass
        drain(rt)
        clock.advance(seconds=2)


def message(fake: FakeSlack, approval: Approval) -> Any:
    [found] = [m for m in fake.cards() if m.ts == approval.slack_ts]
    return found


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def press(client: Any, fake: FakeSlack, action_id: str, value: str, user: str) -> Any:
    response = signed_post(client, button_body(fake, action_id, value, user=user))
    assert response.status_code == 200
    return response


def test_a_prod_approval_needs_a_second_person_and_calls_aws_once(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)  # started by jane, who is U0ADMIN in Slack
    reply = notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    assert reply.status_code == 200
    incident_id = reply.json["alerts"][0]["incident_id"]
    assert intake(rt) == 1
    deliver(rt, clock)
    request = the_request(rt)
    assert (request.kind, request.environment, request.level) == ("codepipeline", "prod", "other")
    assert request.requester == "jane (U0ADMIN)" and request.incident_id == incident_id
    posted = message(fake, request)
    assert posted.channel == "C0OPS"
    assert action_ids(posted.blocks) == ["approval_approve", "approval_deny"]
    shown = json.dumps(posted.blocks)
    for fact in (PROD, "(prod)", "jane (U0ADMIN)", "not the requester", "Expires", "deploy-web"):
        assert fact in shown
    assert "&lt;@channel&gt;" in shown and "<@channel>" not in shown  # customData is inert

    press(client, fake, "approval_approve", str(request.id), user="U0ADMIN")  # the requester
    assert the_request(rt).state == "pending"
    assert ("ada (U0ADMIN)", "approval.refused") in audits(rt, request.id)
    assert "requester cannot approve" in fake.responses[-1]["text"]

    press(client, fake, "approval_approve", str(request.id), user="U0GROUPIE")
    deliver(rt, clock)
    press(client, fake, "approval_approve", str(request.id), user="U0GROUPIE")  # twice
    deliver(rt, clock)
    [put] = pipelines.calls("PutApprovalResult")
    assert put["token"] == approval.token
    assert put["result"]["status"] == "Approved"
    assert put["result"]["summary"].startswith(
        f"Approved by gus (U0GROUPIE) in opsbot (approval A{request.id})"
    )
    assert (put["pipelineName"], put["stageName"], put["actionName"]) == NAMES
    assert approval.status == "Succeeded"
    done = the_request(rt)
    assert done.state == "approved" and done.details["result_sent_at"]
    updated = message(fake, done)
    assert updated.updates >= 1 and action_ids(updated.blocks) == []
    assert "Approved by gus (U0GROUPIE)" in json.dumps(updated.blocks)
    assert [a for _, a in audits(rt, request.id)] == [
        "approval.requested", "approval.refused", "approval.approved", "approval.result_sent",
        "approval.refused",
    ]  # fmt: skip
    with rt.sessions() as s:
        assert s.get(Incident, incident_id).status == "resolved"


def test_the_eventbridge_form_gets_its_token_and_a_console_decision_closes_it(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    execution = pipelines.pipelines[NAMES[0]].execution_id
    notify(client, signer, clock, action_event("STARTED", execution=execution))
    assert intake(rt) == 1
    request = the_request(rt)
    assert request.details["token"] == approval.token  # from GetPipelineState
    assert [c["name"] for c in pipelines.calls("GetPipelineState")] == [NAMES[0]]
    deliver(rt, clock)
    pipelines.decide_in_console(*NAMES, "Succeeded")
    press(client, fake, "approval_approve", str(request.id), user="U0GROUPIE")
    deliver(rt, clock)
    closed = the_request(rt)
    assert closed.state == "closed" and "already decided" in closed.reason
    assert "Closed" in json.dumps(message(fake, closed).blocks)
    assert ("opsbot", "approval.closed") in audits(rt, request.id)
    assert len(pipelines.calls("PutApprovalResult")) == 1


def test_an_approval_action_that_ended_in_the_console_closes_the_request(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    intake(rt)
    deliver(rt, clock)
    notify(client, signer, clock, action_event("FAILED"))  # rejected in the console
    assert intake(rt) == 1
    deliver(rt, clock)
    closed = the_request(rt)
    assert closed.state == "closed" and "console" in closed.reason
    assert action_ids(message(fake, closed).blocks) == []
    press(client, fake, "approval_approve", str(closed.id), user="U0GROUPIE")
    assert "already closed" in fake.responses[-1]["text"]
    assert pipelines.calls("PutApprovalResult") == []


def test_an_unanswered_request_expires_and_its_message_says_so(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    expires = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    reply = notify(client, signer, clock, notification(approval.token, expires), topic=TOPIC)
    intake(rt)
    deliver(rt, clock)
    assert expire_requests(rt) == 0
    clock.advance(minutes=59)
    assert expire_requests(rt) == 0  # one minute before: still pending
    clock.advance(minutes=1)
    assert expire_requests(rt) == 1  # at the limit
    deliver(rt, clock)
    expired = the_request(rt)
    assert expired.state == "expired"
    assert ":hourglass: Expired" in json.dumps(message(fake, expired).blocks)
    assert ("opsbot", "approval.expired") in audits(rt, expired.id)
    with rt.sessions() as s:
        assert s.get(Incident, reply.json["alerts"][0]["incident_id"]).status == "resolved"
    press(client, fake, "approval_approve", str(expired.id), user="U0GROUPIE")
    assert pipelines.calls("PutApprovalResult") == []


def test_deny_asks_for_a_reason_in_a_modal_and_rejects_in_aws(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    intake(rt)
    request = the_request(rt)
    press(client, fake, "approval_deny", str(request.id), user="U0GROUPIE")
    [opened] = fake.called("views.open")
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    assert view["callback_id"] == "approval_deny_reason"
    assert view["private_metadata"] == str(request.id)
    assert the_request(rt).state == "pending"  # nothing decided before the reason
    response = signed_post(client, view_submission(view, "canary is red", "U0GROUPIE"))
    assert response.status_code == 200
    deliver(rt, clock)
    denied = the_request(rt)
    assert (denied.state, denied.reason) == ("denied", "canary is red")
    [put] = pipelines.calls("PutApprovalResult")
    assert put["result"]["status"] == "Rejected" and put["result"]["summary"].endswith(
        ": canary is red"
    )
    assert approval.status == "Failed"


def test_the_command_form_obeys_the_same_policy(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    intake(rt)
    request = the_request(rt)
    own = ops(client, fake, f"approve A{request.id}", user="U0ADMIN")
    assert "requester cannot approve" in own["text"]
    viewer = ops(client, fake, f"approve A{request.id}", user="U0VIEW")
    assert viewer["text"].startswith("Refused: approve needs the approver role")
    denied = ops(client, fake, f"deny a{request.id} not this week", user="U0GROUPIE")
    assert denied["response_type"] == "in_channel" and "denied by gus" in denied["text"]
    assert the_request(rt).reason == "not this week"
    assert "not an approval number" in ops(client, fake, "approve Ax", user="U0GROUPIE")["text"]
    assert [a for _, a in audits(rt, request.id)] == [
        "approval.requested", "approval.refused", "approval.denied",
    ]  # fmt: skip


def test_a_nonprod_pipeline_needs_one_approver_who_may_be_the_requester(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    topic = f"arn:aws:sns:us-east-1:{NONPROD}:pipeline-approvals"
    notify(client, signer, clock, notification(approval.token), topic=topic)
    intake(rt)
    request = the_request(rt)
    assert (request.environment, request.level) == ("nonprod", "one")
    press(client, fake, "approval_approve", str(request.id), user="U0ADMIN")
    deliver(rt, clock)
    assert the_request(rt).state == "approved"
    assert len(pipelines.calls("PutApprovalResult")) == 1


def test_throttled_lookups_wait_for_the_next_run(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    pipelines.add_approval(*NAMES)
    notify(client, signer, clock, action_event("STARTED"))
    pipelines.throttle["GetPipelineState"] = 1
    assert intake(rt) == 0
    with rt.sessions() as s:
        assert s.execute(select(Approval)).first() is None
    assert intake(rt) == 1  # the cursor did not move past it


def view_submission(view: dict[str, Any], reason: str, user: str) -> str:
    """Return a view_submission payload for the reason modal, in Slack's documented shape."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "opsbot-test"},
        "user": {"id": user, "username": "gus", "team_id": TEAM_ID},
        "api_app_id": "A0OPSBOT",
        "trigger_id": "9.9.view",
        "view": {
            **view, "id": "V0VIEW", "type": "modal", "team_id": TEAM_ID, "hash": "1.abc",
            "state": {"values": {"reason": {"reason_input": {
                "type": "plain_text_input", "value": reason}}}},
        },
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)})


def test_the_intake_cursor_passes_other_alerts_once_they_settled(
    rt, client, signer, clock, fake, pipelines: FakeCodePipeline
) -> None:
    notify(client, signer, clock, alarm_message(account=PROD))  # not CodePipeline
    assert intake(rt) == 0 and cursor(rt) is None  # too fresh to pass
    clock.advance(minutes=5, seconds=1)
    assert intake(rt) == 0
    with rt.sessions() as s:
        newest = s.execute(select(func.max(AlertRow.id))).scalar()
    assert cursor(rt) == newest
    approval = pipelines.add_approval(*NAMES)
    notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    assert intake(rt) == 1 and cursor(rt) == newest + 1
    assert intake(rt) == 0  # read once


def cursor(rt: Any) -> int | None:
    with rt.sessions() as s:
        found = s.get(JobCursor, "codepipeline_approvals")
        return found.position if found else None
