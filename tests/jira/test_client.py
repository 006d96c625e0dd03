"""The Jira adapter: pure request builders, and the real client against the fake Jira."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opsbot.jira.client import (
    DESCRIPTION_LIMIT,
    JiraError,
    JiraTickets,
    JiraUnreachable,
    cut_description,
    cut_summary,
    describe,
    issue_fields,
    priority_name,
    request_body,
    retry_after_seconds,
    ticket_labels,
)
from tests.fakes.jira_api import FakeJira, serve

INCIDENT = {
    "id": 7,
    "fingerprint": "0123456789ABCDEF0123",
    "title": "High-CPU",
    "summary": "Threshold Crossed: 1 datapoint [91.0] was ALARM",
    "environment": "prod",
    "source": "aws.cloudwatch",
    "account_id": "111122223333",
    "account_name": "prod-cim",
    "region": "us-east-1",
    "resource": "i-0123456789abcdef0",
    "severity": "high",
    "priority": "P2",
    "count": 3,
    "first_seen": datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
    "last_seen": datetime(2026, 11, 29, 8, 5, tzinfo=UTC),
    "console_url": "https://console.aws.amazon.com/cloudwatch/home#alarmsV2:alarm/High-CPU",
}
# the fake Jira (tests/jira/conftest.py) as Cloud and as Data Center
both_deployments = pytest.mark.parametrize(
    "fake", [True, False], ids=["cloud", "datacenter"], indirect=True
)


def test_summary_is_cut_on_a_word_boundary_within_255_characters() -> None:
    text = "word " * 80
    cut = cut_summary(text)
    assert len(cut) <= 255
    assert cut.endswith("word…")
    assert cut_summary("short\nline") == "short line"


def test_a_summary_without_spaces_is_cut_hard() -> None:
    assert len(cut_summary("x" * 400)) == 255


def test_description_is_kept_within_jiras_limit() -> None:
    long = cut_description("y" * 40_000)
    assert len(long) == DESCRIPTION_LIMIT
    assert long.endswith("(truncated by opsbot)")
    huge = describe({**INCIDENT, "summary": "z" * 50_000})
    assert len(huge) <= DESCRIPTION_LIMIT


def test_description_says_what_where_when_why_and_links() -> None:
    text = describe(INCIDENT, "https://opsbot.example.com/api/incidents/7")
    for needle in (
        "||Alarm|High-CPU|",
        "prod-cim (111122223333)",
        "us-east-1",
        "i-0123456789abcdef0",
        "2026-11-29 08:00:00 UTC",
        "Threshold Crossed",
        "[AWS console|https://console.aws.amazon.com",
        "[opsbot incident 7|https://opsbot.example.com/api/incidents/7]",
        "||Count|3|",
    ):
        assert needle in text


def test_alarm_text_cannot_break_the_table() -> None:
    assert "||Alarm|a\\|b \\[x\\]|" in describe({**INCIDENT, "title": "a|b [x]"})


def test_labels_are_free_of_spaces() -> None:
    labels = ticket_labels("0123456789ABCDEF0123", "non prod", "aws.cloudwatch")
    assert labels == ["opsbot", "opsbot-0123456789ab", "non-prod", "aws.cloudwatch"]


@pytest.mark.parametrize(
    ("priority", "names", "expected"),
    [
        ("P1", None, "Highest"),
        ("P5", None, "Lowest"),
        ("P2", {"P2": "Major"}, "Major"),
        ("P9", None, "Medium"),
    ],
)
def test_priorities_map_to_the_instances_names(priority, names, expected) -> None:
    assert priority_name(priority, names) == expected


def test_issue_fields_and_service_desk_request_body() -> None:
    fields = issue_fields(
        INCIDENT,
        project="OPS",
        issue_type="Task",
        priority="High",
        description="d",
        extra={"customfield_10004": {"value": "Extensive"}},
        components=["ec2"],
        assignee="5b10ac8d82e05b22cc7d4ef5",
    )
    assert fields["project"] == {"key": "OPS"}
    assert fields["components"] == [{"name": "ec2"}]
    assert fields["assignee"] == {"id": "5b10ac8d82e05b22cc7d4ef5"}
    assert fields["customfield_10004"] == {"value": "Extensive"}
    body = request_body(fields, service_desk_id="4", request_type_id="25")
    assert body["serviceDeskId"] == 4 and body["requestTypeId"] == 25
    assert "project" not in body["requestFieldValues"]
    assert body["requestFieldValues"]["summary"] == "High-CPU"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("Sun, 29 Nov 2026 08:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def adapter(fake: FakeJira, **kw) -> JiraTickets:
    if fake.cloud:
        return JiraTickets(fake.url, fake.token, user=fake.user, timeout=2, **kw)
    return JiraTickets(fake.url, fake.token, timeout=2, **kw)  # personal access token


@both_deployments
def test_create_search_comment_and_transition(fake: FakeJira) -> None:
    tickets = adapter(fake)
    fields = issue_fields(
        INCIDENT, project="OPS", issue_type="Task", priority="High", description="d"
    )
    key = tickets.create_issue(fields)
    assert fake.issue(key).fields["priority"] == {"name": "High"}
    found = tickets.search('labels = "opsbot-0123456789ab"')
    assert [t.key for t in found] == [key]
    assert not found[0].done
    tickets.comment(key, "hello")
    moves = tickets.transitions(key)
    tickets.transition(key, moves["Resolve Issue"], fields=None, comment="fixed")
    state = tickets.state(key)
    assert state.done and state.resolution == "Done"
    assert [c["body"] for c in fake.issue(key).comments] == ["hello", "fixed"]
    tickets.close()


@both_deployments
def test_search_uses_the_enhanced_endpoint_on_cloud_only(fake: FakeJira) -> None:
    tickets = adapter(fake)
    tickets.search("labels = opsbot")
    paths = {path for _, path in fake.calls}
    assert ("/rest/api/3/search/jql" in paths) is fake.cloud
    assert ("/rest/api/2/search" in paths) is not fake.cloud
    tickets.close()


@both_deployments
def test_wrong_credentials_are_a_401(fake: FakeJira) -> None:
    tickets = JiraTickets(fake.url, "wrong", user=fake.user, timeout=2)
    with pytest.raises(JiraError) as caught:
        tickets.connect()
    assert caught.value.status == 401


@both_deployments
def test_rejected_fields_carry_jiras_error_text(fake: FakeJira) -> None:
    tickets = adapter(fake)
    fields = issue_fields(
        INCIDENT, project="OPS", issue_type="Task", priority="Urgent!", description="d"
    )
    with pytest.raises(JiraError) as caught:
        tickets.create_issue(fields)
    assert caught.value.status == 400
    assert "'Urgent!' does not exist" in caught.value.text
    tickets.close()


@both_deployments
def test_429_is_not_retried_inside_the_library(fake: FakeJira) -> None:
    tickets = adapter(fake)
    tickets.connect()
    fake.fail(429, times=1, retry_after="5")
    before = len(fake.calls)
    with pytest.raises(JiraError) as caught:
        tickets.comment("OPS-1", "x")
    assert (caught.value.status, caught.value.retry_after) == (429, 5.0)
    assert len(fake.calls) == before + 1
    tickets.close()


@both_deployments
def test_a_lost_answer_is_unreachable_not_an_error(fake: FakeJira) -> None:
    tickets = adapter(fake)
    tickets.connect()
    fake.lose_creates = 1
    fields = issue_fields(
        INCIDENT, project="OPS", issue_type="Task", priority="High", description="d"
    )
    with pytest.raises(JiraUnreachable):
        tickets.create_issue(fields)
    assert len(fake.issues) == 1  # applied although the answer was lost
    tickets.close()


def test_service_management_request_creation() -> None:
    with serve(FakeJira(cloud=True)) as fake:
        tickets = adapter(fake)
        fields = issue_fields(
            INCIDENT, project="SD", issue_type="x", priority="High", description="d"
        )
        key = tickets.create_request(
            request_body(fields, service_desk_id="4", request_type_id="25")
        )
        assert key.startswith("SD-")
        assert fake.issue(key).fields["labels"][0] == "opsbot"
        assert ("POST", "/rest/servicedeskapi/request") in fake.calls
        tickets.close()
