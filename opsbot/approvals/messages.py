"""The approval request as a Slack message, and its delivery by the Slack outbox sender.

The message shows what will happen, where (account, region, environment),
who asked, what the policy needs and when the request expires, with Approve
and Deny buttons (``approval_approve`` / ``approval_deny``, the request's id
as ``value``; Deny opens a modal for the reason). Once the request has
ended, the same message is updated in place: the buttons give way to who
decided, when and why. ``send`` is called by ``opsbot.slack.sync`` for rows
of kind ``approval``: it posts the message the first time (into the
approvers' channel) and updates it afterwards, through the sender's rate
budgets and failure handling.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from opsbot.approvals.service import queue_message
from opsbot.core.approvals import describe_level
from opsbot.core.slacktext import escape, link
from opsbot.db.models import Approval
from opsbot.db.session import transaction
from opsbot.outbox.ports import OutboxItem, PermanentFailure, Sent
from opsbot.runtime import Runtime

APPROVE, DENY = "approval_approve", "approval_deny"
DENY_VIEW = "approval_deny_reason"  # the modal's callback_id
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
REASON_LIMIT = 500
TEXT_LIMIT = 2900
ENDED = {
    "approved": ":white_check_mark: Approved",
    "denied": ":no_entry: Denied",
    "expired": ":hourglass: Expired",
    "closed": ":lock: Closed",
}
KIND_TITLES = {
    "run": "Runbook run",
    "patch_window": "Patch window",
    "codepipeline": "CodePipeline manual approval",
}


class Chat(Protocol):
    """The Slack calls the message needs (``opsbot.slack.client.SlackChat``)."""

    def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> tuple[str, str]: ...
    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None: ...


# Takes a slot of the sender's rate budget: "update", or "post:<channel>".
Take = Callable[[str], None]


def send(rt: Runtime, chat: Chat, item: OutboxItem, take: Take, default_channel: str) -> Sent:
    """Post a request's message, or update it in place when it was posted before."""
    approval_id = int(item.payload.get("approval_id", 0))
    with transaction(rt.sessions) as session:
        row = session.get(Approval, approval_id)
        if row is None:
            raise PermanentFailure(f"outbox row {item.id} names no approval")
        session.expunge(row)
    blocks, text = approval_blocks(row), approval_text(row)
    if row.slack_ts and row.slack_channel:
        take("update")
        chat.update(row.slack_channel, row.slack_ts, text, blocks)
        return Sent()
    channel = row.channel or default_channel
    if not channel:
        raise PermanentFailure(
            "no approvals channel: set approvals.channel or OPSBOT_SLACK_CHANNEL"
        )
    take(f"post:{channel}")
    channel_id, ts = chat.post(channel, text, blocks)
    with transaction(rt.sessions) as session:
        stored = session.get(Approval, approval_id, with_for_update=True)
        if stored is not None:
            stored.slack_channel, stored.slack_ts = channel_id, ts
            if stored.state != row.state:  # decided while the post was on its way
                queue_message(session, stored, rt.clock())
    return Sent()


def approval_text(row: Approval) -> str:
    """Return the message's notification text."""
    state = "needs approval" if row.state == "pending" else row.state
    return _cut(f"Approval A{row.id} {state}: {escape(row.what)}", 300)


def approval_blocks(row: Approval) -> list[dict[str, Any]]:
    """Return the Block Kit blocks of a request in its current state."""
    title = KIND_TITLES.get(row.kind, row.kind)
    head = f"{title}: approval A{row.id}" if row.state == "pending" else f"{title}: A{row.id}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(head, 150)}},
        _section(f"*What:* {escape(row.what)}"),
        {"type": "section", "fields": _fields(row)},
    ]
    links = _links(row)
    if links:
        blocks.append({"type": "context", "elements": [_mrkdwn(links)]})
    if row.state == "pending":
        blocks.append({"type": "actions", "block_id": "approval_actions", "elements": [
            _button("Approve", APPROVE, str(row.id), "primary"),
            _button("Deny", DENY, str(row.id), "danger"),
        ]})  # fmt: skip
    else:
        blocks.append(_section(_ended(row)))
    return blocks


def deny_view(approval_id: int, what: str) -> dict[str, Any]:
    """Return the modal that asks for the reason of a denial."""
    return {
        "type": "modal",
        "callback_id": DENY_VIEW,
        "private_metadata": str(approval_id),
        "title": {"type": "plain_text", "text": "Deny the request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(_cut(f"*A{approval_id}:* {escape(what)}", TEXT_LIMIT)),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                },
            },
        ],
    }


def _fields(row: Approval) -> list[dict[str, Any]]:
    where = " / ".join(p for p in (row.account_id or "default account", row.region) if p)
    return [
        _mrkdwn(f"*Where:*\n{escape(where)} ({row.environment})"),
        _mrkdwn(f"*Requested by:*\n{escape(row.requester)}"),
        _mrkdwn(f"*Needs:*\n{describe_level(row.level)}"),
        _mrkdwn(f"*Expires:*\n{_when(row.expires_at)}"),
    ]


def _links(row: Approval) -> str:
    parts = []
    if row.details.get("review_link"):
        parts.append(link(str(row.details["review_link"]), "Review in CodePipeline"))
    if row.details.get("external_link"):
        parts.append(link(str(row.details["external_link"]), "What changed"))
    if row.details.get("custom_data"):
        parts.append(escape(str(row.details["custom_data"])))
    if row.incident_id:
        parts.append(f"incident #{row.incident_id}")
    if row.run_id:
        parts.append(f"run {row.run_id}")
    return _cut(" · ".join(parts), TEXT_LIMIT)


def _ended(row: Approval) -> str:
    text = ENDED.get(row.state, row.state)
    if row.decider:
        text += f" by {escape(row.decider)}"
    if row.decided_at:
        text += f" at {_when(row.decided_at)}"
    if row.reason:
        text += f": {escape(row.reason)}"
    return _cut(text, TEXT_LIMIT)


def _when(moment: datetime) -> str:
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(text: str, action_id: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
        "style": style,
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(_cut(text, TEXT_LIMIT))}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}
