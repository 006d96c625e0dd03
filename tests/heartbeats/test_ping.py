"""The outbound heartbeat: a GET to OPSBOT_HEARTBEAT_URL after each healthy cycle, never fatal.

Tested against a local HTTP server: it answers, fails, or holds the request
past the timeout (the one test that is about the timeout setting).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from pydantic import ValidationError
from sqlalchemy import create_engine

from opsbot.config import Settings
from opsbot.heartbeats import add_jobs, ping_if_healthy
from opsbot.runtime import Runtime

SECRET_PATH = "/ping/0f1e2d3c-secret-check-key"


@dataclass
class Monitor:
    """A stand-in for healthchecks.io: records each request, answers ``status``."""

    status: int = 200
    hold: threading.Event | None = None
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    state = Monitor()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, self.headers.get("User-Agent", "")))
            if state.hold is not None:
                state.hold.wait(10)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    running = BackgroundScheduler(timezone="UTC")
    running.start()
    yield running
    if running.running:
        running.shutdown(wait=False)


def ping_rt(
    settings: Settings, make_app: Callable[[Settings], Flask], url: str, **more: object
) -> Runtime:
    values = settings.model_dump() | {"heartbeat_url": url} | more
    rt: Runtime = make_app(Settings(**values)).extensions["opsbot"]
    return rt


def test_a_healthy_worker_pings_with_a_get(
    settings: Settings, make_app, monitor: Monitor, scheduler: BackgroundScheduler
) -> None:
    rt = ping_rt(settings, make_app, monitor.url)
    assert ping_if_healthy(rt, scheduler) is True
    assert monitor.requests == [("GET", SECRET_PATH, "opsbot-heartbeat")]


def test_a_failing_monitor_is_logged_without_the_url_and_never_raises(
    settings: Settings, make_app, monitor: Monitor, scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    monitor.status = 503
    rt = ping_rt(settings, make_app, monitor.url)
    with caplog.at_level(logging.WARNING):
        assert ping_if_healthy(rt, scheduler) is False
    assert "heartbeat ping to 127.0.0.1 failed: HTTP 503" in caplog.text
    assert "secret-check-key" not in caplog.text


def test_a_monitor_that_holds_the_request_costs_the_timeout_only(
    settings: Settings, make_app, monitor: Monitor, scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    monitor.hold = threading.Event()
    rt = ping_rt(settings, make_app, monitor.url, heartbeat_timeout=0.2)
    with caplog.at_level(logging.WARNING):
        assert ping_if_healthy(rt, scheduler) is False
    assert len(monitor.requests) == 1
    assert "heartbeat ping to 127.0.0.1 failed: TimeoutError" in caplog.text


def test_an_unreachable_monitor_is_logged_and_never_raises(
    settings: Settings, make_app, scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    rt = ping_rt(settings, make_app, "http://127.0.0.1:9/ping")  # discard port: refused
    with caplog.at_level(logging.WARNING):
        assert ping_if_healthy(rt, scheduler) is False
    assert "heartbeat ping to 127.0.0.1 failed: ConnectionRefusedError" in caplog.text


def test_no_ping_when_the_database_does_not_answer(
    settings: Settings, make_app, monitor: Monitor, scheduler, tmp_path
) -> None:
    rt = ping_rt(settings, make_app, monitor.url)
    rt.engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")  # cannot open
    assert ping_if_healthy(rt, scheduler) is False
    assert monitor.requests == []


def test_no_ping_when_the_scheduler_has_stopped(
    settings: Settings, make_app, monitor: Monitor, scheduler: BackgroundScheduler
) -> None:
    rt = ping_rt(settings, make_app, monitor.url)
    scheduler.shutdown(wait=False)
    assert ping_if_healthy(rt, scheduler) is False
    assert monitor.requests == []


def test_the_ping_job_is_added_only_with_a_url(settings: Settings, make_app) -> None:
    for url, expected in (
        (None, {"heartbeats"}),
        ("https://hc.example/p", {"heartbeats", "heartbeat_ping"}),
    ):
        idle = BackgroundScheduler(timezone="UTC")
        add_jobs(idle, ping_rt(settings, make_app, url, heartbeat_interval=45))
        assert {job.id for job in idle.get_jobs()} == expected
    assert idle.get_job("heartbeat_ping").trigger.interval.total_seconds() == 45


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        ({"heartbeat_interval": 10}, True),
        ({"heartbeat_interval": 9}, False),
        ({"heartbeat_interval": 3600}, True),
        ({"heartbeat_interval": 3601}, False),
        ({"heartbeat_timeout": 60}, True),
        ({"heartbeat_timeout": 60.5}, False),
        ({"heartbeat_timeout": 0}, False),
        ({"heartbeat_url": "ftp://monitor.example/x"}, False),
    ],
)
def test_settings_at_and_past_their_limits(values: dict[str, object], ok: bool) -> None:
    if ok:
        Settings(**values)
    else:
        with pytest.raises(ValidationError):
            Settings(**values)
