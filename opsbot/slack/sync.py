"""The outbox sender for Slack: the incident card, its thread, and notices elsewhere.

Kinds: ``post`` posts the card to the routed channel (the incident's
``slack_channel`` or ``OPSBOT_SLACK_CHANNEL``) and stores where it went;
``update`` re-renders the card in place from the incident's current state;
``thread`` replies in the card's thread; ``notify`` posts ``payload.text`` to
``payload.channel`` (escalation notices). Slack's limits are honoured across
every worker through windows kept in the database: at most one message per
channel per second and a workspace budget for ``chat.update``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from opsbot.db.models import Incident, SlackRateLimit
from opsbot.db.session import is_postgres, transaction
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sent
from opsbot.runtime import Runtime
from opsbot.slack.client import SlackCallError, SlackChat, card_text, incident_card

log = logging.getLogger(__name__)

POST_WINDOW = timedelta(seconds=1)
UPDATE_BUDGET = 50
UPDATE_WINDOW = timedelta(minutes=1)
NOT_POSTED_RETRY = 5.0

# Errors no retry can fix; the auth ones also make /readyz fail.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked"})
PERMANENT_ERRORS = AUTH_ERRORS | {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "missing_scope",
    "no_permission",
    "message_not_found",
    "cant_update_message",
    "invalid_blocks",
    "msg_too_long",
}


class SlackHealth:
    """What the last Slack call said about the token, for ``/readyz``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.problem: str | None = None

    def record(self, error: str | None) -> None:
        """Remember an auth failure, or clear it after a successful call."""
        with self._lock:
            if error is None:
                self.problem = None
            elif error in AUTH_ERRORS:
                self.problem = (
                    f"Slack refused the bot token ({error}): check OPSBOT_SLACK_BOT_TOKEN."
                )

    def check(self) -> str | None:
        """Return the readiness problem, or None when Slack accepted the token."""
        with self._lock:
            return self.problem


def reserve(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> float:
    """Take one call from a shared window; return 0, or the seconds to wait for the next."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(
        dialect.insert(SlackRateLimit)
        .values(key=key, window_start=now, used=0)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = session.get(SlackRateLimit, key, with_for_update=True, populate_existing=True)
    assert row is not None
    if now - row.window_start >= window or now < row.window_start:
        row.window_start, row.used = now, 0
    if row.used >= limit:
        return max(0.1, (row.window_start + window - now).total_seconds())
    row.used += 1
    return 0.0


class SlackSync:
    """Delivers the outbox rows of target ``slack``."""

    target = "slack"

    def __init__(self, rt: Runtime, chat: SlackChat, health: SlackHealth) -> None:
        self.rt = rt
        self.chat = chat
        self.health = health

    def send(self, item: OutboxItem) -> Sent:
        """Perform one Slack call for an outbox row, rendering from the incident's state now."""
        if item.kind == "notify":
            channel = str(item.payload.get("channel") or self._default_channel())
            return self._call(item, lambda: self._notify(channel, str(item.payload["text"])))
        incident = self._incident(item)
        if item.kind == "post":
            return self._call(item, lambda: self._post(incident))
        if not incident.slack_ts or not incident.slack_channel:
            raise RetryLater("the card is not posted yet", NOT_POSTED_RETRY)
        if item.kind == "update":
            return self._call(item, lambda: self._update(incident))
        if item.kind == "thread":
            return self._call(item, lambda: self._thread(incident, str(item.payload["text"])))
        raise PermanentFailure(f"unknown Slack outbox kind {item.kind!r}")

    def _incident(self, item: OutboxItem) -> Incident:
        with transaction(self.rt.sessions) as session:
            incident = session.get(Incident, item.incident_id) if item.incident_id else None
            if incident is None:
                raise PermanentFailure(f"outbox row {item.id} names no incident")
            session.expunge(incident)
        return incident

    def _default_channel(self) -> str:
        channel = self.rt.settings.slack_channel
        if not channel:
            raise PermanentFailure("no Slack channel: set OPSBOT_SLACK_CHANNEL or a rule's channel")
        return channel

    def _post(self, incident: Incident) -> Sent:
        if incident.slack_ts and incident.slack_channel:
            return Sent()  # posted before a lease expired; never post twice
        channel = incident.slack_channel or self._default_channel()
        self._take(f"post:{channel}", 1, POST_WINDOW)
        blocks = incident_card(incident, jira_url=self.rt.settings.jira_url)
        channel_id, ts = self.chat.post(channel, card_text(incident), blocks)
        return Sent({"slack_channel": channel_id, "slack_ts": ts})

    def _update(self, incident: Incident) -> Sent:
        self._take("update", UPDATE_BUDGET, UPDATE_WINDOW)
        assert incident.slack_channel and incident.slack_ts
        blocks = incident_card(incident, jira_url=self.rt.settings.jira_url)
        self.chat.update(incident.slack_channel, incident.slack_ts, card_text(incident), blocks)
        return Sent()

    def _thread(self, incident: Incident, text: str) -> Sent:
        assert incident.slack_channel and incident.slack_ts
        self._take(f"post:{incident.slack_channel}", 1, POST_WINDOW)
        self.chat.reply(incident.slack_channel, incident.slack_ts, text)
        return Sent()

    def _notify(self, channel: str, text: str) -> Sent:
        self._take(f"post:{channel}", 1, POST_WINDOW)
        self.chat.post(channel, text)
        return Sent()

    def _take(self, key: str, limit: int, window: timedelta) -> None:
        with transaction(self.rt.sessions) as session:
            wait = reserve(session, key, limit, window, self.rt.clock())
        if wait:
            raise RetryLater(f"Slack rate budget {key} spent", wait)

    def _call(self, item: OutboxItem, call: Callable[[], Sent]) -> Sent:
        try:
            sent = call()
        except SlackCallError as exc:
            self.rt.metrics.inc("opsbot_slack_errors_total", error=exc.error)
            self.health.record(exc.error)
            if exc.status == 429:
                raise RetryLater(f"Slack rate limited {item.kind}", exc.retry_after) from None
            if exc.error in PERMANENT_ERRORS:
                raise PermanentFailure(f"Slack {item.kind} failed: {exc.error}") from None
            raise RetryLater(f"Slack {item.kind} failed: {exc.error}") from None
        self.health.record(None)
        return sent


def slack_parts(rt: Runtime) -> tuple[SlackChat, SlackHealth]:
    """Return this process's Slack client and health, built once with the readiness hook."""
    parts = rt.integrations.get("slack")
    if parts is None:
        token = rt.settings.slack_bot_token
        assert token is not None, "Slack is not configured"
        health = SlackHealth()
        parts = (SlackChat(token.get_secret_value(), rt.settings.slack_api_url), health)
        rt.integrations["slack"] = parts
        rt.readiness.append(health.check)
    return parts  # type: ignore[no-any-return]


def sender(rt: Runtime) -> SlackSync:
    """Return the outbox sender for Slack."""
    chat, health = slack_parts(rt)
    return SlackSync(rt, chat, health)
