"""Tickets and cards link to the incident's dashboard page under OPSBOT_PUBLIC_URL.

Real ``jira`` and ``slack_sdk`` clients talk HTTP to the fake Jira and the fake
Slack workspace; the link is read from what those stand-ins received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsbot.config import Settings
from tests.fakes.jira_api import FakeJira
from tests.fakes.jira_api import serve as serve_jira
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_api import serve as serve_slack
from tests.support.jira import jira_settings
from tests.support.outbox import drain
from tests.support.slack import slack_settings
from tests.support.sns import alarm_message, notify

PUBLIC = "https://opsbot.example.com/desk"
CONFIG = """
accounts:
  "111122223333": {name: prod-cim, environment: prod}
"""


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with serve_jira(FakeJira()) as served:
        yield served


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serve_slack(FakeSlack()) as served:
        yield served


def build(settings, make_app, config_path, jira, slack, config: str = CONFIG, **extra: Any):
    config_path.write_text(config)
    wired = slack_settings(jira_settings(settings, jira), slack, **extra)
    return make_app(Settings(**wired.model_dump()))


def open_and_deliver(app, signer, clock) -> int:
    reply = notify(app.test_client(), signer, clock, alarm_message())
    assert reply.status_code == 200
    drain(app.extensions["opsbot"])
    return int(reply.json["alerts"][0]["incident_id"])


def card_context(slack: FakeSlack) -> str:
    [card] = slack.cards("C0OPS")
    [context] = [b for b in card.blocks if b["type"] == "context"]
    return str(context["elements"][0]["text"])


def test_ticket_and_card_link_to_the_incident_page(
    settings, make_app, config_path, jira, slack, signer, clock
) -> None:
    app = build(settings, make_app, config_path, jira, slack, public_url=PUBLIC + "/")
    incident_id = open_and_deliver(app, signer, clock)
    page = f"{PUBLIC}/ui/incidents/{incident_id}"
    [ticket] = jira.created()
    assert f"[opsbot incident {incident_id}|{page}]" in ticket.fields["description"]
    assert card_context(slack) == f"<{page}|Incident {incident_id}> · opsbot"
    # an update re-renders the card with the same link
    clock.advance(minutes=5)
    notify(app.test_client(), signer, clock, alarm_message(state="OK", old="ALARM", when=clock.now))
    drain(app.extensions["opsbot"])
    [card] = slack.cards("C0OPS")
    assert card.updates >= 1 and page in json.dumps(card.blocks)


def test_without_a_public_url_neither_carries_a_page_link(
    settings, make_app, config_path, jira, slack, signer, clock
) -> None:
    app = build(settings, make_app, config_path, jira, slack)
    incident_id = open_and_deliver(app, signer, clock)
    [ticket] = jira.created()
    assert "/ui/incidents/" not in ticket.fields["description"]
    assert "opsbot incident" not in ticket.fields["description"]
    assert card_context(slack) == f"Incident {incident_id} · opsbot"


def test_the_yaml_incident_url_template_wins_over_the_public_url(
    settings, make_app, config_path, jira, slack, signer, clock
) -> None:
    config = CONFIG + 'jira:\n  incident_url: "https://wiki.example.com/opsbot/{id}"\n'
    app = build(settings, make_app, config_path, jira, slack, config=config, public_url=PUBLIC)
    incident_id = open_and_deliver(app, signer, clock)
    [ticket] = jira.created()
    assert f"https://wiki.example.com/opsbot/{incident_id}" in ticket.fields["description"]
    assert "/ui/incidents/" not in ticket.fields["description"]
    assert f"{PUBLIC}/ui/incidents/{incident_id}" in card_context(slack)


@pytest.mark.parametrize(
    "value",
    ["ftp://opsbot.example.com", "https://opsbot.example.com/?a=1", "https://a|b.example.com",
     "https://opsbot.example.com/x]", "opsbot.example.com"],
)  # fmt: skip
def test_a_public_url_that_would_break_a_link_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url=value)
