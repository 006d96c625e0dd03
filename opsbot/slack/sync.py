"""The outbox sender for Slack: the incident card, its thread, and notices elsewhere.

Kinds: ``post`` posts the card to the routed channel (the incident's
``slack_channel`` or ``OPSBOT_SLACK_CHANNEL``) and stores where it went;
``update`` re-renders the card in place from the incident's current state;
``thread`` replies in the card's thread; ``notify`` posts ``payload.text`` to
``payload.channel`` (escalation notices); ``approval`` posts or updates
an approval request (``opsbot.approvals.messages``). Slack's limits are honoured across
every worker through token buckets kept in the database: one message per
channel per second and a workspace budget of 50 ``chat.update`` a minute. A
short bucket hands the row a slot ahead (``Wait``, uncharged), so a burst to
one channel goes out at exactly one card a second.

A 429 waits its ``Retry-After``, uncharged. A refused token (``invalid_auth``,
``token_revoked``, …) stops the sender: rows are held, one call a minute
probes the token, and the first that works drains them (``GET /status``
shows it; ``/readyz`` does not depend on Slack).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opsbot.approvals import messages as approvals
from opsbot.db.models import Incident
from opsbot.db.session import transaction
from opsbot.outbox.budget import holds_reservation, take
from opsbot.outbox.ports import OutboxItem, PermanentFailure, RetryLater, Sent, Wait
from opsbot.outbox.status import SenderGate
from opsbot.runtime import Runtime
from opsbot.slack.client import SlackCallError, SlackChat, card_text, incident_card

log = logging.getLogger(__name__)

# (per second, burst) of each bucket: chat.postMessage one a second per channel,
# chat.update Tier 3 (50 a minute) for the workspace
POST_RATE = (1.0, 1.0)
UPDATE_RATE = (50 / 60, 50.0)
NOT_POSTED_RETRY = 5.0
RATE_LIMITED_DEFAULT = 30.0

# Errors no retry can fix; the auth ones stop the sender until the token works again.
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


class SlackSync:
    """Delivers the outbox rows of target ``slack``."""

    target = "slack"

    def __init__(self, rt: Runtime, chat: SlackChat, health: SenderGate) -> None:
        self.rt = rt
        self.chat = chat
        self.health = health
        self.reserved = False

    def send(self, item: OutboxItem) -> Sent:
        """Perform one Slack call for an outbox row, rendering from the incident's state now."""
        self.health.admit()
        self.reserved = holds_reservation(item.reserved_slot, self.rt.clock())
        if item.kind == "notify":
            channel = str(item.payload.get("channel") or self._default_channel())
            return self._call(item, lambda: self._notify(channel, str(item.payload["text"])))
        if item.kind == "approval":  # an approval request: posted, then updated in place
            default = self.rt.settings.slack_channel or ""
            return self._call(
                item, lambda: approvals.send(self.rt, self.chat, item, self._budget, default)
            )
        incident = self._incident(item)
        if item.kind == "post":
            return self._call(item, lambda: self._post(incident))
        if not incident.slack_ts or not incident.slack_channel:
            raise Wait("the card is not posted yet", NOT_POSTED_RETRY)
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
        self._take(f"post:{channel}", POST_RATE)
        blocks = incident_card(
            incident,
            jira_url=self.rt.settings.jira_url,
            page_url=self.rt.settings.incident_page_url(incident.id),
        )
        channel_id, ts = self.chat.post(channel, card_text(incident), blocks)
        return Sent({"slack_channel": channel_id, "slack_ts": ts})

    def _update(self, incident: Incident) -> Sent:
        self._take("update", UPDATE_RATE)
        assert incident.slack_channel and incident.slack_ts
        blocks = incident_card(
            incident,
            jira_url=self.rt.settings.jira_url,
            page_url=self.rt.settings.incident_page_url(incident.id),
        )
        self.chat.update(incident.slack_channel, incident.slack_ts, card_text(incident), blocks)
        return Sent()

    def _thread(self, incident: Incident, text: str) -> Sent:
        assert incident.slack_channel and incident.slack_ts
        self._take(f"post:{incident.slack_channel}", POST_RATE)
        self.chat.reply(incident.slack_channel, incident.slack_ts, text)
        return Sent()

    def _notify(self, channel: str, text: str) -> Sent:
        self._take(f"post:{channel}", POST_RATE)
        self.chat.post(channel, text)
        return Sent()

    def _budget(self, key: str) -> None:
        self._take(key, POST_RATE if key.startswith("post:") else UPDATE_RATE)

    def _take(self, key: str, rate: tuple[float, float]) -> None:
        if self.reserved:
            return
        with transaction(self.rt.sessions) as session:
            wait = take(
                session, f"slack:{key}", rate=rate[0], capacity=rate[1], cost=1, now=self.rt.clock()
            )
        if wait:
            raise Wait(f"Slack rate budget {key} spent", wait, reserved=True)

    def _call(self, item: OutboxItem, call: Callable[[], Sent]) -> Sent:
        try:
            sent = call()
        except SlackCallError as exc:
            raise self._failure(item, exc) from None
        self.health.succeeded()
        return sent

    def _failure(self, item: OutboxItem, exc: SlackCallError) -> Exception:
        self.rt.metrics.inc("opsbot_slack_errors_total", error=exc.error)
        reason = f"Slack {item.kind} failed: {exc.error}"
        if exc.error in AUTH_ERRORS:
            return self.health.stop(
                f"Slack refused the bot token ({exc.error}): check OPSBOT_SLACK_BOT_TOKEN"
            )
        if exc.status == 429:
            self.health.failing(f"Slack rate limited {item.kind}")
            wait = exc.retry_after if exc.retry_after is not None else RATE_LIMITED_DEFAULT
            return Wait(f"Slack rate limited {item.kind}", wait)
        if exc.error in PERMANENT_ERRORS:
            return PermanentFailure(reason)
        self.health.failing(reason)
        return RetryLater(reason)


def slack_parts(rt: Runtime) -> tuple[SlackChat, SenderGate]:
    """Return this process's Slack client and sender gate, built once."""
    parts = rt.integrations.get("slack")
    if parts is None:
        token = rt.settings.slack_bot_token
        assert token is not None, "Slack is not configured"
        chat = SlackChat(token.get_secret_value(), rt.settings.slack_api_url)
        # read the runtime's clock at each call: a test may swap it after the app is built
        gate = SenderGate("slack", rt.sessions, lambda: rt.clock())
        parts = (chat, gate)
        rt.integrations["slack"] = parts
    return parts  # type: ignore[no-any-return]


def sender(rt: Runtime) -> SlackSync:
    """Return the outbox sender for Slack."""
    chat, health = slack_parts(rt)
    return SlackSync(rt, chat, health)
