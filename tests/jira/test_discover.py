"""`opsbot jira discover` against the fake Jira, Cloud and Data Center, with its refusals."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner, Result

from opsbot.cli import main
from opsbot.jira.client import JiraTickets
from tests.fakes.jira_api import FakeJira


def discover(fake: FakeJira, *args: str, **env: str) -> Result:
    values = {
        "OPSBOT_JIRA_URL": fake.url,
        "OPSBOT_JIRA_USER": fake.user if fake.cloud else "",
        "OPSBOT_JIRA_TOKEN": fake.token,
        "OPSBOT_JIRA_PROJECT": "OPS",
        "OPSBOT_JIRA_TIMEOUT_SECONDS": "5",
    } | env
    return CliRunner().invoke(main, ["jira", "discover", *args], env=values)


def open_and_done(fake: FakeJira) -> None:
    """Make one issue that is open and one that is done, as the instance's users would."""
    user = fake.user if fake.cloud else None
    tickets = JiraTickets(fake.url, fake.token, user=user, cloud=fake.cloud)
    fields = {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "disk full"}
    tickets.create_issue(fields)
    fake.resolve_by_person(tickets.create_issue(fields))
    tickets.close()


@pytest.mark.parametrize("fake", [True, False], indirect=True, ids=["cloud", "data-center"])
def test_discover_prints_what_the_jira_settings_need(fake: FakeJira) -> None:
    open_and_done(fake)
    before = len(fake.calls)
    result = discover(fake)
    assert result.exit_code == 0, result.output
    out = result.output
    kind = "Cloud" if fake.cloud else "Server"
    assert out.startswith(f"Jira {kind} ")
    assert "project OPS: issue types" in out and "10001  Task" in out and "10003  Incident" in out
    assert "1  Highest" in out and "the defaults (P1 Highest .. P5 Lowest) all exist" in out
    assert "1  SD Service Desk" in out and "request type     11  Report an incident" in out
    assert "from To Do: 11 Start Progress, 21 Resolve Issue" in out
    assert "from Done: 31 Reopen Issue" in out
    assert "jira.transitions.resolve: the defaults find 'Resolve Issue'" in out
    assert "jira.transitions.reopen: the defaults find 'Reopen Issue'" in out
    assert fake.token not in out
    assert [call for call in fake.calls[before:] if call[0] != "GET"] == []  # read-only


def test_discover_without_service_management_or_issues_says_what_to_do(fake: FakeJira) -> None:
    fake.desks = {}
    result = discover(fake, "--project", "SEC")
    assert result.exit_code == 0, result.output
    assert "none: use OPSBOT_JIRA_PROJECT and OPSBOT_JIRA_ISSUE_TYPE" in result.output
    assert "project SEC" in result.output and "no issues yet" in result.output


def test_discover_names_a_missing_project(fake: FakeJira) -> None:
    result = discover(fake, "--project", "NOPE")
    assert result.exit_code == 2
    assert "Jira refused project NOPE: HTTP 404" in result.output
    assert "No project could be found with key 'NOPE'" in result.output


def test_discover_reports_a_wrong_token_without_echoing_it(fake: FakeJira) -> None:
    result = discover(fake, OPSBOT_JIRA_TOKEN="wrong-token-value")
    assert result.exit_code == 2 and "HTTP 401" in result.output
    assert "wrong-token-value" not in result.output and "Traceback" not in result.output


def test_discover_reports_a_rate_limit_precisely(fake: FakeJira) -> None:
    fake.fail(429, retry_after="7")
    result = discover(fake)
    assert result.exit_code == 2 and "HTTP 429" in result.output, result.output


def test_discover_needs_the_jira_settings() -> None:
    result = CliRunner().invoke(main, ["jira", "discover"], env={"OPSBOT_JIRA_URL": ""})
    assert result.exit_code == 2
    assert "set OPSBOT_JIRA_URL and OPSBOT_JIRA_TOKEN" in result.output


def test_discover_says_when_jira_does_not_answer(fake: FakeJira) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = discover(fake, OPSBOT_JIRA_URL=closed)
    assert result.exit_code == 2 and "no answer from Jira on server info" in result.output
