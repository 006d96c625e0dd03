"""gunicorn, embedded: ``opsbot serve`` (web only) and ``opsbot run`` (web + worker).

Metrics: the master prepares prometheus_client's multiprocess directory before
forking (any worker count: a lone worker is restarted too, and its counters
must not reset with it), and drops a dead worker's live gauges
(``child_exit``); a private directory it made is removed at exit. Traces and
error reports (opt-in) start in each worker after the fork (``post_fork``).
"""

from __future__ import annotations

import errno
import signal
import socket
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from opsbot import metrics
from opsbot.app import create_app
from opsbot.checks import check_configuration
from opsbot.config import ConfigError, Settings, load_settings
from opsbot.logs import gunicorn_logconfig
from opsbot.telemetry import errors, tracing
from opsbot.web.errors import SlowClient
from opsbot.worker import Worker

# A request (headers and body) must arrive within this many seconds of its first byte: a client
# sending a byte a second holds a thread for this long, not for good. The load balancer's own
# idle timeout (60 s on an ALB) is longer, so it never cuts a request opsbot would still read.
REQUEST_READ_SECONDS = 5.0


class DeadlineSocket:
    """A socket whose reads fail once the current request's read deadline has passed."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = time.monotonic() + REQUEST_READ_SECONDS

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def recv(self, size: int, *flags: int) -> bytes:
        """Read like socket.recv, but never past the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SlowClient(errno.ECONNRESET, "request read deadline passed")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise SlowClient(errno.ECONNRESET, "request read deadline passed") from None


class DeadlineThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with a read deadline per request."""

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.deadline = time.monotonic() + REQUEST_READ_SECONDS
        return super().handle(conn)


class Server(BaseApplication):  # type: ignore[misc]
    """A gunicorn application whose workers each build the app with ``create_app``."""

    def __init__(
        self,
        options: dict[str, Any],
        *,
        with_worker: bool = False,
        settings: Settings | None = None,
    ) -> None:
        self.options = options
        self.with_worker = with_worker
        self.settings = settings
        self.metrics_dir: str | None = None
        super().__init__()

    def run(self) -> None:
        """Serve until stopped; the master prepares metrics and says what telemetry is on."""
        # Once, before any worker forks (a reload must not wipe the live workers' files).
        self.metrics_dir = metrics.prepare_multiprocess()
        tracing.announce()
        if self.settings is not None:
            errors.announce(self.settings)
        super().run()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key == "worker_class" and value == "gthread":
                value = "opsbot.server.DeadlineThreadWorker"
            self.cfg.set(key, value)
        if self.settings is not None:  # gunicorn's own lines in opsbot's format (text or JSON)
            self.cfg.set("logconfig_dict", gunicorn_logconfig(self.settings))
        self.cfg.set("post_fork", self.start_telemetry)
        self.cfg.set("child_exit", _child_exit)
        self.cfg.set("on_exit", self.remove_metrics_dir)
        self.cfg.set("worker_exit", _worker_exit)
        self.cfg.set("when_ready", self.guard_reloads)
        if self.with_worker:
            self.cfg.set("post_worker_init", _start_background)

    def load(self) -> Any:
        return create_app()

    def guard_reloads(self, arbiter: Any) -> None:
        """Make the master's SIGHUP validate the configuration before gunicorn replaces workers.

        gunicorn's own HUP starts new workers with the file as it is now: an
        invalid file would fail their boot and halt the server. Refused, the
        running workers keep the configuration they have.
        """

        def on_hup(signum: int, frame: Any) -> None:
            try:
                check_configuration(self.settings or load_settings())
            except ConfigError as exc:
                arbiter.log.error("reload refused; the running configuration stays:\n%s", exc)
                return
            arbiter.signal(signum, frame)  # gunicorn's own handler: queue the HUP

        signal.signal(signal.SIGHUP, on_hup)

    def start_telemetry(self, _server: Any, _worker: Any) -> None:
        """Start traces and error reports in a freshly forked worker (each opt-in)."""
        tracing.start()
        if self.settings is not None:
            errors.start(self.settings)

    def remove_metrics_dir(self, _server: Any) -> None:
        """Remove the private metrics directory made at start (none when the variable was set)."""
        if self.metrics_dir is not None:
            metrics.remove_multiprocess_dir(self.metrics_dir)


_background: Worker | None = None


def _start_background(worker: Any) -> None:
    global _background
    app = worker.wsgi
    _background = Worker(app.extensions["opsbot"])
    _background.start()


def _worker_exit(_server: Any, _worker: Any) -> None:
    if _background is not None:
        _background.stop()
    tracing.stop()  # sends the spans still batched
    errors.stop()


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.mark_process_dead(worker.pid)
