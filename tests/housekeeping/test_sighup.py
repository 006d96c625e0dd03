"""SIGHUP reloads the configuration of a running ``opsbot worker`` and ``opsbot serve``;
an invalid file is refused with its FILE:LINE problems and the process keeps running."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

OPSBOT = str(Path(sys.executable).parent / "opsbot")
TOKEN = "sighup-test-token-0123456789"
BROKEN = "rules:\n  - match: {sauce: x}\n"
VALID = "rules:\n  - match: {source: aws.guardduty}\n    priority: P1\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A running opsbot command whose output lines are read as they come."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [OPSBOT, *args], env=env, cwd=cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, limit: float = 30.0) -> str:
        """Return the next output line that contains ``text``; fail after ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"no line with {text!r} in:\n{''.join(self.seen)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    config = tmp_path / "opsbot.yaml"
    config.write_text("rules: []\n")
    return values | {
        "OPSBOT_DATABASE_URL": database_url,
        "OPSBOT_CONFIG": str(config),
        "OPSBOT_WORKER_PORT": str(free_port()),
        "OPSBOT_API_TOKEN": TOKEN,
        "AWS_EC2_METADATA_DISABLED": "true",  # no credential probe of instance metadata
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    process = Process(["worker"], env, tmp_path)
    process.wait_for("worker started")
    yield process
    process.stop()


def test_sighup_reloads_the_worker_and_refuses_an_invalid_file(
    worker: Process, env: dict[str, str]
) -> None:
    config = Path(env["OPSBOT_CONFIG"])
    config.write_text(BROKEN)
    worker.proc.send_signal(signal.SIGHUP)
    worker.wait_for("configuration reload refused")
    worker.wait_for(f"{config}:2: rules[0].match.sauce: unknown key")

    config.write_text(VALID)
    worker.proc.send_signal(signal.SIGHUP)
    worker.wait_for("worker stopped")  # the scheduler and outbox restart with the new file
    worker.wait_for("worker started")
    worker.wait_for(f"configuration reloaded from {config}")
    port = env["OPSBOT_WORKER_PORT"]
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert worker.stop() == 0


def test_sighup_and_post_reload_under_gunicorn(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env, tmp_path
    )
    try:
        server.wait_for("Booting worker")
        for _ in range(100):
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        config = Path(env["OPSBOT_CONFIG"])
        config.write_text(BROKEN)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("reload refused; the running configuration stays")
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200

        config.write_text(VALID)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        answer = requests.post(f"{url}/-/reload", headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["rules"], answer.json()["workers"]) == (1, "restarting")
        server.wait_for("Hang up")  # gunicorn replaces every worker with the new file
        server.wait_for("Booting worker")
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        t0 = time.monotonic()
        code = server.stop()
        print("STOP took", time.monotonic() - t0)
    assert code == 0
