"""deploy/slack-manifest.yaml asks for exactly the scopes of the Web API methods opsbot calls."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from slack_sdk import WebClient

from opsbot.config import Settings

ROOT = Path(__file__).parents[2]
MANIFEST = ROOT / "deploy" / "slack-manifest.yaml"
# Each WebClient method opsbot may call, and its documented bot scopes
# (docs.slack.dev/reference/methods/<method>). A method missing here fails the test below.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth_test": set(),
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_delete": {"chat:write"},
    "usergroups_users_list": {"usergroups:read"},
    "usergroups_list": {"usergroups:read"},
    "users_info": {"users:read"},
    "users_lookupByEmail": {"users:read.email"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_join": {"channels:join"},
    "reactions_add": {"reactions:write"},
    "views_open": set(),
    "views_update": set(),
}
FAMILIES = "auth|chat|conversations|users|usergroups|reactions|views|pins|files|team|bots|dnd"
METHOD = re.compile(rf"""["'.]((?:{FAMILIES})_[A-Za-z_]+)["(]""")


def methods_called() -> set[str]:
    """Return the WebClient methods named anywhere in opsbot/slack/."""
    found: set[str] = set()
    for path in (ROOT / "opsbot" / "slack").rglob("*.py"):
        found |= set(METHOD.findall(path.read_text(encoding="utf-8")))
    return found


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_code_calls_the_methods_we_expect_and_they_exist() -> None:
    called = methods_called()
    assert {"chat_postMessage", "chat_update", "auth_test"} <= called
    assert [m for m in called if not callable(getattr(WebClient, m, None))] == []
    assert called - set(METHOD_SCOPES) == set(), "map each new method to its documented scope"


def test_the_bot_scopes_are_exactly_those_the_code_needs() -> None:
    needed = {scope for method in methods_called() for scope in METHOD_SCOPES[method]}
    needed.add("commands")  # the slash command (bolt.command in opsbot/slack/bolt.py)
    scopes = manifest()["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == sorted(needed)
    assert set(scopes) == {"bot"}


def test_the_command_and_interactivity_reach_post_slack_events() -> None:
    app = manifest()
    [command] = app["features"]["slash_commands"]
    assert command["command"] == Settings.model_fields["slack_command"].default
    assert command["url"].startswith("https://") and command["url"].endswith("/slack/events")
    interactivity = app["settings"]["interactivity"]
    assert interactivity == {"is_enabled": True, "request_url": command["url"]}
    bolt = (ROOT / "opsbot" / "slack" / "bolt.py").read_text()
    assert ("event_subscriptions" in app["settings"]) == ("bolt.event(" in bolt)
