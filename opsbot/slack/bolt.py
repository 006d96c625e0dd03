"""The Slack Bolt app inside the Flask service, mounted at ``POST /slack/events``.

Bolt verifies every request's signature (v0, five-minute window) and answers
401 otherwise; requests from another workspace are refused with 403 when
``OPSBOT_SLACK_TEAM_ID`` is set. ``process_before_response`` is on: the
listeners only touch the database (slow work goes to the outbox), so the
acknowledgement carries the answer well inside Slack's three seconds and no
work is left running after the response. Slack's retries never double an
action: state-changing requests are recorded once by their ``trigger_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.flask import SlackRequestHandler

from opsbot.runtime import Runtime
from opsbot.slack.client import SlackChat
from opsbot.slack.commands import command_table
from opsbot.slack.dispatch import Directory, Dispatcher
from opsbot.slack.sync import slack_parts
from opsbot.web import runtime_of

log = logging.getLogger(__name__)


def build(rt: Runtime) -> App:
    """Return the Bolt app with opsbot's commands and buttons registered."""
    chat, _ = slack_parts(rt)
    secret = rt.settings.slack_signing_secret
    assert secret is not None
    bolt = App(
        client=chat.client,
        signing_secret=secret.get_secret_value(),
        token_verification_enabled=False,
        process_before_response=True,
        before_authorize=team_check(rt.settings.slack_team_id),
        logger=logging.getLogger("opsbot.slack_bolt"),
    )
    table = command_table(rt.settings.slack_command)
    # Lookups happen before the acknowledgement: keep them well inside Slack's 3 s.
    token = rt.settings.slack_bot_token
    assert token is not None
    lookups = SlackChat(token.get_secret_value(), rt.settings.slack_api_url, timeout=2)
    dispatcher = Dispatcher(rt, Directory(lookups, rt.policy.slack_roles), table)
    bolt.command(rt.settings.slack_command)(dispatcher.on_command)
    for action_id in table.buttons:
        bolt.action(action_id)(dispatcher.on_button)
    bolt.action("open_jira")(lambda ack: ack())  # a link button: Slack still reports the click
    return bolt


def team_check(team_id: str | None) -> Callable[..., Any]:
    """Return the middleware that refuses requests from other workspaces."""

    def check(req: BoltRequest, next: Callable[[], Any]) -> Any:
        if team_id and req.context.team_id != team_id:
            log.warning("Slack request from workspace %s refused", req.context.team_id)
            return BoltResponse(status=403, body='{"error": "foreign_workspace"}')
        return next()

    return check


def register(app: Flask) -> None:
    """Mount ``POST /slack/events`` when Slack is configured."""
    rt = runtime_of(app)
    if not rt.settings.slack_enabled:
        log.info("Slack is off: set OPSBOT_SLACK_BOT_TOKEN and OPSBOT_SLACK_SIGNING_SECRET")
        return
    handler = SlackRequestHandler(build(rt))

    def slack_events() -> Response:
        return handler.handle(request)

    app.add_url_rule("/slack/events", "slack_events", slack_events, methods=["POST"])
