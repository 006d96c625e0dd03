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

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, request
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from handlers.base import storable
from opsbot.approvals.messages import DENY_VIEW, REASON_BLOCK, REASON_INPUT
from opsbot.runtime import Runtime
from opsbot.slack.client import SlackChat
from opsbot.slack.commands import command_table
from opsbot.slack.dispatch import Directory, Dispatcher
from opsbot.slack.sync import slack_parts
from opsbot.web import error_response, runtime_of

log = logging.getLogger(__name__)

SLACK_ID_RE = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")
MAX_FIELD_CHARS = 4000  # a slash command's text is at most 4,000 characters
LOOKUP_SECONDS = 1  # users.info and user groups, before the answer: inside Slack's 3 s
INPUT_FAULTS = (UnicodeError, RecursionError, OverflowError, DataError)


class Identity:
    """The bot's own identity: authorised once at start (auth.test) and cached; fails soft."""

    def __init__(self, chat: SlackChat, token: str, team_id: str | None) -> None:
        self.chat, self.token, self.team_id = chat, token, team_id
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None

    def load(self) -> None:
        """Ask Slack who the token is, once; on failure keep serving without it."""
        try:
            who = self.chat.auth_test()
        except Exception as exc:  # fail soft: requests are verified by signature, not by this
            log.warning("Slack auth.test at start failed (%s); continuing", type(exc).__name__)
            return
        self.bot_user_id = str(who.get("user_id") or "") or None
        self.bot_id = str(who.get("bot_id") or "") or None

    def authorizer(self) -> Callable[..., AuthorizeResult]:
        """Return Bolt's authorize function: the cached identity, no Web API call per request."""

        # A plain function: Bolt passes arguments by the names it finds in the signature.
        def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id or self.team_id,
                bot_token=self.token,
                bot_user_id=self.bot_user_id,
                bot_id=self.bot_id,
            )

        return authorize


def build(rt: Runtime) -> App:
    """Return the Bolt app with opsbot's commands and buttons registered."""
    chat, _ = slack_parts(rt)
    secret = rt.settings.slack_signing_secret
    token = rt.settings.slack_bot_token
    assert secret is not None and token is not None
    identity = Identity(chat, token.get_secret_value(), rt.settings.slack_team_id)
    threading.Thread(target=identity.load, name="slack-auth-test", daemon=True).start()
    bolt = App(
        client=chat.client,
        signing_secret=secret.get_secret_value(),
        authorize=identity.authorizer(),
        token_verification_enabled=False,
        process_before_response=True,
        before_authorize=team_check(rt.settings.slack_team_id),
        logger=logging.getLogger("opsbot.slack_bolt"),
    )
    bolt.error(answer_error)
    table = command_table(rt.settings.slack_command)
    # Lookups happen before the acknowledgement: keep them well inside Slack's 3 s.
    lookups = SlackChat(token.get_secret_value(), rt.settings.slack_api_url, timeout=LOOKUP_SECONDS)
    dispatcher = Dispatcher(rt, Directory(lookups, rt.policy.slack_roles), table)
    bolt.command(rt.settings.slack_command)(dispatcher.on_command)
    for action_id in table.buttons:
        bolt.action(action_id)(dispatcher.on_button)
    bolt.action("open_jira")(lambda ack: ack())  # a link button: Slack still reports the click
    bolt.view(DENY_VIEW)(dispatcher.on_view)  # the reason modal of an approval's Deny
    return bolt


def team_check(team_id: str | None) -> Callable[..., Any]:
    """Return the middleware that refuses requests from other workspaces."""

    def check(req: BoltRequest, next: Callable[[], Any]) -> Any:
        if team_id and req.context.team_id != team_id:
            log.warning("Slack request from workspace %s refused", req.context.team_id)
            return BoltResponse(status=403, body='{"error": "foreign_workspace"}')
        return next()

    return check


def precheck(raw: bytes, content_type: str) -> str | None:
    """Return why a signed request is not of the documented shape, or None when it is."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        body = parse_body(text, content_type)
    except (ValueError, RecursionError):
        return "the body is not a form or JSON"
    if not isinstance(body, dict):
        return "the body is not an object"
    return shape_problem(body)


def shape_problem(body: Mapping[str, Any]) -> str | None:
    """Return why a signed request is not of the documented shape, or None when it is."""
    if "command" in body:
        return _command_problem(body)
    if body.get("type") == "block_actions":
        return _actions_problem(body)
    if body.get("type") == "view_submission":
        return _view_problem(body)
    if body.get("ssl_check") or body.get("type") == "url_verification":
        return None
    # Views, shortcuts, suggestions and events have no listener here; Bolt's own routing
    # of them trusts their shape (a view without "type" raises), so they stop at the edge.
    kind = _text(body.get("type", "")) and str(body.get("type", ""))[:40]
    return f"opsbot serves slash commands and block actions, not {kind or 'this request'!r}"


def _command_problem(body: Mapping[str, Any]) -> str | None:
    if not _slack_id(body.get("user_id")):
        return "user_id is missing or not a Slack id"
    for name in ("text", "user_name", "channel_id", "trigger_id", "command", "response_url"):
        if not _text(body.get(name, "")):
            return f"{name} is not text of at most {MAX_FIELD_CHARS} characters"
    return None


def _actions_problem(body: Mapping[str, Any]) -> str | None:
    user, actions = body.get("user"), body.get("actions")
    if not isinstance(user, dict) or not _slack_id(user.get("id")):
        return "user.id is missing or not a Slack id"
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return "actions is not a list of actions"
    if not all(_text(actions[0].get(k, "")) for k in ("action_id", "value", "action_ts")):
        return "the action's action_id, value or action_ts is not text"
    url = body.get("response_url", "")
    if not _text(url) or (url and not str(url).startswith(("https://", "http://"))):
        return "response_url is not an http(s) URL"
    if not all(_text(v) for v in (body.get("trigger_id", ""), user.get("username", ""))):
        return "trigger_id or user.username is not text"
    return None


def _view_problem(body: Mapping[str, Any]) -> str | None:
    user, view = body.get("user"), body.get("view")
    if not isinstance(user, dict) or not _slack_id(user.get("id")):
        return "user.id is missing or not a Slack id"
    if not isinstance(view, dict) or view.get("callback_id") != DENY_VIEW:
        return "opsbot serves no other view than the approval's reason"
    if view.get("type") != "modal":  # Bolt's router reads view.type
        return "view.type is not modal"
    state = view.get("state")
    if not isinstance(state, dict) or not isinstance(state.get("values"), dict):
        return "view.state.values is not an object"
    if not all(_text(view.get(k, "")) for k in ("id", "private_metadata")):
        return "view.id or view.private_metadata is not text"
    reason = (state["values"].get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
    if not isinstance(reason, dict) or not _text(reason.get("value") or ""):
        return "the reason is not text"
    return None


def _slack_id(value: Any) -> bool:
    return isinstance(value, str) and SLACK_ID_RE.fullmatch(value) is not None


def _text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_FIELD_CHARS and storable(value)


def answer_error(error: Exception) -> BoltResponse:
    """Answer a listener's failure: 400 for input opsbot cannot store, 503 for its database."""
    if isinstance(error, OperationalError | PoolTimeout):
        log.error("Slack request: database unavailable: %s", type(error).__name__)
        return _json_error(503, "database_unavailable", "The database is unreachable; retry.")
    if isinstance(error, INPUT_FAULTS):
        log.warning("Slack request refused: %s", type(error).__name__)
        return _json_error(400, "bad_input", "The request holds a value opsbot cannot store.")
    log.error("Slack request failed", exc_info=error)
    return _json_error(500, "internal_error", "opsbot failed; the request was not applied.")


def _json_error(status: int, code: str, detail: str) -> BoltResponse:
    body = json.dumps({"error": code, "detail": detail})
    return BoltResponse(status=status, body=body, headers={"content-type": "application/json"})


def register(app: Flask) -> None:
    """Mount ``POST /slack/events`` when Slack is configured."""
    rt = runtime_of(app)
    if not rt.settings.slack_enabled:
        log.info("Slack is off: set OPSBOT_SLACK_BOT_TOKEN and OPSBOT_SLACK_SIGNING_SECRET")
        return
    handler = SlackRequestHandler(build(rt))
    secret = rt.settings.slack_signing_secret
    assert secret is not None
    verifier = SignatureVerifier(secret.get_secret_value())

    def slack_events() -> Any:
        raw = request.get_data()
        if not verifier.is_valid_request(raw, dict(request.headers)):
            # Refused before Bolt builds its request: its parsing trusts the payload's shape.
            log.warning("Slack request refused: missing, stale or wrong signature")
            return error_response("unauthorized", "The Slack signature is missing or wrong.", 401)
        problem = precheck(raw, request.headers.get("Content-Type", ""))
        if problem is not None:
            log.warning("Slack request refused: %s", problem)
            return error_response("bad_request", problem, 400)
        return handler.handle(request)

    app.add_url_rule("/slack/events", "slack_events", slack_events, methods=["POST"])
