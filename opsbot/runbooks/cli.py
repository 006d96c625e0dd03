"""``opsbot runbooks list|show|validate`` and ``opsbot patch list|run``; runbook checks."""

from __future__ import annotations

import getpass

import click

from opsbot.config import ConfigError, Settings, load_policy
from opsbot.core.policy import Policy
from opsbot.runbooks.catalogue import Catalogue, load_catalogue


def check_runbooks(settings: Settings, policy: Policy) -> str:
    """Validate the runbooks, the rules naming them and the patch windows; raise ConfigError."""
    from opsbot.runbooks.patch_windows import parse_windows

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


def _catalogue() -> Catalogue:
    from opsbot.cli import fail, load_settings

    try:
        return load_catalogue(load_settings().runbooks_dir)
    except ConfigError as exc:
        fail(str(exc))


@click.group()
def runbooks() -> None:
    """The runbook catalogue."""


@runbooks.command("list")
def list_runbooks() -> None:
    """List the runbooks."""
    for book in _catalogue().runbooks.values():
        flag = " (dangerous)" if book.dangerous else ""
        click.echo(f"{book.name:24} {book.kind:10} {book.title}{flag}")


@runbooks.command("show")
@click.argument("name")
def show_runbook(name: str) -> None:
    """Show one runbook: document, parameters, targets, environments and approvals."""
    from opsbot.cli import fail

    book = _catalogue().get(name)
    if book is None:
        fail(f"there is no runbook {name!r} (see: opsbot runbooks list)")
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
def validate_runbooks() -> None:
    """Validate every runbook file; exit non-zero naming file, key and problem."""
    found = _catalogue()
    click.echo(f"ok: {len(found.runbooks)} runbooks ({found.source})")


@click.group()
def patch() -> None:
    """Patch windows (AWS-RunPatchBaseline)."""


def _windows(settings: Settings) -> list:  # type: ignore[type-arg]
    from opsbot.cli import fail
    from opsbot.runbooks.patch_windows import parse_windows

    try:
        policy = load_policy(settings.config)
        text = settings.config.read_text(encoding="utf-8") if settings.config.exists() else None
        return parse_windows(policy, text, str(settings.config))
    except ConfigError as exc:
        fail(str(exc))


@patch.command("list")
def list_windows() -> None:
    """List the patch windows and when each opens next."""
    from datetime import UTC, datetime

    from opsbot.cli import load_settings

    for w in _windows(load_settings()):
        nxt = w.trigger().get_next_fire_time(None, datetime.now(UTC))
        targets = ",".join(f"{k}={'|'.join(v)}" for k, v in w.targets.items())
        click.echo(f"{w.name:20} {w.operation:8} {targets:24} next {nxt:%Y-%m-%d %H:%M %Z}")


@patch.command("run")
@click.argument("name")
@click.option("--scan", "operation", flag_value="Scan", help="Scan only (default: as configured).")
@click.option("--install", "operation", flag_value="Install", help="Install patches.")
def run_window(name: str, operation: str | None) -> None:
    """Request a patch window's run now; approval applies, the worker runs it."""
    from opsbot.app import build_runtime
    from opsbot.cli import fail, load_settings
    from opsbot.db.session import transaction
    from opsbot.runbooks import service
    from opsbot.runbooks.patch_windows import request_window_run

    settings = load_settings()
    window = next((w for w in _windows(settings) if w.name == name), None)
    if window is None:
        fail(f"there is no patch window {name!r} (see: opsbot patch list)")
    rt = build_runtime(settings)
    try:
        with transaction(rt.sessions) as session:
            now = rt.clock()
            run = request_window_run(
                session, rt, window, now, now=now, requester=f"cli:{getpass.getuser()}",
                operation=operation,
            )  # fmt: skip
            run_id, state = run.id, run.state
    except service.RunError as exc:
        fail(str(exc))
    finally:
        rt.engine.dispose()
    click.echo(f"run {run_id} of patch window {name} is {state.replace('_', ' ')}")
