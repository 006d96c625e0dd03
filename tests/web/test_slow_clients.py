"""Slow and oversized requests (issue 15): a request must arrive within the read deadline, and a
refusal that leaves a body unread closes the connection instead of keeping it alive."""

from __future__ import annotations

import io
import socket
import time

import pytest
from flask import Response
from werkzeug.test import EnvironBuilder, run_wsgi_app

from opsbot.app import MAX_REQUEST_BYTES
from opsbot.server import REQUEST_READ_SECONDS, DeadlineSocket, Server
from opsbot.web.errors import SlowClient
from tests.support.hostile import assert_refused, row_counts


def test_reads_stop_at_the_deadline_and_not_before() -> None:
    left, right = socket.socketpair()
    with left, right:
        wrapped = DeadlineSocket(left)
        right.sendall(b"GET")
        assert wrapped.recv(10) == b"GET"  # within the deadline: an ordinary read
        wrapped.deadline = time.monotonic() - 0.001  # the deadline has passed
        right.sendall(b" /")
        with pytest.raises(SlowClient):
            wrapped.recv(10)


def test_a_silent_client_is_cut_at_the_deadline() -> None:
    left, right = socket.socketpair()
    with left, right:
        wrapped = DeadlineSocket(left)
        wrapped.deadline = time.monotonic() + 0.05  # nothing will come
        with pytest.raises(SlowClient):
            wrapped.recv(10)


def test_the_deadline_is_below_a_load_balancers_idle_timeout() -> None:
    assert 0 < REQUEST_READ_SECONDS <= 10


def test_gthread_serving_uses_the_deadline_worker() -> None:
    server = Server({"worker_class": "gthread", "threads": 4, "bind": "127.0.0.1:0"})
    assert server.cfg.worker_class_str == "opsbot.server.DeadlineThreadWorker"


class Stalled(io.RawIOBase):
    """A request body whose sender stalls past the deadline."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        raise SlowClient(104, "request read deadline passed")


def test_a_body_that_comes_too_slowly_is_refused_and_closes(app, rt) -> None:
    before = row_counts(rt)
    builder = EnvironBuilder(
        path="/api/events", method="POST", data=b"{}", content_type="application/json"
    )
    environ = builder.get_environ()
    environ["wsgi.input"] = io.BufferedReader(Stalled())
    environ["CONTENT_LENGTH"] = "100"
    environ["REMOTE_ADDR"] = "127.0.0.1"
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    response = Response(b"".join(body), status=status, headers=headers)
    assert_refused(response, before, rt)
    # werkzeug reports the broken read as ClientDisconnected (400); SlowClient elsewhere is 408.
    assert response.status_code in (400, 408) and response.headers["Connection"] == "close"


def test_a_413_closes_the_connection(client, rt) -> None:
    before = row_counts(rt)
    response = client.post("/api/events", data=b"x" * (MAX_REQUEST_BYTES + 1))
    assert_refused(response, before, rt)
    assert response.status_code == 413 and response.headers["Connection"] == "close"
