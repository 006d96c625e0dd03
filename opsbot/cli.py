"""The ``opsbot`` command line."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from opsbot.config import ConfigError, Settings, load_policy

log = logging.getLogger("opsbot")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a precise error and exit non-zero."""
    click.echo(f"opsbot: error: {message}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    """Return the settings from the environment, or exit with the field that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"OPSBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}")


def setup_logging(settings: Settings) -> None:
    """Log to stderr at the configured level."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.group()
def main() -> None:
    """opsbot: the operations desk for AWS estates."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Run everything in one process: web, worker and scheduler (the embedded default)."""
    settings = _ready(upgrade_sqlite=True)
    _summary(settings, f"http://{host}:{port}")
    _serve(host, port, workers=1, threads=4, with_worker=True)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server's job
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per worker; 1 runs gunicorn's sync workers.",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the web service only, under gunicorn."""
    settings = _ready(upgrade_sqlite=False)
    _summary(settings, f"http://{host}:{port}")
    _serve(host, port, workers=workers, threads=threads, with_worker=False)


@main.command()
@click.option(
    "--sqs",
    "queue_urls",
    multiple=True,
    metavar="QUEUE_URL",
    help="Also pull this SQS queue (repeatable; default OPSBOT_SQS_QUEUE_URLS).",
)
def worker(queue_urls: tuple[str, ...]) -> None:
    """Run the outbox worker and the scheduler (no web), and pull SQS queues if given."""
    from opsbot.app import build_runtime
    from opsbot.intake.sqs import SqsWorkers
    from opsbot.worker import Background

    settings = _ready(upgrade_sqlite=False)
    rt = build_runtime(settings)
    background = Background(rt)
    queues = SqsWorkers(rt, list(queue_urls) or settings.sqs_queue_urls)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    background.start()
    queues.start()
    stop.wait()
    queues.stop()
    background.stop()


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to a revision."""
    from opsbot.db import migrate

    settings = load_settings()
    setup_logging(settings)
    try:
        migrate.upgrade(settings.database_url, revision)
    except Exception as exc:
        fail(f"migration failed on {_safe_url(settings.database_url)}: {exc}")
    click.echo(f"database {_safe_url(settings.database_url)} is at {revision}")


@main.command()
def check() -> None:
    """Validate the settings and the YAML configuration; exit non-zero on any error."""
    settings = load_settings()
    required = "OPSBOT_CONFIG" in os.environ
    try:
        policy = load_policy(settings.config, required=required)
        from opsbot.incidents.escalation import parse_escalation

        parse_escalation(policy.extra)
        from opsbot.jira.config import jira_config

        jira_config(policy)
        from opsbot.intake.sources_config import install as install_source_config

        install_source_config(policy)
        from opsbot.runbooks.cli import check_runbooks

        runbook_summary = check_runbooks(settings, policy)
    except ConfigError as exc:
        fail(str(exc))
    source = settings.config if settings.config.exists() else "built-in defaults"
    click.echo(
        f"ok: {source}: {len(policy.accounts)} accounts, {len(policy.rules)} rules, "
        f"{len(policy.silences)} silences"
    )
    click.echo(f"ok: {runbook_summary}")


@main.command()
@click.argument("sample", required=False)
@click.option("--url", default="http://127.0.0.1:8080", show_default=True)
@click.option("--list", "list_only", is_flag=True, help="List the bundled samples.")
def simulate(sample: str | None, url: str, list_only: bool) -> None:
    """Sign a bundled sample event and push it through a running opsbot's POST /sns."""
    from opsbot.intake import simulate as sim

    if list_only or not sample:
        for name, description in sim.available().items():
            click.echo(f"{name:28} {description}")
        return
    settings = load_settings()
    try:
        status, body = sim.push(settings, sample, url)
    except sim.SimulateError as exc:
        fail(str(exc))
    click.echo(f"HTTP {status}: {json.dumps(body)}")
    if status >= 300:
        sys.exit(1)


def _ready(*, upgrade_sqlite: bool) -> Settings:
    settings = load_settings()
    setup_logging(settings)
    try:
        policy = load_policy(settings.config, required="OPSBOT_CONFIG" in os.environ)
        from opsbot.jira.config import jira_config

        jira_config(policy)
    except ConfigError as exc:
        fail(str(exc))
    if upgrade_sqlite and settings.database_url.startswith("sqlite"):
        from opsbot.db import migrate

        migrate.upgrade(settings.database_url)
    return settings


def _serve(host: str, port: int, *, workers: int, threads: int, with_worker: bool) -> None:
    from opsbot.server import Server

    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync" if threads == 1 else "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 30,
        "accesslog": None,
    }
    Server(options, with_worker=with_worker).run()


def _summary(settings: Settings, url: str) -> None:
    on_off = {True: "on", False: "off (not configured)"}
    lines = [
        f"opsbot listening on {url}",
        f"  database     {_safe_url(settings.database_url)}",
        f"  config       {settings.config if settings.config.exists() else 'built-in defaults'}",
        f"  SNS topics   {', '.join(settings.sns_topic_arns) or 'any (allow-list unset)'}",
        f"  SNS certs    {settings.effective_cert_dir} (then download from SNS)",
        f"  API          {'token' if settings.api_token else 'loopback only (no token set)'}",
        f"  Jira         {on_off[settings.jira_enabled]}",
        f"  Slack        {on_off[settings.slack_enabled]}",
    ]
    for line in lines:
        log.info(line)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _add_runbook_commands() -> None:
    from opsbot.runbooks.cli import patch, runbooks

    main.add_command(runbooks)
    main.add_command(patch)


_add_runbook_commands()
