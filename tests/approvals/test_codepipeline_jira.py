"""A pipeline approval on the incident's ticket: the request, the decision and the pipeline link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from opsbot import approvals
from tests.approvals.conftest import CONFIG
from tests.approvals.test_codepipeline import NAMES, TOPIC, deliver, intake, notification, press
from tests.approvals.test_codepipeline import the_request as request_of
from tests.fakes.codepipeline_api import FakeCodePipeline
from tests.fakes.jira_api import FakeJira
from tests.fakes.jira_api import serve as serve_jira
from tests.support.jira import jira_settings
from tests.support.slack import slack_settings
from tests.support.sns import notify


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with serve_jira(FakeJira()) as served:
        yield served


@pytest.fixture
def app(settings, fake, config_path, make_app, pipelines, jira):
    config_path.write_text(CONFIG)
    return make_app(slack_settings(jira_settings(settings, jira), fake))


def test_the_request_and_its_decision_are_comments_on_the_ticket(
    rt, client, signer, clock, fake, jira: FakeJira, pipelines: FakeCodePipeline
) -> None:
    approval = pipelines.add_approval(*NAMES)
    notify(client, signer, clock, notification(approval.token), topic=TOPIC)
    intake(rt)
    deliver(rt, clock)
    request = request_of(rt)
    press(client, fake, "approval_approve", str(request.id), user="U0GROUPIE")
    deliver(rt, clock)
    [ticket] = jira.created()
    comments = [str(c.get("body")) for c in ticket.comments]
    link = f"{NAMES[1]}/{NAMES[2]}/approve/{approval.token}"
    assert any(f"Approval A{request.id} requested" in c and link in c for c in comments)
    assert any(f"Approval A{request.id} approved by gus (U0GROUPIE)" in c for c in comments)
    assert ticket.status() == "Done"  # the approval's incident resolved with the decision


def test_the_worker_runs_the_expiry_and_the_intake(rt) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    approvals.add_jobs(scheduler, rt)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"approvals_expiry", "codepipeline_approvals"}
    assert jobs["approvals_expiry"].func() == 0 and jobs["codepipeline_approvals"].func() == 0
