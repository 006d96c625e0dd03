"""`opsbot worker` serves its own /healthz and /metrics on OPSBOT_WORKER_HOST:PORT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from opsbot.config import ConfigError, load_settings
from opsbot.db import store
from opsbot.db.session import make_engine, make_sessionmaker, transaction
from opsbot.outbox.status import record_status
from tests.probes.test_listener import dead_row
from tests.support.metrics import value

OPSBOT = str(Path(sys.executable).parent / "opsbot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    return env | {"OPSBOT_DATABASE_URL": database_url, "OPSBOT_WORKER_PORT": str(port)}


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(200):
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail("opsbot worker did not come up:\n" + (proc.communicate()[0] or ""))


def test_worker_answers_health_and_metrics_then_stops_cleanly(
    database_url: str, tmp_path: Path
) -> None:
    """Done-when of issue 12: the worker's /metrics shows the dead-letter and integration gauges."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with transaction(make_sessionmaker(engine)) as session:
        store.insert_outbox(session, [dead_row(now), dead_row(now)])
        record_status(session, "jira", "stopped", "401 Unauthorized", now)
    engine.dispose()
    port = free_port()
    proc = subprocess.Popen(
        [OPSBOT, "worker"],
        cwd=tmp_path,
        env=worker_env(database_url, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    metrics = requests.get(f"{url}/metrics", timeout=5)
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert value(metrics.text, "opsbot_db_up") == 1
    assert value(metrics.text, "opsbot_outbox_dead", target="jira") == 2
    assert value(metrics.text, "opsbot_outbox_rows", target="jira", state="dead") == 2
    assert value(metrics.text, "opsbot_integration_up", target="jira") == 0
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert f"worker listening on {url}" in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)


def test_worker_refuses_a_taken_port_precisely(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [OPSBOT, "worker"],
            cwd=tmp_path,
            env=worker_env(database_url, port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "OPSBOT_WORKER_PORT" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["1", "9102", "65535"])
def test_worker_port_accepts_the_whole_tcp_range(
    monkeypatch: pytest.MonkeyPatch, port: str
) -> None:
    monkeypatch.setenv("OPSBOT_WORKER_PORT", port)
    assert load_settings().worker_port == int(port)


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_worker_port_outside_the_range_is_a_precise_error(
    monkeypatch: pytest.MonkeyPatch, port: str
) -> None:
    monkeypatch.setenv("OPSBOT_WORKER_PORT", port)
    with pytest.raises(ConfigError, match="OPSBOT_WORKER_PORT"):
        load_settings()


def test_worker_listener_defaults_to_loopback_9102() -> None:
    settings = load_settings()
    assert (settings.worker_host, settings.worker_port) == ("127.0.0.1", 9102)
