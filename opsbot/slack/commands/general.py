"""``/ops help`` and ``/ops whoami``."""

from __future__ import annotations

from opsbot.core import roles
from opsbot.slack.commands.base import CommandTable, Reply, Request


def help_text(req: Request) -> Reply:
    """List the commands."""
    assert req.table is not None
    name = req.table.name
    lines = [f"`{name} {cmd.usage}` — {cmd.summary}" for cmd in req.table.commands.values()]
    return Reply("\n".join(lines))


def whoami(req: Request) -> Reply:
    """Tell users their role and what it allows."""
    may = ", ".join(sorted(a for a in roles.REQUIRED_ROLE if roles.allowed(req.user.role, a)))
    return Reply(f"You are {req.user.name} ({req.user.id}): {req.user.role}. You may: {may}.")


def register(table: CommandTable) -> None:
    """Add help and whoami."""
    table.command("help", usage="help", summary="this list")(help_text)
    table.command("whoami", usage="whoami", summary="your role")(whoami)
