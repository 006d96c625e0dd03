"""Incident commands and card buttons: list, show, acknowledge, resolve, assign, silence 1 h."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from opsbot.core.accounts import ENVIRONMENTS
from opsbot.core.rules import PRIORITIES
from opsbot.core.slacktext import escape
from opsbot.slack.commands.base import CommandTable, Problem, Reply, Request, Usage, incident_id

STATUS_WORDS = {
    "open": ("open",),
    "acked": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("open", "acknowledged", "resolved"),
}
LIST_LIMIT = 20
BUTTON_SILENCE = timedelta(hours=1)
MENTION = re.compile(r"<@(?P<id>[UW][A-Z0-9]+)(?:\|(?P<name>[^>]+))?>")


def list_incidents(req: Request) -> Reply:
    """List incidents by status, priority and environment (default: open and acknowledged)."""
    statuses: tuple[str, ...] = ("open", "acknowledged")
    filters: dict[str, str] = {}
    for word in req.args:
        lowered = word.lower()
        if lowered in STATUS_WORDS:
            statuses = STATUS_WORDS[lowered]
        elif word.upper() in PRIORITIES:
            filters["priority"] = word.upper()
        elif lowered in ENVIRONMENTS:
            filters["environment"] = lowered
        else:
            raise Usage(f"`{word}` is not a status, priority or environment.")
    rows = req.ops.incidents(statuses, filters, LIST_LIMIT)
    if not rows:
        return Reply("No incidents match.")
    return Reply("\n".join(_line(row) for row in rows))


def _line(row: Any) -> str:
    # Alert text is escaped: a reply must not mention anyone or disguise a link.
    jira = f" · {escape(row.jira_key)}" if row.jira_key else ""
    where = f"{row.environment} · {escape(row.title)}"
    return f"#{row.id} {row.priority} {row.status} · {where} · seen {row.count}x{jira}"


def show(req: Request) -> Reply:
    """Show one incident."""
    row = _get(req)
    account = escape(row.account_name or row.account_id or "—")
    lines = [
        _line(row),
        f"account {account} · region {escape(row.region or '—')}",
        f"resource {escape(row.resource or '—')}",
        f"first seen {row.first_seen:%Y-%m-%d %H:%M} UTC",
        f"last seen {row.last_seen:%Y-%m-%d %H:%M} UTC",
        escape(row.summary or ""),
    ]
    return Reply("\n".join(line for line in lines if line))


def acknowledge(req: Request) -> Reply:
    """Acknowledge an incident."""
    out = req.ops.acknowledge(_id(req), req.user.actor)
    return Reply(out.message, public=out.changed)


def resolve(req: Request) -> Reply:
    """Resolve an incident with an optional note."""
    note = " ".join(req.args[1:])
    out = req.ops.resolve(_id(req), req.user.actor, note)
    return Reply(out.message, public=out.changed)


def assign(req: Request) -> Reply:
    """Make a user the owner of an incident."""
    if len(req.args) < 2:
        raise Usage("Whom should I assign it to?")
    owner = _owner(req, req.args[1])
    out = req.ops.assign(_id(req), owner, req.user.actor)
    return Reply(escape(out.message), public=out.changed)  # it names the owner as typed


def _owner(req: Request, text: str) -> str:
    found = MENTION.fullmatch(text)
    if found:
        return found["name"] or req.ops.user_name(found["id"])
    if text.startswith("@") and len(text) > 1:
        return text[1:]
    raise Usage(f"`{text}` is not a user: write @name.")


def silence_hour(req: Request) -> Reply:
    """Silence what keeps raising an incident for one hour (the card's button)."""
    row = _get(req)
    ends_at = req.ops.now() + BUTTON_SILENCE
    reason = f"silenced from incident {row.id}"
    silence_id = req.ops.silence(incident_matcher(row), ends_at, reason, req.user.actor)
    req.ops.note(row.id, f"Silenced for 1 h by {escape(req.user.actor)} (silence {silence_id}).")
    return Reply(
        f"Silence {silence_id} keeps incident {row.id}'s alarm quiet for 1 h.", public=True
    )


def incident_matcher(row: Any) -> dict[str, Any]:
    """Return a silence matcher for the alerts of an incident: their own fingerprint."""
    # The fingerprint is the identity every alert of the incident carries; a title or a
    # resource is not (a title is not an alarm name, and many alerts have no resource).
    matcher: dict[str, Any] = {"source": row.source, "fingerprint": row.fingerprint}
    if row.account_id:
        matcher["account"] = row.account_id
    return matcher


def _id(req: Request) -> int:
    if not req.args:
        raise Usage("Which incident?")
    return incident_id(req.args[0])


def _get(req: Request) -> Any:
    number = _id(req)
    row = req.ops.incident(number)
    if row is None:
        raise Problem(f"There is no incident {number}.")
    return row


def register(table: CommandTable) -> None:
    """Add the incident commands and the card's buttons."""
    cmd = table.command
    cmd(
        "incidents",
        usage="incidents [open|acked|resolved|all] [P1…P5] [prod|nonprod|sandbox|dev]",
        summary="list incidents",
    )(list_incidents)
    cmd("show", usage="show <incident>", summary="one incident")(show)
    cmd("ack", usage="ack <incident>", summary="acknowledge", action="acknowledge", changes=True)(
        acknowledge
    )
    cmd(
        "resolve",
        usage="resolve <incident> [note]",
        summary="resolve",
        action="resolve",
        changes=True,
    )(resolve)
    cmd(
        "assign",
        usage="assign <incident> @user",
        summary="set the owner",
        action="assign",
        changes=True,
    )(assign)
    table.button("incident_ack", action="acknowledge")(acknowledge)
    table.button("incident_resolve", action="resolve")(resolve)
    table.button("incident_silence", action="silence")(silence_hour)
