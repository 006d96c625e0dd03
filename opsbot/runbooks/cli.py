"""``opsbot runbooks list|show|validate`` and ``opsbot patch list|run``; runbook checks."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

import click

from opsbot.clicontext import CliContext, CliError
from opsbot.config import ConfigError, Settings, load_policy
from opsbot.core.policy import Policy
from opsbot.db.session import transaction
from opsbot.runbooks import service
from opsbot.runbooks.catalogue import Catalogue, load_catalogue
from opsbot.runbooks.patch_windows import Window, parse_windows, request_window_run


def check_runbooks(settings: Settings, policy: Policy) -> str:
    """Validate the runbooks, the rules naming them and the patch windows; raise ConfigError."""
    errors: list[str] = []
    found: Catalogue | None = None
    try:
        found = load_catalogue(settings.runbooks_dir)
    except ConfigError as exc:
        errors += exc.errors
    if found is not None:
        for i, rule in enumerate(policy.rules):
            if rule.runbook and found.get(rule.runbook) is None:
                errors.append(f"{settings.config}: rules[{i}].runbook: no runbook {rule.runbook!r}")
    text = settings.config.read_text(encoding="utf-8") if settings.config.exists() else None
    try:
        windows = parse_windows(policy, text, str(settings.config))
    except ConfigError as exc:
        errors += exc.errors
        windows = []
    if errors:
        raise ConfigError(errors)
    assert found is not None
    return f"{len(found.runbooks)} runbooks ({found.source}), {len(windows)} patch windows"


def _catalogue(obj: CliContext) -> Catalogue:
    return load_catalogue(obj.settings.runbooks_dir)


@click.group()
def runbooks() -> None:
    """The runbook catalogue."""


@runbooks.command("list")
@click.pass_obj
def list_runbooks(obj: CliContext) -> None:
    """List the runbooks."""
    for book in _catalogue(obj).runbooks.values():
        flag = " (dangerous)" if book.dangerous else ""
        click.echo(f"{book.name:24} {book.kind:10} {book.title}{flag}")


@runbooks.command("show")
@click.argument("name")
@click.pass_obj
def show_runbook(obj: CliContext, name: str) -> None:
    """Show one runbook: document, parameters, targets, environments and approvals."""
    book = _catalogue(obj).get(name)
    if book is None:
        raise CliError(f"there is no runbook {name!r} (see: opsbot runbooks list)")
    click.echo(f"{book.name}: {book.title}\n  {book.description}".rstrip())
    click.echo(f"  {book.kind} {book.document}; timeout {book.timeout_seconds}s; "
               f"dangerous: {str(book.dangerous).lower()}; source {book.source}")  # fmt: skip
    for p in book.parameters:
        extra = f" default={p.default}" if p.default is not None else ""
        click.echo(f"  param {p.name} ({p.type}){extra}{' = ' + p.value if p.value else ''}")
    click.echo(f"  targets: ids={list(book.instance_ids)} tags={dict(book.target_tags)} "
               f"max={book.max_targets} concurrency={book.max_concurrency} "
               f"errors={book.max_errors}")  # fmt: skip
    click.echo(f"  environments: {', '.join(book.environments)}; approval: "
               + ", ".join(f"{k}={v}" for k, v in book.approval.items()))  # fmt: skip


@runbooks.command("validate")
@click.pass_obj
def validate_runbooks(obj: CliContext) -> None:
    """Validate every runbook file; exit non-zero naming file, key and problem."""
    found = _catalogue(obj)
    click.echo(f"ok: {len(found.runbooks)} runbooks ({found.source})")


@click.group()
def patch() -> None:
    """Patch windows (AWS-RunPatchBaseline)."""


def _windows(settings: Settings) -> list[Window]:
    policy = load_policy(settings.config)
    text = settings.config.read_text(encoding="utf-8") if settings.config.exists() else None
    return parse_windows(policy, text, str(settings.config))


@patch.command("list")
@click.option(
    "--after", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d"]), default=None,
    help="Show the runs after this UTC time (default: now), e.g. 2030-01-01T00:00.",
)  # fmt: skip
@click.pass_obj
def list_windows(obj: CliContext, after: datetime | None) -> None:
    """List the patch windows and, with their weekdays, the next times each opens."""
    now = after.replace(tzinfo=UTC) if after else datetime.now(UTC)
    for w in _windows(obj.settings):
        runs = ", ".join(f"{start:%a %Y-%m-%d %H:%M %Z}" for start in w.next_runs(now, 3))
        targets = ",".join(f"{k}={'|'.join(v)}" for k, v in w.targets.items())
        click.echo(f"{w.name:20} {w.operation:8} {targets:24} cron {w.cron!r} next {runs}")


@patch.command("run")
@click.argument("name")
@click.option("--scan", "operation", flag_value="Scan", help="Scan only (default: as configured).")
@click.option("--install", "operation", flag_value="Install", help="Install patches.")
@click.pass_obj
def run_window(obj: CliContext, name: str, operation: str | None) -> None:
    """Request a patch window's run now; approval applies, the worker runs it."""
    window = next((w for w in _windows(obj.settings) if w.name == name), None)
    if window is None:
        raise CliError(f"there is no patch window {name!r} (see: opsbot patch list)")
    rt = obj.runtime()
    try:
        with transaction(rt.sessions) as session:
            now = rt.clock()
            run = request_window_run(
                session, rt, window, now, now=now, requester=f"cli:{getpass.getuser()}",
                operation=operation,
            )  # fmt: skip
            run_id, state = run.id, run.state
    except service.RunError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"run {run_id} of patch window {name} is {state.replace('_', ' ')}")
