"""Runs and patch windows ask with button messages; a patch window's report is a ticket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from opsbot.approvals.jobs import expire_requests
from opsbot.db.models import Approval, AuditEntry, Incident, RunbookRun
from opsbot.db.session import transaction
from opsbot.jobs import run_singleton
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import catalogue_of
from opsbot.runbooks.jobs import build_runner
from opsbot.runbooks.patch_windows import tick
from opsbot.runbooks.ssm import SsmRunbooks
from tests.fakes.jira_api import FakeJira
from tests.fakes.jira_api import serve as serve_jira
from tests.fakes.slack_api import FakeSlack, serve
from tests.fakes.ssm_api import Script
from tests.support.jira import jira_settings
from tests.support.outbox import drain
from tests.support.runbooks import CONFIG, INSTANCE, PROD, load_run
from tests.support.slack import button_body, signed_post, slack_settings
from tests.support.sns import alarm_message, notify

ROLES = """
slack:
  roles: {admin: [U0ADMIN], approver: [U0GROUPIE], operator: [U0OPS]}
approvals: {channel: "#ops"}
"""
WINDOW = """
patch_windows:
  - {name: web-prod, cron: "0 3 * * SUN", timezone: UTC, duration: 2h, notice: 1h,
     account: prod-web, region: eu-west-1, targets: {PatchGroup: web}, operation: Install,
     channel: "#patching"}
"""
OPENS = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with serve_jira(FakeJira()) as served:
        yield served


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with serve(FakeSlack()) as running:
        yield running


@pytest.fixture
def app(settings, make_app, config_path, aws_env, fake, jira):
    config_path.write_text(CONFIG + ROLES + WINDOW)
    return make_app(slack_settings(jira_settings(settings, jira), fake))


def deliver(rt: Any, clock: Any) -> None:
    for _ in range(4):
        drain(rt)
        clock.advance(seconds=2)


def requests(rt: Any) -> list[Approval]:
    with rt.sessions() as s:
        rows = list(s.execute(select(Approval).order_by(Approval.id)).scalars())
        for row in rows:
            s.expunge(row)
        return rows


def buttons(fake: FakeSlack, ts: str | None) -> list[str]:
    [found] = [m for m in fake.cards() if m.ts == ts]
    return [e["action_id"] for b in found.blocks or [] if b["type"] == "actions"
            for e in b["elements"]]  # fmt: skip


def test_a_prod_run_asks_with_buttons_and_the_button_starts_it(
    rt, client, signer, clock, fake, fake_ssm
) -> None:
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.automation_scripts["AWS-RestartEC2Instance"] = Script(("InProgress", "Success"))
    reply = notify(client, signer, clock, alarm_message(account=PROD))
    incident = int(reply.json["alerts"][0]["incident_id"])
    req = service.RunRequest("restart-instance", "ada (U0ADMIN)", incident_id=incident)
    with transaction(rt.sessions) as s:
        run_id = service.request_run(s, catalogue_of(rt), rt.policy, req, now=clock.now).id
    deliver(rt, clock)
    [request] = requests(rt)
    assert (request.kind, request.run_id, request.level) == ("run", run_id, "other")
    assert request.expires_at == clock.now - timedelta(seconds=8) + timedelta(minutes=30)
    assert buttons(fake, request.slack_ts) == ["approval_approve", "approval_deny"]
    posted = [m for m in fake.cards("C0OPS") if m.ts == request.slack_ts]
    assert posted and "restart-instance" in json.dumps(posted[0].blocks)
    own = signed_post(
        client, button_body(fake, "approval_approve", str(request.id), user="U0ADMIN")
    )
    assert own.status_code == 200 and load_run(rt, run_id).state == "awaiting_approval"
    with rt.sessions() as s:  # the refusal is kept although the request's transaction rolled back
        refused = s.execute(select(AuditEntry.action).where(AuditEntry.actor == "ada (U0ADMIN)"))
        assert {"approval.refused", "run.approval_refused"} <= set(refused.scalars())
    signed_post(client, button_body(fake, "approval_approve", str(request.id), user="U0GROUPIE"))
    assert load_run(rt, run_id).state == "approved"
    runner = build_runner(rt)
    for _ in range(3):
        runner.run_once()
        clock.advance(seconds=15)
    assert load_run(rt, run_id).state == "succeeded"
    deliver(rt, clock)
    [decided] = requests(rt)
    assert (decided.state, decided.decider) == ("approved", "gus (U0GROUPIE)")
    assert buttons(fake, decided.slack_ts) == []


def test_run_requests_expire_with_their_run_and_old_commands_still_work(
    rt, client, signer, clock, fake, fake_ssm
) -> None:
    reply = notify(client, signer, clock, alarm_message(account=PROD))
    incident = int(reply.json["alerts"][0]["incident_id"])
    req = service.RunRequest("restart-instance", "ada (U0ADMIN)", incident_id=incident)
    with transaction(rt.sessions) as s:
        first = service.request_run(s, catalogue_of(rt), rt.policy, req, now=clock.now).id
        second = service.request_run(s, catalogue_of(rt), rt.policy, req, now=clock.now).id
    with transaction(rt.sessions) as s:  # the run's own command decides its request too
        service.deny(s, second, approver="gus (U0GROUPIE)", now=clock.now, reason="no")
    clock.advance(minutes=30)
    assert expire_requests(rt) == 1
    with transaction(rt.sessions) as s:
        service.expire_due(s, clock.now)
    states = {r.run_id: r.state for r in requests(rt)}
    assert states == {first: "expired", second: "denied"}
    assert load_run(rt, first).state == "expired"


def test_a_patch_window_asks_with_buttons_and_its_report_is_a_ticket(
    rt, client, clock, fake, fake_ssm, jira
) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("Success",)), PatchGroup="web")
    clock.now = OPENS - timedelta(minutes=30)
    job = tick(rt, SsmRunbooks(rt.policy.accounts))
    run_singleton(rt, "patch_windows", job)
    deliver(rt, clock)
    [request] = requests(rt)
    assert (request.kind, request.level, request.environment) == ("patch_window", "other", "prod")
    assert request.expires_at == OPENS  # no approval before the window opens, no install
    assert buttons(fake, request.slack_ts) == ["approval_approve", "approval_deny"]
    signed_post(client, button_body(fake, "approval_approve", str(request.id), user="U0GROUPIE"))
    clock.now = OPENS
    run_singleton(rt, "patch_windows", job)
    runner = build_runner(rt)
    for _ in range(3):
        runner.run_once()
        clock.advance(seconds=15)
    with rt.sessions() as s:
        run = s.execute(select(RunbookRun)).scalar_one()
        assert run.state == "succeeded"
        report = run.window["report"]
        incident = s.execute(select(Incident).where(Incident.source == "opsbot.patch_window"))
        found = incident.scalar_one()
        assert (found.status, found.account_id) == ("resolved", PROD)  # clean: a record
    deliver(rt, clock)
    [ticket] = [i for i in jira.created() if "web-prod" in i.fields["summary"]]
    assert report.splitlines()[1] in ticket.fields["description"]  # the per-instance line
    assert ticket.status() == "Done"
