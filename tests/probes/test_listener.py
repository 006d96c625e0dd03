"""The worker's listener: /healthz while alive, /metrics from the counters, JSON errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from opsbot.metrics import Metrics
from opsbot.probes import ProbeListener


@pytest.fixture
def listener() -> Iterator[ProbeListener]:
    metrics = Metrics()
    metrics.inc("opsbot_outbox_total", target="slack", outcome="sent")
    probe = ProbeListener(metrics, "127.0.0.1", 0)
    probe.start()
    yield probe
    probe.stop()


def test_healthz_answers_ok(listener: ProbeListener) -> None:
    answer = requests.get(f"{listener.url}/healthz", timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_metrics_render_the_process_counters(listener: ProbeListener) -> None:
    answer = requests.get(f"{listener.url}/metrics?x=1", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'opsbot_outbox_total{outcome="sent",target="slack"} 1' in answer.text


def test_head_has_the_headers_and_no_body(listener: ProbeListener) -> None:
    answer = requests.head(f"{listener.url}/healthz", timeout=5)
    assert answer.status_code == 200 and answer.content == b""


def test_unknown_path_and_method_are_json_errors(listener: ProbeListener) -> None:
    missing = requests.get(f"{listener.url}/readyz", timeout=5)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    posted = requests.post(f"{listener.url}/healthz", data=b"x" * 1000, timeout=5)
    assert (posted.status_code, posted.json()["error"]) == (405, "method_not_allowed")
    assert posted.headers["Allow"] == "GET, HEAD"


def test_a_taken_port_fails_at_start_and_stop_frees_the_port(listener: ProbeListener) -> None:
    with pytest.raises(OSError):
        ProbeListener(Metrics(), "127.0.0.1", listener.port).start()
    port = listener.port
    listener.stop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
