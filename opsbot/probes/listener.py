"""The worker's HTTP listener: ``GET /healthz`` (alive) and ``GET /metrics``.

``opsbot worker`` runs no web app, yet ECS health checks and Prometheus need to
reach it. This is the standard library's threading HTTP server in one daemon
thread, on ``OPSBOT_WORKER_HOST:OPSBOT_WORKER_PORT``; it reads no request body.
``/healthz`` touches no database, so it answers as long as the process is
alive; ``/metrics`` shows the worker's counters and the collectors it is given
(the database gauges: outbox by state with the dead letters, integrations up
or down), which answer with ``opsbot_db_up 0`` when the database does not.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client.registry import Collector

from opsbot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

METRICS_TYPE = CONTENT_TYPE
# A client that stalls mid-request must not hold a thread for long.
REQUEST_TIMEOUT_SECONDS = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    metrics: Metrics
    collectors: Sequence[Collector]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "opsbot-worker"
    sys_version = ""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b'{"status": "ok"}', "application/json")
        elif path == "/metrics":
            body = self.server.metrics.render(self.server.collectors)
            self._send(200, body, METRICS_TYPE)
        else:
            self._error(404, "not_found", "This listener serves /healthz and /metrics only.")

    def _refuse(self) -> None:
        self._error(
            405, "method_not_allowed", "Only GET and HEAD are served here.", {"Allow": "GET, HEAD"}
        )

    do_HEAD = do_GET  # the same status and headers, no body (see _send)
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse

    def _error(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": code, "detail": detail}).encode()
        self._send(status, body, "application/json", headers)

    def _send(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("worker listener: " + format, *args)


class ProbeListener:
    """Serves ``/healthz`` and ``/metrics`` in a background thread until stopped."""

    def __init__(
        self, metrics: Metrics, host: str, port: int, collectors: Sequence[Collector] = ()
    ) -> None:
        self.metrics, self.host, self.port = metrics, host, port
        self.collectors = tuple(collectors)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the base URL the listener answers on."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind the port (raising OSError when it is taken) and serve in a thread."""
        server = _Server((self.host, self.port), _Handler)
        server.metrics = self.metrics
        server.collectors = self.collectors
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.5,), name="opsbot-worker-http", daemon=True
        )
        self._thread.start()
        log.info("worker listening on %s (/healthz, /metrics)", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None
