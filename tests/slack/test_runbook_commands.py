"""``/ops run``, ``approve``, ``deny``, ``runs``, ``show run`` end to end with signed requests."""

from __future__ import annotations

import pytest

from opsbot.runbooks.jobs import build_runner
from tests.fakes.ssm_api import Script
from tests.support.outbox import drain
from tests.support.runbooks import CONFIG, INSTANCE, NONPROD, PROD, load_run, outbox_rows
from tests.support.slack import button_body, ops, signed_post
from tests.support.sns import alarm_message, notify

ROLES = """
slack:
  roles: {admin: [U0ADMIN], approver: [U0GROUPIE], operator: [U0OPS]}
"""


@pytest.fixture
def config_path(tmp_path, aws_env):
    path = tmp_path / "opsbot.yaml"
    path.write_text(CONFIG + ROLES)
    return path


def incident_in(sclient, signer, clock, account: str) -> int:
    reply = notify(sclient, signer, clock, alarm_message(account=account))
    return int(reply.json["alerts"][0]["incident_id"])


def number(text: str) -> int:
    return int(text.split()[1])


def test_nonprod_run_from_slack_to_the_thread(srt, sclient, fake, signer, clock, fake_ssm):
    fake_ssm.add_instance(INSTANCE)
    fake_ssm.automation_scripts["AWS-RestartEC2Instance"] = Script(("InProgress", "Success"))
    incident = incident_in(sclient, signer, clock, NONPROD)
    drain(srt)
    asked = ops(sclient, fake, f"run restart-instance on {incident}")
    assert asked["response_type"] == "in_channel" and "awaiting approval" in asked["text"]
    run_id = number(asked["text"])
    approved = ops(sclient, fake, f"approve {run_id}", user="U0GROUPIE")
    assert "approved by gus" in approved["text"]
    runner = build_runner(srt)
    for _ in range(3):
        runner.run_once()
        clock.advance(seconds=15)
    assert load_run(srt, run_id).state == "succeeded"
    assert any(k == "comment" and "succeeded" in p["text"] for t, k, p in outbox_rows(srt))
    for _ in range(8):  # the Slack sender posts at most one message a second per channel
        clock.advance(seconds=2)
        drain(srt)
    threads = [c for c in fake.called("chat.postMessage") if c.get("thread_ts")]
    assert any("succeeded" in c["text"] for c in threads)
    assert "succeeded" in ops(sclient, fake, f"show run {run_id}", user="U0VIEW")["text"]
    assert ops(sclient, fake, "runs mine")["text"].startswith(f"{run_id}: restart-instance")


def test_prod_roles_and_approvers(srt, sclient, fake, signer, clock, fake_ssm) -> None:
    incident = incident_in(sclient, signer, clock, PROD)
    refused = ops(sclient, fake, f"run restart-instance on {incident}", user="U0VIEW")
    assert refused["text"].startswith("Refused: run needs the operator role")
    asked = ops(sclient, fake, f"run restart-instance on {incident}", user="U0ADMIN")
    run_id = number(asked["text"])
    own = ops(sclient, fake, f"approve {run_id}", user="U0ADMIN")
    assert "the requester cannot approve" in own["text"]
    assert "Refused" in ops(sclient, fake, f"approve {run_id}", user="U0OPS")["text"]
    denied = signed_post(sclient, button_body(fake, "run_deny", str(run_id), user="U0GROUPIE"))
    assert denied.status_code == 200
    assert load_run(srt, run_id).state == "denied"
    assert fake_ssm.requests == []


def test_dry_run_and_bad_words(srt, sclient, fake, signer, clock, fake_ssm) -> None:
    incident = incident_in(sclient, signer, clock, PROD)
    dry = ops(sclient, fake, f"run free-disk-space KeepDays=5 on {incident} dry")
    assert dry["response_type"] == "ephemeral"
    assert dry["text"].startswith("Dry run, nothing sent: free-disk-space on " + INSTANCE)
    assert "KeepDays=5" in dry["text"] and fake_ssm.requests == []
    assert (
        "not a parameter" in ops(sclient, fake, f"run free-disk-space five on {incident}")["text"]
    )
    assert "There is no runbook 'nope'" in ops(sclient, fake, "run nope")["text"]
    assert (
        "above the maximum"
        in ops(sclient, fake, f"run free-disk-space KeepDays=99 on {incident}")["text"]
    )
    assert "restart-instance" in ops(sclient, fake, "runbooks", user="U0VIEW")["text"]
    assert ops(sclient, fake, "runs")["text"] == "No runs."
    assert "There is no run 7" in ops(sclient, fake, "show run 7")["text"]
    assert "High-CPU" in ops(sclient, fake, f"show {incident}")["text"]


def test_runbook_output_reaches_the_thread_escaped_and_jira_as_written(
    srt, sclient, fake, signer, clock, fake_ssm
):
    fake_ssm.add_instance(INSTANCE)
    hostile = "restarted <!here> see <https://evil.example|docs> & done"
    fake_ssm.automation_scripts["AWS-RestartEC2Instance"] = Script(
        ("InProgress", "Success"), stdout=hostile
    )
    incident = incident_in(sclient, signer, clock, NONPROD)
    drain(srt)
    run_id = number(ops(sclient, fake, f"run restart-instance on {incident}")["text"])
    ops(sclient, fake, f"approve {run_id}", user="U0GROUPIE")
    runner = build_runner(srt)
    for _ in range(3):
        runner.run_once()
        clock.advance(seconds=15)
    assert load_run(srt, run_id).state == "succeeded"
    for _ in range(8):  # the Slack sender posts at most one message a second per channel
        clock.advance(seconds=2)
        drain(srt)
    threads = [c["text"] for c in fake.called("chat.postMessage") if c.get("thread_ts")]
    (result,) = [t for t in threads if "succeeded" in t]
    assert "restarted &lt;!here&gt; see &lt;https://evil.example|docs&gt; &amp; done" in result
    assert "<!" not in "".join(threads)
    comments = [p["text"] for t, k, p in outbox_rows(srt) if k == "comment"]
    assert any(hostile in text for text in comments)  # the Jira comment keeps the text
