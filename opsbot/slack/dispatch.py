"""Runs /ops commands and button presses: roles, one transaction, dedup, replies.

``Dispatcher`` finds the command in the table ``opsbot.slack.commands`` builds,
checks the user's role (a refusal is answered ephemerally and audited), runs
the handler in one transaction with ``SessionOps`` as its port, records
state-changing requests once by their ``trigger_id`` so a retried request
changes nothing twice, and turns ``Problem``/``ActionError`` into a one-line
explanation plus the usage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.base import bound, clean
from opsbot import logs
from opsbot.approvals.messages import DENY, DENY_VIEW, REASON_BLOCK, REASON_INPUT, deny_view
from opsbot.approvals.service import ApprovalRefused
from opsbot.audit import audit
from opsbot.config import ConfigError, match_from_mapping
from opsbot.core import roles
from opsbot.core.effects import Effect
from opsbot.db import store
from opsbot.db.models import Incident, SilenceRow
from opsbot.db.session import transaction
from opsbot.incidents import actions
from opsbot.outbox.queue import queue_effects
from opsbot.runbooks.desk import RunbookDesk
from opsbot.runtime import Runtime
from opsbot.slack.client import SlackCallError, SlackChat
from opsbot.slack.commands.base import (
    Command,
    CommandTable,
    Problem,
    Reply,
    Request,
    SlackUser,
    number,
)

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
# After a failed lookup, Slack is not asked again for this long: a Web API that is down or
# hangs costs one request one lookup timeout, not every request every lookup.
OUTAGE_SECONDS = 30.0
NAME_LIMIT = 100  # "name (U123)" must fit audit_log.actor and incidents.owner (128)
RESPOND_SECONDS = 1.0  # a reply to response_url must not hold the answer past Slack's 3 s


class Directory:
    """Slack lookups for requests, cached for minutes: user names and user-group members."""

    def __init__(self, chat: SlackChat, role_map: Mapping[str, tuple[str, ...]]) -> None:
        self.chat = chat
        self.role_map = role_map
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._down_since: float | None = None

    def user(self, user_id: str, fallback: str = "") -> SlackUser:
        """Return the user with their name (users.info) and role (ids and user groups)."""
        groups = {g for g in roles.group_ids(self.role_map) if user_id in self.members(g)}
        role = roles.role_of(user_id, groups, self.role_map)
        name = bound(clean(self.name(user_id, fallback)), NAME_LIMIT)
        return SlackUser(user_id, name, role)

    def name(self, user_id: str, fallback: str = "") -> str:
        """Return a user's display name."""
        name: str = self._cached("name", user_id, self.chat.user_name, fallback or user_id)
        return name

    def members(self, group_id: str) -> frozenset[str]:
        """Return the members of a user group."""
        load = lambda g: frozenset(self.chat.group_members(g))  # noqa: E731
        members: frozenset[str] = self._cached("group", group_id, load, frozenset())
        return members

    def _cached(self, kind: str, key: str, load: Callable[[str], Any], fallback: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((kind, key))
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        down = self._down_since
        if down is not None and now - down < OUTAGE_SECONDS:
            return hit[1] if hit is not None else fallback
        try:
            value = load(key)
        except (SlackCallError, OSError) as exc:  # OSError: refused, unreachable, timed out
            reason = exc.error if isinstance(exc, SlackCallError) else type(exc).__name__
            log.warning("Slack lookup of %s %s failed: %s", kind, key, reason)
            if not isinstance(exc, SlackCallError) or exc.status in (0, 429) or exc.status >= 500:
                self._down_since = time.monotonic()
            return hit[1] if hit is not None else fallback
        with self._lock:
            self._cache[(kind, key)] = (now, value)
        self._down_since = None
        return value


class SessionOps:
    """The ``Ops`` port over one transaction: queries and ``opsbot.incidents.actions``."""

    def __init__(self, rt: Runtime, session: Session, directory: Directory) -> None:
        self.rt = rt
        self.session = session
        self.directory = directory
        self._now = rt.clock()

    def now(self) -> datetime:
        """Return the time of this request."""
        return self._now

    def incident(self, incident_id: int) -> Incident | None:
        """Return an incident, or None."""
        return self.session.get(Incident, incident_id)

    def incidents(
        self, statuses: Sequence[str], filters: dict[str, str], limit: int
    ) -> list[Incident]:
        """Return the newest incidents with a status and the given column values."""
        query = select(Incident).where(Incident.status.in_(tuple(statuses)))
        for column, value in filters.items():
            query = query.where(getattr(Incident, column) == value)
        rows = self.session.execute(query.order_by(Incident.id.desc()).limit(limit))
        return list(rows.scalars())

    def acknowledge(self, incident_id: int, actor: str) -> actions.Outcome:
        """Acknowledge an incident."""
        return actions.acknowledge(self.session, incident_id, actor=actor, now=self._now)

    def resolve(self, incident_id: int, actor: str, note: str) -> actions.Outcome:
        """Resolve an incident."""
        return actions.resolve(self.session, incident_id, actor=actor, now=self._now, note=note)

    def assign(self, incident_id: int, owner: str, actor: str) -> actions.Outcome:
        """Set an incident's owner."""
        return actions.assign(self.session, incident_id, owner=owner, actor=actor, now=self._now)

    def silence(self, matcher: dict[str, Any], ends_at: datetime, reason: str, actor: str) -> int:
        """Create a silence (its account checked against the account map) and apply it at once."""
        try:
            match_from_mapping(matcher, self.rt.policy.accounts)
        except ConfigError as exc:
            raise Problem(f"Bad silence matcher: {exc}") from None
        silence_id = actions.create_silence(
            self.session, matcher, ends_at=ends_at, reason=reason, actor=actor, now=self._now
        )
        self.rt.silences.invalidate()
        return silence_id

    def silences(self) -> list[SilenceRow]:
        """Return the silences in force."""
        return list(store.active_silence_rows(self.session, self._now))

    def end_silence(self, silence_id: int, actor: str) -> actions.Outcome:
        """End a silence now."""
        outcome = actions.end_silence(self.session, silence_id, actor=actor, now=self._now)
        self.rt.silences.invalidate()
        return outcome

    def note(self, incident_id: int, text: str) -> None:
        """Reply in the incident card's thread."""
        effect = Effect("slack", "thread", payload={"text": text})
        queue_effects(self.session, incident_id, [effect], self._now)

    def user_name(self, user_id: str) -> str:
        """Return a Slack user's display name."""
        return self.directory.name(user_id)

    def runbooks(self) -> RunbookDesk:
        """Return the runbook operations over this transaction (``slack/commands/runbooks``)."""
        return RunbookDesk(self.rt, self.session, self._now)


class Dispatcher:
    """Answers /ops commands and button presses from the command table."""

    def __init__(self, rt: Runtime, directory: Directory, table: CommandTable) -> None:
        self.rt = rt
        self.directory = directory
        self.table = table

    def on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """Answer one /ops request (a Bolt listener): the reply rides on the acknowledgement."""
        words = str(command.get("text") or "").split()
        word = words[0].lower() if words else "help"
        found = self.table.commands.get(word)
        if found is None:
            text = f"I don't know `{word}`. Try `{self.table.name} help`."
            ack(text=text, response_type="ephemeral")
            return
        key = str(command.get("trigger_id") or "")
        logs.bind(request_id=logs.safe_id(key))  # the web request's teardown resets it
        user = self.directory.user(str(command["user_id"]), str(command.get("user_name") or ""))
        reply = self.perform(found, user, words[1:], key, str(command.get("channel_id") or ""))
        ack(text=reply.text, response_type="in_channel" if reply.public else "ephemeral")

    def on_button(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        """Handle a card button (a Bolt listener): ack at once, answer the presser privately."""
        ack()
        action = (body.get("actions") or [{}])[0]
        found = self.table.buttons.get(str(action.get("action_id")))
        if found is None:
            return
        key = str(body.get("trigger_id") or action.get("action_ts") or "")
        logs.bind(request_id=logs.safe_id(key))  # the web request's teardown resets it
        pressed = body.get("user") or {}
        user = self.directory.user(str(pressed.get("id")), str(pressed.get("username") or ""))
        value = str(action.get("value") or "")
        if found.word == DENY and roles.allowed(user.role, found.action):
            reply = self.ask_reason(found, user, value, key)
        else:
            reply = self.perform(found, user, [value], key)
        if reply.text:
            respond_within(
                respond, text=reply.text, response_type="ephemeral", replace_original=False
            )

    def ask_reason(self, cmd: Command, user: SlackUser, value: str, trigger_id: str) -> Reply:
        """Open the modal that asks why a request is denied (the denial comes with its submit)."""
        try:
            approval = number(value, "an approval number")
            with transaction(self.rt.sessions) as session:
                what = SessionOps(self.rt, session, self.directory).runbooks().describe(approval)
        except (Problem, actions.ActionError) as exc:
            return Reply(str(exc))
        try:
            self.directory.chat.client.views_open(
                trigger_id=trigger_id, view=deny_view(approval, what)
            )
        except Exception as exc:  # the modal is a courtesy: the command always works
            log.warning("Slack views.open failed: %s", type(exc).__name__)
            return Reply(
                f"The form did not open; deny with `{self.table.name} deny A{approval} <reason>`."
            )
        return Reply("")

    def on_view(self, ack: Any, body: dict[str, Any]) -> None:
        """Deny the request a submitted reason modal names; a refusal shows in the modal."""
        view = body.get("view") or {}
        submitted = self.table.buttons.get(DENY)
        if submitted is None or view.get("callback_id") != DENY_VIEW:
            ack()
            return
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value") or "")
        key = f"view:{view.get('id', '')}"
        logs.bind(request_id=logs.safe_id(key))
        pressed = body.get("user") or {}
        user = self.directory.user(str(pressed.get("id")), str(pressed.get("username") or ""))
        value = str(view.get("private_metadata") or "")
        reply = self.perform(submitted, user, [value, reason.strip()], key)
        if reply.public:
            ack()
        else:
            ack(response_action="errors", errors={REASON_BLOCK: reply.text[:150]})

    def perform(
        self, cmd: Command, user: SlackUser, args: list[str], key: str, channel_id: str = ""
    ) -> Reply:
        """Check the role, then run the handler once, in one transaction."""
        if not roles.allowed(user.role, cmd.action):
            return self.refuse(user, cmd, args)
        value = args[0] if args else ""
        try:
            with transaction(self.rt.sessions) as session:
                if cmd.changes and not first_time(session, key, self.rt.clock()):
                    return Reply("That request was already handled.")
                ops = SessionOps(self.rt, session, self.directory)
                return cmd.handler(Request(ops, user, args, value, channel_id, self.table))
        except ApprovalRefused as exc:
            with transaction(self.rt.sessions) as session:  # the request's one rolled back
                for entry in exc.audit_entries:
                    audit(session, **entry)
            return Reply(f"Refused: {exc}")
        except (Problem, actions.ActionError) as exc:
            usage = f" {self.table.usage(cmd.word)}" if cmd.word in self.table.commands else ""
            return Reply(f"{exc}{usage}")

    def refuse(self, user: SlackUser, cmd: Command, args: list[str]) -> Reply:
        """Audit a refused request and explain it."""
        need = roles.required_role(cmd.action)
        with transaction(self.rt.sessions) as session:
            audit(
                session,
                actor=user.actor,
                action="slack.refused",
                subject=_subject(cmd, args),
                now=self.rt.clock(),
                detail={"user_id": user.id, "role": user.role, "action": cmd.action, "needs": need},
            )
        return Reply(f"Refused: {cmd.action} needs the {need} role; you are a {user.role}.")


def respond_within(respond: Any, **reply: Any) -> None:
    """Post a reply to the response_url, waiting at most RESPOND_SECONDS for Slack."""

    def post() -> None:
        try:
            respond(**reply)
        except Exception as exc:  # the reply is a courtesy: the action itself is done
            log.warning("Slack response_url reply failed: %s", type(exc).__name__)

    thread = threading.Thread(target=post, name="slack-respond", daemon=True)
    thread.start()
    thread.join(RESPOND_SECONDS)


def _subject(cmd: Command, args: list[str]) -> tuple[str, str]:
    digits = args[0].lstrip("#") if args else ""
    if digits.isascii() and digits.isdigit() and cmd.action not in ("unsilence",):
        return ("incident", digits[:64])
    return ("slack", cmd.word[:64])


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Record a Slack request by its trigger id; False when it was handled before."""
    if not key:
        return True
    values = {
        "namespace": "slack",
        "message_id": key[:128],
        "channel": "slack",
        "message_type": "interaction",
        "body": "",
        "topic_arn": "",
        "subject": None,
        "sent_at": None,
        "received_at": now,
        "outcome": "processed",
    }
    return store.insert_delivery(session, values) is not None
