"""Slack: a thin class over ``slack_sdk``'s WebClient and the pure Block Kit builders.

``SlackChat`` makes each Web API call once: the library's retry handlers are
off because the outbox owns retrying (with ``Retry-After`` and backoff).
Failures surface as ``SlackCallError`` carrying Slack's error code, the HTTP
status and, for 429, the ``Retry-After`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from opsbot.core.slacktext import escape, link

log = logging.getLogger(__name__)

ACTIVE = ("open", "acknowledged")
STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}
PRIORITY_EMOJI = {
    "P1": ":red_circle:",
    "P2": ":large_orange_circle:",
    "P3": ":large_yellow_circle:",
}
HEADER_LIMIT = 150
TEXT_LIMIT = 2900


class SlackCallError(Exception):
    """A Web API call failed; ``error`` is Slack's code, e.g. ``channel_not_found``."""

    def __init__(self, error: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"Slack answered {error} (HTTP {status})")
        self.error = error
        self.status = status
        self.retry_after = retry_after


class SlackChat:
    """The Slack Web API calls opsbot makes, over one WebClient."""

    def __init__(self, token: str, base_url: str, *, timeout: int = 10) -> None:
        self.client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> tuple[str, str]:
        """Post a message; return the channel id and the message's ``ts``."""
        data = self._call("chat_postMessage", channel=channel, text=text, blocks=blocks)
        return str(data.get("channel") or channel), str(data["ts"])

    def reply(self, channel: str, thread_ts: str, text: str) -> str:
        """Reply in a message's thread; return the reply's ``ts``."""
        data = self._call("chat_postMessage", channel=channel, thread_ts=thread_ts, text=text)
        return str(data["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message in place."""
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        """Show a message to one user in a channel."""
        self._call("chat_postEphemeral", channel=channel, user=user, text=text)

    def group_members(self, group_id: str) -> list[str]:
        """Return the user ids in a user group."""
        data = self._call("usergroups_users_list", usergroup=group_id)
        return [str(user) for user in data.get("users", [])]

    def user_name(self, user_id: str) -> str:
        """Return a user's display name (falling back to the real name, then the handle)."""
        user = self._call("users_info", user=user_id).get("user", {})
        profile = user.get("profile", {})
        return str(
            profile.get("display_name") or user.get("real_name") or user.get("name") or user_id
        )

    def auth_test(self) -> Mapping[str, Any]:
        """Return who the bot token belongs to (team and user)."""
        return self._call("auth_test")

    def _call(self, method: str, **kwargs: Any) -> Mapping[str, Any]:
        args = {key: value for key, value in kwargs.items() if value is not None}
        try:
            response = getattr(self.client, method)(**args)
        except SlackApiError as exc:
            raise _call_error(exc) from None
        return response.data if isinstance(response.data, dict) else {}


def _call_error(exc: SlackApiError) -> SlackCallError:
    response = exc.response
    error = str(response.get("error") or "unknown_error") if response is not None else "unknown"
    status = response.status_code if response is not None else 0
    retry_after = None
    if status == 429:
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        value = headers.get("retry-after")
        value = value[0] if isinstance(value, list) else value
        retry_after = float(value) if value and str(value).isdigit() else 1.0
        error = error if error != "unknown_error" else "ratelimited"
    return SlackCallError(error, status, retry_after)


class CardIncident(Protocol):
    """The incident facts the card shows (an ``Incident`` row has them all)."""

    id: int
    status: str
    priority: str
    title: str
    summary: str
    environment: str
    account_id: str
    account_name: str
    region: str
    resource: str
    count: int
    flapping: bool
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None
    owner: str | None
    jira_key: str | None
    route: dict[str, Any]


def jira_link(jira_url: str | None, key: str) -> str:
    """Return the browse URL of a Jira issue."""
    return f"{(jira_url or '').rstrip('/')}/browse/{key}"


def card_text(incident: CardIncident) -> str:
    """Return the fallback text of the card (notifications, screen readers), escaped."""
    status = STATUS_LABELS.get(incident.status, incident.status)
    # Slack reads a message's top-level text as mrkdwn: an alarm must not mention anyone.
    return f"{incident.priority} {escape(incident.title)} ({status})"


def incident_card(
    incident: CardIncident, *, jira_url: str | None = None, page_url: str | None = None
) -> list[dict[str, Any]]:
    """Return the Block Kit blocks of an incident's card, buttons following its state.

    Untrusted text (title, summary, account, resource, names) is escaped in
    every mrkdwn part; the header is plain text, which Slack never parses.
    """
    emoji = PRIORITY_EMOJI.get(incident.priority, ":white_circle:")
    header = f"{incident.priority} {incident.title}"[:HEADER_LIMIT]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": _fields(incident, jira_url)},
    ]
    reason = _cut(escape(incident.summary or incident.title), TEXT_LIMIT - len(emoji) - 1)
    blocks.append(_section(f"{emoji} {reason}"))
    buttons = card_buttons(incident, jira_url=jira_url)
    if buttons:
        blocks.append({"type": "actions", "block_id": "incident_actions", "elements": buttons})
    label = f"Incident {incident.id}"
    where = link(page_url, label) if page_url else label  # the dashboard page (OPSBOT_PUBLIC_URL)
    blocks.append({"type": "context", "elements": [_mrkdwn(f"{where} · opsbot")]})
    return blocks


def card_buttons(incident: CardIncident, *, jira_url: str | None = None) -> list[dict[str, Any]]:
    """Return the card's buttons: only the actions the incident's state allows."""
    value = str(incident.id)
    buttons: list[dict[str, Any]] = []
    if incident.status == "open":
        buttons.append(_button("Acknowledge", "incident_ack", value, style="primary"))
    if incident.status in ACTIVE:
        buttons.append(_button("Resolve", "incident_resolve", value, style="danger"))
        buttons.append(_button("Silence 1 h", "incident_silence", value))
        runbook = (incident.route or {}).get("runbook")
        if runbook:
            buttons.append(_button(f"Run {runbook}", "runbook_run", value))
    if incident.jira_key and jira_url:
        button = _button("Open in Jira", "open_jira", incident.jira_key)
        buttons.append({**button, "url": jira_link(jira_url, incident.jira_key)})
    return buttons


def _fields(incident: CardIncident, jira_url: str | None) -> list[dict[str, Any]]:
    account = incident.account_name or incident.account_id or "unknown"
    if incident.account_name and incident.account_id:
        account = f"{incident.account_name} ({incident.account_id})"
    jira = "—"
    if incident.jira_key:
        jira = escape(incident.jira_key)
        if jira_url:
            jira = link(jira_link(jira_url, incident.jira_key), incident.jira_key)
    pairs = [
        ("Environment", escape(f"{incident.environment} · {account}")),
        ("Region", escape(incident.region or "—")),
        ("Resource", escape(incident.resource or "—")),
        ("Status", _status(incident)),
        ("Count", str(incident.count)),
        ("Jira", jira),
        ("First seen", _when(incident.first_seen)),
        ("Last seen", _when(incident.last_seen)),
    ]
    return [_mrkdwn(f"*{name}*\n{_cut(value, 1990)}") for name, value in pairs]


def _cut(text: str, limit: int) -> str:
    """Return escaped text cut to a length without splitting an entity like ``&amp;``."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    amp = cut.rfind("&")
    return cut[:amp] if amp != -1 and ";" not in cut[amp:] else cut


def _status(incident: CardIncident) -> str:
    text = STATUS_LABELS.get(incident.status, incident.status)
    if incident.status == "acknowledged" and incident.acknowledged_by:
        text += f" by {escape(incident.acknowledged_by)}"
    if incident.flapping:
        text += " · flapping"
    if incident.owner:
        text += f" · owner {escape(incident.owner)}"
    return text


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}
