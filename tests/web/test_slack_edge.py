"""POST /slack/events under hostile input and a sick Slack (issue 15): malformed signed payloads
get a JSON 400 and store nothing, bad numbers get the usage, and with the Web API down or hanging
every request is still answered (no per-request auth.test, bounded lookups)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from flask import Flask

from opsbot.config import Settings
from opsbot.runtime import Runtime
from opsbot.slack import bolt, dispatch
from tests.fakes.slack_api import TEAM_ID, FakeSlack, serve
from tests.support.hostile import assert_refused, row_counts
from tests.support.slack import ROLES_YAML, button_body, command_body, signed_post, slack_settings
from tests.support.sns import alarm_message, notify
from tests.support.stalled import closed_port_url, hanging_server


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with serve(FakeSlack()) as running:
        yield running


@pytest.fixture
def slack_app(settings: Settings, fake: FakeSlack, config_path: Any, make_app: Callable) -> Flask:
    config_path.write_text(ROLES_YAML)
    return make_app(slack_settings(settings, fake))


@pytest.fixture
def srt(slack_app: Flask) -> Runtime:
    runtime: Runtime = slack_app.extensions["opsbot"]
    return runtime


@pytest.fixture
def sclient(slack_app: Flask) -> Any:
    return slack_app.test_client()


def reply_of(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["text"])


@pytest.mark.parametrize(
    "text", ["show ²", "show \uff11", "ack 99999999999999999999", "ack #²", "unsilence ²",
             "resolve 9223372036854775808", "show " + "9" * 70],
)  # fmt: skip
def test_numbers_that_are_not_ascii_ids_get_the_usage_and_change_nothing(
    srt, sclient, fake, text
) -> None:
    before = row_counts(srt)
    reply = reply_of(signed_post(sclient, command_body(fake, text, user="U0ADMIN")))
    assert "is not" in reply or "Which" in reply
    assert row_counts(srt) == before


def payload(fake: FakeSlack, **changes: Any) -> str:
    body = json.loads(parse_qs(button_body(fake, "incident_ack", "1"))["payload"][0])
    body.update(changes)
    return urlencode({"payload": json.dumps(body)})


@pytest.mark.parametrize(
    "changes",
    [{"user": {"username": "ana"}}, {"user": "U0OPS"}, {"actions": {"action_id": "x"}},
     {"actions": []}, {"actions": [1]}, {"response_url": "javascript:alert(1)"},
     {"response_url": 5}, {"trigger_id": {"a": 1}}, {"user": {"id": "U0OPS\x00"}}],
)  # fmt: skip
def test_malformed_signed_interactions_are_400_and_store_nothing(
    srt, sclient, fake, changes
) -> None:
    before = row_counts(srt)
    assert_refused(signed_post(sclient, payload(fake, **changes)), before, srt)


@pytest.mark.parametrize(
    "kind",
    [{"type": "view_submission", "view": {"id": "V1"}}, {"type": "shortcut"},
     {"type": "block_suggestion"}, {"type": ["block_actions"]}, {"view": {"id": "V1"}}],
)  # fmt: skip
def test_interactions_opsbot_does_not_serve_are_400_before_bolt(srt, sclient, fake, kind) -> None:
    # A view_submission whose view has no "type" made Bolt's router raise KeyError (a 500).
    body = {"team": {"id": TEAM_ID}, "user": {"id": "U0OPS"}, "trigger_id": "t", **kind}
    before = row_counts(srt)
    response = signed_post(sclient, urlencode({"payload": json.dumps(body)}))
    assert_refused(response, before, srt)
    assert response.get_json()["error"] == "bad_request"


def test_a_command_without_user_id_is_400(srt, sclient, fake) -> None:
    body = dict(parse_qsl(command_body(fake, "ack 1")))
    del body["user_id"]
    before = row_counts(srt)
    assert_refused(signed_post(sclient, urlencode(body)), before, srt)


def test_no_auth_test_per_request(srt, sclient, fake) -> None:
    for _ in range(3):
        assert "help" in reply_of(signed_post(sclient, command_body(fake, "help"))).lower()
    assert len(fake.called("auth.test")) <= 1  # the one at start, from its own thread


def sick_app(settings: Settings, make_app: Callable, config_path: Any, url: str) -> Any:
    config_path.write_text(ROLES_YAML)
    fake = FakeSlack(url=url)
    return make_app(slack_settings(settings, fake)).test_client(), fake


@pytest.mark.parametrize("sickness", ["down", "hanging"])
def test_with_the_web_api_down_or_hanging_commands_and_buttons_are_answered(
    settings, make_app, config_path, client, signer, clock, sickness
) -> None:
    with hanging_server() as hanging:
        url = closed_port_url() if sickness == "down" else hanging
        sclient, fake = sick_app(settings, make_app, config_path, url)
        assert notify(client, signer, clock, alarm_message()).status_code in (200, 404)
        # Each answer arrives while Slack is still down or hanging: nothing waits on it unbounded.
        assert "help" in reply_of(signed_post(sclient, command_body(fake, "help"))).lower()
        assert reply_of(signed_post(sclient, command_body(fake, "whoami")))
        pressed = signed_post(sclient, button_body(fake, "incident_ack", "1"))
        assert pressed.status_code == 200, pressed.get_data(as_text=True)


def test_the_slack_budgets_fit_inside_slacks_three_seconds() -> None:
    # One lookup may wait its timeout once (then the outage is remembered), plus one reply.
    assert bolt.LOOKUP_SECONDS + dispatch.RESPOND_SECONDS < 3
    assert dispatch.OUTAGE_SECONDS >= 10
