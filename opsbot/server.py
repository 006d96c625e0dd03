"""gunicorn, embedded: ``opsbot serve`` (web only) and ``opsbot run`` (web + worker)."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from opsbot.app import create_app
from opsbot.config import Settings
from opsbot.logs import gunicorn_logconfig
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
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key == "worker_class" and value == "gthread":
                value = "opsbot.server.DeadlineThreadWorker"
            self.cfg.set(key, value)
        if self.settings is not None:  # gunicorn's own lines in opsbot's format (text or JSON)
            self.cfg.set("logconfig_dict", gunicorn_logconfig(self.settings))
        if self.with_worker:
            self.cfg.set("post_worker_init", _start_background)
            self.cfg.set("worker_exit", _stop_background)

    def load(self) -> Any:
        return create_app()


_background: Worker | None = None


def _start_background(worker: Any) -> None:
    global _background
    app = worker.wsgi
    _background = Worker(app.extensions["opsbot"])
    _background.start()


def _stop_background(_server: Any, _worker: Any) -> None:
    if _background is not None:
        _background.stop()
