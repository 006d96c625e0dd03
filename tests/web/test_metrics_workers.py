"""Done-when of issue 12: under `opsbot serve --workers 3` a counter read through /metrics equals
the number of requests made, whichever worker answered, and stays so when gunicorn replaces its
workers (SIGHUP); the dead workers' live gauges are dropped and the private directory is removed
at exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.metrics import value

OPSBOT = str(Path(sys.executable).parent / "opsbot")
COUNT = "opsbot_http_request_duration_seconds_count"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def wait_for(check, proc: subprocess.Popen[str], what: str) -> None:
    for _ in range(600):
        if check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{what}:\n" + (proc.communicate()[0] or ""))


def live_gauge_pids(directory: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livesum_*.db")}


def ready_count(url: str) -> float:
    body = requests.get(f"{url}/metrics", timeout=10).text
    return value(body, COUNT, endpoint="/readyz", method="GET", status="200") or 0.0


def hit(url: str, n: int) -> None:
    # a new connection each: the kernel hands them to whichever worker accepts first
    with ThreadPoolExecutor(max_workers=9) as pool:
        codes = list(
            pool.map(lambda _: requests.get(f"{url}/readyz", timeout=10).status_code, range(n))
        )
    assert codes == [200] * n


def test_three_workers_count_every_request_exactly(database_url: str, tmp_path: Path) -> None:
    port, tmp = free_port(), tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "PROMETHEUS_"))}
    env |= {"OPSBOT_DATABASE_URL": database_url, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [OPSBOT, "serve", "--workers", "3", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: len(list(tmp.glob("opsbot-metrics-*"))) == 1, proc, "no metrics dir")
        (directory,) = tmp.glob("opsbot-metrics-*")
        first = set()

        def three_up() -> bool:
            first.clear()
            first.update(children(proc.pid))
            return len(first) == 3 and live_gauge_pids(directory) >= first

        wait_for(three_up, proc, "three workers did not come up")
        hit(url, 45)
        assert ready_count(url) == 45

        proc.send_signal(signal.SIGHUP)  # gunicorn replaces every worker; the counts stay
        wait_for(
            lambda: (
                not children(proc.pid) & first
                and len(children(proc.pid)) == 3
                and live_gauge_pids(directory) == children(proc.pid)
            ),
            proc,
            "the workers were not replaced",
        )
        hit(url, 15)
        assert ready_count(url) == 60
        assert not live_gauge_pids(directory) & first  # mark_process_dead on child_exit
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert not list(tmp.glob("opsbot-metrics-*")), "the private metrics dir outlived the server"


def test_a_named_multiprocess_dir_is_used_and_wiped_at_start(
    database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_99999999.db").write_bytes(b"stale from an earlier run")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "PROMETHEUS_"))}
    env |= {"OPSBOT_DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen(
        [OPSBOT, "serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: len(live_gauge_pids(directory)) == 1, proc, "the worker did not come up")
        hit(url, 3)
        assert ready_count(url) == 3
        assert not (directory / "counter_99999999.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert directory.is_dir()  # the operator's directory is theirs: kept
