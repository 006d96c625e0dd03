"""The approval rules (pure), the YAML's approvals: section, the pure AWS request helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsbot.approvals.config import approval_policy
from opsbot.approvals.messages import approval_blocks, deny_view
from opsbot.approvals.pipelines import Pending, find_pending, request_key, result_request
from opsbot.config import ConfigError, parse_policy
from opsbot.core import approvals as rules
from opsbot.db.models import Approval

WEBHOOK = "arn:aws:codepipeline:us-east-1:111122223333:webhook:abc"
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("environment", "asked", "level"),
    [("sandbox", (), "none"), ("dev", (), "none"), ("nonprod", (), "one"), ("prod", (), "other"),
     ("nonprod", ("other",), "other"), ("prod", ("none",), "other"), ("unknown", (), "other")],
)  # fmt: skip
def test_levels_per_environment_default_to_the_documented_ones(environment, asked, level) -> None:
    assert rules.level_for(rules.ApprovalPolicy(), environment, *asked) == level


def test_the_yaml_sets_levels_and_runbooks_only_see_it_as_a_floor() -> None:
    policy = rules.ApprovalPolicy(levels={"nonprod": "other", "prod": "one"})
    assert rules.level_for(policy, "nonprod") == "other"
    assert rules.level_for(policy, "prod") == "one"
    assert rules.floor_for(policy, "nonprod", "none") == "other"
    assert rules.floor_for(rules.ApprovalPolicy(), "nonprod", "none") == "none"  # runbook's own


def test_a_decision_is_refused_to_the_requester_in_prod_even_under_another_name() -> None:
    rules.check_decision("pending", "other", "ana (U0OPS)", "gus (U0GROUPIE)")
    rules.check_decision("pending", "one", "ana (U0OPS)", "ana (U0OPS)")
    with pytest.raises(rules.Refusal, match="requester"):
        rules.check_decision("pending", "other", "ana (U0OPS)", "Ana Renamed (U0OPS)")
    with pytest.raises(rules.Refusal, match="requester"):
        rules.check_decision("pending", "other", "jane", "jane")
    rules.check_decision("pending", "other", "ana (U0OPS)", "ana (U0OPS)", "deny")  # withdraw
    with pytest.raises(rules.Refusal, match="already approved"):
        rules.check_decision("approved", "one", "ana (U0OPS)", "gus (U0GROUPIE)")


@pytest.mark.parametrize(
    ("principal", "name"),
    [("arn:aws:iam::111122223333:user/jane", "jane"),
     ("arn:aws:sts::111122223333:assumed-role/Deployer/jane@example.com", "jane@example.com"),
     (WEBHOOK, WEBHOOK),
     ("CloudWatchEvent", "CloudWatchEvent")],
)  # fmt: skip
def test_principals_name_the_person_and_the_people_map_gives_their_slack_id(principal, name):
    assert rules.principal_name(principal) == name
    assert rules.requester_for(principal, {name: "U0JANE"}) == f"{name} (U0JANE)"
    assert rules.requester_for(principal, {}) == name


def test_the_approvals_section_is_read_and_checked() -> None:
    policy = parse_policy(
        'approvals: {channel: "#ok", expires_after: 10m, environments: {prod: other},'
        " people: {jane: U0JANE}}\nrunbooks: {approvals_channel: '#old'}\n"
    )
    read = approval_policy(policy)
    assert (read.channel, read.ttl, read.levels, read.people) == (
        "#ok", timedelta(minutes=10), {"prod": "other"}, {"jane": "U0JANE"},
    )  # fmt: skip
    assert (
        approval_policy(parse_policy("runbooks: {approvals_channel: '#old'}\n")).channel == "#old"
    )
    with pytest.raises(ConfigError) as found:
        parse_policy(
            "approvals:\n  chanel: x\n  environments: {prod: two, moon: one}\n"
            "  people: {jane: bob}\n  expires_after: 0s\n",
            "opsbot.yaml",
        )
    text = str(found.value)
    for problem in (
        "opsbot.yaml:2: approvals.chanel: unknown key; did you mean 'channel'?",
        "opsbot.yaml:3: approvals.environments.prod: 'two' is not one of none, one, other",
        "approvals.environments.moon",
        "opsbot.yaml:4: approvals.people.jane: 'bob' is not a Slack user id",
        "opsbot.yaml:5: approvals.expires_after: must be longer than 0s",
    ):
        assert problem in text


def test_a_channel_name_at_and_past_its_limit() -> None:
    parse_policy(f'approvals: {{channel: "{"c" * 64}"}}\n')
    with pytest.raises(ConfigError, match="1 to 64 characters"):
        parse_policy(f'approvals: {{channel: "{"c" * 65}"}}\n')


def pipeline_request(**changes) -> Approval:
    values = dict(
        id=7, kind="codepipeline", key="k", state="approved", level="other", what="w",
        account_id="111122223333", region="us-east-1", environment="prod", requester="jane",
        decider="gus (U0GROUPIE)", reason="", details={
            "pipeline": "deploy-web", "stage": "Prod", "action": "Approve",
            "token": "0a1b2c3d-0000-4000-8000-123456789abc", "review_link": "https://x/y"},
        expires_at=NOW, created_at=NOW, updated_at=NOW, decided_at=NOW,
    )  # fmt: skip
    return Approval(**{**values, **changes})


def test_put_approval_result_names_the_approver_and_fits_the_summary_limit() -> None:
    sent = result_request(pipeline_request())
    assert sent["result"] == {
        "summary": "Approved by gus (U0GROUPIE) in opsbot (approval A7)", "status": "Approved",
    }  # fmt: skip
    assert sent["token"] == "0a1b2c3d-0000-4000-8000-123456789abc"
    prefix = len("Rejected by gus (U0GROUPIE) in opsbot (approval A7): ")
    exact = result_request(pipeline_request(state="denied", reason="r" * (512 - prefix)))
    assert len(exact["result"]["summary"]) == 512 and exact["result"]["status"] == "Rejected"
    longer = result_request(pipeline_request(state="denied", reason="r" * (513 - prefix)))
    assert len(longer["result"]["summary"]) == 512  # cut to AWS's limit


def test_only_an_in_progress_approval_with_a_token_is_pending() -> None:
    state = {"stageStates": [{
        "stageName": "Prod", "latestExecution": {"pipelineExecutionId": "e-1"},
        "actionStates": [
            {"actionName": "Deploy", "latestExecution": {"status": "InProgress"}},
            {"actionName": "Approve", "latestExecution": {"status": "InProgress", "token": "t"}},
        ]}]}  # fmt: skip
    assert find_pending(state, "Prod", "Approve") == Pending("t", "e-1")
    assert find_pending(state, "Prod", "Deploy") is None
    assert find_pending(state, "Beta", "Approve") is None
    state["stageStates"][0]["actionStates"][1]["latestExecution"]["status"] = "Succeeded"
    assert find_pending(state, "Prod", "Approve") is None
    assert request_key("1", "r", ("p", "s", "a"), "t") == "codepipeline:1:r:p:s:a:t"


def test_the_message_escapes_what_it_did_not_write_and_ends_without_buttons() -> None:
    row = pipeline_request(state="pending", decider=None, what="Deploy <!here> & go")
    blocks = approval_blocks(row)
    text = str(blocks)
    assert "&lt;!here&gt; &amp; go" in text and "<!here>" not in text
    assert "<https://x/y|Review in CodePipeline>" in text
    assert [b["type"] for b in blocks][-1] == "actions"
    done = approval_blocks(pipeline_request(state="denied", reason="no <@U1>"))
    assert done[-1]["type"] == "section" and "no &lt;@U1&gt;" in done[-1]["text"]["text"]
    view = deny_view(7, "x" * 5000)
    assert len(view["blocks"][0]["text"]["text"]) <= 2900
    assert view["blocks"][1]["element"]["max_length"] == 500
