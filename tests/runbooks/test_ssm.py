"""SsmRunbooks against moto STS and the SSM stand-in: requests, assume-role, errors."""

from __future__ import annotations

import pytest

from opsbot.config import parse_policy
from opsbot.runbooks.ssm import (
    SsmRejected,
    SsmRunbooks,
    SsmThrottled,
    Where,
    command_request,
    session_name,
)
from tests.fakes.ssm_api import Script
from tests.support.runbooks import CONFIG, INSTANCE, PROD


@pytest.fixture
def ssm(aws_env) -> SsmRunbooks:
    return SsmRunbooks(parse_policy(CONFIG).accounts)


def request(**overrides):
    values = dict(
        document="AWS-RunShellScript", parameters={"commands": ["uptime"]},
        instance_ids=[INSTANCE], tags={}, max_concurrency="1", max_errors="0",
        timeout_seconds=600, comment="x" * 300,
    )  # fmt: skip
    return command_request(**{**values, **overrides})


def test_session_names_carry_the_requester_within_sts_limits() -> None:
    assert session_name("Ana López (U0ANA)") == "opsbot-Ana-L-pez--U0ANA-"
    assert len(session_name("x" * 200)) == 64


def test_command_requests_use_ids_or_tag_targets_and_clamp() -> None:
    by_ids = request()
    assert by_ids["InstanceIds"] == [INSTANCE] and "Targets" not in by_ids
    assert len(by_ids["Comment"]) == 100
    by_tags = request(instance_ids=[], tags={"PatchGroup": ["web", "api"]}, timeout_seconds=5)
    assert by_tags["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["web", "api"]}]
    assert by_tags["TimeoutSeconds"] == 30


def test_commands_are_sent_in_the_assumed_role_and_followed(ssm, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE, Script(("Pending", "InProgress", "Success"), "hello"))
    where = Where(PROD, "eu-west-1", "ana")
    command_id = ssm.send_command(where, request())
    first = ssm.command_progress(where, command_id)
    assert (first.status, first.targets) == ("InProgress", {INSTANCE: "InProgress"})
    done = ssm.command_progress(where, command_id)
    assert done.status == "Success" and "hello" in done.output
    assert ssm.managed_instances(where, {}) == [INSTANCE]


def test_the_stand_in_checks_request_shapes(ssm, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    where = Where(PROD, "eu-west-1", "ana")
    with pytest.raises(SsmRejected, match=r"ValidationException.*MaxConcurrency"):
        ssm.send_command(where, request(max_concurrency="0"))
    with pytest.raises(SsmRejected, match="InvalidInstanceId"):
        ssm.send_command(where, request(instance_ids=["i-0000000000000000f"]))
    with pytest.raises(SsmRejected, match="InvalidCommandId"):
        ssm.command_progress(where, "00000000-0000-0000-0000-000000000000")


def test_throttling_and_access_denied_are_told_apart(ssm, fake_ssm) -> None:
    fake_ssm.add_instance(INSTANCE)
    where = Where(PROD, "eu-west-1", "ana")
    fake_ssm.throttle["SendCommand"] = 1
    with pytest.raises(SsmThrottled, match="ThrottlingException"):
        ssm.send_command(where, request())
    assert len(fake_ssm.calls("SendCommand")) == 1  # boto3 did not retry on its own
    fake_ssm.deny.add("SendCommand")
    with pytest.raises(SsmRejected, match="AccessDeniedException"):
        ssm.send_command(where, request())


def test_missing_credentials_fail_the_call_clearly(ssm, fake_ssm, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SsmRejected, match="NoCredentialsError"):
        ssm.send_command(Where(PROD, "eu-west-1", "ana"), request())
    assert fake_ssm.requests == []
