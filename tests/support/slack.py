"""Helpers for the Slack tests: the fake workspace, an app wired to it, signed requests."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from pydantic import SecretStr

from opsbot.config import Settings
from tests.fakes.slack_api import TEAM_ID, TOKEN, FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ROLES_YAML = """
slack:
  roles: {admin: [U0ADMIN], operator: [U0OPS, S0OPERATORS]}
"""
_triggers = itertools.count(1)


def slack_settings(settings: Settings, fake: FakeSlack, **extra: Any) -> Settings:
    """Return the test settings with Slack pointed at the fake."""
    values: dict[str, Any] = {
        "slack_bot_token": SecretStr(TOKEN),
        "slack_signing_secret": SecretStr(SECRET),
        "slack_api_url": f"{fake.url}/api/",
        "slack_channel": "#ops",
        "slack_team_id": TEAM_ID,
    }
    return settings.model_copy(update={**values, **extra})


def sign(body: str, timestamp: str, secret: str = SECRET) -> str:
    """Return Slack's v0 signature of a request body."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_post(
    client: FlaskClient,
    body: str,
    *,
    timestamp: int | None = None,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a body to /slack/events signed exactly as Slack signs it."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    all_headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp, secret),
        **(headers or {}),
    }
    return client.post("/slack/events", data=body, headers=all_headers)


def command_body(
    fake: FakeSlack,
    text: str,
    *,
    user: str = "U0OPS",
    team: str = TEAM_ID,
    trigger: str | None = None,
    command: str = "/ops",
) -> str:
    """Return a slash command's form body in Slack's documented shape."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "opsbot-test",
            "channel_id": "C0OPS",
            "channel_name": "ops",
            "user_id": user,
            "user_name": fake.users.get(user, "someone"),
            "command": command,
            "text": text,
            "api_app_id": "A0OPSBOT",
            "response_url": f"{fake.url}/response/{next(_triggers)}",
            "trigger_id": trigger or f"{next(_triggers)}.1111.abcdef",
        }
    )


def button_body(
    fake: FakeSlack,
    action_id: str,
    value: str,
    *,
    user: str = "U0OPS",
    team: str = TEAM_ID,
    trigger: str | None = None,
) -> str:
    """Return a block_actions payload in Slack's documented shape, form-encoded."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "opsbot-test"},
        "user": {"id": user, "username": fake.users.get(user, "x"), "team_id": team},
        "api_app_id": "A0OPSBOT",
        "token": "legacy-verification-token",
        "container": {"type": "message", "channel_id": "C0OPS", "message_ts": "1.1"},
        "trigger_id": trigger or f"{next(_triggers)}.2222.abcdef",
        "channel": {"id": "C0OPS", "name": "ops"},
        "response_url": f"{fake.url}/response/{next(_triggers)}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "incident_actions",
                "text": {"type": "plain_text", "text": action_id},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def ops(client: FlaskClient, fake: FakeSlack, text: str, **kwargs: Any) -> Any:
    """Run ``/ops <text>`` through a signed request; return the JSON reply."""
    response = signed_post(client, command_body(fake, text, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()
