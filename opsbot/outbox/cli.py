"""``opsbot outbox list [--dead]`` and ``opsbot outbox retry ID|--all-dead``."""

from __future__ import annotations

import click

from opsbot.clicontext import CliContext, CliError
from opsbot.db import store
from opsbot.db.session import transaction

LIST_LIMIT = 1000


@click.group()
def outbox() -> None:
    """The outbox: calls to Jira and Slack waiting or given up."""


@outbox.command("list")
@click.option("--dead", is_flag=True, help="Only the dead-lettered rows.")
@click.pass_obj
def list_rows(obj: CliContext, dead: bool) -> None:
    """List undelivered rows (pending, sending, dead), oldest first, with their last error."""
    rt = obj.runtime()
    with transaction(rt.sessions) as session:
        rows = store.list_outbox(session, dead=dead, limit=LIST_LIMIT)
        lines = [
            f"{r.id:>8} {r.state:8} {r.target:6} {r.kind:9} incident {r.incident_id or '-':<6} "
            f"failed {r.attempts:<3} due {r.due_at:%Y-%m-%d %H:%M:%S} "
            f"error {_one_line(r.last_error)}"
            for r in rows
        ]
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("no dead rows" if dead else "the outbox is empty")
    elif len(lines) == LIST_LIMIT:
        click.echo(f"(the first {LIST_LIMIT} rows)")


@outbox.command("retry")
@click.argument("row_id", required=False, type=int)
@click.option("--all-dead", is_flag=True, help="Replay every dead row.")
@click.pass_obj
def retry_rows(obj: CliContext, row_id: int | None, all_dead: bool) -> None:
    """Replay a dead row (or every one): it is delivered again as if new."""
    if (row_id is None) == (not all_dead):
        raise CliError("give either a row ID or --all-dead")
    rt = obj.runtime()
    with transaction(rt.sessions) as session:
        replayed = store.replay_outbox(session, None if all_dead else [row_id or 0], rt.clock())
    if row_id is not None and not replayed:
        raise CliError(f"outbox row {row_id} is not dead (see: opsbot outbox list --dead)")
    click.echo(f"replayed {len(replayed)} dead rows" + (f": {replayed}" if replayed else ""))


def _one_line(text: str | None) -> str:
    return " ".join((text or "-").split())[:160]
