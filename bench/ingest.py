"""Ingest benchmark: signed SNS notifications into opsbot under gunicorn on PostgreSQL.

Starts ``opsbot serve --workers 2 --threads 1`` (two sync workers) against a
fresh PostgreSQL database, pre-signs notifications with a local key whose
certificate the server pins, and drives them from this process over
127.0.0.1. Two shapes: a storm of one alarm (every message a repeat of one
incident) and all-distinct alarms (every message a new incident). For each it
measures the most it can take (closed loop, N connections) and the latency at
a fixed offered rate (open loop). CPU per notification is the server's own
user+system time divided by the notifications it accepted.

Run by hand; it prints figures and asserts nothing:
    .venv/bin/python bench/ingest.py [--seconds 15] [--rate 300] [--connections 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from opsbot.db import migrate
from opsbot.snssign import LocalSigner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import alarm_message  # noqa: E402 - reuse the documented alarm shape

TOPIC = "arn:aws:sns:us-east-1:111122223333:opsbot-bench"
BENCH_DB = "opsbot_bench"


def fresh_database(admin_url: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env |= {
        "OPSBOT_DATABASE_URL": url,
        "OPSBOT_DATA_DIR": str(data_dir),
        "OPSBOT_LOG_LEVEL": "WARNING",
    }
    opsbot = str(Path(sys.executable).parent / "opsbot")
    proc = subprocess.Popen(
        [
            opsbot,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--threads",
            "1",
        ],
        env=env,
        cwd=data_dir,
    )
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("opsbot serve did not become ready")


def server_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """Return user+system CPU of the gunicorn master and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [proc.pid]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def make_bodies(signer: LocalSigner, shape: str, n: int) -> list[bytes]:
    bodies = []
    for i in range(n):
        name = "Storm-CPU" if shape == "storm" else f"Distinct-{uuid.uuid4().hex[:12]}-{i}"
        envelope = signer.notification(alarm_message(name=name), topic_arn=TOPIC)
        bodies.append(json.dumps(envelope).encode())
    return bodies


def post(port: int, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/sns", body=body, headers={"Content-Type": "text/plain; charset=UTF-8"})
    status = conn.getresponse().status
    conn.close()
    return status, time.perf_counter() - started


def closed_loop(
    port: int, bodies: list[bytes], connections: int, seconds: float
) -> dict[str, float]:
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def run() -> None:
        while time.perf_counter() < deadline:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            status, took = post(port, body)
            with lock:
                latencies.append(took)
                errors[0] += status != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return summarise(latencies, errors[0], elapsed)


def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float) -> dict[str, float]:
    total = min(len(bodies), int(rate * seconds))
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    pending: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def run() -> None:
        while (body := pending.get()) is not None:
            status, took = post(port, body)
            with lock:
                latencies.append(took)
                errors[0] += status != 200

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    for i in range(total):
        target = started + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pending.put(bodies[i])
    for _ in threads:
        pending.put(None)
    for t in threads:
        t.join()
    return summarise(latencies, errors[0], time.perf_counter() - started)


def summarise(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "errors": errors,
        "per_second": len(ordered) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    url = fresh_database(args.database)
    data_dir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    signer = LocalSigner.load_or_create(data_dir / "sns-certs")
    port = free_port()
    server = start_server(url, data_dir, port)
    print(
        f"opsbot serve: 2 sync workers on PostgreSQL, {os.cpu_count()} cores shared with the load"
    )
    try:
        for shape in ("storm", "distinct"):
            n = int(2000 * args.seconds)
            bodies = make_bodies(signer, shape, n)
            cpu0 = server_cpu_seconds(server)
            peak = closed_loop(port, bodies, args.connections, args.seconds)
            cpu = (server_cpu_seconds(server) - cpu0) / max(peak["n"], 1)
            steady = open_loop(
                port,
                make_bodies(signer, shape, int(args.rate * args.seconds)),
                args.rate,
                args.seconds,
            )
            print(
                f"{shape:9} max {peak['per_second']:7.0f} notifications/s "
                f"(p50 {peak['p50_ms']:.1f} ms, p99 {peak['p99_ms']:.1f} ms, "
                f"{1000 * cpu:.2f} ms server CPU each, {peak['errors']:.0f} errors) | "
                f"at {args.rate:.0f}/s offered: p50 {steady['p50_ms']:.1f} ms, "
                f"p99 {steady['p99_ms']:.1f} ms, {steady['errors']:.0f} errors"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
