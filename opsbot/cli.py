"""The ``opsbot`` command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any

import click
from sqlalchemy.engine import make_url

from opsbot.app import build_runtime
from opsbot.checks import check_configuration
from opsbot.clicontext import CliContext, CliError
from opsbot.config import ConfigError, Settings
from opsbot.db import migrate
from opsbot.housekeeping import ExportError, prune
from opsbot.intake import simulate as sim
from opsbot.intake.sqs import SqsWorkers
from opsbot.jira.cli import jira
from opsbot.logs import setup_logging
from opsbot.outbox.cli import outbox
from opsbot.runbooks import patch, runbooks
from opsbot.runtime import Runtime
from opsbot.server import Server
from opsbot.telemetry import errors, tracing
from opsbot.worker import Worker

log = logging.getLogger("opsbot")


class OpsbotGroup(click.Group):
    """The ``opsbot`` group: a ConfigError anywhere below is a precise error, exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise CliError(str(exc)) from None


@click.group(cls=OpsbotGroup)
@click.version_option(package_name="opsbot", prog_name="opsbot", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """opsbot: the operations desk for AWS estates."""
    ctx.obj = CliContext(build_runtime)
    ctx.call_on_close(ctx.obj.close)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.pass_obj
def run(obj: CliContext, host: str, port: int) -> None:
    """Run everything in one process: web, worker and scheduler (the embedded default)."""
    settings = _ready(obj, upgrade_sqlite=True)
    _summary(settings, f"http://{host}:{port}")
    _serve(settings, host, port, workers=1, threads=4, with_worker=True)


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
@click.pass_obj
def serve(obj: CliContext, host: str, port: int, workers: int, threads: int) -> None:
    """Run the web service only, under gunicorn."""
    settings = _ready(obj, upgrade_sqlite=False)
    _summary(settings, f"http://{host}:{port}")
    _serve(settings, host, port, workers=workers, threads=threads, with_worker=False)


@main.command()
@click.option(
    "--sqs",
    "queue_urls",
    multiple=True,
    metavar="QUEUE_URL",
    help="Also pull this SQS queue (repeatable; default OPSBOT_SQS_QUEUE_URLS).",
)
@click.pass_obj
def worker(obj: CliContext, queue_urls: tuple[str, ...]) -> None:
    """Run the outbox worker and the scheduler (no web), and pull SQS queues if given."""
    settings = _ready(obj, upgrade_sqlite=False)
    tracing.announce()  # traces and error reports (opt-in) start before the runtime is built
    tracing.start()
    errors.announce(settings)
    errors.start(settings)
    rt = obj.runtime()
    background = Worker(rt, listen=(settings.worker_host, settings.worker_port))
    queues = SqsWorkers(rt, list(queue_urls) or settings.sqs_queue_urls)
    stop, wake, hup = threading.Event(), threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        (hup if signum == signal.SIGHUP else stop).set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        background.start()
    except OSError as exc:
        where = f"{settings.worker_host}:{settings.worker_port}"
        raise CliError(
            f"cannot listen on {where} (OPSBOT_WORKER_HOST, OPSBOT_WORKER_PORT): {exc.strerror}"
        ) from None
    queues.start()
    while not stop.is_set():
        wake.wait()
        wake.clear()
        if hup.is_set() and not stop.is_set():
            hup.clear()
            background = _reload_worker(rt, background)
    queues.stop()
    background.stop()
    tracing.stop()  # sends the spans still batched
    errors.stop()


def _reload_worker(rt: Runtime, background: Worker) -> Worker:
    """On SIGHUP: validate and swap in the configuration, then restart the scheduler and outbox.

    An invalid file is logged with its FILE:LINE problems and changes nothing.
    """
    try:
        rt.reload()
    except ConfigError as exc:
        log.error("configuration reload refused; the running configuration stays:\n%s", exc)
        return background
    background.stop()
    fresh = Worker(rt, listen=background.listen)
    fresh.start()
    log.info("configuration reloaded from %s", rt.settings.config)
    return fresh


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: CliContext, revision: str) -> None:
    """Apply the migrations up to a revision."""
    settings = obj.settings
    setup_logging(settings)
    try:
        migrate.upgrade(settings.database_url, revision)
    except Exception as exc:
        raise CliError(f"migration failed on {_safe_url(settings.database_url)}: {exc}") from None
    click.echo(f"database {_safe_url(settings.database_url)} is at {revision}")


@db.command("current")
@click.pass_obj
def db_current(obj: CliContext) -> None:
    """Show the revision the database is at, and whether it is the newest."""
    settings = obj.settings
    try:
        revision = migrate.current(settings.database_url)
    except Exception as exc:
        raise CliError(f"cannot read {_safe_url(settings.database_url)}: {exc}") from None
    head = migrate.head_revision()
    if revision is None:
        click.echo(f"none (never migrated; run opsbot db upgrade to reach {head})")
    elif revision == head:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision} (behind head {head}: run opsbot db upgrade)")


@db.command("history")
@click.pass_obj
def db_history(obj: CliContext) -> None:
    """List the migrations, newest first; mark the head and the database's current one."""
    try:
        at = migrate.current(obj.settings.database_url)
    except Exception:
        at = None  # history is the bundled list: it is shown without a database too
    for rev in migrate.history():
        marks = [m for m, on in (("head", rev.is_head), ("current", rev.revision == at)) if on]
        mark = f" ({', '.join(marks)})" if marks else ""
        click.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{mark}: {rev.doc}")


@db.command("prune")
@click.pass_obj
def db_prune(obj: CliContext) -> None:
    """Export the audit log if configured, then delete what the retention settings let go."""
    setup_logging(obj.settings)
    rt = obj.runtime()
    try:
        report = prune(rt, rt.clock())
    except ExportError as exc:
        raise CliError(str(exc)) from None
    for line in report.lines():
        click.echo(line)


@main.command()
@click.pass_obj
def check(obj: CliContext) -> None:
    """Validate the settings and the YAML configuration; exit non-zero on any error."""
    for line in check_configuration(obj.settings):
        click.echo(f"ok: {line}")


@main.command()
@click.argument("sample", required=False)
@click.option("--url", default="http://127.0.0.1:8080", show_default=True)
@click.option("--list", "list_only", is_flag=True, help="List the bundled samples.")
@click.pass_obj
def simulate(obj: CliContext, sample: str | None, url: str, list_only: bool) -> None:
    """Sign a bundled sample event and push it through a running opsbot's POST /sns."""
    if list_only or not sample:
        for name, description in sim.available().items():
            click.echo(f"{name:28} {description}")
        return
    try:
        status, body = sim.push(obj.settings, sample, url)
    except sim.SimulateError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"HTTP {status}: {json.dumps(body)}")
    if status >= 300:
        sys.exit(1)


def _ready(obj: CliContext, *, upgrade_sqlite: bool) -> Settings:
    settings = obj.settings
    setup_logging(settings)
    check_configuration(settings)  # what `opsbot check` rejects never starts, with its message
    if upgrade_sqlite and settings.database_url.startswith("sqlite"):
        migrate.upgrade(settings.database_url)
    return settings


def _serve(
    settings: Settings, host: str, port: int, *, workers: int, threads: int, with_worker: bool
) -> None:
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync" if threads == 1 else "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 30,
        "accesslog": None,
    }
    Server(options, with_worker=with_worker, settings=settings).run()


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
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


main.add_command(runbooks)
main.add_command(patch)
main.add_command(jira)
main.add_command(outbox)
