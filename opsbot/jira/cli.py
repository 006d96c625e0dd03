"""``opsbot jira discover``: what a live Jira offers, for the ``jira:`` settings."""

from __future__ import annotations

import click

from opsbot.clicontext import CliContext, CliError
from opsbot.jira.discover import DiscoverError, connect, discover, report


@click.group()
def jira() -> None:
    """Jira setup helpers."""


@jira.command("discover")
@click.option(
    "--project",
    metavar="KEY",
    help="Project to describe (default OPSBOT_JIRA_PROJECT; a desk's project works too).",
)
@click.pass_obj
def discover_command(obj: CliContext, project: str | None) -> None:
    """Print the project, issue types, priorities, desks, request types and transition ids."""
    settings = obj.settings
    try:
        client, tickets = connect(settings)
        try:
            found = discover(client, tickets, project or settings.jira_project)
        finally:
            client.close()
            tickets.close()
    except DiscoverError as exc:
        raise CliError(str(exc)) from None
    for line in report(found):
        click.echo(line)
