"""Slack commands and buttons, one small module per command group.

Each module has ``register(table: CommandTable)`` and adds its words and
buttons with ``table.command(word, usage=…, summary=…, action=…,
changes=…)(handler)`` and ``table.button(action_id, action=…)(handler)``; a
handler is ``(req: Request) -> Reply`` and reaches opsbot only through
``req.ops`` (see ``base.py``). ``opsbot.slack.dispatch`` does the rest: role
checks with audited refusals (action names in ``opsbot.core.roles``), one
transaction per request, dedup of Slack's retries, usage lines on
``Problem``, ephemeral unless ``Reply.public``.

To add a command group (e.g. runbooks): write ``opsbot/slack/commands/runbooks.py``
with its ``register`` and add it to ``GROUPS`` below: one module, one line.
Operations it needs beyond the ``Ops`` port go on ``opsbot.slack.dispatch.SessionOps``.
"""

from __future__ import annotations

from opsbot.slack.commands import general, incidents, runbooks, silences
from opsbot.slack.commands.base import CommandTable

GROUPS = (incidents, silences, runbooks, general)


def command_table(name: str = "/ops") -> CommandTable:
    """Return the table of every command group."""
    table = CommandTable(name)
    for group in GROUPS:
        group.register(table)
    return table
