"""The worker's listener: /healthz while alive, /metrics from the counters and the database
gauges, JSON errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from opsbot.db import store
from opsbot.db.session import make_engine, make_sessionmaker, transaction
from opsbot.metrics import Metrics
from opsbot.outbox.status import record_status
from opsbot.probes import ProbeListener
from opsbot.telemetry import DatabaseGauges
from tests.support.metrics import value


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


def test_metrics_show_the_database_gauges_and_their_absence(database_url: str, clock) -> None:
    """The worker's /metrics carries the dead letters and integrations read from the database,
    and answers ``opsbot_db_up 0`` (200, counters intact) when that database is unreachable."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        store.insert_outbox(session, [dead_row(clock())])
        record_status(session, "jira", "failing", "HTTP 503", clock())
    down = make_sessionmaker(make_engine("sqlite:////nonexistent-opsbot-dir/opsbot.db"))
    metrics = Metrics()
    metrics.inc("opsbot_outbox_total", target="jira", outcome="dead")
    for sessions_of, up in ((sessions, 1), (down, 0)):
        probe = ProbeListener(
            metrics, "127.0.0.1", 0, collectors=[DatabaseGauges(sessions_of, clock)]
        )
        probe.start()
        try:
            body = requests.get(f"{probe.url}/metrics", timeout=10).text
        finally:
            probe.stop()
        assert value(body, "opsbot_db_up") == up
        assert value(body, "opsbot_outbox_total", target="jira", outcome="dead") == 1
        assert value(body, "opsbot_outbox_dead", target="jira") == (1 if up else None)
        assert value(body, "opsbot_integration_up", target="jira") == (0 if up else None)
    engine.dispose()


def dead_row(now) -> dict[str, object]:
    return {
        "target": "jira",
        "kind": "create",
        "incident_id": None,
        "payload": {},
        "coalesce_key": None,
        "state": "dead",
        "attempts": 3,
        "due_at": now,
        "locked_until": None,
        "last_error": "gave up",
        "created_at": now,
        "updated_at": now,
    }
