"""Runbook runs end to end: request, approval, SSM (stand-in over HTTP), polling, reporting."""

from __future__ import annotations

import pytest

from opsbot.db.models import Approval, AuditEntry
from opsbot.db.session import transaction
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runbooks.jobs import build_runner
from tests.fakes.ssm_api import Script
from tests.support.runbooks import (
    CONFIG,
    INSTANCE,
    NONPROD,
    PROD,
    audit_actions,
    load_run,
    outbox_rows,
)
from tests.support.sns import alarm_message, notify

RESTART = "AWS-RestartEC2Instance"


@pytest.fixture
def app(settings, make_app, config_path, aws_env):
    config_path.write_text(CONFIG)
    return make_app(settings)


def open_incident(client, signer, clock, account: str) -> int:
    reply = notify(client, signer, clock, alarm_message(account=account))
    return int(reply.json["alerts"][0]["incident_id"])


def ask(rt, clock, incident_id: int, requester: str = "ana", runbook: str = "restart-instance"):
    req = service.RunRequest(runbook=runbook, requester=requester, incident_id=incident_id)
    with transaction(rt.sessions) as s:
        return service.request_run(s, catalogue_of(rt), rt.policy, req, now=clock.now).id


def drive(rt, clock, runner, times: int = 4) -> None:
    for _ in range(times):
        runner.run_once()
        clock.advance(seconds=15)


def test_nonprod_restart_is_approved_polled_to_success_and_reported(
    rt, client, signer, clock, fake_ssm
) -> None:
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.automation_scripts[RESTART] = Script(("Pending", "InProgress", "Success"), "done")
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident)
    assert load_run(rt, run_id).state == "awaiting_approval"  # nonprod: one approver
    with transaction(rt.sessions) as s:
        service.approve(s, run_id, approver="ana", now=clock.now)  # requester may, in nonprod
    runner = build_runner(rt)
    drive(rt, clock, runner)
    run = load_run(rt, run_id)
    assert (run.state, run.approver, run.account_id) == ("succeeded", "ana", NONPROD)
    assert run.parameters == {"InstanceId": INSTANCE} and "stdout: done" in run.output
    started = fake_ssm.calls("StartAutomationExecution")
    assert len(started) == 1
    assert started[0]["Parameters"] == {"InstanceId": [INSTANCE]}
    assert started[0]["DocumentName"] == RESTART
    assert [a for _, a in audit_actions(rt, run_id)] == [
        "run.requested", "run.approved", "run.started", "run.succeeded",
    ]  # fmt: skip
    sent = outbox_rows(rt, incident)
    assert any(k == "thread" and "succeeded" in p["text"] for t, k, p in sent if t == "slack")
    assert any(k == "comment" and "succeeded" in p["text"] for t, k, p in sent if t == "jira")
    body = client.get(f"/api/incidents/{incident}").json
    assert body["runs"][0]["state"] == "succeeded"
    assert body["runs"][0]["execution_id"] == run.execution_id


def test_role_session_carries_the_requester(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.automation_scripts[RESTART] = Script(("Success",))
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident, requester="Ana Lopez (U0ANA)")
    with transaction(rt.sessions) as s:
        service.approve(s, run_id, approver="bob", now=clock.now)
    drive(rt, clock, build_runner(rt), 2)
    assert load_run(rt, run_id).state == "succeeded"


def test_prod_needs_another_approver(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.automation_scripts[RESTART] = Script(("InProgress", "Success"))
    incident = open_incident(client, signer, clock, PROD)
    run_id = ask(rt, clock, incident, requester="ana")
    runner = build_runner(rt)
    drive(rt, clock, runner, 2)
    assert fake_ssm.calls("StartAutomationExecution") == []
    with transaction(rt.sessions) as s, pytest.raises(service.RunError, match="requester"):
        service.approve(s, run_id, approver="ana", now=clock.now)
    assert load_run(rt, run_id).state == "awaiting_approval"
    assert ("ana", "run.approval_refused") in audit_actions(rt, run_id)
    # the request is an approval with buttons (opsbot.approvals), not a plain notice
    requests = [p for t, k, p in outbox_rows(rt) if (t, k) == ("slack", "approval")]
    assert len(requests) == 1
    with rt.sessions() as s:
        request = s.get(Approval, requests[0]["approval_id"])
        assert request is not None
        assert (request.run_id, request.level, request.state) == (run_id, "other", "pending")
        assert "refused" in [a.action.split(".")[-1] for a in s.query(AuditEntry).filter_by(
            subject_type="approval", subject_id=str(request.id))]  # fmt: skip
    with transaction(rt.sessions) as s:
        service.approve(s, run_id, approver="bob", now=clock.now)
    drive(rt, clock, runner, 3)
    assert load_run(rt, run_id).state == "succeeded"


def test_denied_and_expired_runs_send_nothing(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    incident = open_incident(client, signer, clock, PROD)
    denied, expiring = ask(rt, clock, incident), ask(rt, clock, incident)
    with transaction(rt.sessions) as s:
        service.deny(s, denied, approver="bob", now=clock.now, reason="not now")
    clock.advance(minutes=31)
    runner = build_runner(rt)
    drive(rt, clock, runner, 2)
    assert load_run(rt, denied).state == "denied"
    assert load_run(rt, expiring).state == "expired"
    with transaction(rt.sessions) as s, pytest.raises(service.RunError, match="expired"):
        service.approve(s, expiring, approver="bob", now=clock.now)
    assert fake_ssm.calls("StartAutomationExecution") == []
    assert ("opsbot", "run.expired") in audit_actions(rt, expiring)


def test_failing_command_is_reported_with_its_output(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("InProgress", "Failed"), "", "rm: denied"))
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident, runbook="collect-diagnostics")  # no approval in nonprod
    drive(rt, clock, build_runner(rt), 4)
    run = load_run(rt, run_id)
    assert run.state == "failed" and "Failed" in run.reason and "rm: denied" in run.output
    sent = fake_ssm.calls("SendCommand")[0]
    assert sent["InstanceIds"] == [INSTANCE] and sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Parameters"]["commands"][-1] == "dmesg | tail -n 50"
    assert (sent["MaxConcurrency"], sent["MaxErrors"], sent["TimeoutSeconds"]) == ("1", "0", 300)
    notes = [p["text"] for t, k, p in outbox_rows(rt, incident) if (t, k) == ("jira", "comment")]
    assert any("failed" in n and "rm: denied" in n for n in notes)


def test_a_command_past_its_timeout_is_cancelled_in_ssm(rt, client, signer, clock, fake_ssm):
    fake_ssm.add_instance(INSTANCE, Script(("Pending", "InProgress")))  # never finishes
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident, runbook="collect-diagnostics")
    runner = build_runner(rt)
    runner.run_once()
    for _ in range(3):
        clock.advance(seconds=60)
        runner.run_once()
    assert load_run(rt, run_id).state == "running"
    clock.advance(minutes=5)
    runner.run_once()
    run = load_run(rt, run_id)
    assert run.state == "timed_out" and "cancelled in SSM" in run.reason
    assert [c["CommandId"] for c in fake_ssm.calls("CancelCommand")] == [run.command_id]


def test_throttling_is_retried_with_backoff(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("Success",)))
    fake_ssm.throttle["SendCommand"] = 2
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident, runbook="collect-diagnostics")
    runner = build_runner(rt)
    runner.run_once()
    run = load_run(rt, run_id)
    assert (run.state, run.attempts) == ("approved", 1) and run.next_check_at > clock.now
    drive(rt, clock, runner, 8)
    run = load_run(rt, run_id)
    assert run.state == "succeeded" and len(fake_ssm.calls("SendCommand")) == 3


def test_access_denied_and_unknown_instance_fail_the_run_clearly(
    rt, client, signer, clock, fake_ssm
) -> None:
    incident = open_incident(client, signer, clock, NONPROD)
    unknown = ask(rt, clock, incident, runbook="collect-diagnostics")  # instance not managed
    drive(rt, clock, build_runner(rt), 1)
    run = load_run(rt, unknown)
    assert run.state == "failed" and "InvalidInstanceId" in run.reason
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.deny.add("SendCommand")
    denied = ask(rt, clock, incident, runbook="collect-diagnostics")
    drive(rt, clock, build_runner(rt), 1)
    assert "AccessDeniedException" in load_run(rt, denied).reason


def test_a_dry_run_renders_and_calls_nothing(rt, client, signer, clock, fake_ssm) -> None:
    incident = open_incident(client, signer, clock, PROD)
    req = service.RunRequest(
        runbook="free-disk-space", requester="ana", incident_id=incident, params={"KeepDays": 3}
    )
    with transaction(rt.sessions) as s:
        seen = service.preview(s, catalogue_of(rt), rt.policy, req)
    assert seen.instance_ids == [INSTANCE] and seen.approval == "other"
    assert "journalctl --vacuum-time=3d || true" in seen.document_parameters["commands"]
    assert fake_ssm.requests == [] and client.get(f"/api/incidents/{incident}").json["runs"] == []


def test_bad_parameters_are_refused_before_anything_is_stored(rt, client, signer, clock):
    incident = open_incident(client, signer, clock, NONPROD)
    req = service.RunRequest(
        runbook="free-disk-space", requester="ana", incident_id=incident, params={"KeepDays": 900}
    )
    with transaction(rt.sessions) as s, pytest.raises(service.RunError, match="above the maximum"):
        service.request_run(s, catalogue_of(rt), rt.policy, req, now=clock.now)


def test_cancel_a_running_command(rt, client, signer, clock, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("Pending", "InProgress")))
    incident = open_incident(client, signer, clock, NONPROD)
    run_id = ask(rt, clock, incident, runbook="collect-diagnostics")
    runner = build_runner(rt)
    drive(rt, clock, runner, 2)
    with transaction(rt.sessions) as s:
        service.cancel(s, run_id, actor="ana", now=clock.now)
    drive(rt, clock, runner, 1)
    run = load_run(rt, run_id)
    assert run.state == "cancelled" and run.reason == "cancelled by ana"
    assert len(fake_ssm.calls("CancelCommand")) == 1
